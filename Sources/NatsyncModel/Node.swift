import NatsyncNet

/// A `v1 Node`, as far as the rules depend on it: topology hints follow the proxy's own node's
/// zone, and `--detect-local-mode NodeCIDR` its pod CIDRs.
public struct Node: Hashable, Sendable {
    public var name: String
    /// The `topology.kubernetes.io/zone` label; nil when the node has none.
    public var zone: String?
    /// `spec.podCIDRs` (or the older `spec.podCIDR`).
    public var podCIDRs: [CIDR]

    public static let zoneLabel = "topology.kubernetes.io/zone"

    public init(name: String, zone: String? = nil, podCIDRs: [CIDR] = []) {
        self.name = name
        self.zone = zone
        self.podCIDRs = podCIDRs
    }
}
