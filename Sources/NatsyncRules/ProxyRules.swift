import NatsyncIPTables
import NatsyncModel

/// The tables a proxier wants: kube-proxy's iptables-mode rules for a cluster state.
public struct ProxyRules: Hashable, Sendable {
    public var filter: TableContents
    public var nat: TableContents
    /// Service ports programmed, and endpoints counted over them (the large-cluster measure).
    public var servicePortCount: Int
    public var endpointCount: Int
    /// More than ``ProxyRules/largeClusterEndpointThreshold`` endpoints: per-endpoint comments are left out.
    public var largeClusterMode: Bool
    /// Rules of the nat chains left out of ``nat`` by a partial assembly; the table holds
    /// `nat.ruleCount + omittedNatRules` in all.
    public var omittedNatRules = 0

    /// kube-proxy's `largeClusterEndpointsThreshold`.
    public static let largeClusterEndpointThreshold = 1000

    /// Both tables, filter first: the order kube-proxy restores and natsync commits them in.
    public var tables: [TableContents] { [filter, nat] }
}

/// The rules of one service port, split by where they go: rules in the shared fixed chains, and
/// the service's own chains.
public struct ServicePortRules: Hashable, Sendable {
    public var name: ServicePortName
    public var filterServices: [Rule] = []
    public var filterExternalServices: [Rule] = []
    public var filterNodePorts: [Rule] = []
    public var filterProxyFirewall: [Rule] = []
    public var natServices: [Rule] = []
    public var natNodePorts: [Rule] = []
    /// The service's own nat chains, in kube-proxy's order: EXT, FW, SVC, SVL, then SEP chains.
    public var natChains: [Chain] = []
    /// The port has endpoints, but none on this node for its `Local` internal or external traffic
    /// policy (kube-proxy's `no_local_endpoints_total` counts these).
    public var noLocalInternalEndpoints = false
    public var noLocalExternalEndpoints = false
}
