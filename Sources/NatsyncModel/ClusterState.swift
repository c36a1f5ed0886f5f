/// The desired state a proxy programs: every Service and EndpointSlice it knows, each once.
///
/// Both lists are kept sorted by name, so everything derived from a state is deterministic.
public struct ClusterState: Hashable, Sendable {
    public private(set) var services: [Service]
    public private(set) var endpointSlices: [EndpointSlice]

    public init(services: [Service] = [], endpointSlices: [EndpointSlice] = []) {
        self.services = services.sorted { $0.name < $1.name }
        self.endpointSlices = endpointSlices.sorted { $0.name < $1.name }
    }

    /// The slices of each Service, in slice-name order.
    public func slicesByService() -> [NamespacedName: [EndpointSlice]] {
        Dictionary(grouping: endpointSlices, by: \.service)
    }
}
