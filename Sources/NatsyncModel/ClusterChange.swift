/// One object's change as a watch delivers it: its new value, or nil once it is deleted.
///
/// A proxy that follows an API server takes these one at a time, so a change costs the size of
/// the object, not the size of the cluster.
public enum ClusterChange: Hashable, Sendable {
    case service(NamespacedName, Service?)
    case endpointSlice(NamespacedName, EndpointSlice?)
    /// A Node by name (the proxy's own matters, for its zone).
    case node(String, Node?)
}
