import Foundation
import NatsyncTestSupport
import Testing

/// Both layouts of nat KUBE-SERVICES (kube-proxy's and the dispatch tree), on a legacy node
/// (libiptc) and on an nft node (iptables-nft-restore).
let dispatchModes = [("linear", "legacy"), ("tree", "legacy"), ("linear", "nft"), ("tree", "nft")]

/// Real traffic through rules natsync programmed, in namespaces each test creates and deletes,
/// once with each `--service-dispatch` on each backend.
@Suite(.serialized, liveKernel)
struct TrafficTests {
    @Test(arguments: dispatchModes)
    func clusterIPSpreadsEvenlyFromPodsAndFromTheNodeAndStopsAtRemovedEndpoints(dispatch: String, backend: String) throws {
        let scene = try Scene(dispatch: dispatch, backend: backend)
        defer { scene.close() }
        try scene.addPod("client")
        let a = try scene.addPod("pod-a")
        let b = try scene.addPod("pod-b")
        let c = try scene.addPod("pod-c")
        let clientNS = scene.podNamespaces["client"]!
        let service = Objects.service("web", clusterIP: "10.96.0.50")

        // Two endpoints.
        try scene.sync([try scene.manifest("two.yaml", service + Objects.slice("web", [a, b]))])
        #expect(try scene.save().contains("-j NATSYNC-DSP-") == (dispatch == "tree"))
        for origin in [clientNS, scene.node] {
            let answers = try scene.get(from: origin, "10.96.0.50:80", count: 300)
            let counts = tally(answers)
            #expect(answers.count == 300 && Set(counts.keys) == ["pod-a", "pod-b"], "\(counts)")
            #expect(chiSquare([counts["pod-a", default: 0], counts["pod-b", default: 0]]) < chiSquareCritical[1]!, "\(counts)")
        }

        // Three endpoints.
        try scene.sync([try scene.manifest("three.yaml", service + Objects.slice("web", [a, b, c]))])
        for origin in [clientNS, scene.node] {
            let counts = tally(try scene.get(from: origin, "10.96.0.50:80", count: 300))
            let split = ["pod-a", "pod-b", "pod-c"].map { counts[$0, default: 0] }
            #expect(split.reduce(0, +) == 300, "\(counts)")
            #expect(chiSquare(split) < chiSquareCritical[2]!, "\(counts)")
        }

        // Pod traffic from inside the cluster CIDR keeps its source; the node's is masqueraded.
        let fromPod = try scene.get(from: clientNS, "10.96.0.50:80", count: 5)
        #expect(fromPod.allSatisfy { $0.hasSuffix(" 10.0.1.2") }, "\(fromPod)")
        let fromNode = try scene.get(from: scene.node, "10.96.0.50:80", count: 5)
        #expect(fromNode.allSatisfy { !$0.hasSuffix(" 192.168.0.2") }, "\(fromNode)")

        // Remove pod-b: nothing reaches it any more.
        try scene.sync([try scene.manifest("removed.yaml", service + Objects.slice("web", [a, c]))])
        for origin in [clientNS, scene.node] {
            let counts = tally(try scene.get(from: origin, "10.96.0.50:80", count: 200))
            #expect(counts["pod-b"] == nil && counts["pod-a", default: 0] + counts["pod-c", default: 0] == 200, "\(counts)")
        }
    }

    @Test(arguments: dispatchModes)
    func nodePortAndExternalIPReachTheServiceFromOutside(dispatch: String, backend: String) throws {
        let scene = try Scene(dispatch: dispatch, backend: backend)
        defer { scene.close() }
        let a = try scene.addPod("pod-a")
        let b = try scene.addPod("pod-b")
        let yaml =
            Objects.service("np", clusterIP: "10.96.0.60", type: "NodePort", nodePort: 30080, extra: "  externalIPs: [192.168.99.11]")
            + Objects.slice("np", [a, b])
        try scene.sync([try scene.manifest("np.yaml", yaml)])
        let viaNodePort = tally(try scene.get(from: scene.external, "\(Scene.nodeIP):30080", count: 100))
        #expect(viaNodePort["pod-a", default: 0] + viaNodePort["pod-b", default: 0] == 100, "\(viaNodePort)")
        #expect(viaNodePort.count == 2, "\(viaNodePort)")
        let viaExternalIP = tally(try scene.get(from: scene.external, "192.168.99.11:80", count: 100))
        #expect(viaExternalIP["pod-a", default: 0] + viaExternalIP["pod-b", default: 0] == 100, "\(viaExternalIP)")
        // eTP=Cluster masquerades outside traffic: pods see the node, not the client.
        let answers = try scene.get(from: scene.external, "\(Scene.nodeIP):30080", count: 5)
        #expect(answers.allSatisfy { !$0.hasSuffix(Scene.externalIP) }, "\(answers)")
    }

