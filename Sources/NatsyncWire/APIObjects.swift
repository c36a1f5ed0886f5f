import Foundation
import NatsyncModel

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
public enum APIObject: Sendable {
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
public struct APIListPage: Sendable {
    public var resourceVersion: String
    public var continueToken: String?
    public var objects: [APIObject]
}

/// A watch event.
public enum APIWatchEvent: Sendable {
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
        var data: Data { (try? JSONSerialization.data(withJSONObject: value)) ?? Data() }
    }

    public static func list(_ data: Data, kind: APIKind) throws -> APIListPage {
        let envelope = try JSONDecoder().decode(ListEnvelope.self, from: data)
        let objects = (envelope.items ?? []).map { object($0.data, kind: kind) }
        let next = envelope.metadata?.continue
        return APIListPage(
            resourceVersion: envelope.metadata?.resourceVersion ?? "", continueToken: next?.isEmpty == false ? next : nil,
            objects: objects)
    }

    public static func event(_ line: Data, kind: APIKind) throws -> APIWatchEvent {
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

    /// One object of `kind` (list items carry no `kind` of their own).
    public static func object(_ data: Data, kind: APIKind) -> APIObject {
        let meta = (try? JSONDecoder().decode(ObjectEnvelope.self, from: data))?.metadata
        let name = meta?.name.map { NamespacedName(namespace: meta?.namespace ?? "default", name: $0) }
        let label = "\(kind.rawValue) \(name?.description ?? "(no name)")"
        guard let name else {
            return .invalid(nil, Diagnostic(.warning, object: label, field: "metadata.name", "missing; object skipped"))
        }
        // Another proxy's, even when the server did not apply the selector.
        guard OtherProxies.label(of: meta) == nil else { return .ignored(name) }
        do {
            switch kind {
            case .service:
                let raw = try JSONDecoder().decode(ServiceObject.self, from: data)
                return .service(try Validation.service(raw, name: name))
            case .endpointSlice:
                let raw = try JSONDecoder().decode(EndpointSliceObject.self, from: data)
                guard let slice = try Validation.endpointSlice(raw, name: name) else { return .ignored(name) }
                return .endpointSlice(slice)
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
