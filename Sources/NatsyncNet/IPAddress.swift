/// An IPv4 or IPv6 address.
///
/// Parsing follows Kubernetes' `ParseIPSloppy` (the pre-Go-1.17 rules Kubernetes keeps for legacy
/// objects): IPv4 parts with leading zeros are decimal, never octal, and an IPv4-mapped IPv6 address
/// (`::ffff:1.2.3.4`) is an IPv4 address. ``description`` is the canonical form (RFC 5952 for IPv6),
/// which is what chain-name hashes and rules use.
public enum IPAddress: Hashable, Sendable, Comparable {
    case v4(UInt32)
    case v6(IPv6Bits)

    public var family: IPFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    /// Parses a textual address; `nil` when it is not one.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let value = Self.parseIPv6(utf8[...]) else { return nil }
            if value >> 32 == 0xFFFF {
                self = .v4(UInt32(truncatingIfNeeded: value))
            } else {
                self = .v6(IPv6Bits(value))
            }
        } else {
            guard let value = Self.parseIPv4(utf8[...]) else { return nil }
            self = .v4(value)
        }
    }

    /// The address as big-endian bytes (4 or 16), the order the kernel stores it in.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let bits):
            return (0..<16).map { UInt8(truncatingIfNeeded: bits.value >> (120 - 8 * $0)) }
        }
    }

    /// Builds an address from 4 or 16 big-endian bytes.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            self = .v6(IPv6Bits(bytes.reduce(0) { $0 << 8 | UInt128($1) }))
        default:
            return nil
        }
    }

    /// Neither unspecified, loopback nor link-local (169.254.0.0/16, fe80::/10): an address other
    /// hosts can reach the node at.
    public var isGlobal: Bool {
        switch self {
        case .v4(let value): value != 0 && value >> 24 != 127 && value >> 16 != 0xA9FE
        case .v6(let bits): bits.value != 0 && bits.value != 1 && bits.value >> 118 != 0x3FA
        }
    }

    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        switch self {
        case .v4(let value): value >> 24 == 127
        case .v6(let bits): bits.value == 1
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v6(let a), .v6(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> UInt32? {
        var result: UInt32 = 0
        var parts = 0
        var value: UInt32 = 0
        var digits = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                result = result << 8 | value
                parts += 1
                value = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                value = value * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return result << 8 | value
    }

    private static func parseIPv6(_ text: ArraySlice<UInt8>) -> UInt128? {
        var groups: [UInt16] = []
        var ellipsis: Int?
        var index = text.startIndex
        if text.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            ellipsis = 0
            index += 2
            if index == text.endIndex { return 0 }
        }
        while index < text.endIndex {
            var end = index
            var value: UInt32 = 0
            while end < text.endIndex, let digit = hexValue(text[end]) {
                value = value << 4 | UInt32(digit)
                end += 1
                guard end - index <= 4 else { return nil }
            }
            if end < text.endIndex, text[end] == UInt8(ascii: ".") {
                // An embedded IPv4 address ends the text and fills two groups.
                guard ellipsis != nil || groups.count == 6, groups.count <= 6,
                    let v4 = parseIPv4(text[index...])
                else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xFFFF))
                index = text.endIndex
                break
            }
            guard end > index else { return nil }
            groups.append(UInt16(value))
            index = end
            if index == text.endIndex { break }
            guard text[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            if index < text.endIndex, text[index] == UInt8(ascii: ":") {
                guard ellipsis == nil else { return nil }
                ellipsis = groups.count
                index += 1
                if index == text.endIndex { break }
            } else if index == text.endIndex {
                return nil
            }
            guard groups.count < 8 else { return nil }
        }
        if let ellipsis {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: ellipsis)
        }
        guard groups.count == 8 else { return nil }
        return groups.reduce(0) { $0 << 16 | UInt128($1) }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension IPAddress: CustomStringConvertible {
    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        case .v6(let bits):
            let groups = (0..<8).map { UInt16(truncatingIfNeeded: bits.value >> (112 - 16 * $0)) }
            // RFC 5952: the first longest run of two or more zero groups becomes "::".
            var bestStart = -1
            var bestLength = 1
            var runStart = 0
            for (i, group) in groups.enumerated() {
                if group != 0 {
                    runStart = i + 1
                } else if i - runStart + 1 > bestLength {
                    bestStart = runStart
                    bestLength = i - runStart + 1
                }
            }
            func hex(_ slice: ArraySlice<UInt16>) -> String {
                slice.map { String($0, radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(groups[...]) }
            return hex(groups[..<bestStart]) + "::" + hex(groups[(bestStart + bestLength)...])
        }
    }

    /// The address with its port, as Go's `net.JoinHostPort` writes it: `10.0.0.1:80`, `[fd00::1]:80`.
    public func joined(port: UInt16) -> String {
        withJoined(port: port) { String(decoding: $0, as: UTF8.self) }
    }

    /// ``joined(port:)``'s bytes, handed to `body` without making a string: every endpoint's
    /// chain name hashes this text and its endpoints are sorted by it (a hundred thousand of
    /// each in a large cluster).
    public func withJoined<Result>(port: UInt16, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        switch self {
        case .v4(let value):
            // Written digit by digit into the stack, not through string interpolation.
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { buffer in
                var count = 0
                func decimal(_ number: UInt32) {
                    var divisor: UInt32 = 1
                    while number / divisor >= 10 { divisor *= 10 }
                    while divisor > 0 {
                        buffer[count] = UInt8(ascii: "0") + UInt8(number / divisor % 10)
                        count += 1
                        divisor /= 10
                    }
                }
                for shift: UInt32 in stride(from: 24, through: 0, by: -8) {
                    decimal(value >> shift & 0xFF)
                    buffer[count] = shift == 0 ? UInt8(ascii: ":") : UInt8(ascii: ".")
                    count += 1
                }
                decimal(UInt32(port))
                return body(UnsafeBufferPointer(rebasing: buffer[..<count]))
            }
        case .v6:
            var text = "[\(self)]:\(port)"
            return text.withUTF8(body)
        }
    }
}

/// An IPv6 address's 128 bits as two 64-bit words. A `UInt128` payload would align every address
/// to 16 bytes, and with it every rule holding one: a large cluster's rules were a third padding.
public struct IPv6Bits: Hashable, Sendable, Comparable, ExpressibleByIntegerLiteral {
    public var high: UInt64
    public var low: UInt64

    public init(_ value: UInt128) {
        high = UInt64(truncatingIfNeeded: value >> 64)
        low = UInt64(truncatingIfNeeded: value)
    }

    public init(integerLiteral value: UInt64) {
        high = 0
        low = value
    }

    public var value: UInt128 { UInt128(high) << 64 | UInt128(low) }

    public static func < (a: IPv6Bits, b: IPv6Bits) -> Bool { (a.high, a.low) < (b.high, b.low) }
}
