import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncRules
import NatsyncTrace
import Testing

/// The node of kube-proxy's packet-flow tests (reference 3.1): node IP 192.168.0.2 with extra
/// local addresses, pods in 10.0.0.0/8, mark 0x4000.
struct TestNode {
    var clusterCIDRs = ["10.0.0.0/8"]
    var masqueradeAll = false
    var localAddresses = ["192.168.0.2", "192.168.1.2", "192.168.99.11", "127.0.0.1"]

    var options: ProxyOptions {
        ProxyOptions(
            family: .ipv4, nodeName: "test-node", nodeIP: IPAddress("192.168.0.2"),
            nodeAddresses: localAddresses.compactMap(IPAddress.init), clusterCIDRs: clusterCIDRs.compactMap { CIDR($0) },
            masqueradeAll: masqueradeAll, randomFully: false)
    }

    func tracer(_ services: [Service], _ slices: [EndpointSlice]) -> Tracer {
        let rules = RuleGenerator(options: options).rules(for: ClusterState(services: services, endpointSlices: slices))
        return Tracer(
            ruleset: Ruleset(desired: rules.tables, family: .ipv4), localAddresses: Set(localAddresses.compactMap(IPAddress.init)))
    }
}

/// One packet-flow expectation in the upstream tests' terms: the comma-joined DNAT targets (or the
/// verdict: ACCEPT for an untranslated packet let through, DROP, REJECT) and whether it is masqueraded.
struct FlowCase: CustomTestStringConvertible {
    var name: String
    var origin: Packet.Origin
    var source: String
    var destination: String
    var port: UInt16
    var transport: TransportProtocol = .tcp
    var expected: String
    var masqueraded = false

    var testDescription: String { name }

    var packet: Packet {
        Packet(
            source: IPAddress(source)!, destination: IPAddress(destination)!, destinationPort: port, transport: transport,
            origin: origin)
    }
}

/// What a trace comes to, in FlowCase's terms.
func summary(_ trace: Trace) -> (result: String, masqueraded: Set<Bool>) {
    var results: Set<String> = []
    for branch in trace.branches {
        let outcome = branch.outcome
        switch outcome.verdict {
        case .accept where outcome.translated: results.insert("\(outcome.destination):\(outcome.destinationPort)")
        default: results.insert(outcome.verdict.description)
        }
    }
    return (results.sorted().joined(separator: ", "), Set(trace.branches.map(\.outcome.masqueraded)))
}

func expectFlows(_ tracer: Tracer, _ cases: [FlowCase], sourceLocation: SourceLocation = #_sourceLocation) {
    for flow in cases {
        let trace = tracer.trace(flow.packet)
        let (result, masqueraded) = summary(trace)
        #expect(result == flow.expected, "\(flow.name)", sourceLocation: sourceLocation)
        if flow.expected != "DROP" && flow.expected != "REJECT" {
            #expect(masqueraded == [flow.masqueraded], "\(flow.name): masquerade", sourceLocation: sourceLocation)
        }
        let total = trace.branches.reduce(0) { $0 + $1.probability }
        #expect(abs(total - 1) < 1e-9, "\(flow.name): branch probabilities sum to \(total)", sourceLocation: sourceLocation)
    }
}

func service(
    _ name: String, _ kind: Service.Kind = .clusterIP, clusterIP: String, ports: [Service.Port],
    externalIPs: [String] = [], loadBalancer: [String] = [], sourceRanges: [String] = [],
    externalPolicy: Service.TrafficPolicy = .cluster, internalPolicy: Service.TrafficPolicy = .cluster, healthCheckNodePort: UInt16? = nil
) -> Service {
    let parts = name.split(separator: "/").map(String.init)
    return Service(
        name: NamespacedName(namespace: parts[0], name: parts[1]), kind: kind, clusterIPs: [IPAddress(clusterIP)!],
        ports: ports, externalIPs: externalIPs.compactMap(IPAddress.init),
        loadBalancerIngress: loadBalancer.compactMap(IPAddress.init).map { .init(ip: $0) },
        loadBalancerSourceRanges: sourceRanges.compactMap { CIDR($0) }, externalTrafficPolicy: externalPolicy,
        internalTrafficPolicy: internalPolicy, healthCheckNodePort: healthCheckNodePort)
}

/// A slice of `service` with `ports`, endpoints written `address` or `address@node`.
func endpoints(_ service: String, _ ports: [EndpointSlice.Port], _ addresses: [String]) -> EndpointSlice {
    let parts = service.split(separator: "/").map(String.init)
    return EndpointSlice(
        name: NamespacedName(namespace: parts[0], name: parts[1] + "-1"),
        service: NamespacedName(namespace: parts[0], name: parts[1]), addressType: .ipv4, ports: ports,
        endpoints: addresses.map { text in
            let pieces = text.split(separator: "@").map(String.init)
            return .init(address: IPAddress(pieces[0])!, nodeName: pieces.count > 1 ? pieces[1] : nil)
        })
}
