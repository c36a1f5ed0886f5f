import Foundation
import NatsyncModel
import NatsyncNet
import NatsyncUtilities
import NatsyncWire
import Yams

/// The outcome of loading manifests: the valid objects as a cluster state, and what was wrong.
public struct LoadResult: Sendable {
    public var state: ClusterState
    public var diagnostics: [Diagnostic]

    /// Diagnostics that `--strict` turns into a failure.
    public var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }

    /// Paths and files that could not be read or parsed: nothing may be applied, since what they
    /// wanted is unknown.
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
}

/// Reads Services, EndpointSlices and legacy Endpoints from YAML or JSON manifests.
///
/// A path may be a file (one object, several `---` documents, or a `List`) or a directory (see
/// ``ManifestFiles``). The output of `kubectl get services,endpointslices -A -o yaml` (or
/// `-o json`) loads as is. An invalid object is skipped with a warning that names the file, the
/// object and the field; the rest still loads. A path or file that cannot be read or parsed is an
/// error: the commands then apply nothing.
public struct ManifestLoader {
    private var services: [NamespacedName: (Service, String)] = [:]
    private var slices: [NamespacedName: (EndpointSlice, String)] = [:]
    private var legacyEndpoints: [NamespacedName: ([EndpointSlice], String)] = [:]
    private var nodes: [String: (NatsyncModel.Node, String)] = [:]
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    /// Loads every path, in order.
    public static func load(paths: [String]) -> LoadResult {
        var loader = ManifestLoader()
        for path in paths { loader.add(path: path) }
        return loader.result()
    }

    /// Adds a file or the manifest files of a directory. A path or file that cannot be read is an
    /// error, never an empty input; a directory without manifests is a note.
    public mutating func add(path: String) {
        let listing: ManifestFiles.Listing
        switch ManifestFiles.list(path) {
        case .success(let found): listing = found
        case .failure(let failure):
            diagnostics.append(Diagnostic(.error, file: failure.path, failure.reason))
            return
        }
        for directory in listing.emptyDirectories {
            diagnostics.append(.emptyDirectory(directory))
        }
        for entry in listing.entries {
            do throws(ManifestReadError) {
                let file = try entry.get()
                add(contents: try ManifestFiles.read(file).get(), file: file.name)
            } catch {
                diagnostics.append(Diagnostic(.error, file: error.path, error.reason))
            }
        }
    }

    /// Adds the objects of one manifest's bytes; `file` names it in diagnostics. Returns false,
    /// having added nothing, when the bytes do not parse at all (the reason is an error).
    ///
    /// A large JSON `List` (kubectl's output for a cluster) is read from the bytes as they are,
    /// its items decoded and checked over the cores; anything else is decoded whole as text.
    @discardableResult
    public mutating func add(contents: [UInt8], file: String) -> Bool {
        guard contents.withUnsafeBufferPointer({ (try? UTF8Span(validating: $0.span)) != nil }) else {
            notUTF8(file)
            return false
        }
        let listed = contents.withUnsafeBufferPointer { bytes in
            let check = { @Sendable (document: ManifestDocument) in document.objects.map { Self.check($0.0, hint: $0.1, file: file) } }
            return Self.decodeListItems(bytes, minimumItems: 256, check) ?? Self.decodeYAMLListItems(bytes, minimumItems: 256, check)
        }
        if let listed {
            for item in listed {
                for checked in item { record(checked, file: file) }
            }
            return true
        }
        let documents: [ManifestDocument]
        do {
            documents = try Self.decodeDocuments(String(decoding: contents, as: UTF8.self))
        } catch {
            diagnostics.append(Diagnostic(.error, file: file, "cannot parse: \(Self.describeParseError(error, in: contents))"))
            return false
        }
        for document in documents {
            for (object, hint) in document.objects {
                record(Self.check(object, hint: hint, file: file), file: file)
            }
        }
        return true
    }

    private mutating func notUTF8(_ file: String) {
        diagnostics.append(Diagnostic(.error, file: file, "not valid UTF-8"))
    }

