import NatsyncNet

/// The first packet of a new connection, as the trace follows it.
public struct Packet: Hashable, Sendable {
    /// Where the packet comes from, which decides the hooks it passes.
    public enum Origin: String, Hashable, Sendable, CaseIterable {
        /// A pod on this node: arrives through its veth, like any routed packet.
        case pod
        /// A process in the node's own network namespace: leaves through OUTPUT.
        case node
        /// A client outside the node: arrives on a node interface.
        case external
    }

    public var source: IPAddress
    public var sourcePort: UInt16
    public var destination: IPAddress
    public var destinationPort: UInt16
    public var transport: TransportProtocol
    public var origin: Origin
    /// The interface it arrives on; `nil` when unknown, so `-i` matches cannot be evaluated.
    public var inInterface: String?
    /// The interface it leaves by; `nil` when unknown, so `-o` matches cannot be evaluated.
    public var outInterface: String?

    public init(
        source: IPAddress, sourcePort: UInt16 = 40000, destination: IPAddress, destinationPort: UInt16,
        transport: TransportProtocol = .tcp, origin: Packet.Origin, inInterface: String? = nil,
        outInterface: String? = nil
    ) {
        self.source = source
        self.sourcePort = sourcePort
        self.destination = destination
        self.destinationPort = destinationPort
        self.transport = transport
        self.origin = origin
        self.inInterface = inInterface
        self.outInterface = outInterface
    }
}
