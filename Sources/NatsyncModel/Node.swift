/// A `v1 Node`, as far as the rules depend on it: topology hints follow the proxy's own node's zone.
public struct Node: Hashable, Sendable {
    public var name: String
    /// The `topology.kubernetes.io/zone` label; nil when the node has none.
    public var zone: String?

    public static let zoneLabel = "topology.kubernetes.io/zone"

    public init(name: String, zone: String? = nil) {
        self.name = name
        self.zone = zone
    }
}