    /// The documents of a manifest's text, decoded whole: JSON by `JSONDecoder`, else YAML.
    package static func decodeDocuments(_ text: String) throws -> [ManifestDocument] {
        let start = text.first { !$0.isWhitespace }
        if start == "{" {
            return [try JSONDecoder().decode(ManifestDocument.self, from: Data(text.utf8))]
        }
        var documents: [ManifestDocument] = []
        // Parser.nextRoot, unlike compose_all's sequence, throws a syntax error instead of ending early.
        let parser = try Parser(yaml: text)
        while let node = try parser.nextRoot() {
            if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "null" || scalar.string == "~" {
                continue
            }
            documents.append(try YAMLDecoder().decode(ManifestDocument.self, from: node))
        }
        return documents
    }

    /// The items of a JSON `List` of at least `minimumItems`, each decoded on its own and handed
    /// to `transform`, spread over the cores (kubectl's output for a large cluster: tens of
    /// megabytes, decoded whole, was most of a sync's time and its peak memory). Services and
    /// EndpointSlices are read straight from the bytes (``WireReader``); other items, or ones it
    /// does not read exactly, go through `JSONDecoder`. Nil when the bytes are not such a list or
    /// an item does not decode: the caller then decodes the document whole, which reports errors
    /// as always. The bytes must be valid UTF-8 (see ``JSONScanner``).
    static func decodeListItems<T: Sendable>(
        _ bytes: UnsafeBufferPointer<UInt8>, minimumItems: Int, _ transform: @Sendable (ManifestDocument) -> T
    ) -> [T]? {
        guard let list = JSONList(bytes), list.items.count >= minimumItems,
            let kind = list.kind, kind == "List" || kind.hasSuffix("List")
        else { return nil }
        let shared = SharedBytes(buffer: bytes)
        let items = Array(list.items.enumerated()).concurrentMap(minimumCount: 0) { position, range -> T? in
            let item = UnsafeBufferPointer(rebasing: shared.buffer[range])
            let place = "items[\(position)]"
            if let document = WireReader.document(item, position: place) { return transform(document) }
            let decoder = JSONDecoder()
            decoder.userInfo[ManifestDocument.listPosition] = place
            return (try? decoder.decode(ManifestDocument.self, from: Data(item))).map(transform)
        }
        let decoded = items.compactMap { $0 }
        return decoded.count == list.items.count ? decoded : nil
    }

    /// The items of a kubectl YAML `List` of at least `minimumItems`, each transcoded to JSON on
    /// its own over the cores and read by the wire reader (``KubectlYAML``); an item the wire
    /// reader does not read exactly is decoded by Yams on its own. Nil when the text is not such
    /// a list or has anything ``KubectlYAML`` does not read exactly: the caller then decodes the
    /// document whole, as always.
    package static func decodeYAMLListItems<T: Sendable>(
        _ bytes: UnsafeBufferPointer<UInt8>, minimumItems: Int, _ transform: @Sendable (ManifestDocument) -> T
    ) -> [T]? {
        guard let list = KubectlYAML.list(bytes), list.items.count >= minimumItems else { return nil }
        let shared = SharedBytes(buffer: bytes)
        let column = list.itemColumn
        let items = Array(list.items.enumerated()).concurrentMap(minimumCount: 0) { position, range -> T? in
            guard let json = KubectlYAML.json(shared.buffer, item: range, column: column) else { return nil }
            let place = "items[\(position)]"
            if let document = json.withUnsafeBufferPointer({ WireReader.document($0, position: place) }) { return transform(document) }
            let text = KubectlYAML.document(shared.buffer, item: range, column: column)
            return (try? YAMLDecoder().decode(ManifestDocument.self, from: text, userInfo: [ManifestDocument.listPosition: place]))
                .map(transform)
        }
        let decoded = items.compactMap { $0 }
        return decoded.count == list.items.count ? decoded : nil
    }

    static func describeParseError(_ error: any Error, in contents: [UInt8]) -> String {
        if let yaml = error as? YamlError {
            switch yaml {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
                let where_ = "line \(mark.line) column \(mark.column)"
                return "\(where_): \(problem)" + (context.map { " \($0.text)" } ?? "")
            default:
                return "\(yaml)".split(separator: "\n").first.map(String.init) ?? "invalid YAML"
            }
        }
        if let decoding = error as? DecodingError, case .dataCorrupted(let context) = decoding {
            // JSON text that is not JSON: Foundation does not say where, so find the place.
            if context.codingPath.isEmpty, let failure = contents.withUnsafeBufferPointer(JSONSyntax.firstError) {
                return "line \(failure.line) column \(failure.column): \(failure.problem)"
            }
            let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.debugDescription
        }
        return "\(error)"
    }

