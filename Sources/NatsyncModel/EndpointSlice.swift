import NatsyncNet

/// A validated `discovery.k8s.io/v1 EndpointSlice`.
public struct EndpointSlice: Hashable, Sendable {
    public enum AddressType: String, Hashable, Sendable {
        case ipv4 = "IPv4"
        case ipv6 = "IPv6"
        case fqdn = "FQDN"

        public var family: IPFamily? {
            switch self {
            case .ipv4: .ipv4
            case .ipv6: .ipv6
            case .fqdn: nil
            }
        }
    }

    public struct Port: Hashable, Sendable {
        public var name: String
        public var `protocol`: TransportProtocol
        public var port: UInt16

        public init(name: String, protocol: TransportProtocol, port: UInt16) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
        }
    }

    /// An endpoint's conditions, with the API's defaults already applied: a missing `ready` or
    /// `serving` means true, a missing `terminating` means false.
    public struct Conditions: Hashable, Sendable {
        public var ready: Bool
        public var serving: Bool
        public var terminating: Bool

        public init(ready: Bool = true, serving: Bool = true, terminating: Bool = false) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }
    }

    public struct Endpoint: Hashable, Sendable {
        /// The first address of the endpoint: the only one kube-proxy uses.
        public var address: IPAddress
        public var conditions: Conditions
        public var nodeName: String?
        /// `hints.forZones[*].name`: the zones whose nodes should use this endpoint.
        public var zoneHints: [String]
        /// `hints.forNodes[*].name`: the nodes that should use this endpoint.
        public var nodeHints: [String]

        public init(
            address: IPAddress, conditions: Conditions = Conditions(), nodeName: String? = nil, zoneHints: [String] = [],
            nodeHints: [String] = []
        ) {
            self.address = address
            self.conditions = conditions
            self.nodeName = nodeName
            self.zoneHints = zoneHints
            self.nodeHints = nodeHints
        }
    }

    public var name: NamespacedName
    /// The Service this slice belongs to (label `kubernetes.io/service-name`).
    public var service: NamespacedName
    public var addressType: AddressType
    public var ports: [Port]
    public var endpoints: [Endpoint]
    /// `endpoints.kubernetes.io/last-change-trigger-time`, in seconds since 1970: when the change
    /// this slice carries began, for the network-programming latency.
    public var lastChangeTriggerTime: Double?

    public init(
        name: NamespacedName, service: NamespacedName, addressType: AddressType, ports: [Port],
        endpoints: [Endpoint], lastChangeTriggerTime: Double? = nil
    ) {
        self.name = name
        self.service = service
        self.addressType = addressType
        self.ports = ports
        self.endpoints = endpoints
        self.lastChangeTriggerTime = lastChangeTriggerTime
    }
}
