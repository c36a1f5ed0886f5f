import Foundation
import NatsyncTestSupport
import Testing

@testable import NatsyncManifest
@testable import NatsyncWire

/// The fast reader of kubectl Lists must read every object exactly as `JSONDecoder` does, or
/// leave it to `JSONDecoder`; and it must actually read the objects kubectl writes.
struct WireReaderTests {
    static let service = WireSamples.service
    static let slice = WireSamples.slice
    static let read = WireSamples.read
    static let others = WireSamples.others

    static func reference(_ text: String) -> [DecodedObject]? {
        let decoder = JSONDecoder()
        decoder.userInfo[ManifestDocument.listPosition] = "items[7]"
        return (try? decoder.decode(ManifestDocument.self, from: Data(text.utf8)))?.objects.map(\.0)
    }

    static func fast(_ text: String) -> ManifestDocument? {
        var text = text
        return text.withUTF8 { WireReader.document($0, position: "items[7]") }
    }

    @Test(arguments: read)
    func readsWhatKubectlWritesAsJSONDecoderDoes(_ text: String) throws {
        let fast = try #require(Self.fast(text), "the reader left a plain object to JSONDecoder")
        let reference = try #require(Self.reference(text))
        #expect(fast.objects.map(\.0) == reference)
        #expect(fast.objects.map(\.1.position) == ["items[7]"])
    }

    @Test(arguments: others)
    func anythingElseIsReadTheSameOrLeftToJSONDecoder(_ text: String) {
        guard let fast = Self.fast(text) else { return }
        #expect(fast.objects.map(\.0) == Self.reference(text), "\(text)")
    }

    /// Some of the variations must be left to JSONDecoder: a reader that accepts them all would
    /// read differently (a quoted port, a fraction, a duplicate key, a bad escape).
    @Test func theReaderGivesUpWhereJSONDecoderDecidesOtherwise() {
        for text in Self.others.prefix(12) {
            #expect(Self.fast(text) == nil, "\(text)")
        }
    }

    /// The two kubectl objects above set every field of the wire types (the first element of
    /// each list), so a field added to a wire type and not to the reader makes the reader's
    /// objects differ from JSONDecoder's in `readsWhatKubectlWritesAsJSONDecoderDoes`.
    @Test func theKubectlObjectsSetEveryWireField() throws {
        var unset: [String] = []
        func check(_ value: Any, _ path: String) {
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .optional:
                guard let wrapped = mirror.children.first?.value else { return unset.append(path) }
                check(wrapped, path)
            case .collection:
                guard let first = mirror.children.first?.value else { return unset.append(path) }
                check(first, path + "[0]")
            case .struct:
                for child in mirror.children { check(child.value, path + "." + (child.label ?? "?")) }
            default:
                break
            }
        }
        for text in [Self.service, Self.slice] {
            let reference = try #require(Self.reference(text)?.first)
            switch reference {
            case .service(let object): check(object, "Service")
            case .endpointSlice(let object): check(object, "EndpointSlice")
            default: Issue.record("not a Service or an EndpointSlice: \(reference)")
            }
        }
        #expect(unset.isEmpty, "fields the kubectl objects leave unset: \(unset)")
    }

    @Test func theKubectlObjectsKeepTheirFields() throws {
        let service = try #require(Self.fast(Self.service))
        guard case .service(let object) = service.objects.first?.0 else {
            Issue.record("not a service")
            return
        }
        #expect(object.metadata?.labels?["tier"] == "café 😀")
        #expect(object.metadata?.annotations?.first?.value.hasPrefix(#"{"apiVersion":"v1""#) == true)
        #expect(object.spec?.ports?.map(\.targetPort) == [.int(8080), .string("dns")])
        #expect(object.spec?.sessionAffinityConfig?.clientIP?.timeoutSeconds == 10800)
        #expect(object.status?.loadBalancer?.ingress?.count == 2)
    }
}
