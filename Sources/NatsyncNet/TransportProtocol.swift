/// The transport protocols a Service port can use.
public enum TransportProtocol: String, Hashable, Sendable, CaseIterable, Comparable {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"

    /// The lower-case spelling iptables and kube-proxy's chain hashes use (`tcp`, `udp`, `sctp`).
    public var iptablesName: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .sctp: "sctp"
        }
    }

    /// The IANA protocol number, as the kernel stores it in `ipt_ip.proto`.
    public var number: UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .sctp: 132
        }
    }

    /// Parses the lower-case iptables spelling or the Kubernetes upper-case one.
    public init?(iptablesName: String) {
        switch iptablesName.lowercased() {
        case "tcp": self = .tcp
        case "udp": self = .udp
        case "sctp": self = .sctp
        default: return nil
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.number < rhs.number }
}
