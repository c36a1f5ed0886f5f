import Foundation
import NatsyncTestSupport
import Testing

/// IPv6 services through libip6tc (and through ip6tables-nft-restore), with real IPv6 traffic
/// between namespaces: spread, endpoint removal, NodePort, reject.
@Suite(.serialized, liveKernel)
struct IPv6TrafficTests {
    @Test(arguments: ["legacy", "nft"])
    func spreadRemovalNodePortAndRejectOverIPv6(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        try scene.addPod("client")
        try scene.addPod("pod-a")
        try scene.addPod("pod-b")
        let (client, a, b) = (scene.podNamespaces["client"]!, scene.podIPv6["pod-a"]!, scene.podIPv6["pod-b"]!)
        let service = Objects.service("web6", clusterIP: "fd00:96::50", type: "NodePort", nodePort: 30080)
        let empty = Objects.service("empty6", clusterIP: "fd00:96::60") + Objects.slice("empty6", [])
        let synced = try scene.sync(
            [try scene.manifest("two.yaml", service + Objects.slice("web6", [a, b]) + empty)], node: Scene.nodeFlagsIPv6)
        #expect(synced.standardOutput.hasPrefix("natsync: committed filter, nat"), "\(synced.standardOutput)")
        let saved = try run(["ip", "netns", "exec", scene.node, "ip6tables-\(backend)-save", "-t", "nat"]).standardOutput
        #expect(saved.contains("-d fd00:96::50/128"))

        let answers = try scene.get(from: client, "[fd00:96::50]:80", count: 300)
        let counts = tally(answers)
        #expect(Set(counts.keys) == ["pod-a", "pod-b"], "\(counts)")
        #expect(chiSquare([counts["pod-a", default: 0], counts["pod-b", default: 0]]) < chiSquareCritical[1]!, "\(counts)")
        #expect(answers.allSatisfy { $0.hasSuffix("you are \(scene.podIPv6["client"]!)") }, "pods keep the client's address")

        let viaNodePort = tally(try scene.get(from: scene.external, "[\(Scene.nodeIPv6)]:30080", count: 60))
        #expect(viaNodePort["pod-a", default: 0] + viaNodePort["pod-b", default: 0] == 60, "\(viaNodePort)")

        #expect(try scene.get(from: client, "[fd00:96::60]:80", count: 3) == ["refused", "refused", "refused"])

        try scene.sync([try scene.manifest("one.yaml", service + Objects.slice("web6", [a]) + empty)], node: Scene.nodeFlagsIPv6)
        #expect(tally(try scene.get(from: client, "[fd00:96::50]:80", count: 50)) == ["pod-a": 50])
        // The IPv4 tables were never touched.
        #expect(try !scene.save().contains("KUBE-SERVICES -"))
    }

    @Test func staleIPv6UDPFlowsFollowTheSurvivor() throws {
        let scene = try Scene()
        defer { scene.close() }
        try scene.addPod("client")
        try scene.addPod("pod-a")
        try scene.addPod("pod-b")
        let (client, a, b) = (scene.podNamespaces["client"]!, scene.podIPv6["pod-a"]!, scene.podIPv6["pod-b"]!)
        let dns = Objects.service("dns6", clusterIP: "fd00:96::10", port: 53, proto: "UDP")
        try scene.sync([try scene.manifest("two.yaml", dns + Objects.slice("dns6", [a, b], proto: "UDP"))], node: Scene.nodeFlagsIPv6)
        let before = ConntrackTests.answered(try scene.udp(from: client, "[fd00:96::10]:53", ports: 40000...40015, rounds: 1))
        #expect(before["pod-a", default: 0] > 0 && before["pod-b", default: 0] > 0, "\(before)")
        let synced = try scene.sync(
            [try scene.manifest("one.yaml", dns + Objects.slice("dns6", [a], proto: "UDP"))], node: Scene.nodeFlagsIPv6)
        let deleted = synced.standardOutput.components(separatedBy: "conntrack: ").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        #expect(deleted > 0, "\(synced.standardOutput)")
        let after = ConntrackTests.answered(try scene.udp(from: client, "[fd00:96::10]:53", ports: 40000...40015, rounds: 2))
        #expect(after == ["pod-a": 32], "every datagram from the same source ports reaches the survivor: \(after)")
    }
}
