import NatsyncIPTables

/// Which chains belong to the proxy, the one place their names are spelled: kube-proxy's fixed
/// chains of each table and every chain with a per-service prefix. natsync rewrites and deletes
/// only these; rule generation names its chains from here.
public enum Ownership {
    public static let services: ChainName = "KUBE-SERVICES"
    public static let externalServices: ChainName = "KUBE-EXTERNAL-SERVICES"
    public static let nodePorts: ChainName = "KUBE-NODEPORTS"
    public static let postrouting: ChainName = "KUBE-POSTROUTING"
    public static let markMasquerade: ChainName = "KUBE-MARK-MASQ"
    public static let forward: ChainName = "KUBE-FORWARD"
    public static let proxyFirewall: ChainName = "KUBE-PROXY-FIREWALL"
    /// Shared with kubelet, so it is written but never deleted.
    public static let kubeletFirewall: ChainName = "KUBE-FIREWALL"
    public static let proxyCanary: ChainName = "KUBE-PROXY-CANARY"

    /// The prefixes of the per-service chains, each followed by a hash (or, for the dispatch
    /// tree, a prefix's address).
    public enum Prefix {
        public static let clusterPolicy = "KUBE-SVC-"
        public static let localPolicy = "KUBE-SVL-"
        public static let external = "KUBE-EXT-"
        public static let firewall = "KUBE-FW-"
        /// Static: the endpoint-chain hash writes it straight into the name it builds.
        public static let endpoint: StaticString = "KUBE-SEP-"
        /// natsync's KUBE-SERVICES dispatch tree.
        public static let dispatchTree = "NATSYNC-DSP-"
    }

    static let fixed: [TableName: Set<ChainName>] = [
        .filter: [services, externalServices, forward, nodePorts, proxyFirewall, kubeletFirewall, proxyCanary],
        .nat: [services, nodePorts, postrouting, markMasquerade, proxyCanary],
        .mangle: [proxyCanary],
    ]
    static let prefixes = [
        Prefix.clusterPolicy, Prefix.localPolicy, Prefix.external, Prefix.firewall, Prefix.endpoint.description, Prefix.dispatchTree,
    ]

    /// Chains natsync never deletes: shared with kubelet, or the daemon's canary.
    static let neverDeleted: Set<ChainName> = [kubeletFirewall, proxyCanary]

    /// True when `chain` in `table` belongs to the proxy.
    public static func owns(_ chain: ChainName, in table: TableName) -> Bool {
        if fixed[table]?.contains(chain) == true { return true }
        return isServiceChain(chain)
    }

    /// True for the per-service chains (`KUBE-SVC-…` and the like), which a sync deletes when stale.
    public static func isServiceChain(_ chain: ChainName) -> Bool {
        prefixes.contains { chain.rawValue.hasPrefix($0) }
    }

    /// Whether a reader must decode `chain`'s rules for planning.
    public static func needsRules(_ chain: ChainName, in table: TableName) -> Bool {
        chain.isBuiltin || owns(chain, in: table)
    }
}
