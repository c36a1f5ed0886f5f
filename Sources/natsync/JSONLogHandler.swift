import Foundation
import Logging

/// Log lines as Kubernetes components write them with `--logging-format json`: one JSON object
/// per line with `ts` (seconds since 1970), `v` (0 for info and above, as klog's `V(0)`, else the
/// klog level the swift-log level maps to), `msg`, and the metadata as string fields; errors have
/// no `v`, as component-base's JSON logger writes them.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    let output: FileDescriptorOutput

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "{\"ts\":\(String(format: "%.6f", Date().timeIntervalSince1970))"
        switch event.level {
        case .error, .critical: break
        case .trace: line += ",\"v\":6"
        case .debug: line += ",\"v\":4"
        default: line += ",\"v\":0"
        }
        line += ",\"msg\":\(Self.quoted("\(event.message)"))"
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            line += ",\(Self.quoted(key)):\(Self.quoted("\(value)"))"
        }
        output.write(line + "}\n")
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
