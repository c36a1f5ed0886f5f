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
        var scanner = Scanner(bytes: bytes)
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

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
                index += 1
            }
        }

        /// Skips whitespace, then `byte` if it is next.
        mutating func consume(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string without escapes (member names natsync looks for), or "" for one with escapes.
        mutating func string() -> String? {
            skipWhitespace()
            let start = index
            guard skipString() else { return nil }
            let raw = bytes[(start + 1)..<(index - 1)]
            return raw.contains(UInt8(ascii: "\\")) ? "" : String(decoding: raw, as: UTF8.self)
        }

        mutating func skipString() -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return true
                default: index += 1
                }
            }
            return false
        }

        /// Skips one value: a string, an object or array (by nesting), or a scalar.
        mutating func skipValue() -> Bool {
            skipWhitespace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                return skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "\""):
                        guard skipString() else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            index += 1
                            return true
                        }
                    default:
                        break
                    }
                    index += 1
                }
                return false
            default:
                let start = index
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: return index > start
                    default: index += 1
                    }
                }
                return index > start
            }
        }
    }
}
