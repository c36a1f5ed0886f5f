/// A problem found while loading manifests: where it is (file, object, field) and what is wrong.
public struct Diagnostic: Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Hashable, Sendable {
        /// A path or file could not be read or parsed: what it wanted is unknown, so nothing is applied.
        case error
        /// The object was skipped or something was ignored that may matter; `--strict` fails on it.
        case warning
        /// Informational, e.g. an object kind natsync does not use.
        case note
    }

    public var severity: Severity
    public var file: String?
    /// `Kind namespace/name`, when the object is known.
    public var object: String?
    /// The field path, such as `spec.ports[0].port`.
    public var field: String?
    public var message: String

    public init(_ severity: Severity, file: String? = nil, object: String? = nil, field: String? = nil, _ message: String) {
        self.severity = severity
        self.file = file
        self.object = object
        self.field = field
        self.message = message
    }

    /// `warning: FILE: Service ns/name: spec.ports[0].port: MESSAGE`.
    public var description: String {
        var parts = ["\(severity.rawValue):"]
        if let file { parts.append("\(file):") }
        if let object { parts.append("\(object):") }
        if let field { parts.append("\(field):") }
        parts.append(message)
        return parts.joined(separator: " ")
    }
}

extension Diagnostic {
    /// A directory named as input that holds no manifest: allowed (no services), but said.
    public static func emptyDirectory(_ path: String) -> Diagnostic {
        Diagnostic(.note, file: path, "no .yaml, .yml or .json file in this directory; it adds no services")
    }
}