    /// An object checked on its own, a pure function of it (so a large list's objects are
    /// checked over the cores): what to keep under which name, or why it is skipped.
    enum Checked: Sendable {
        case service(NamespacedName, Service)
        case endpointSlice(NamespacedName, EndpointSlice)
        case endpoints(NamespacedName, [EndpointSlice])
        case node(NatsyncModel.Node)
        case skipped(Diagnostic)
    }

    static func check(_ object: DecodedObject, hint: NameHint, file: String) -> Checked {
        switch object {
        case .other(let kind, _):
            return .skipped(Diagnostic(.note, file: file, object: describe(kind, hint), "kind not used by natsync; skipped"))
        case .invalid(let kind, let hint, let field, let message):
            return .skipped(Diagnostic(.warning, file: file, object: describe(kind, hint), field: field, "\(message); object skipped"))
        case .service(let service) where OtherProxies.label(of: service.metadata) != nil:
            return otherProxy("Service", hint, service.metadata, file)
        case .endpointSlice(let slice) where OtherProxies.label(of: slice.metadata) != nil:
            return otherProxy("EndpointSlice", hint, slice.metadata, file)
        case .endpoints(let endpoints) where OtherProxies.label(of: endpoints.metadata) != nil:
            return otherProxy("Endpoints", hint, endpoints.metadata, file)
        case .service(let service):
            return validated("Service", hint, file) { () throws(FieldError) in
                let name = try validName(hint, nameIsLabel: true)
                return .service(name, try Validation.service(service, name: name))
            }
        case .endpointSlice(let slice):
            return validated("EndpointSlice", hint, file) { () throws(FieldError) in
                let name = try validName(hint, nameIsLabel: false)
                guard let valid = try Validation.endpointSlice(slice, name: name) else {
                    return .skipped(
                        Diagnostic(
                            .note, file: file, object: "EndpointSlice \(name)", field: "metadata.labels",
                            "no kubernetes.io/service-name label; not used by any Service"))
                }
                return .endpointSlice(name, valid)
            }
        case .endpoints(let endpoints):
            return validated("Endpoints", hint, file) { () throws(FieldError) in
                let name = try validName(hint, nameIsLabel: true)
                return .endpoints(name, try Validation.endpoints(endpoints, name: name))
            }
        case .node(let node):
            return validated("Node", hint, file) { () throws(FieldError) in
                guard let name = hint.name, !name.isEmpty else { throw FieldError("metadata.name", "missing") }
                try Validation.dnsSubdomain(name, "metadata.name")
                let texts = node.spec?.podCIDRs ?? node.spec?.podCIDR.map { [$0] } ?? []
                var podCIDRs: [CIDR] = []
                for (index, text) in texts.enumerated() {
                    guard let cidr = CIDR(text) else { throw FieldError("spec.podCIDRs[\(index)]", "invalid CIDR \(quote(text))") }
                    podCIDRs.append(cidr)
                }
                return .node(NatsyncModel.Node(name: name, zone: node.metadata?.labels?[NatsyncModel.Node.zoneLabel], podCIDRs: podCIDRs))
            }
        }
    }

    private static func otherProxy(_ kind: String, _ hint: NameHint, _ metadata: ObjectMeta?, _ file: String) -> Checked {
        let label = OtherProxies.label(of: metadata) ?? ""
        return .skipped(
            Diagnostic(
                .note, file: file, object: describe(kind, hint), field: "metadata.labels[\(label)]",
                "served by another proxy, as kube-proxy leaves it; skipped"))
    }

    /// The object's check, or a warning naming the object and the field that failed it (a valid
    /// name describes the object as its `namespace/name`, so one description serves both).
    private static func validated(_ kind: String, _ hint: NameHint, _ file: String, _ body: () throws(FieldError) -> Checked) -> Checked {
        do {
            return try body()
        } catch {
            return .skipped(
                Diagnostic(.warning, file: file, object: describe(kind, hint), field: error.field, "\(error.message); object skipped"))
        }
    }

