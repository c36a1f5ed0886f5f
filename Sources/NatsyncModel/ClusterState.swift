/// The desired state a proxy programs: every Service and EndpointSlice it knows, each once, and
/// the Nodes it was given.
///
/// Both lists are kept sorted by name, so everything derived from a state is deterministic.
public struct ClusterState: Hashable, Sendable {
    public private(set) var services: [Service]
    public private(set) var endpointSlices: [EndpointSlice]
    /// The Nodes given (a manifest may carry the proxy's own, for its zone).
    public private(set) var nodes: [Node]

    public init(services: [Service] = [], endpointSlices: [EndpointSlice] = [], nodes: [Node] = []) {
        self.services = services.sorted { $0.name < $1.name }
        self.endpointSlices = endpointSlices.sorted { $0.name < $1.name }
        self.nodes = nodes.sorted { $0.name < $1.name }
    }

    /// The Node called `name`, if the state has it.
    public func node(named name: String) -> Node? {
        nodes.first { $0.name == name }
    }

    /// The slices of each Service, in slice-name order.
    public func slicesByService() -> [NamespacedName: [EndpointSlice]] {
        Dictionary(grouping: endpointSlices, by: \.service)
    }
}
