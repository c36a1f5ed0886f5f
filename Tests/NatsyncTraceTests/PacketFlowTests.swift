import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncTrace
import Testing

/// kube-proxy's packet-flow expectations (reference 3.6), traced through the desired tables.
struct PacketFlowTests {
    let node = TestNode()

    @Test func clusterIPGeneral() {
        let http = Service.Port(name: "http", protocol: .tcp, port: 80)
        let svc2Ports: [Service.Port] = [
            http, .init(name: "https", protocol: .tcp, port: 443), .init(name: "dns-udp", protocol: .udp, port: 53),
            .init(name: "dns-tcp", protocol: .tcp, port: 53), .init(name: "dns-sctp", protocol: .sctp, port: 53),
        ]
        let tracer = node.tracer(
            [
                service("ns1/svc1", clusterIP: "172.30.0.41", ports: [http]),
                service("ns2/svc2", clusterIP: "172.30.0.42", ports: svc2Ports),
            ],
            [
                endpoints("ns1/svc1", [.init(name: "http", protocol: .tcp, port: 80)], ["10.180.0.1"]),
                endpoints(
                    "ns2/svc2",
                    [
                        .init(name: "http", protocol: .tcp, port: 80), .init(name: "https", protocol: .tcp, port: 8443),
                        .init(name: "dns-udp", protocol: .udp, port: 53), .init(name: "dns-tcp", protocol: .tcp, port: 5353),
                        .init(name: "dns-sctp", protocol: .sctp, port: 53),
                    ], ["10.180.0.1", "10.180.2.1"]),
            ])
        expectFlows(
            tracer,
            [
                FlowCase(
                    name: "simple clusterIP", origin: .pod, source: "10.180.0.2", destination: "172.30.0.41", port: 80,
                    expected: "10.180.0.1:80"),
                FlowCase(
                    name: "hairpin", origin: .pod, source: "10.180.0.1", destination: "172.30.0.41", port: 80, expected: "10.180.0.1:80",
                    masqueraded: true),
                FlowCase(
                    name: "multiple endpoints", origin: .pod, source: "10.180.0.2", destination: "172.30.0.42", port: 80,
                    expected: "10.180.0.1:80, 10.180.2.1:80"),
                FlowCase(
                    name: "target port", origin: .pod, source: "10.180.0.2", destination: "172.30.0.42", port: 443,
                    expected: "10.180.0.1:8443, 10.180.2.1:8443"),
                FlowCase(
                    name: "TCP on the DNS port", origin: .pod, source: "10.180.0.2", destination: "172.30.0.42", port: 53,
                    expected: "10.180.0.1:5353, 10.180.2.1:5353"),
                FlowCase(
                    name: "UDP on the DNS port", origin: .pod, source: "10.180.0.2", destination: "172.30.0.42", port: 53,
                    transport: .udp, expected: "10.180.0.1:53, 10.180.2.1:53"),
                FlowCase(
                    name: "SCTP on the DNS port", origin: .pod, source: "10.180.0.2", destination: "172.30.0.42", port: 53,
                    transport: .sctp, expected: "10.180.0.1:53, 10.180.2.1:53"),
                FlowCase(
                    name: "UDP to a TCP-only port matches no service", origin: .pod, source: "10.180.0.2", destination: "172.30.0.42",
                    port: 80, transport: .udp, expected: "ACCEPT"),
            ])
    }

