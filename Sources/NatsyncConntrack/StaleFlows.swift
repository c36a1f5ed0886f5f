import NatsyncNet

/// One UDP conntrack flow as the cleanup sees it.
public struct ConntrackFlow: Hashable, Sendable {
    public var originalSource: IPAddress
    public var originalDestination: IPAddress
    public var originalSourcePort: UInt16
    public var originalDestinationPort: UInt16
    /// The source of replies: the DNAT target, or the original destination for an un-DNATed flow.
    public var replySource: IPAddress

    public init(
        originalSource: IPAddress, originalDestination: IPAddress, originalSourcePort: UInt16,
        originalDestinationPort: UInt16, replySource: IPAddress
    ) {
        self.originalSource = originalSource
        self.originalDestination = originalDestination
        self.originalSourcePort = originalSourcePort
        self.originalDestinationPort = originalDestinationPort
        self.replySource = replySource
    }
}

/// The UDP frontends of changed services, each with the endpoints currently serving it: a flow to
/// a frontend whose replies come from anywhere else is stale (kube-proxy's conntrack reconciler).
///
/// Matching is O(1) per flow through hashed lookups, so a cleanup is one pass over the table.
public struct StaleFlowSelector: Sendable {
    struct Frontend: Hashable {
        var address: IPAddress
        var port: UInt16
    }

    private var frontends: [Frontend: Set<IPAddress>] = [:]
    private var nodePorts: [UInt16: Set<IPAddress>] = [:]

    public init() {}

    /// No frontend to clean: no dump is needed.
    public var isEmpty: Bool { frontends.isEmpty && nodePorts.isEmpty }

    /// The number of frontends (address:port and node ports).
    public var count: Int { frontends.count + nodePorts.count }

    /// Every frontend: an address and port, or a node port (`nil` address: any address).
    public var frontendList: [(address: IPAddress?, port: UInt16)] {
        frontends.keys.map { ($0.address, $0.port) } + nodePorts.keys.map { (nil, $0) }
    }

    /// Adds `address:port`, served by `serving` (empty for a deleted or endpoint-less service).
    public mutating func add(_ address: IPAddress, port: UInt16, serving: Set<IPAddress>) {
        frontends[Frontend(address: address, port: port), default: []].formUnion(serving)
    }

    /// Adds a node port (any destination address).
    public mutating func addNodePort(_ port: UInt16, serving: Set<IPAddress>) {
        nodePorts[port, default: []].formUnion(serving)
    }

    /// True when `flow` goes to a frontend here and its replies do not come from a serving endpoint.
    public func isStale(_ flow: ConntrackFlow) -> Bool {
        if let serving = frontends[Frontend(address: flow.originalDestination, port: flow.originalDestinationPort)],
            !serving.contains(flow.replySource)
        {
            return true
        }
        if let serving = nodePorts[flow.originalDestinationPort], !serving.contains(flow.replySource) {
            return true
        }
        return false
    }
}
