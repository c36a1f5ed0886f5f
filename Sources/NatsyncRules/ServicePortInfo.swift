import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncUtilities

/// A service port with the endpoints of its family, in the order the rules list them: what rule
/// generation takes and the conntrack cleanup checks flows against.
public typealias ServicePortEndpoints = (port: ServicePortInfo, endpoints: [EndpointInfo])

/// One port of one Service as a proxier of one family sees it: kube-proxy's `servicePortInfo`.
public struct ServicePortInfo: Hashable, Sendable {
    public var name: ServicePortName
    public var clusterIP: IPAddress
    public var port: UInt16
    public var nodePort: UInt16?
    public var externalIPs: [IPAddress]
    /// Load-balancer ingress IPs of this family that deliver to the VIP (not `ipMode: Proxy`).
    public var loadBalancerVIPs: [IPAddress]
    public var loadBalancerSourceRanges: [CIDR]
    public var sessionAffinityTimeout: Int?
    /// Only for `type: LoadBalancer` with `externalTrafficPolicy: Local`.
    public var healthCheckNodePort: UInt16?
    public var externalPolicyLocal: Bool
    public var internalPolicyLocal: Bool

    /// Reachable from outside the cluster: through a node port, a load balancer or an external IP.
    public var externallyAccessible: Bool {
        nodePort != nil || !loadBalancerVIPs.isEmpty || !externalIPs.isEmpty
    }

    /// Traffic to this port may use endpoints on any node.
    public var usesClusterEndpoints: Bool { !internalPolicyLocal || externallyAccessible }

    /// Traffic to this port may be limited to endpoints on this node.
    public var usesLocalEndpoints: Bool { internalPolicyLocal || externalPolicyLocal }

    /// The ports of `service` this proxier programs, or none when kube-proxy skips the service
    /// (headless, ExternalName, or no cluster IP of `family`).
    public static func ports(of service: Service, family: IPFamily) -> [ServicePortInfo] {
        guard service.kind != .externalName, let clusterIP = service.clusterIP(for: family) else { return [] }
        let externalIPs = service.externalIPs.filter { $0.family == family }
        let vips = service.loadBalancerIngress.filter { !$0.isProxyMode && $0.ip.family == family }.map(\.ip)
        let externallyAccessibleByType =
            service.kind == .nodePort || service.kind == .loadBalancer || !service.externalIPs.isEmpty
        let healthCheck =
            service.kind == .loadBalancer && service.externalTrafficPolicy == .local ? service.healthCheckNodePort : nil
        let affinity: Int? =
            if case .clientIP(let timeout) = service.sessionAffinity { timeout } else { nil }
        return service.ports.map { port in
            let info = ServicePortInfo(
                name: ServicePortName(service: service.name, port: port.name, protocol: port.protocol),
                clusterIP: clusterIP,
                port: port.port,
                nodePort: port.nodePort,
                externalIPs: externalIPs,
                loadBalancerVIPs: vips,
                loadBalancerSourceRanges: service.loadBalancerSourceRanges.filter { $0.family == family },
                sessionAffinityTimeout: affinity,
                healthCheckNodePort: healthCheck,
                externalPolicyLocal: false,
                internalPolicyLocal: service.internalTrafficPolicy == .local
            )
            var result = info
            result.externalPolicyLocal =
                service.externalTrafficPolicy == .local && externallyAccessibleByType && info.externallyAccessible
            return result
        }
    }
}

/// One endpoint of one service port: kube-proxy's `endpointInfo`.
public struct EndpointInfo: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    public var ready: Bool
    public var serving: Bool
    public var terminating: Bool
    public var isLocal: Bool
    /// The endpoint's topology hints: the zones and nodes that should use it.
    public var zoneHints: [String] = []
    public var nodeHints: [String] = []

    /// `ip:port`, as Go's `net.JoinHostPort`: the sort key, hash input and DNAT destination.
    public var endpointString: String { address.joined(port: port) }

    /// The endpoints of `port`, from the slices of its Service: matched by port name and protocol,
    /// this proxier's family only, collapsed by `ip:port` (a copy on this node wins), and sorted by
    /// the `ip:port` string as kube-proxy sorts them.
    public static func endpoints(
        of port: ServicePortName, in slices: [EndpointSlice], family: IPFamily, nodeName: String
    ) -> [EndpointInfo] {
        var candidates: [(key: ByteOrderKey, info: EndpointInfo)] = []
        for slice in slices where slice.addressType.family == family {
            guard let slicePort = slice.ports.first(where: { $0.name == port.port && $0.protocol == port.protocol })
            else { continue }
            for endpoint in slice.endpoints where endpoint.address.family == family {
                let info = EndpointInfo(
                    address: endpoint.address,
                    port: slicePort.port,
                    ready: endpoint.conditions.ready,
                    serving: endpoint.conditions.serving,
                    terminating: endpoint.conditions.terminating,
                    isLocal: endpoint.nodeName == nodeName,
                    zoneHints: endpoint.zoneHints,
                    nodeHints: endpoint.nodeHints
                )
                candidates.append((info.address.withJoined(port: info.port, ByteOrderKey.init), info))
            }
        }
        // Sorted by the `ip:port` bytes (at most 47, all in the key). The sort is stable, so of the copies of
        // one `ip:port` the first stays first: it is kept, unless a later copy is on this node
        // (the last such one wins, as a map overwritten in order would have it).
        candidates.sort { $0.key < $1.key }
        var result: [EndpointInfo] = []
        result.reserveCapacity(candidates.count)
        var index = 0
        while index < candidates.count {
            var chosen = candidates[index].info
            var next = index + 1
            while next < candidates.count && candidates[next].key == candidates[index].key {
                if candidates[next].info.isLocal { chosen = candidates[next].info }
                next += 1
            }
            result.append(chosen)
            index = next
        }
        return result
    }
}

