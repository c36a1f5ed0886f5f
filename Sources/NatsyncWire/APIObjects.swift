import Foundation
import NatsyncModel
import NatsyncUtilities

/// The kinds natsync lists and watches on the Kubernetes API.
public enum APIKind: String, Sendable, CaseIterable {
    case service = "Service"
    case endpointSlice = "EndpointSlice"

    /// The collection path, for list and watch.
    public var path: String {
        switch self {
        case .service: "/api/v1/services"
        case .endpointSlice: "/apis/discovery.k8s.io/v1/endpointslices"
        }
    }
}

/// One object from the API, validated: a Service or an EndpointSlice, or why it is skipped.
public enum APIObject: Hashable, Sendable {
    case service(Service)
    case endpointSlice(EndpointSlice)
    /// Not natsync's (an EndpointSlice without a service-name label, another proxy's object): if
    /// natsync held it by this name, it no longer does.
    case ignored(NamespacedName)
    /// Invalid: skipped with this warning, as a bad manifest object is.
    case invalid(NamespacedName?, Diagnostic)

    public var name: NamespacedName? {
        switch self {
        case .service(let service): service.name
        case .endpointSlice(let slice): slice.name
        case .ignored(let name): name
        case .invalid(let name, _): name
        }
    }
}

/// A page of a list response.
public struct APIListPage: Hashable, Sendable {
    public var resourceVersion: String
    public var continueToken: String?
    public var objects: [APIObject]
}

/// A watch event.
public enum APIWatchEvent: Hashable, Sendable {
    case added(APIObject, resourceVersion: String?)
    case modified(APIObject, resourceVersion: String?)
    case deleted(APIObject, resourceVersion: String?)
    case bookmark(resourceVersion: String)
    /// The API's `ERROR` event: a `Status` with its code (410: the resource version is too old).
    case error(code: Int, message: String)
}

/// Decodes list responses and watch events of the Kubernetes API into validated model objects.
public enum APIDecoder {
    struct ObjectEnvelope: Decodable {
        var metadata: ObjectMeta?
    }

    struct ListEnvelope: Decodable {
        struct Meta: Decodable {
            var resourceVersion: String?
            var `continue`: String?
        }
        var metadata: Meta?
        var items: [RawJSON]?
    }

    struct EventEnvelope: Decodable {
        var type: String
        var object: RawJSON
    }

    struct Status: Decodable {
        var code: Int?
        var message: String?
    }

    /// A JSON value kept as is, decoded later and separately, so one bad object does not fail the rest.
    struct RawJSON: Decodable {
        var value: Any
        init(from decoder: any Decoder) throws {
            value = try JSONValue(from: decoder).foundation
        }
        /// The value as JSON text; empty for a bare string, number, boolean or null, which
        /// JSONSerialization does not write (it traps rather than throws): such an item is then an
        /// object without a name.
        var data: Data {
            guard JSONSerialization.isValidJSONObject(value) else { return Data() }
            return (try? JSONSerialization.data(withJSONObject: value)) ?? Data()
        }
    }

    /// A page of a list response. Read straight from the bytes (``WireReader``), the items of a
    /// large page over the cores; anything that reader does not read exactly as the reference
    /// decoder (``referenceList(_:kind:)``) is decoded by it, so results and diagnostics are the same.
    public static func list(_ data: Data, kind: APIKind) throws -> APIListPage {
        if let page = data.withUnsafeBytes({ fastList($0.bindMemory(to: UInt8.self), kind: kind) }) { return page }
        return try referenceList(data, kind: kind)
    }

    /// A watch event, read as ``list(_:kind:)`` reads list items.
    public static func event(_ line: Data, kind: APIKind) throws -> APIWatchEvent {
        if let event = line.withUnsafeBytes({ fastEvent($0.bindMemory(to: UInt8.self), kind: kind) }) { return event }
        return try referenceEvent(line, kind: kind)
    }

    /// One object of `kind` (list items carry no `kind` of their own).
    public static func object(_ data: Data, kind: APIKind) -> APIObject {
        let meta = (try? JSONDecoder().decode(ObjectEnvelope.self, from: data))?.metadata
        return validated(meta: meta, kind: kind) {
            switch kind {
            case .service: .service(try JSONDecoder().decode(ServiceObject.self, from: data))
            case .endpointSlice: .endpointSlice(try JSONDecoder().decode(EndpointSliceObject.self, from: data))
            }
        }
    }

    // MARK: The reference decoder

    /// A list page decoded through `JSONDecoder`, each item kept apart and decoded on its own.
    package static func referenceList(_ data: Data, kind: APIKind) throws -> APIListPage {
        let envelope = try JSONDecoder().decode(ListEnvelope.self, from: data)
        let objects = (envelope.items ?? []).map { object($0.data, kind: kind) }
        return page(resourceVersion: envelope.metadata?.resourceVersion, continue: envelope.metadata?.continue, objects: objects)
    }