    @Test(arguments: dispatchModes)
    func externalTrafficPolicyLocalKeepsTheClientAndTheLocalEndpoint(dispatch: String, backend: String) throws {
        let scene = try Scene(dispatch: dispatch, backend: backend)
        defer { scene.close() }
        let local = try scene.addPod("pod-local")
        let remote = try scene.addPod("pod-remote")
        let yaml =
            Objects.service("loc", clusterIP: "10.96.0.70", type: "NodePort", nodePort: 30081, extra: "  externalTrafficPolicy: Local")
            + Objects.slice("loc", ["\(local)@node-1", "\(remote)@node-2"])
        try scene.sync([try scene.manifest("local.yaml", yaml)])
        let answers = try scene.get(from: scene.external, "\(Scene.nodeIP):30081", count: 60)
        #expect(
            answers.count == 60 && answers.allSatisfy { $0 == "Hello from pod-local; you are \(Scene.externalIP)" }, "\(tally(answers))")
        // Cluster IP traffic still uses both endpoints.
        let fromPods = tally(try scene.get(from: scene.podNamespaces["pod-remote"]!, "10.96.0.70:80", count: 100))
        #expect(fromPods.count == 2, "\(fromPods)")
    }

    @Test(arguments: dispatchModes)
    func clientIPAffinityKeepsAClientOnOneEndpoint(dispatch: String, backend: String) throws {
        let scene = try Scene(dispatch: dispatch, backend: backend)
        defer { scene.close() }
        try scene.addPod("client")
        let a = try scene.addPod("pod-a")
        let b = try scene.addPod("pod-b")
        let yaml =
            Objects.service("sticky", clusterIP: "10.96.0.80", extra: "  sessionAffinity: ClientIP")
            + Objects.slice("sticky", [a, b])
        try scene.sync([try scene.manifest("sticky.yaml", yaml)])
        let counts = tally(try scene.get(from: scene.podNamespaces["client"]!, "10.96.0.80:80", count: 50))
        #expect(counts.count == 1 && counts.values.first == 50, "\(counts)")
    }

    @Test(arguments: dispatchModes)
    func aServiceWithoutEndpointsRefusesAtOnce(dispatch: String, backend: String) throws {
        let scene = try Scene(dispatch: dispatch, backend: backend)
        defer { scene.close() }
        try scene.addPod("client")
        try scene.sync([
            try scene.manifest(
                "empty.yaml",
                Objects.service("empty", clusterIP: "10.96.0.90", type: "NodePort", nodePort: 30090) + Objects.slice("empty", []))
        ])
        // One connection from each side. Here everything is local, so the first REJECT's ICMP error
        // arrives while connect() still holds the socket lock and the kernel drops it
        // (TcpExtLockDroppedIcmps); the SYN retransmitted after 1 s is refused. A missing or DROP
        // rule would run into the client's 3 s timeout instead.
        for (origin, target) in [(scene.podNamespaces["client"]!, "10.96.0.90:80"), (scene.external, "\(Scene.nodeIP):30090")] {
            let start = Date()
            let answers = try scene.get(from: origin, target, count: 1)
            #expect(answers == ["refused"], "\(target)")
            #expect(Date().timeIntervalSince(start) < 1.9, "a REJECT answers within one SYN retry; a timeout takes 3 s")
        }
    }

    @Test(arguments: dispatchModes)
    func aPodReachesItselfThroughItsServiceHairpinMasqueraded(dispatch: String, backend: String) throws {
        let scene = try Scene(dispatch: dispatch, backend: backend)
        defer { scene.close() }
        let a = try scene.addPod("pod-a")
        try scene.sync([try scene.manifest("hairpin.yaml", Objects.service("self", clusterIP: "10.96.0.100") + Objects.slice("self", [a]))])
        let answers = try scene.get(from: scene.podNamespaces["pod-a"]!, "10.96.0.100:80", count: 5)
        // The reply comes from pod-a itself, seen from the node's address (masqueraded), not its own.
        #expect(answers.count == 5 && answers.allSatisfy { $0 == "Hello from pod-a; you are 10.0.1.1" }, "\(answers)")
    }
}