/// Where this node is, for topology hints: its name and its `topology.kubernetes.io/zone` label.
public struct NodeTopology: Hashable, Sendable {
    public var nodeName: String
    /// Nil or empty when the node has no zone label: zone hints then never match.
    public var zone: String?
    /// kube-proxy's PreferSameTrafficDistribution gate (on by default since 1.34): node hints count.
    public var nodeHintsEnabled: Bool

    public init(nodeName: String, zone: String? = nil, nodeHintsEnabled: Bool = true) {
        self.nodeName = nodeName
        self.zone = zone
        self.nodeHintsEnabled = nodeHintsEnabled
    }

    /// Which hints a service port's cluster endpoints follow: kube-proxy's `topologyModeFromHints`.
    public enum Mode: Hashable, Sendable {
        case none, sameNode, sameZone
    }

    /// Only ready endpoints count. Node hints win when every ready endpoint has one and one names
    /// this node; else zone hints when every ready endpoint has one and one names this node's
    /// zone; else none (every ready endpoint).
    public func mode(for endpoints: [EndpointInfo]) -> Mode {
        var allNodeHinted = true
        var forThisNode = false
        var allZoneHinted = true
        var forThisZone = false
        var anyReady = false
        for endpoint in endpoints where endpoint.ready {
            anyReady = true
            if endpoint.nodeHints.isEmpty { allNodeHinted = false } else if endpoint.nodeHints.contains(nodeName) { forThisNode = true }
            if endpoint.zoneHints.isEmpty {
                allZoneHinted = false
            } else if let zone, !zone.isEmpty, endpoint.zoneHints.contains(zone) {
                forThisZone = true
            }
        }
        guard anyReady else { return .none }
        if nodeHintsEnabled && allNodeHinted && forThisNode { return .sameNode }
        if allZoneHinted && forThisZone { return .sameZone }
        return .none
    }

    /// Whether `endpoint` serves this node under `mode`; there is no fallback here, the fallback
    /// is in choosing the mode.
    public func allows(_ endpoint: EndpointInfo, _ mode: Mode) -> Bool {
        switch mode {
        case .none: true
        case .sameNode: endpoint.nodeHints.contains(nodeName)
        case .sameZone: zone.map(endpoint.zoneHints.contains) ?? false
        }
    }
}

/// The endpoints a service port's traffic may use: kube-proxy's `CategorizeEndpoints`.
public struct EndpointCategories: Hashable, Sendable {
    /// Endpoints for cluster-wide traffic: the ready ones, else the serving terminating ones.
    public var cluster: [EndpointInfo] = []
    /// Endpoints on this node: the ready ones, else the serving terminating ones.
    public var local: [EndpointInfo] = []
    /// Every endpoint that needs a KUBE-SEP chain, in `ip:port` order.
    public var reachable: [EndpointInfo] = []
    /// Some endpoint anywhere can take traffic.
    public var hasAny = false

    /// The topology hints followed for cluster traffic (never for local traffic).
    public var topologyMode = NodeTopology.Mode.none

    public init(_ endpoints: [EndpointInfo], for port: ServicePortInfo, topology: NodeTopology? = nil) {
        var usedServingTerminating = false
        if port.usesClusterEndpoints {
            let mode = topology?.mode(for: endpoints) ?? .none
            topologyMode = mode
            cluster = endpoints.filter { $0.ready && (topology?.allows($0, mode) ?? true) }
            // A mode needs a ready endpoint for this node, so an empty list means no ready
            // endpoint at all: the terminating fallback ignores topology, as kube-proxy's does.
            if cluster.isEmpty {
                cluster = endpoints.filter { $0.serving && $0.terminating }
            }
            hasAny = !cluster.isEmpty
        }
        guard port.usesLocalEndpoints else {
            reachable = cluster
            return
        }
        var hasLocalReady = false
        var hasLocalServingTerminating = false
        for endpoint in endpoints {
            if endpoint.ready {
                hasAny = true
                hasLocalReady = hasLocalReady || endpoint.isLocal
            } else if endpoint.serving && endpoint.terminating {
                hasAny = true
                hasLocalServingTerminating = hasLocalServingTerminating || endpoint.isLocal
            }
        }
        if hasLocalReady {
            local = endpoints.filter { $0.isLocal && $0.ready }
        } else if hasLocalServingTerminating {
            usedServingTerminating = true
            local = endpoints.filter { $0.isLocal && $0.serving && $0.terminating }
        }
        guard port.usesClusterEndpoints else {
            reachable = local
            return
        }
        guard usedServingTerminating || topologyMode != .none else {
            // Without fallback or topology, the local endpoints are ready ones and so already in
            // the cluster list.
            reachable = cluster
            return
        }
        // kube-proxy merges the two lists through a map (random order); natsync keeps ip:port order.
        let localStrings = Set(local.map(\.endpointString))
        reachable = (cluster.filter { !localStrings.contains($0.endpointString) } + local)
            .map { ($0.endpointString, $0) }.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
