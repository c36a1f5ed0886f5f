/// One decoded object of a manifest, or why it could not be decoded.
package enum DecodedObject: Equatable {
    case service(ServiceObject)
    case endpointSlice(EndpointSliceObject)
    case endpoints(EndpointsObject)
    case node(NodeObject)
    /// A kind natsync does not use.
    case other(kind: String, name: String?)
    /// The object's fields did not decode; `field` is relative to the object.
    case invalid(kind: String, name: NameHint, field: String?, message: String)
}

/// What is known of an object's name even when the object itself is broken.
package struct NameHint: Equatable {
    package var namespace: String?
    package var name: String?
    /// Where the object sits in its document, such as `items[3]`.
    package var position: String
}

/// A manifest document: one object, or the items of a `List` (any `*List` kind), flattened.
///
/// Decoding never fails because of one bad object: each object's errors are caught and kept,
/// so the rest of the document still loads.
package struct ManifestDocument: Decodable {
    package var objects: [(DecodedObject, NameHint)]

    private enum Key: String, CodingKey {
        case apiVersion, kind, items, metadata
    }

    package init(objects: [(DecodedObject, NameHint)]) {
        self.objects = objects
    }

    /// Where an item decoded on its own sits in its list (`items[3]`), for its position.
    package static let listPosition = CodingUserInfoKey(rawValue: "natsync.listPosition")!

    package init(from decoder: any Decoder) throws {
        let position: String
        if let base = decoder.userInfo[Self.listPosition] as? String {
            position = decoder.codingPath.isEmpty ? base : base + "." + Self.fieldPath(decoder.codingPath)
        } else {
            position = Self.position(decoder.codingPath)
        }
        guard let container = try? decoder.container(keyedBy: Key.self) else {
            objects = [
                (
                    .invalid(kind: "object", name: NameHint(position: position), field: nil, message: "is not a mapping"),
                    NameHint(position: position)
                )
            ]
            return
        }
        let kind = (try? container.decodeIfPresent(String.self, forKey: .kind)) ?? nil
        let apiVersion = (try? container.decodeIfPresent(String.self, forKey: .apiVersion)) ?? nil
        let metadata = (try? container.decodeIfPresent(ObjectMeta.self, forKey: .metadata)) ?? nil
        let hint = NameHint(namespace: metadata?.namespace, name: metadata?.name, position: position)
        guard let kind else {
            objects = [(.invalid(kind: "object", name: hint, field: "kind", message: "missing"), hint)]
            return
        }
        if kind == "List" || (kind.hasSuffix("List") && container.contains(.items)) {
            do {
                objects = try container.decodeIfPresent([ManifestDocument].self, forKey: .items)?.flatMap(\.objects) ?? []
            } catch {
                objects = [(.invalid(kind: kind, name: hint, field: "items", message: "is not a list"), hint)]
            }
            return
        }
        let expectedVersion: String
        switch kind {
        case "Service", "Endpoints", "Node": expectedVersion = "v1"
        case "EndpointSlice": expectedVersion = "discovery.k8s.io/v1"
        default:
            objects = [(.other(kind: kind, name: metadata?.name), hint)]
            return
        }
        if let apiVersion, apiVersion != expectedVersion {
            objects = [
                (
                    .invalid(
                        kind: kind, name: hint, field: "apiVersion",
                        message: "unsupported version \(quote(apiVersion)) (natsync reads \(expectedVersion))"), hint
                )
            ]
            return
        }
        do {
            switch kind {
            case "Service": objects = [(.service(try ServiceObject(from: decoder)), hint)]
            case "Endpoints": objects = [(.endpoints(try EndpointsObject(from: decoder)), hint)]
            case "Node": objects = [(.node(try NodeObject(from: decoder)), hint)]
            default: objects = [(.endpointSlice(try EndpointSliceObject(from: decoder)), hint)]
            }
        } catch let error as DecodingError {
            let (field, message) = Self.describe(error, below: decoder.codingPath.count)
            objects = [(.invalid(kind: kind, name: hint, field: field, message: message), hint)]
        }
    }

    /// `items[3]` for an object inside a list, `document` for a top-level one.
    package static func position(_ path: [any CodingKey]) -> String {
        path.isEmpty ? "document" : fieldPath(path)
    }

    /// Kubernetes-style field paths: `spec.ports[0].port`.
    package static func fieldPath(_ path: some Collection<any CodingKey>) -> String {
        var out = ""
        for key in path {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                if !out.isEmpty { out += "." }
                out += key.stringValue
            }
        }
        return out
    }

    package static func describe(_ error: DecodingError, below depth: Int) -> (String?, String) {
        func field(_ context: DecodingError.Context) -> String? {
            let path = context.codingPath.dropFirst(depth)
            return path.isEmpty ? nil : fieldPath(path)
        }
        switch error {
        case .typeMismatch(let type, let context):
            return (field(context), "expected \(typeName(type))")
        case .valueNotFound(let type, let context):
            return (field(context), "expected \(typeName(type)), found null")
        case .keyNotFound(let key, let context):
            return (field(context).map { "\($0).\(key.stringValue)" } ?? key.stringValue, "missing")
        case .dataCorrupted(let context):
            return (field(context), context.debugDescription)
        @unknown default:
            return (nil, "\(error)")
        }
    }

    package static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "a list"
        default:
            String(describing: type).hasPrefix("Array") ? "a list" : "a mapping"
        }
    }
}

package func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars.prefix(80) {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    if text.unicodeScalars.count > 80 { out += "..." }
    return out + "\""
}
