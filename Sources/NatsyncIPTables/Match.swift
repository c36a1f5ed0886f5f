import NatsyncNet

/// An extension match (`-m NAME ...`), holding what the kernel's match payload holds.
public enum Match: Hashable, Sendable {
    /// `-m comment --comment TEXT` (at most 255 bytes).
    case comment(String)
    /// `-m tcp|udp|sctp [--sport RANGE] [--dport RANGE]`; requires `-p` of the same protocol.
    case ports(TransportProtocol, PortMatch)
    /// `-m statistic --mode random --probability P`.
    case statistic(Probability)
    /// `-m mark [!] --mark VALUE/MASK`.
    case mark(MarkMatch)
    /// `-m addrtype [[!] --src-type TYPE] [[!] --dst-type TYPE]`.
    case addressType(AddressTypeMatch)
    /// `-m recent --name NAME (--set | --rcheck [--seconds S] [--reap])`, keyed on the source address.
    case recent(RecentMatch)
    /// `-m conntrack [!] --ctstate STATES`.
    case conntrack(ConntrackMatch)

    /// The extension's name, as `-m` takes it.
    public var extensionName: String {
        switch self {
        case .comment: "comment"
        case .ports(let proto, _): proto.iptablesName
        case .statistic: "statistic"
        case .mark: "mark"
        case .addressType: "addrtype"
        case .recent: "recent"
        case .conntrack: "conntrack"
        }
    }
}

/// An inclusive port range; a single port has `lower == upper`.
public struct PortRange: Hashable, Sendable, CustomStringConvertible {
    public var lower: UInt16
    public var upper: UInt16

    public init(_ port: UInt16) {
        self.lower = port
        self.upper = port
    }

    public init(_ lower: UInt16, _ upper: UInt16) {
        self.lower = lower
        self.upper = upper
    }

    public var description: String { lower == upper ? "\(lower)" : "\(lower):\(upper)" }
}

/// The payload of a `tcp`/`udp`/`sctp` match. Absent ranges match any port (the kernel stores 0-65535).
public struct PortMatch: Hashable, Sendable {
    public var source: PortRange?
    public var destination: PortRange?
    public var invertSource: Bool
    public var invertDestination: Bool

    public init(
        source: PortRange? = nil, destination: PortRange? = nil, invertSource: Bool = false,
        invertDestination: Bool = false
    ) {
        self.source = source
        self.destination = destination
        self.invertSource = invertSource
        self.invertDestination = invertDestination
    }

    /// Matches packets to one destination port.
    public static func destination(_ port: UInt16) -> PortMatch { PortMatch(destination: PortRange(port)) }
}

public struct MarkMatch: Hashable, Sendable {
    public var value: UInt32
    public var mask: UInt32
    public var inverted: Bool

    public init(value: UInt32, mask: UInt32 = .max, inverted: Bool = false) {
        self.value = value
        self.mask = mask
        self.inverted = inverted
    }
}

/// Routing address types, as `addrtype` names them. The kernel stores them as bits `1 << RTN_*`.
public enum AddressType: String, Hashable, Sendable, CaseIterable {
    case unspec = "UNSPEC"
    case unicast = "UNICAST"
    case local = "LOCAL"
    case broadcast = "BROADCAST"
    case anycast = "ANYCAST"
    case multicast = "MULTICAST"
    case blackhole = "BLACKHOLE"
    case unreachable = "UNREACHABLE"
    case prohibit = "PROHIBIT"
    case `throw` = "THROW"
    case nat = "NAT"
    case xresolve = "XRESOLVE"
}

public struct AddressTypeMatch: Hashable, Sendable {
    public var source: AddressType?
    public var destination: AddressType?
    public var invertSource: Bool
    public var invertDestination: Bool

    public init(
        source: AddressType? = nil, destination: AddressType? = nil, invertSource: Bool = false,
        invertDestination: Bool = false
    ) {
        self.source = source
        self.destination = destination
        self.invertSource = invertSource
        self.invertDestination = invertDestination
    }
}

/// The `recent` match as kube-proxy uses it for ClientIP session affinity: always keyed on the
/// source address with a full mask.
public struct RecentMatch: Hashable, Sendable {
    public enum Action: Hashable, Sendable {
        /// `--set`: record the source address.
        case set
        /// `--rcheck [--seconds S] [--reap]`: match if the source was recorded within `seconds`.
        case check(seconds: UInt32?, reap: Bool)
    }

    public var name: String
    public var action: Action

    public init(name: String, action: Action) {
        self.name = name
        self.action = action
    }
}

/// Connection-tracking states, printed in the kernel's bit order.
public struct ConntrackStates: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let invalid = ConntrackStates(rawValue: 1 << 0)
    public static let established = ConntrackStates(rawValue: 1 << 1)
    public static let related = ConntrackStates(rawValue: 1 << 2)
    public static let new = ConntrackStates(rawValue: 1 << 3)
    public static let snat = ConntrackStates(rawValue: 1 << 6)
    public static let dnat = ConntrackStates(rawValue: 1 << 7)
    public static let untracked = ConntrackStates(rawValue: 1 << 8)

    /// Names in the order `libxt_conntrack` prints them.
    static let names: [(ConntrackStates, String)] = [
        (.invalid, "INVALID"), (.new, "NEW"), (.related, "RELATED"), (.established, "ESTABLISHED"),
        (.untracked, "UNTRACKED"), (.snat, "SNAT"), (.dnat, "DNAT"),
    ]

    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

public struct ConntrackMatch: Hashable, Sendable {
    public var states: ConntrackStates
    public var inverted: Bool

    public init(states: ConntrackStates, inverted: Bool = false) {
        self.states = states
        self.inverted = inverted
    }
}
