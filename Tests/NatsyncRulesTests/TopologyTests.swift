import NatsyncModel
import Testing

@testable import NatsyncRules

/// Topology hints as kube-proxy's `CategorizeEndpoints` applies them (its TestCategorizeEndpoints
/// rows, and the same-node rows of 1.33+).
struct TopologyTests {
    /// An endpoint `10.1.2.N:80`; `zones` and `nodes` are its hints.
    static func endpoint(
        _ n: Int, zones: [String] = [], nodes: [String] = [], ready: Bool = true, terminating: Bool = false, local: Bool = false
    ) -> EndpointInfo {
        var info = EndpointInfo(
            address: ip("10.1.2.\(n)"), port: 80, ready: ready, serving: ready || terminating, terminating: terminating, isLocal: local)
        info.zoneHints = zones
        info.nodeHints = nodes
        return info
    }

    static func port(internalLocal: Bool = false, externalLocal: Bool = false, nodePort: UInt16? = nil) -> ServicePortInfo {
        ServicePortInfo(
            name: ServicePortName(service: name("ns1/svc1"), port: "p80", protocol: .tcp), clusterIP: ip("172.30.0.41"), port: 80,
            nodePort: nodePort, externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], sessionAffinityTimeout: nil,
            healthCheckNodePort: nil, externalPolicyLocal: externalLocal, internalPolicyLocal: internalLocal)
    }

    static let zoneA = NodeTopology(nodeName: "node-1", zone: "zone-a")

    static func cluster(_ endpoints: [EndpointInfo], _ topology: NodeTopology?, port: ServicePortInfo = port()) -> [Int] {
        EndpointCategories(endpoints, for: port, topology: topology).cluster.map {
            Int($0.address.description.split(separator: ".").last!)!
        }
    }

    @Test func zoneHintsKeepTheEndpointsForThisZone() {
        let endpoints = [
            Self.endpoint(3, zones: ["zone-a"]), Self.endpoint(4, zones: ["zone-b"]), Self.endpoint(5, zones: ["zone-c", "zone-a"]),
        ]
        #expect(Self.cluster(endpoints, Self.zoneA) == [3, 5])
        #expect(EndpointCategories(endpoints, for: Self.port(), topology: Self.zoneA).topologyMode == .sameZone)
        #expect(Self.cluster(endpoints, nil) == [3, 4, 5], "no topology without a node")
    }

    @Test func hintsAreIgnoredWhenTheyCannotServeThisNode() {
        // A ready endpoint without a hint.
        #expect(Self.cluster([Self.endpoint(3, zones: ["zone-a"]), Self.endpoint(4)], Self.zoneA) == [3, 4])
        // No endpoint for this zone.
        #expect(Self.cluster([Self.endpoint(3, zones: ["zone-b"]), Self.endpoint(4, zones: ["zone-c"])], Self.zoneA) == [3, 4])
        // The node has no zone label (or an empty one).
        let hinted = [Self.endpoint(3, zones: ["zone-a"]), Self.endpoint(4, zones: ["zone-b"])]
        #expect(Self.cluster(hinted, NodeTopology(nodeName: "node-1")) == [3, 4])
        #expect(Self.cluster(hinted, NodeTopology(nodeName: "node-1", zone: "")) == [3, 4])
    }

    @Test func onlyReadyEndpointsDecideTheMode() {
        // The unready endpoint has no hint: it does not stop the zone filter.
        #expect(
            Self.cluster(
                [Self.endpoint(3, zones: ["zone-a"]), Self.endpoint(4, zones: ["zone-b"]), Self.endpoint(5, ready: false)], Self.zoneA) == [
                    3
                ])
        // Only an unready endpoint is for this zone: no filter.
        #expect(Self.cluster([Self.endpoint(3, zones: ["zone-a"], ready: false), Self.endpoint(4, zones: ["zone-b"])], Self.zoneA) == [4])
    }

    @Test func nodeHintsComeFirstThenZoneHints() {
        let both = [
            Self.endpoint(3, zones: ["zone-a"], nodes: ["node-1"]), Self.endpoint(4, zones: ["zone-a"], nodes: ["node-2"]),
            Self.endpoint(5, zones: ["zone-b"], nodes: ["node-3"]),
        ]
        #expect(Self.cluster(both, Self.zoneA) == [3])
        #expect(EndpointCategories(both, for: Self.port(), topology: Self.zoneA).topologyMode == .sameNode)
        // None for this node: the zone hints still apply.
        #expect(Self.cluster(both, NodeTopology(nodeName: "node-9", zone: "zone-a")) == [3, 4])
        // The PreferSameTrafficDistribution gate off: zone hints only.
        #expect(Self.cluster(both, NodeTopology(nodeName: "node-1", zone: "zone-a", nodeHintsEnabled: false)) == [3, 4])
        // A ready endpoint without a node hint: zone hints.
        let partial = [Self.endpoint(3, zones: ["zone-a"], nodes: ["node-1"]), Self.endpoint(4, zones: ["zone-a"])]
        #expect(Self.cluster(partial, Self.zoneA) == [3, 4])
    }

    @Test func theTerminatingFallbackIgnoresTopology() {
        let endpoints = [
            Self.endpoint(3, zones: ["zone-a"], ready: false, terminating: true),
            Self.endpoint(4, zones: ["zone-b"], ready: false, terminating: true),
        ]
        #expect(Self.cluster(endpoints, Self.zoneA) == [3, 4])
    }

    @Test func localTrafficIsNeverFilteredAndReachableIsTheUnion() {
        let endpoints = [
            Self.endpoint(3, zones: ["zone-b"], local: true), Self.endpoint(4, zones: ["zone-a"]), Self.endpoint(5, zones: ["zone-b"]),
        ]
        // externalTrafficPolicy: Local on a NodePort: cluster traffic follows the hints, external
        // traffic takes the local endpoint, and both get a KUBE-SEP chain.
        let external = EndpointCategories(endpoints, for: Self.port(externalLocal: true, nodePort: 30080), topology: Self.zoneA)
        #expect(external.cluster.map(\.endpointString) == ["10.1.2.4:80"])
        #expect(external.local.map(\.endpointString) == ["10.1.2.3:80"])
        #expect(external.reachable.map(\.endpointString) == ["10.1.2.3:80", "10.1.2.4:80"])
        // internalTrafficPolicy: Local, not externally reachable: no cluster traffic, no topology.
        let inside = EndpointCategories(endpoints, for: Self.port(internalLocal: true), topology: Self.zoneA)
        #expect(inside.cluster.isEmpty && inside.topologyMode == .none)
        #expect(inside.reachable.map(\.endpointString) == ["10.1.2.3:80"])
    }
}