    @Test func twoEndpointsSplitHalfAndHalf() {
        let tracer = node.tracer(
            [service("ns2/svc2", clusterIP: "172.30.0.42", ports: [.init(name: "http", protocol: .tcp, port: 80)])],
            [endpoints("ns2/svc2", [.init(name: "http", protocol: .tcp, port: 80)], ["10.180.0.1", "10.180.2.1"])])
        let trace = tracer.trace(
            Packet(source: IPAddress("10.180.0.2")!, destination: IPAddress("172.30.0.42")!, destinationPort: 80, origin: .pod))
        let split = trace.outcomes.map { ("\($0.outcome.destination)", $0.probability) }
        #expect(split.count == 2)
        for (_, probability) in split { #expect(abs(probability - 0.5) < 1e-9) }
    }

    @Test func loadBalancerWithSourceRanges() {
        let tracer = node.tracer(
            [
                service(
                    "ns1/svc1", .loadBalancer, clusterIP: "172.30.0.41",
                    ports: [.init(name: "p80", protocol: .tcp, port: 80, nodePort: 3001)],
                    loadBalancer: ["1.2.3.4", "5.6.7.8"], sourceRanges: ["192.168.0.0/24", "203.0.113.0/25"])
            ],
            [endpoints("ns1/svc1", [.init(name: "p80", protocol: .tcp, port: 80)], ["10.180.0.1"])])
        expectFlows(
            tracer,
            [
                FlowCase(
                    name: "allowed external client to LB", origin: .external, source: "203.0.113.2", destination: "1.2.3.4", port: 80,
                    expected: "10.180.0.1:80", masqueraded: true),
                FlowCase(
                    name: "allowed external client to second LB IP", origin: .external, source: "203.0.113.2", destination: "5.6.7.8",
                    port: 80, expected: "10.180.0.1:80", masqueraded: true),
                FlowCase(
                    name: "blocked external client to LB", origin: .external, source: "203.0.113.130", destination: "1.2.3.4", port: 80,
                    expected: "DROP"),
                FlowCase(
                    name: "pod to LB (not in the ranges)", origin: .pod, source: "10.0.0.2", destination: "1.2.3.4", port: 80,
                    expected: "DROP"),
                FlowCase(
                    name: "node to LB (the node IP is in a range)", origin: .node, source: "192.168.0.2", destination: "1.2.3.4", port: 80,
                    expected: "10.180.0.1:80", masqueraded: true),
                FlowCase(
                    name: "LB IP as source", origin: .external, source: "1.2.3.4", destination: "1.2.3.4", port: 80,
                    expected: "10.180.0.1:80", masqueraded: true),
                FlowCase(
                    name: "blocked client to NodePort (source ranges do not apply)", origin: .external, source: "203.0.113.130",
                    destination: "192.168.0.2", port: 3001, expected: "10.180.0.1:80", masqueraded: true),
            ])
    }

    @Test func noEndpointsReject() {
        let tracer = node.tracer(
            [
                service(
                    "ns1/svc1", .loadBalancer, clusterIP: "172.30.0.41",
                    ports: [.init(name: "p80", protocol: .tcp, port: 80, nodePort: 3001)], externalIPs: ["192.168.99.11"],
                    loadBalancer: ["1.2.3.4"])
            ], [])
        var cases: [FlowCase] = []
        for (origin, source) in [(Packet.Origin.pod, "10.0.0.2"), (.external, "203.0.113.2")] {
            for (what, destination, port) in [
                ("cluster IP", "172.30.0.41", UInt16(80)), ("external IP", "192.168.99.11", 80), ("NodePort", "192.168.0.2", 3001),
                ("LB IP", "1.2.3.4", 80),
            ] {
                cases.append(
                    FlowCase(
                        name: "\(origin) to \(what)", origin: origin, source: source, destination: destination, port: port,
                        expected: "REJECT"))
            }
        }
        expectFlows(tracer, cases)
    }

    @Test func internalTrafficPolicy() {
        let port = Service.Port(name: "p80", protocol: .tcp, port: 80)
        let slicePort = EndpointSlice.Port(name: "p80", protocol: .tcp, port: 80)
        let fromPod = { (expected: String) in
            FlowCase(name: "pod to cluster IP", origin: .pod, source: "10.0.0.2", destination: "172.30.1.1", port: 80, expected: expected)
        }
        func tracer(_ policy: Service.TrafficPolicy, _ addresses: [String]?) -> Tracer {
            node.tracer(
                [service("ns1/svc1", clusterIP: "172.30.1.1", ports: [port], internalPolicy: policy)],
                addresses.map { [endpoints("ns1/svc1", [slicePort], $0)] } ?? [])
        }
        expectFlows(
            tracer(.cluster, ["10.0.1.1@test-node", "10.0.1.2@host1", "10.0.1.3@host2"]),
            [fromPod("10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80")])
        expectFlows(tracer(.local, ["10.0.1.1@test-node", "10.0.1.2@host1", "10.0.1.3@host2"]), [fromPod("10.0.1.1:80")])
        expectFlows(tracer(.local, ["10.0.1.1@test-node", "10.0.1.2@test-node", "10.0.1.3@host2"]), [fromPod("10.0.1.1:80, 10.0.1.2:80")])
        expectFlows(tracer(.local, ["10.0.1.1@host0", "10.0.1.2@host1", "10.0.1.3@host2"]), [fromPod("DROP")])
        expectFlows(tracer(.local, nil), [fromPod("REJECT")])
    }

    @Test func healthCheckNodePortIsAcceptedByItsOwnRule() {
        let lb = service(
            "ns1/svc1", .loadBalancer, clusterIP: "172.30.0.42", ports: [.init(name: "p80", protocol: .tcp, port: 80, nodePort: 3001)],
            loadBalancer: ["1.2.3.4"], externalPolicy: .local, healthCheckNodePort: 30000)
        let packet = Packet(
            source: IPAddress("1.2.3.4")!, destination: IPAddress("192.168.0.2")!, destinationPort: 30000, origin: .external)
        let withService = node.tracer(
            [lb], [endpoints("ns1/svc1", [.init(name: "p80", protocol: .tcp, port: 80)], ["10.180.0.1@test-node"])])
        let accepted = withService.trace(packet)
        #expect(summary(accepted).result == "ACCEPT")
        #expect(
            accepted.branches[0].hops.contains {
                $0.kind == .matched && $0.table == .filter && $0.chain == "KUBE-NODEPORTS" && $0.rule?.hasSuffix("-j ACCEPT") == true
            })
        let deleted = node.tracer([], []).trace(packet)
        #expect(!deleted.branches[0].hops.contains { $0.chain == "KUBE-NODEPORTS" && $0.kind == .matched })
        #expect(deleted.branches[0].hops.last?.kind == .policy)
    }
}
