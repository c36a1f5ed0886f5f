import NatsyncNet

/// What a rule does with a packet it matches.
public enum Target: Hashable, Sendable {
    /// No target: the rule only counts, and the packet goes on to the next rule.
    case none
    /// `-j CHAIN`: continue in a user chain, then come back.
    case jump(ChainName)
    /// `-g CHAIN`: continue in a user chain and do not come back.
    case goto(ChainName)
    case accept
    case drop
    case `return`
    case reject(RejectType)
    /// `-j DNAT --to-destination ADDRESS[:PORT]`.
    case dnat(IPAddress, port: UInt16?)
    /// `-j MASQUERADE [--random-fully]`.
    case masquerade(randomFully: Bool)
    /// `-j MARK`: the packet mark becomes `(mark & ~mask) ^ value`, as MARK revision 2 stores it.
    case mark(value: UInt32, mask: UInt32)

    /// `-j MARK --or-mark BITS`.
    public static func orMark(_ bits: UInt32) -> Target { .mark(value: bits, mask: bits) }
    /// `-j MARK --xor-mark BITS`.
    public static func xorMark(_ bits: UInt32) -> Target { .mark(value: bits, mask: 0) }

    /// The user chain this target continues in, if any.
    public var chain: ChainName? {
        switch self {
        case .jump(let chain), .goto(let chain): chain
        default: nil
        }
    }
}

/// The ICMP error (or TCP reset) a REJECT sends. Each type has one kernel value per family.
public enum RejectType: String, Hashable, Sendable, CaseIterable {
    case portUnreachable = "port-unreachable"
    case hostUnreachable = "host-unreachable"
    case netUnreachable = "net-unreachable"
    case protocolUnreachable = "proto-unreachable"
    case adminProhibited = "admin-prohibited"
    case tcpReset = "tcp-reset"

    /// The `--reject-with` spelling for a family (`icmp-port-unreachable`, `icmp6-port-unreachable`).
    public func spelling(for family: IPFamily) -> String {
        switch self {
        case .tcpReset: return "tcp-reset"
        case .protocolUnreachable where family == .ipv4: return "icmp-proto-unreachable"
        case .protocolUnreachable: return "icmp6-port-unreachable"
        case .adminProhibited where family == .ipv4: return "icmp-admin-prohibited"
        case .adminProhibited: return "icmp6-adm-prohibited"
        case .hostUnreachable where family == .ipv6: return "icmp6-addr-unreachable"
        case .netUnreachable where family == .ipv6: return "icmp6-no-route"
        default: return (family == .ipv4 ? "icmp-" : "icmp6-") + rawValue
        }
    }

    /// Reads a `--reject-with` spelling of either family, including iptables' short forms.
    public init?(spelling: String) {
        for type in Self.allCases {
            for family in IPFamily.allCases where type.spelling(for: family) == spelling {
                self = type
                return
            }
        }
        switch spelling {
        case "icmp-host-prohibited", "icmp-net-prohibited": self = .adminProhibited
        default: return nil
        }
    }
}