    private static func validName(_ hint: NameHint, nameIsLabel: Bool) throws(FieldError) -> NamespacedName {
        guard let name = hint.name, !name.isEmpty else { throw FieldError("metadata.name", "missing") }
        let namespace = hint.namespace ?? "default"
        try Validation.dnsLabel(namespace, "metadata.namespace")
        if nameIsLabel {
            try Validation.dnsLabel(name, "metadata.name")
        } else {
            try Validation.dnsSubdomain(name, "metadata.name")
        }
        return NamespacedName(namespace: namespace, name: name)
    }

    private mutating func record(_ checked: Checked, file: String) {
        switch checked {
        case .skipped(let diagnostic):
            diagnostics.append(diagnostic)
        case .service(let name, let service):
            if let (_, firstFile) = services[name] {
                duplicate("Service", name, firstFile, file)
            } else {
                services[name] = (service, file)
            }
        case .endpointSlice(let name, let slice):
            if let (_, firstFile) = slices[name] {
                duplicate("EndpointSlice", name, firstFile, file)
            } else {
                slices[name] = (slice, file)
            }
        case .endpoints(let name, let converted):
            if let (_, firstFile) = legacyEndpoints[name] {
                duplicate("Endpoints", name, firstFile, file)
            } else {
                legacyEndpoints[name] = (converted, file)
            }
        case .node(let node):
            if let (_, firstFile) = nodes[node.name] {
                diagnostics.append(
                    Diagnostic(
                        .warning, file: file, object: "Node \(node.name)",
                        "duplicate object (first defined in \(firstFile)); this copy skipped"))
            } else {
                nodes[node.name] = (node, file)
            }
        }
    }

    private mutating func duplicate(_ kind: String, _ name: NamespacedName, _ firstFile: String, _ file: String) {
        diagnostics.append(
            Diagnostic(
                .warning, file: file, object: "\(kind) \(name)", "duplicate object (first defined in \(firstFile)); this copy skipped"))
    }

    static func describe(_ kind: String, _ hint: NameHint) -> String {
        guard let name = hint.name else { return "\(kind) at \(hint.position)" }
        // Nodes have no namespace.
        guard kind != "Node" else { return "Node \(Self.printable(name))" }
        return "\(kind) \(hint.namespace ?? "default")/\(Self.printable(name))"
    }

    static func printable(_ text: String) -> String {
        text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" } && text.count <= 80
            ? text : quote(text)
    }

    /// The loaded state, after the checks that span objects.
    public func result() -> LoadResult {
        var diagnostics = self.diagnostics
        var allSlices = slices.values.map(\.0)
        let slicedServices = Set(allSlices.map(\.service))
        for (name, (converted, file)) in legacyEndpoints.sorted(by: { $0.key < $1.key }) {
            if slicedServices.contains(name) {
                diagnostics.append(
                    Diagnostic(
                        .note, file: file, object: "Endpoints \(name)", "EndpointSlices exist for this Service; legacy Endpoints ignored"))
            } else {
                allSlices += converted
            }
        }
        for (name, (slice, file)) in slices.filter({ services[$0.value.0.service] == nil }).sorted(by: { $0.key < $1.key }) {
            diagnostics.append(
                Diagnostic(
                    .warning, file: file, object: "EndpointSlice \(name)", field: "metadata.labels[kubernetes.io/service-name]",
                    "Service \(slice.service) not found; slice not used"))
        }
        for (name, (_, file)) in legacyEndpoints.filter({ services[$0.key] == nil }).sorted(by: { $0.key < $1.key }) {
            diagnostics.append(Diagnostic(.warning, file: file, object: "Endpoints \(name)", "Service \(name) not found; not used"))
        }
        return LoadResult(
            state: ClusterState(services: services.values.map(\.0), endpointSlices: allSlices, nodes: nodes.values.map(\.0)),
            diagnostics: diagnostics)
    }
}

/// The text of a document, read (never written) by the item decoders while the text is held.
private struct SharedBytes: @unchecked Sendable {
    let buffer: UnsafeBufferPointer<UInt8>
}
