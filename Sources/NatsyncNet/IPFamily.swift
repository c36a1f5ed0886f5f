/// An IP address family. A proxier serves exactly one; a dual-stack node runs one per family.
public enum IPFamily: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    /// Bits in an address of this family.
    public var bitWidth: Int { self == .ipv4 ? 32 : 128 }

    public var description: String { rawValue }
}
