import Foundation
import NatsyncTestSupport
import Testing

@testable import NatsyncManifest
@testable import NatsyncWire

/// The JSON syntax check that places parse errors agrees with Foundation on what is JSON.
struct JSONSyntaxTests {
    static func failure(_ text: String) -> JSONSyntax.Failure? {
        Array(text.utf8).withUnsafeBufferPointer(JSONSyntax.firstError)
    }

    static func foundationAccepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
    }

    @Test(arguments: [
        ("{\"a\": x1}", JSONSyntax.Failure(line: 1, column: 7, problem: "unexpected character 'x'")),
        ("{\n  \"a\": 1", JSONSyntax.Failure(line: 2, column: 9, problem: "unexpected end of file")),
        ("{\"a\": 1} junk", JSONSyntax.Failure(line: 1, column: 10, problem: "unexpected character 'j' after the end of the document")),
        ("{\"a\" 1}", JSONSyntax.Failure(line: 1, column: 6, problem: "expected ':', found character '1'")),
        ("{\"a\": [1 2]}", JSONSyntax.Failure(line: 1, column: 10, problem: "expected ',' or ']', found character '2'")),
        ("{\"a\": 1,,}", JSONSyntax.Failure(line: 1, column: 9, problem: "expected a quoted key, found character ','")),
        ("{\"é\": \"\\q\"}", JSONSyntax.Failure(line: 1, column: 8, problem: "invalid escape character 'q' in a string")),
        ("[01]", JSONSyntax.Failure(line: 1, column: 3, problem: "expected ',' or ']', found character '1'")),
        ("[\"a\tb\"]", JSONSyntax.Failure(line: 1, column: 4, problem: "control character (byte 0x9) in a string")),
        ("[\"abc", JSONSyntax.Failure(line: 1, column: 6, problem: "unexpected end of file in a string")),
        ("[-]", JSONSyntax.Failure(line: 1, column: 3, problem: "invalid number")),
    ])
    func placesTheError(text: String, expected: JSONSyntax.Failure) {
        #expect(Self.failure(text) == expected)
        #expect(!Self.foundationAccepts(Array(text.utf8)))
    }

    @Test func acceptsWhatFoundationAccepts() throws {
        for name in ["realistic/cluster.json"] {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(Repository.fixtures)/\(name)")))
            #expect(bytes.withUnsafeBufferPointer(JSONSyntax.firstError) == nil)
        }
        for text in [
            "{}", "[]", "[1,]", "{\"a\": 1,}", "0", "-1.5e+10", "\"\\u00e9\\n\"", "[true, false, null]", " {\"a\": {\"b\": [[]]}} \n",
        ] {
            #expect(Self.failure(text) == nil, "\(text)")
        }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(Self.failure(deep) == nil, "no recursion, so no depth limit of its own")
    }

    /// Random single-byte changes, cuts and insertions of a manifest: the check finds an error
    /// exactly when Foundation rejects the text.
    @Test func agreesWithFoundationOnMutatedManifests() {
        let base = Array(
            #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "x": -1.5e3}], "on": true, "off": null}}"#
                .utf8)
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("{}[]\",:.-+eE0123456789 tfnaulrs\\/\n".utf8)
        for _ in 0..<3000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[at] = alphabet.randomElement(using: &generator)!
                case 1: bytes.removeSubrange(at...)
                default: bytes.insert(alphabet.randomElement(using: &generator)!, at: at)
                }
                if bytes.isEmpty { bytes = [UInt8(ascii: "{")] }
            }
            let ours = bytes.withUnsafeBufferPointer(JSONSyntax.firstError)
            #expect(
                (ours == nil) == Self.foundationAccepts(bytes), "\(String(decoding: bytes, as: UTF8.self)): \(String(describing: ours))")
        }
    }
}
