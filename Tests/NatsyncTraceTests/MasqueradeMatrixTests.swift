import NatsyncModel
import NatsyncTrace
import Testing

/// The masquerade matrix of reference 2.5 (`TestInternalExternalMasquerade`): who reaches which
/// endpoints, and who is masqueraded, for each kind of client and each service address.
struct MasqueradeMatrixTests {
    /// svc1: eTP Cluster; svc2: eTP Local; svc3: iTP Local. Each has one endpoint on this node and
    /// one elsewhere.
    func tracer(_ node: TestNode) -> Tracer {
        func ports(_ nodePort: UInt16) -> [Service.Port] { [.init(name: "http", protocol: .tcp, port: 80, nodePort: nodePort)] }
        let slicePorts = [EndpointSlice.Port(name: "http", protocol: .tcp, port: 80)]
        return node.tracer(
            [
                service("ns1/svc1", .loadBalancer, clusterIP: "172.30.0.41", ports: ports(3001), loadBalancer: ["9.10.11.12"]),
                service(
                    "ns2/svc2", .loadBalancer, clusterIP: "172.30.0.42", ports: ports(3002), loadBalancer: ["9.10.11.13"],
                    externalPolicy: .local, healthCheckNodePort: 30000),
                service(
                    "ns3/svc3", .loadBalancer, clusterIP: "172.30.0.43", ports: ports(3003), loadBalancer: ["9.10.11.14"],
                    internalPolicy: .local),
            ],
            [
                endpoints("ns1/svc1", slicePorts, ["10.180.0.1@test-node", "10.180.1.1@remote"]),
                endpoints("ns2/svc2", slicePorts, ["10.180.0.2@test-node", "10.180.1.2@remote"]),
                endpoints("ns3/svc3", slicePorts, ["10.180.0.3@test-node", "10.180.1.3@remote"]),
            ])
    }

    static let clients: [(Packet.Origin, String)] = [(.pod, "10.0.0.2"), (.node, "192.168.0.2"), (.external, "203.0.113.2")]
    static let both = ["10.180.0.1:80, 10.180.1.1:80", "10.180.0.2:80, 10.180.1.2:80", "10.180.0.3:80, 10.180.1.3:80"]
    static let local = ["10.180.0.1:80", "10.180.0.2:80", "10.180.0.3:80"]

    /// Flows to service `index` (0-based) at its cluster IP, NodePort and LB IP.
    func flow(_ origin: Packet.Origin, to what: String, of index: Int, _ expected: String, masqueraded: Bool) -> FlowCase {
        let source = Self.clients.first { $0.0 == origin }!.1
        let (destination, port): (String, UInt16) =
            switch what {
            case "ClusterIP": ("172.30.0.4\(index + 1)", 80)
            case "NodePort": ("192.168.0.2", UInt16(3001 + index))
            default: ("9.10.11.1\(index + 2)", 80)
            }
        return FlowCase(
            name: "\(origin) to svc\(index + 1) \(what)", origin: origin, source: source, destination: destination, port: port,
            expected: expected, masqueraded: masqueraded)
    }

    @Test func base() {
        var cases: [FlowCase] = []
        for what in ["ClusterIP", "NodePort", "LB"] {
            // eTP Cluster: only pod -> cluster IP keeps its source.
            cases.append(flow(.pod, to: what, of: 0, Self.both[0], masqueraded: what != "ClusterIP"))
            cases.append(flow(.node, to: what, of: 0, Self.both[0], masqueraded: true))
            cases.append(flow(.external, to: what, of: 0, Self.both[0], masqueraded: true))
        }
        // eTP Local: pods short-circuit to every endpoint unmasqueraded, the node is masqueraded to
        // every endpoint, outside clients reach the local endpoint with their source kept.
        cases.append(flow(.pod, to: "ClusterIP", of: 1, Self.both[1], masqueraded: false))
        for what in ["NodePort", "LB"] {
            cases.append(flow(.pod, to: what, of: 1, Self.both[1], masqueraded: false))
            cases.append(flow(.node, to: what, of: 1, Self.both[1], masqueraded: true))
            cases.append(flow(.external, to: what, of: 1, Self.local[1], masqueraded: false))
        }
        // iTP Local limits cluster-IP traffic from anywhere to the local endpoint, masquerading unchanged;
        // NodePort and LB traffic is not limited.
        cases.append(flow(.pod, to: "ClusterIP", of: 2, Self.local[2], masqueraded: false))
        cases.append(flow(.node, to: "ClusterIP", of: 2, Self.local[2], masqueraded: true))
        cases.append(flow(.external, to: "ClusterIP", of: 2, Self.local[2], masqueraded: true))
        cases.append(flow(.external, to: "NodePort", of: 2, Self.both[2], masqueraded: true))
        cases.append(flow(.pod, to: "LB", of: 2, Self.both[2], masqueraded: true))
        expectFlows(tracer(TestNode()), cases)
    }

    @Test func withoutLocalTrafficDetector() {
        let node = TestNode(clusterCIDRs: [])
        expectFlows(
            tracer(node),
            [
                flow(.pod, to: "ClusterIP", of: 0, Self.both[0], masqueraded: false),
                flow(.node, to: "ClusterIP", of: 0, Self.both[0], masqueraded: false),
                flow(.external, to: "ClusterIP", of: 0, Self.both[0], masqueraded: false),
                flow(.pod, to: "NodePort", of: 1, Self.local[1], masqueraded: false),
                flow(.pod, to: "LB", of: 1, Self.local[1], masqueraded: false),
                flow(.external, to: "NodePort", of: 0, Self.both[0], masqueraded: true),
            ])
    }

    @Test func masqueradeAll() {
        let node = TestNode(masqueradeAll: true)
        expectFlows(
            tracer(node),
            [
                flow(.pod, to: "ClusterIP", of: 0, Self.both[0], masqueraded: true),
                flow(.external, to: "NodePort", of: 1, Self.local[1], masqueraded: false),
            ])
    }
}
