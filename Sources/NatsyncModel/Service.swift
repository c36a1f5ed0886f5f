import NatsyncNet

/// A validated `v1 Service`, holding the fields a service proxy acts on.
public struct Service: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case clusterIP = "ClusterIP"
        case nodePort = "NodePort"
        case loadBalancer = "LoadBalancer"
        case externalName = "ExternalName"
    }

    public enum TrafficPolicy: String, Hashable, Sendable {
        case cluster = "Cluster"
        case local = "Local"
    }

    public enum SessionAffinity: Hashable, Sendable {
        case none
        /// `-m recent` stickiness per client address, for this many seconds.
        case clientIP(timeoutSeconds: Int)
    }

    public struct Port: Hashable, Sendable {
        public var name: String
        public var `protocol`: TransportProtocol
        public var port: UInt16
        /// `nil` when the Service has no node port for this port.
        public var nodePort: UInt16?

        public init(name: String, protocol: TransportProtocol, port: UInt16, nodePort: UInt16? = nil) {
            self.name = name
            self.protocol = `protocol`
            self.port = port
            self.nodePort = nodePort
        }
    }

    public struct LoadBalancerIngress: Hashable, Sendable {
        public var ip: IPAddress
        /// `ipMode: Proxy`: the load balancer does not deliver packets to the VIP, so no rules capture it.
        public var isProxyMode: Bool

        public init(ip: IPAddress, isProxyMode: Bool = false) {
            self.ip = ip
            self.isProxyMode = isProxyMode
        }
    }

    public var name: NamespacedName
    public var kind: Kind
    /// Empty for a headless Service (`clusterIP: None`).
    public var clusterIPs: [IPAddress]
    public var ports: [Port]
    public var externalIPs: [IPAddress]
    public var loadBalancerIngress: [LoadBalancerIngress]
    public var loadBalancerSourceRanges: [CIDR]
    public var sessionAffinity: SessionAffinity
    public var externalTrafficPolicy: TrafficPolicy
    public var internalTrafficPolicy: TrafficPolicy
    public var healthCheckNodePort: UInt16?

    public init(
        name: NamespacedName,
        kind: Kind = .clusterIP,
        clusterIPs: [IPAddress],
        ports: [Port],
        externalIPs: [IPAddress] = [],
        loadBalancerIngress: [LoadBalancerIngress] = [],
        loadBalancerSourceRanges: [CIDR] = [],
        sessionAffinity: SessionAffinity = .none,
        externalTrafficPolicy: TrafficPolicy = .cluster,
        internalTrafficPolicy: TrafficPolicy = .cluster,
        healthCheckNodePort: UInt16? = nil
    ) {
        self.name = name
        self.kind = kind
        self.clusterIPs = clusterIPs
        self.ports = ports
        self.externalIPs = externalIPs
        self.loadBalancerIngress = loadBalancerIngress
        self.loadBalancerSourceRanges = loadBalancerSourceRanges
        self.sessionAffinity = sessionAffinity
        self.externalTrafficPolicy = externalTrafficPolicy
        self.internalTrafficPolicy = internalTrafficPolicy
        self.healthCheckNodePort = healthCheckNodePort
    }

    /// The Service's cluster IP of `family`, if it has one.
    public func clusterIP(for family: IPFamily) -> IPAddress? {
        clusterIPs.first { $0.family == family }
    }
}
