import NatsyncNet

/// One iptables rule as the kernel holds it: the fixed IP header matches, the extension matches in
/// order, and the target.
///
/// Two rules are equal exactly when the kernel would hold the same entry: addresses are prefixes
/// (`-d 10.0.0.1` is `-d 10.0.0.1/32`), probabilities are the kernel's fixed-point value, marks are
/// `value/mask` pairs. How a rule was spelled is not part of it; ``RestoreText`` chooses the spelling.
public struct Rule: Hashable, Sendable {
    public var source: AddressMatch?
    public var destination: AddressMatch?
    public var inInterface: InterfaceMatch? {
        get { interfaces?.input }
        set { interfaces = Interfaces.make(newValue, interfaces?.output) }
    }
    public var outInterface: InterfaceMatch? {
        get { interfaces?.output }
        set { interfaces = Interfaces.make(interfaces?.input, newValue) }
    }
    /// `-i` and `-o`, which few rules have, kept out of line: a large cluster holds hundreds of
    /// thousands of rules, and two interface matches inline were 48 of each one's 176 bytes.
    private var interfaces: Interfaces?
    public var `protocol`: ProtocolMatch?
    public var matches: [Match]
    public var target: Target

    public init(
        source: AddressMatch? = nil,
        destination: AddressMatch? = nil,
        inInterface: InterfaceMatch? = nil,
        outInterface: InterfaceMatch? = nil,
        protocol: ProtocolMatch? = nil,
        matches: [Match] = [],
        target: Target
    ) {
        self.source = source
        self.destination = destination
        self.interfaces = Interfaces.make(inInterface, outInterface)
        self.protocol = `protocol`
        self.matches = matches
        self.target = target
    }

    /// The rule's comment, if it has a comment match.
    public var comment: String? {
        for case .comment(let text) in matches { return text }
        return nil
    }
}

/// A rule's interface matches: immutable, compared and hashed by value.
private final class Interfaces: Hashable, Sendable {
    let input: InterfaceMatch?
    let output: InterfaceMatch?

    private init(_ input: InterfaceMatch?, _ output: InterfaceMatch?) {
        self.input = input
        self.output = output
    }

    /// Nil when the rule matches no interface.
    static func make(_ input: InterfaceMatch?, _ output: InterfaceMatch?) -> Interfaces? {
        input == nil && output == nil ? nil : Interfaces(input, output)
    }

    static func == (lhs: Interfaces, rhs: Interfaces) -> Bool { lhs.input == rhs.input && lhs.output == rhs.output }

    func hash(into hasher: inout Hasher) {
        hasher.combine(input)
        hasher.combine(output)
    }
}

/// `[!] -s CIDR` or `[!] -d CIDR`.
public struct AddressMatch: Hashable, Sendable {
    public var cidr: CIDR
    public var inverted: Bool

    public init(_ cidr: CIDR, inverted: Bool = false) {
        self.cidr = cidr
        self.inverted = inverted
    }

    public init(_ address: IPAddress, inverted: Bool = false) {
        self.init(CIDR(host: address), inverted: inverted)
    }
}

/// `[!] -i NAME` or `[!] -o NAME`; a trailing `+` matches every interface with that prefix.
public struct InterfaceMatch: Hashable, Sendable {
    public var name: String
    public var inverted: Bool

    public init(_ name: String, inverted: Bool = false) {
        self.name = name
        self.inverted = inverted
    }
}

/// `[!] -p PROTOCOL`.
public struct ProtocolMatch: Hashable, Sendable {
    public var `protocol`: TransportProtocol
    public var inverted: Bool

    public init(_ protocol: TransportProtocol, inverted: Bool = false) {
        self.protocol = `protocol`
        self.inverted = inverted
    }
}