    /// A watch event decoded through `JSONDecoder`.
    package static func referenceEvent(_ line: Data, kind: APIKind) throws -> APIWatchEvent {
        let envelope = try JSONDecoder().decode(EventEnvelope.self, from: line)
        let data = envelope.object.data
        let version = (try? JSONDecoder().decode(ObjectEnvelope.self, from: data))?.metadata?.resourceVersion
        switch envelope.type {
        case "ADDED": return .added(object(data, kind: kind), resourceVersion: version)
        case "MODIFIED": return .modified(object(data, kind: kind), resourceVersion: version)
        case "DELETED": return .deleted(object(data, kind: kind), resourceVersion: version)
        case "BOOKMARK": return .bookmark(resourceVersion: version ?? "")
        default:
            let status = try? JSONDecoder().decode(Status.self, from: data)
            return .error(code: status?.code ?? 0, message: status?.message ?? "watch error")
        }
    }

    private static func page(resourceVersion: String?, continue next: String?, objects: [APIObject]) -> APIListPage {
        APIListPage(resourceVersion: resourceVersion ?? "", continueToken: next?.isEmpty == false ? next : nil, objects: objects)
    }

    /// The model object of a decoded wire object, or why it is skipped. `decode` runs only for an
    /// object with a name that is not another proxy's.
    private static func validated(meta: ObjectMeta?, kind: APIKind, decode: () throws -> DecodedObject) -> APIObject {
        let name = meta?.name.map { NamespacedName(namespace: meta?.namespace ?? "default", name: $0) }
        let label = "\(kind.rawValue) \(name?.description ?? "(no name)")"
        guard let name else {
            return .invalid(nil, Diagnostic(.warning, object: label, field: "metadata.name", "missing; object skipped"))
        }
        // Another proxy's, even when the server did not apply the selector.
        guard OtherProxies.label(of: meta) == nil else { return .ignored(name) }
        do {
            switch try decode() {
            case .service(let raw):
                return .service(try Validation.service(raw, name: name))
            case .endpointSlice(let raw):
                guard let slice = try Validation.endpointSlice(raw, name: name) else { return .ignored(name) }
                return .endpointSlice(slice)
            default:
                return .invalid(name, Diagnostic(.warning, object: label, "not a \(kind.rawValue); object skipped"))
            }
        } catch let error as FieldError {
            return .invalid(name, Diagnostic(.warning, object: label, field: error.field, "\(error.message); object skipped"))
        } catch let error as DecodingError {
            let (field, message) = ManifestDocument.describe(error, below: 0)
            return .invalid(name, Diagnostic(.warning, object: label, field: field, "\(message); object skipped"))
        } catch {
            return .invalid(name, Diagnostic(.warning, object: label, "\(error); object skipped"))
        }
    }

    // MARK: Straight from the bytes

    /// Pages at least this long have their items read over the cores.
    static let concurrentItems = 64

    /// The page, or nil when its envelope is not one this reader reads exactly (a duplicate
    /// member, a wrong type, invalid JSON), or an item that the wire reader leaves to the
    /// reference decoder does not decode there either: the whole page is then the reference's.
    package static func fastList(_ bytes: UnsafeBufferPointer<UInt8>, kind: APIKind) -> APIListPage? {
        // The scanner and the wire reader skip what they do not read by its structure alone; the
        // reference decoder rejects the whole page for any text that is not JSON.
        guard JSONSyntax.firstError(bytes) == nil else { return nil }
        var scanner = JSONScanner(bytes)
        var resourceVersion: String?
        var next: String?
        var metadataSeen = false
        var items: [Range<Int>]?
        guard scanner.consume(UInt8(ascii: "{")) else { return nil }
        if !scanner.consume(UInt8(ascii: "}")) {
            repeat {
                guard let key = scanner.string(), scanner.consume(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "metadata":
                    guard !metadataSeen else { return nil }
                    metadataSeen = true
                    scanner.skipWhitespace()
                    if scanner.null() { continue }
                    guard scanner.consume(UInt8(ascii: "{")) else { return nil }
                    var seen: Set<String> = []
                    if !scanner.consume(UInt8(ascii: "}")) {
                        repeat {
                            guard let member = scanner.string(), scanner.consume(UInt8(ascii: ":")), seen.insert(member).inserted else {
                                return nil
                            }
                            switch member {
                            case "resourceVersion": guard optionalString(&scanner, into: &resourceVersion) else { return nil }
                            case "continue": guard optionalString(&scanner, into: &next) else { return nil }
                            default: guard scanner.skipValue() else { return nil }
                            }
                        } while scanner.consume(UInt8(ascii: ","))
                        guard scanner.consume(UInt8(ascii: "}")) else { return nil }
                    }
                case "items":
                    guard items == nil else { return nil }
                    scanner.skipWhitespace()
                    if scanner.null() {
                        items = []
                    } else {
                        guard let ranges = JSONList.array(&scanner) else { return nil }
                        items = ranges
                    }
                default:
                    guard scanner.skipValue() else { return nil }
                }
            } while scanner.consume(UInt8(ascii: ","))
            guard scanner.consume(UInt8(ascii: "}")) else { return nil }
        }
        scanner.skipWhitespace()
        guard scanner.atEnd else { return nil }
        let shared = SharedBytes(buffer: bytes)
        let objects = (items ?? []).concurrentMap(minimumCount: concurrentItems) { range -> APIObject? in
            item(UnsafeBufferPointer(rebasing: shared.buffer[range]), kind: kind)
        }
        guard objects.allSatisfy({ $0 != nil }) else { return nil }
        return page(resourceVersion: resourceVersion, continue: next, objects: objects.map { $0! })
    }

