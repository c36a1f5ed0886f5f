import Foundation
import NatsyncTestSupport
import NatsyncWire
import Testing

/// List pages and watch events read straight from the bytes must give exactly what the reference
/// decoder (`JSONDecoder`, each item kept apart) gives: the same objects, the same diagnostics,
/// the same errors; and the fast reader must actually read what an API server sends.
struct APIDecoderEqualityTests {
    /// The realistic cluster's objects as an API server lists them: one page per kind, items
    /// without `kind` and `apiVersion`, written by JSONSerialization (which escapes every slash).
    static func pages() throws -> [(APIKind, Data)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.path("Fixtures/realistic/cluster.json")))
        let list = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let items = try #require(list["items"] as? [[String: Any]])
        return try APIKind.allCases.map { kind in
            let objects = items.filter { $0["kind"] as? String == kind.rawValue }.map { item in
                item.filter { $0.key != "kind" && $0.key != "apiVersion" }
            }
            let page: [String: Any] = [
                "kind": "\(kind.rawValue)List", "apiVersion": "v1", "metadata": ["resourceVersion": "4711", "continue": "next-page"],
                "items": objects,
            ]
            return (kind, try JSONSerialization.data(withJSONObject: page, options: [.sortedKeys]))
        }
    }

    /// Both decoders' answers for a page: equal pages, or both the same error.
    static func expectSameList(_ data: Data, kind: APIKind, _ comment: Comment? = nil) {
        expectSame({ try APIDecoder.list(data, kind: kind) }, { try APIDecoder.referenceList(data, kind: kind) }, comment)
    }

    /// Both decoders' answers for a watch event.
    static func expectSameEvent(_ data: Data, kind: APIKind, _ comment: Comment? = nil) {
        expectSame({ try APIDecoder.event(data, kind: kind) }, { try APIDecoder.referenceEvent(data, kind: kind) }, comment)
    }

    private static func expectSame<T: Equatable>(_ fast: () throws -> T, _ reference: () throws -> T, _ comment: Comment?) {
        switch (Result(catching: fast), Result(catching: reference)) {
        case (.success(let a), .success(let b)): #expect(a == b, comment)
        case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)", comment)
        case (let a, let b): Issue.record("the fast reader gave \(a), the reference \(b): \(comment?.rawValue ?? "")")
        }
    }

    @Test func anAPIServersPagesAreReadStraightFromTheBytesAsTheReferenceReadsThem() throws {
        for (kind, data) in try Self.pages() {
            let fast = try #require(data.withUnsafeBytes { APIDecoder.fastList($0.bindMemory(to: UInt8.self), kind: kind) })
            let reference = try APIDecoder.referenceList(data, kind: kind)
            #expect(fast == reference)
            #expect(fast.objects.count > 3 && fast.resourceVersion == "4711" && fast.continueToken == "next-page")
            #expect(!fast.objects.contains { if case .invalid = $0 { true } else { false } }, "\(fast.objects)")
        }
    }

    @Test func aLargePageReadOverTheCoresKeepsItsOrder() throws {
        let service = #"{"metadata":{"name":"s%d","namespace":"n"},"spec":{"clusterIP":"10.96.%d.%d","ports":[{"port":80}]}}"#
        let items = (0..<1_000).map { String(format: service, $0, $0 / 250, $0 % 250) }
        let data = Data((#"{"metadata":{"resourceVersion":"1"},"items":[\#n"# + items.joined(separator: ",\n") + "]}").utf8)
        let fast = try #require(data.withUnsafeBytes { APIDecoder.fastList($0.bindMemory(to: UInt8.self), kind: .service) })
        #expect(fast == (try APIDecoder.referenceList(data, kind: .service)))
        #expect(fast.objects.map { $0.name?.name } == (0..<1_000).map { "s\($0)" })
    }

    /// Every object the kubectl reader's tests use, as a one-item page and as each kind of event.
    @Test func objectsOfEveryShapeDecodeAlikeInPagesAndEvents() {
        let objects = [WireSamples.service, WireSamples.slice] + WireSamples.variations
        for object in objects {
            for kind in APIKind.allCases {
                Self.expectSameList(Data(#"{"metadata":{"resourceVersion":"7"},"items":[\#(object)]}"#.utf8), kind: kind, "\(object)")
                for type in ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", "OTHER"] {
                    Self.expectSameEvent(Data(#"{"type":"\#(type)","object":\#(object)}"#.utf8), kind: kind, "\(type) \(object)")
                }
            }
        }
    }

    @Test(arguments: [
        #"{"items":[]}"#, #"{"metadata":null,"items":null}"#, #"{}"#, #"{"metadata":{"resourceVersion":null,"continue":""}}"#,
        #"{"metadata":{"resourceVersion":5},"items":[]}"#, #"{"metadata":"x","items":[]}"#,
        #"{"metadata":{"resourceVersion":"1"},"metadata":{"resourceVersion":"2"},"items":[]}"#,
        #"{"metadata":{"resourceVersion":"1","resourceVersion":"2"},"items":[]}"#, #"{"items":[],"items":[]}"#,
        #"{"items":[5,"x",null,[],{}]}"#, #"{"items":[{"metadata":{"name":"a","namespace":"b"},"spec":{"x":tru}}]}"#,
        #"{"items":[{"metadata":{"name":"a"}}]} x"#, #"{"items":{}}"#, #"[]"#, "",
        #"{"kind":"ServiceList","items":[{"metadata":{"name":"caf\u00e9"}}]}"#,
        #"{"items":[{"metadata":{"name":"a","labels":{"service.kubernetes.io/service-proxy-name":"other"}}}]}"#,
        #"{"items":[{"kind":"EndpointSlice","metadata":{"name":"a"}}]}"#,
    ])
    func envelopesOfEveryShapeDecodeAlike(_ text: String) {
        for kind in APIKind.allCases { Self.expectSameList(Data(text.utf8), kind: kind, "\(text)") }
    }

    @Test(arguments: [
        #"{"type":"ADDED"}"#, #"{"object":{}}"#, #"{"type":"ADDED","object":{},"type":"DELETED"}"#, #"{"type":1,"object":{}}"#,
        #"{"type":"ADDED","object":{"metadata":{"name":"a"}}} x"#, #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#,
        #"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}}"#, #"{"type":"ADDED","object":5}"#,
    ])
    func eventEnvelopesOfEveryShapeDecodeAlike(_ text: String) {
        for kind in APIKind.allCases { Self.expectSameEvent(Data(text.utf8), kind: kind, "\(text)") }
    }

    /// Random damage to a real page and a real event: one byte deleted, replaced or inserted,
    /// a thousand times each.
    @Test func damagedPagesAndEventsDecodeAlike() throws {
        var generator = SplitMix(seed: 25)
        let kind = APIKind.service
        let text = Array(
            (#"{"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"4711","continue":"next","remainingItemCount":3},"#
                + #""items":[\#(WireSamples.service),{"metadata":{"name":"b","namespace":"n"},"spec":{"clusterIP":"10.96.0.9"}}],"#
                + #""extra":{"a":[1,2.5e3,true,false,null,"\u00e9"]}}"#).utf8)
        let event = Array(#"{"type":"MODIFIED","object":\#(WireSamples.service)}"#.utf8)
        let alphabet = Array(#"{}[]",:0123456789.-eE\ntrfalsnu"#.utf8)
        for (base, isEvent) in [(text, false), (event, true)] {
            for _ in 0..<1_000 {
                var bytes = base
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 3 {
                case 0: bytes.remove(at: position)
                case 1: bytes[position] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                default: bytes.insert(alphabet[Int(generator.next() % UInt64(alphabet.count))], at: position)
                }
                if isEvent {
                    Self.expectSameEvent(Data(bytes), kind: .service, "\(String(decoding: bytes, as: UTF8.self))")
                } else {
                    Self.expectSameList(Data(bytes), kind: kind, "\(String(decoding: bytes, as: UTF8.self).prefix(300))")
                }
            }
        }
    }
}

/// A small deterministic generator, so a failure can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
