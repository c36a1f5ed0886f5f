#if canImport(Glibc)
import Glibc
#endif

/// A forward-only reader of JSON bytes for the fast paths of loading: it finds structure, skips
/// values it is not asked for without building them, and reads the scalars it is asked for.
///
/// It is strict where it reads and gives up (returns nil or false) on anything unusual, so that
/// the caller can fall back to Foundation's `JSONDecoder`, whose answers and errors stay the
/// reference: a reader that guesses would load differently from the documented path.
///
/// The bytes are valid UTF-8, checked once for the whole document by the caller: a string is cut
/// at quotes, which never fall inside a character, so each is valid as it stands and is made
/// without checking it again (a check per string, generic over the encoding, was a tenth of
/// loading a large cluster).
package struct JSONScanner {
    package let bytes: UnsafeBufferPointer<UInt8>
    package var index: Int

    package init(_ bytes: UnsafeBufferPointer<UInt8>, from index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    package var atEnd: Bool { index >= bytes.count }

    package mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    /// Skips whitespace, then `byte` if it is next.
    package mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Skips whitespace and tells whether `byte` is next, without consuming it.
    package mutating func peek(_ byte: UInt8) -> Bool {
        skipWhitespace()
        return index < bytes.count && bytes[index] == byte
    }

    package mutating func skipString() -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return false }
        // Strings are most of a manifest's bytes: find each quote with memchr, then tell an
        // escaped one by the backslashes before it.
        let base = bytes.baseAddress!
        var position = index + 1
        while position < bytes.count {
            guard let found = memchr(base + position, Int32(UInt8(ascii: "\"")), bytes.count - position) else { return false }
            let quote = position + UnsafeRawPointer(base + position).distance(to: found)
            var backslashes = 0
            while quote - 1 - backslashes > index, bytes[quote - 1 - backslashes] == UInt8(ascii: "\\") { backslashes += 1 }
            position = quote + 1
            if backslashes % 2 == 0 {
                index = position
                return true
            }
        }
        return false
    }

    /// Skips one value as ``skipValue()`` does, and checks on the way that it is JSON as
    /// ``JSONSyntax`` reads it (separators, string escapes and control characters, numbers,
    /// literals): the reference decoder refuses a document that is not JSON anywhere, in members
    /// natsync never reads too. Iterative; nesting deeper than 64 levels is left to the reference.
    package mutating func skipValidValue() -> Bool {
        // Bit 0 is the innermost level: 1 for an object, 0 for an array.
        var objects: UInt64 = 0
        var depth = 0
        while true {
            skipWhitespace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < 64 else { return false }
                let object = bytes[index] == UInt8(ascii: "{")
                objects = objects << 1 | (object ? 1 : 0)
                depth += 1
                index += 1
                skipWhitespace()
                guard index < bytes.count else { return false }
                if bytes[index] == (object ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    index += 1
                    objects >>= 1
                    depth -= 1
                } else {
                    if object { guard skipValidKey() else { return false } }
                    continue
                }
            case UInt8(ascii: "\""):
                guard skipValidString() else { return false }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard JSONSyntax.number(bytes, &index) else { return false }
            default:
                guard JSONSyntax.literal(bytes, &index) else { return false }
            }
            // After a value: close the levels that end here, or go on to the next member.
            while true {
                guard depth > 0 else { return true }
                skipWhitespace()
                guard index < bytes.count else { return false }
                let close = objects & 1 == 1 ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if bytes[index] == close {
                    index += 1
                    objects >>= 1
                    depth -= 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: ",") else { return false }
                index += 1
                skipWhitespace()
                // A comma before the closing bracket, as Foundation's parser allows.
                if index < bytes.count, bytes[index] == close { continue }
                if objects & 1 == 1 { guard skipValidKey() else { return false } }
                break
            }
        }
    }

    /// A member's key and its colon.
    private mutating func skipValidKey() -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), skipValidString() else { return false }
        return consume(UInt8(ascii: ":"))
    }

    /// A string whose escapes are JSON's and which holds no control character.
    private mutating func skipValidString() -> Bool {
        let start = index
        guard skipString() else { return false }
        // Most strings hold neither escapes nor control characters: one pass tells.
        let inside = bytes[(start + 1)..<(index - 1)]
        guard inside.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\\") }) else { return true }
        var position = start + 1
        while position < index - 1 {
            let byte = bytes[position]
            if byte < 0x20 { return false }
            guard byte == UInt8(ascii: "\\") else {
                position += 1
                continue
            }
            let escaped = bytes[position + 1]
            if escaped == UInt8(ascii: "u") {
                guard position + 6 <= index - 1, bytes[(position + 2)..<(position + 6)].allSatisfy(Self.isHexDigit) else { return false }
                position += 6
            } else {
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    position += 2
                default:
                    return false
                }
            }
        }
        return true
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// Skips one value: a string, an object or array (by nesting), or a scalar.
    package mutating func skipValue() -> Bool {
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

    /// A string value, escapes resolved; nil when the next value is not a valid JSON string.
    package mutating func string() -> String? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        let start = index + 1
        var end = start
        var escaped = false
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") { break }
            // Control characters must be escaped in JSON; the reference decoder rejects them.
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                end += 2
            } else {
                end += 1
            }
        }
        guard end < bytes.count else { return nil }
        index = end + 1
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
        guard escaped else { return String(decoding: raw, as: UTF8.self) }
        return Self.unescape(raw)
    }

    private static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var index = 0
        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= raw.count else { return nil }
            var value: UInt32 = 0
            for byte in raw[at..<(at + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < raw.count else { return nil }
            switch raw[index + 1] {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4(index + 2) else { return nil }
                index += 6
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard index + 1 < raw.count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u"),
                        let low = hex4(index + 2), (0xDC00..<0xE000).contains(low)
                    else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                } else if (0xDC00..<0xE000).contains(scalar) {
                    return nil
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                out.append(contentsOf: String(Character(unicode)).utf8)
                continue
            default:
                return nil
            }
            index += 2
        }
        return String(validating: out, as: UTF8.self)
    }

    /// An integer written as digits with an optional minus sign (no fraction or exponent: those
    /// are left to the reference decoder); nil on anything else or on overflow.
    package mutating func integer() -> Int? {
        skipWhitespace()
        var position = index
        let negative = position < bytes.count && bytes[position] == UInt8(ascii: "-")
        if negative { position += 1 }
        let digitsStart = position
        var value = 0
        while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            position += 1
        }
        let digits = position - digitsStart
        guard digits > 0, digits == 1 || bytes[digitsStart] != UInt8(ascii: "0") else { return nil }
        if position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: break
            default: return nil
            }
        }
        index = position
        return negative ? -value : value
    }

    /// `true` or `false`.
    package mutating func bool() -> Bool? {
        if literal("true") { return true }
        if literal("false") { return false }
        return nil
    }

    /// Consumes `null` when it is next.
    package mutating func null() -> Bool { literal("null") }

    private mutating func literal(_ word: StaticString) -> Bool {
        skipWhitespace()
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0
        else { return false }
        if index + count < bytes.count {
            switch bytes[index + count] {
            case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09: break
            default: return false
            }
        }
        index += count
        return true
    }
}