    /// A watch event of an object (ADDED, MODIFIED, DELETED) the wire reader reads; nil for
    /// anything else (bookmarks and errors are rare and small, and go to the reference decoder).
    package static func fastEvent(_ bytes: UnsafeBufferPointer<UInt8>, kind: APIKind) -> APIWatchEvent? {
        guard JSONSyntax.firstError(bytes) == nil else { return nil }  // as for a page
        var scanner = JSONScanner(bytes)
        var type: String?
        var object: Range<Int>?
        guard scanner.consume(UInt8(ascii: "{")), !scanner.consume(UInt8(ascii: "}")) else { return nil }
        repeat {
            guard let key = scanner.string(), scanner.consume(UInt8(ascii: ":")) else { return nil }
            switch key {
            case "type":
                guard type == nil, let value = scanner.string() else { return nil }
                type = value
            case "object":
                guard object == nil else { return nil }
                scanner.skipWhitespace()
                let start = scanner.index
                guard scanner.skipValue() else { return nil }
                object = start..<scanner.index
            default:
                guard scanner.skipValue() else { return nil }
            }
        } while scanner.consume(UInt8(ascii: ","))
        guard scanner.consume(UInt8(ascii: "}")) else { return nil }
        scanner.skipWhitespace()
        guard scanner.atEnd, let type, let object,
            let decoded = WireReader.apiObject(UnsafeBufferPointer(rebasing: bytes[object]), kind: kind.rawValue)
        else { return nil }
        let meta = decoded.metadata
        let validated = validated(meta: meta, kind: kind) { decoded }
        switch type {
        case "ADDED": return .added(validated, resourceVersion: meta?.resourceVersion)
        case "MODIFIED": return .modified(validated, resourceVersion: meta?.resourceVersion)
        case "DELETED": return .deleted(validated, resourceVersion: meta?.resourceVersion)
        default: return nil
        }
    }

    /// One list item: read by the wire reader, or else decoded as the reference decoder decodes
    /// it; nil when it is not JSON the reference decoder reads (it then fails the whole page).
    private static func item(_ bytes: UnsafeBufferPointer<UInt8>, kind: APIKind) -> APIObject? {
        if let decoded = WireReader.apiObject(bytes, kind: kind.rawValue) {
            return validated(meta: decoded.metadata, kind: kind) { decoded }
        }
        guard let raw = try? JSONDecoder().decode(RawJSON.self, from: Data(buffer: bytes)) else { return nil }
        return object(raw.data, kind: kind)
    }

    /// A string or null member value; false for anything else.
    private static func optionalString(_ scanner: inout JSONScanner, into value: inout String?) -> Bool {
        scanner.skipWhitespace()
        if scanner.null() {
            value = nil
            return true
        }
        guard let string = scanner.string() else { return false }
        value = string
        return true
    }
}

/// The response's bytes, read (never written) by every core while the page is decoded.
private struct SharedBytes: @unchecked Sendable {
    let buffer: UnsafeBufferPointer<UInt8>
}

extension DecodedObject {
    /// The metadata of a Service or an EndpointSlice.
    fileprivate var metadata: ObjectMeta? {
        switch self {
        case .service(let service): service.metadata
        case .endpointSlice(let slice): slice.metadata
        default: nil
        }
    }
}

/// Any JSON value, for keeping list items apart.
package enum JSONValue: Decodable {
    case null, bool(Bool), number(Double), integer(Int), string(String), array([JSONValue]), object([String: JSONValue])

    package init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var values: [JSONValue] = []
            while !array.isAtEnd { values.append(try array.decode(JSONValue.self)) }
            self = .array(values)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            var values: [String: JSONValue] = [:]
            for key in object.allKeys { values[key.stringValue] = try object.decode(JSONValue.self, forKey: key) }
            self = .object(values)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let value = try? single.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? single.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? single.decode(Double.self) {
            self = .number(value)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    package var foundation: Any {
        switch self {
        case .null: NSNull()
        case .bool(let value): value
        case .number(let value): value
        case .integer(let value): value
        case .string(let value): value
        case .array(let values): values.map(\.foundation)
        case .object(let values): values.mapValues(\.foundation)
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
