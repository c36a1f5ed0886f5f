@_exported import NatsyncNet

/// One iptables rule as the kernel holds it: the fixed IP header matches, the extension matches in
/// order, and the target.
///
/// Two rules are equal exactly when the kernel would hold the same entry: addresses are prefixes
/// (`-d 10.0.0.1` is `-d 10.0.0.1/32`), probabilities are the kernel's fixed-point value, marks are
/// `value/mask` pairs. How a rule was spelled is not part of it; ``RestoreText`` chooses the spelling.
public struct Rule: Hashable, Sendable {
    public var source: AddressMatch?
    public var destination: AddressMatch?
    public var inInterface: InterfaceMatch?
    public var outInterface: InterfaceMatch?
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
        self.inInterface = inInterface
        self.outInterface = outInterface
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