/// Topology hints on live tables: a node in zone-a sends a service's traffic to its zone-a
/// endpoints only, and to every endpoint once it has no zone.
@Suite(.serialized, liveKernel)
struct TopologyTrafficTests {
    static func manifest(zone: String?, _ pods: [(ip: String, zone: String)]) -> String {
        let node = """
            apiVersion: v1
            kind: Node
            metadata:
              name: node-1
            \(zone.map { "  labels: {topology.kubernetes.io/zone: \($0)}" } ?? "")
            ---

            """
        let endpoints = pods.map { "  - {addresses: [\"\($0.ip)\"], nodeName: node-2, hints: {forZones: [{name: \($0.zone)}]}}" }
        return node + Objects.service("web", clusterIP: "10.96.0.5") + """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-abc
              namespace: default
              labels: {kubernetes.io/service-name: web}
            addressType: IPv4
            ports: [{name: p, port: 8080, protocol: TCP}]
            endpoints:
            \(endpoints.joined(separator: "\n"))

            """
    }

    @Test func aNodeInZoneAReachesOnlyZoneAEndpoints() throws {
        let scene = try Scene()
        defer { scene.close() }
        let a1 = try scene.addPod("a1")
        let a2 = try scene.addPod("a2")
        let b1 = try scene.addPod("b1")
        let pods = [(a1, "zone-a"), (a2, "zone-a"), (b1, "zone-b")]
        try scene.sync([try scene.manifest("zoned.yaml", Self.manifest(zone: "zone-a", pods))])
        let zoned = tally(try scene.get(from: scene.external, "10.96.0.5:80", count: 120).map(podName))
        #expect(Set(zoned.keys) == ["a1", "a2"], "\(zoned)")
        #expect(chiSquare([zoned["a1", default: 0], zoned["a2", default: 0]]) < chiSquareCritical[1]!, "\(zoned)")
        // The node loses its zone label: hints are ignored, every endpoint serves.
        try scene.sync([try scene.manifest("unzoned.yaml", Self.manifest(zone: nil, pods))])
        let unzoned = tally(try scene.get(from: scene.external, "10.96.0.5:80", count: 150).map(podName))
        #expect(Set(unzoned.keys) == ["a1", "a2", "b1"], "\(unzoned)")
    }
}

/// `--detect-local-mode`: each mode decides which traffic to a cluster IP is masqueraded. A pod on
/// the node (through veth1, 10.0.1.2) keeps its address; a client outside (through eth0) is seen
/// from the node's address.
@Suite(.serialized, liveKernel)
struct LocalDetectionTrafficTests {
    @Test(arguments: [
        ("ClusterCIDR", ["--cluster-cidr", "10.0.0.0/16"]),
        // The cluster CIDR given does not hold the pods: only the Node's podCIDRs can tell them.
        ("NodeCIDR", ["--cluster-cidr", "10.77.0.0/16", "--detect-local-mode", "NodeCIDR"]),
        ("BridgeInterface", ["--detect-local-mode", "BridgeInterface", "--pod-bridge-interface", "veth1"]),
        ("InterfaceNamePrefix", ["--detect-local-mode", "InterfaceNamePrefix", "--pod-interface-name-prefix", "veth"]),
    ])
    func eachModeMasqueradesOnlyTrafficFromOutsideThePods(mode: String, flags: [String]) throws {
        let scene = try Scene()
        defer { scene.close() }
        let client = try scene.addPod("client")
        let server = try scene.addPod("pod-a")
        let node = """
            apiVersion: v1
            kind: Node
            metadata: {name: node-1}
            spec: {podCIDRs: [10.0.0.0/16]}
            ---

            """
        let manifest = try scene.manifest(
            "web.yaml", node + Objects.service("web", clusterIP: "10.96.0.50") + Objects.slice("web", [server]))
        try scene.sync([manifest], node: ["--hostname-override", "node-1", "--node-ip", Scene.nodeIP] + flags)
        let fromPod = try scene.get(from: scene.podNamespaces["client"]!, "10.96.0.50:80", count: 5)
        #expect(fromPod == Array(repeating: "Hello from pod-a; you are \(client)", count: 5), "\(mode): \(fromPod)")
        let fromOutside = try scene.get(from: scene.external, "10.96.0.50:80", count: 5)
        #expect(fromOutside == Array(repeating: "Hello from pod-a; you are 10.0.2.1", count: 5), "\(mode): \(fromOutside)")
    }
}
