/// The items of a kubectl-style JSON `List` (`{"kind": "List", "items": [...]}`), found without
/// parsing them, so each can be decoded on its own: in parallel, and without one document-sized
/// parse tree in memory (Foundation's JSONDecoder maps the whole input before decoding).
///
/// Only structure is checked here (strings, nesting, separators); an item that is not valid JSON
/// fails its own decode, and the caller then decodes the whole document the ordinary way, so
/// every error reads as before.
struct JSONList {
    /// The `kind` member, when it is a string without escapes.
    var kind: String?
    /// The byte range of each element of the top-level `items` array.
    var items: [Range<Int>]

    /// Nil when `bytes` is not one JSON object with an `items` array (and only whitespace after it).
    init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        var scanner = JSONScanner(bytes)
        guard scanner.consume(UInt8(ascii: "{")) else { return nil }
        var kind: String?
        var items: [Range<Int>]?
        if !scanner.consume(UInt8(ascii: "}")) {
            repeat {
                guard let key = scanner.string(), scanner.consume(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "items":
                    guard items == nil, scanner.consume(UInt8(ascii: "[")) else { return nil }
                    var ranges: [Range<Int>] = []
                    if !scanner.consume(UInt8(ascii: "]")) {
                        repeat {
                            scanner.skipWhitespace()
                            let start = scanner.index
                            guard scanner.skipValue() else { return nil }
                            ranges.append(start..<scanner.index)
                        } while scanner.consume(UInt8(ascii: ","))
                        guard scanner.consume(UInt8(ascii: "]")) else { return nil }
                    }
                    items = ranges
                case "kind":
                    guard kind == nil else { return nil }
                    scanner.skipWhitespace()
                    let start = scanner.index
                    guard scanner.skipValue() else { return nil }
                    let raw = bytes[start..<scanner.index]
                    if raw.count >= 2, raw.first == UInt8(ascii: "\""), !raw.contains(UInt8(ascii: "\\")) {
                        kind = String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
                    }
                default:
                    guard scanner.skipValue() else { return nil }
                }
            } while scanner.consume(UInt8(ascii: ","))
            guard scanner.consume(UInt8(ascii: "}")) else { return nil }
        }
        scanner.skipWhitespace()
        guard scanner.index == bytes.count, let items else { return nil }
        self.kind = kind
        self.items = items
    }
}
