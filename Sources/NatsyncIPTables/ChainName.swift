/// The name of an iptables chain, built-in (`PREROUTING`) or user-defined (`KUBE-SERVICES`).
public struct ChainName: RawRepresentable, Hashable, Sendable, Comparable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }

    /// The kernel's limit: a chain name and its NUL must fit `XT_EXTENSION_MAXNAMELEN` (29 bytes).
    public static let maximumLength = 28

    public static let prerouting: ChainName = "PREROUTING"
    public static let input: ChainName = "INPUT"
    public static let forward: ChainName = "FORWARD"
    public static let output: ChainName = "OUTPUT"
    public static let postrouting: ChainName = "POSTROUTING"

    /// The chains the kernel provides (in every table that has them), in hook order.
    public static let builtins: [ChainName] = [.prerouting, .input, .forward, .output, .postrouting]

    /// True for the chains the kernel provides in every table that has them.
    public var isBuiltin: Bool {
        switch rawValue {
        case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING": true
        default: false
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The iptables tables natsync reads and writes.
public enum TableName: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case filter
    case nat
    case mangle

    public var description: String { rawValue }
}
