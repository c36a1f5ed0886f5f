/// An address prefix such as `10.0.0.0/8`.
///
/// The address is always the masked network address, so `10.1.2.3/8` and `10.0.0.0/8` are the
/// same value, as the kernel holds them.
public struct CIDR: Hashable, Sendable, Comparable {
    public let address: IPAddress
    /// One byte, not an `Int`: held by every address match of every rule.
    private let length: UInt8
    public var prefixLength: Int { Int(length) }

    public var family: IPFamily { address.family }

    /// The prefix of one address (`/32` or `/128`).
    public init(host: IPAddress) {
        self.address = host
        self.length = UInt8(host.family.bitWidth)
    }

    /// A prefix; host bits of `address` are cleared. `nil` when the length does not fit the family.
    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= address.family.bitWidth else { return nil }
        self.length = UInt8(prefixLength)
        switch address {
        case .v4(let value):
            self.address = .v4(prefixLength == 0 ? 0 : value & (UInt32.max << (32 - prefixLength)))
        case .v6(let bits):
            self.address = .v6(IPv6Bits(prefixLength == 0 ? 0 : bits.value & (UInt128.max << (128 - prefixLength))))
        }
    }

    /// Parses `ADDRESS/LENGTH`, or a bare address as a host prefix when `allowBareAddress` is set
    /// (as iptables reads `-d 10.0.0.1`).
    public init?(_ text: some StringProtocol, allowBareAddress: Bool = false) {
        guard let slash = text.firstIndex(of: "/") else {
            guard allowBareAddress, let host = IPAddress(text) else { return nil }
            self.init(host: host)
            return
        }
        let lengthText = text[text.index(after: slash)...]
        guard let address = IPAddress(text[..<slash]), !lengthText.isEmpty, lengthText.count <= 3,
            lengthText.allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(lengthText)
        else { return nil }
        // A v4-mapped IPv6 prefix names IPv4 space; Kubernetes rejects it rather than guess.
        guard text[..<slash].contains(":") == (address.family == .ipv6) else { return nil }
        self.init(address: address, prefixLength: length)
    }

    /// The network mask as an address (`255.0.0.0` for a `/8`).
    public var mask: IPAddress {
        switch address {
        case .v4: .v4(prefixLength == 0 ? 0 : UInt32.max << (32 - prefixLength))
        case .v6: .v6(IPv6Bits(prefixLength == 0 ? 0 : UInt128.max << (128 - prefixLength)))
        }
    }

    /// True when this prefix covers exactly one address.
    public var isHost: Bool { prefixLength == address.family.bitWidth }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.family == family else { return false }
        return CIDR(address: other, prefixLength: prefixLength)?.address == address
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.address, lhs.prefixLength) < (rhs.address, rhs.prefixLength)
    }
}

extension CIDR: CustomStringConvertible {
    /// Always `ADDRESS/LENGTH`, as iptables-save and Go's `IPNet.String` print it.
    public var description: String { "\(address)/\(prefixLength)" }
}
