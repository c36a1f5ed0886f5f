import Foundation
import NatsyncTestSupport
import Testing

/// One natsync for both families: a dual-stack service reached over IPv4 and IPv6.
@Suite(.serialized, liveKernel)
struct DualStackTests {
    static let flags = [
        "--hostname-override", "node-1", "--ip-family", "dual", "--node-ip", "\(Scene.nodeIP),\(Scene.nodeIPv6)",
        "--cluster-cidr", "10.0.0.0/16,fd00:10::/48",
    ]

    /// The service with a slice per family; `pods` are (IPv4, IPv6) pairs.
    func manifest(_ scene: Scene, _ name: String, pods: [(String, String)]) throws -> String {
        let service = Objects.service(
            "web", clusterIP: "10.96.0.50", type: "NodePort", nodePort: 30080,
            extra: "  clusterIPs: [10.96.0.50, \"fd00:96::50\"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack")
        return try scene.manifest(
            name, service + Objects.slice("web", pods.map(\.0), suffix: "v4") + Objects.slice("web", pods.map(\.1), suffix: "v6"))
    }

    @Test(arguments: ["legacy", "nft"])
    func bothFamiliesSpreadAndFollowARemovedEndpoint(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        try scene.addPod("client")
        let a = (try scene.addPod("pod-a"), scene.podIPv6["pod-a"]!)
        let b = (try scene.addPod("pod-b"), scene.podIPv6["pod-b"]!)
        let client = scene.podNamespaces["client"]!
        let two = try manifest(scene, "two.yaml", pods: [a, b])
        let synced = try scene.natsync(["sync", "-f", two] + scene.backendFlags + Self.flags)
        #expect(synced.standardOutput.contains("IPv4: natsync: committed filter, nat"), "\(synced.standardOutput)")
        #expect(synced.standardOutput.contains("IPv6: natsync: committed filter, nat"), "\(synced.standardOutput)")
        for target in ["10.96.0.50:80", "[fd00:96::50]:80", "[\(Scene.nodeIPv6)]:30080", "\(Scene.nodeIP):30080"] {
            let origin = target.contains(":30080") ? scene.external : client
            let counts = tally(try scene.get(from: origin, target, count: 200))
            #expect(Set(counts.keys) == ["pod-a", "pod-b"], "\(target): \(counts)")
            #expect(chiSquare([counts["pod-a", default: 0], counts["pod-b", default: 0]]) < chiSquareCritical[1]!, "\(target): \(counts)")
        }
        let again = try scene.natsync(["sync", "-f", two] + scene.backendFlags + Self.flags).standardOutput.split(separator: "\n")
        #expect(again.count == 2 && again.allSatisfy { $0.contains(": natsync: no changes") }, "\(again)")

        try scene.natsync(["sync", "-f", try manifest(scene, "one.yaml", pods: [a])] + scene.backendFlags + Self.flags)
        for target in ["10.96.0.50:80", "[fd00:96::50]:80"] {
            #expect(tally(try scene.get(from: client, target, count: 40)) == ["pod-a": 40], "\(target)")
        }
    }

    /// On nft both families' commits move one generation: neither takes the other's for a change
    /// made behind natsync's back.
    @Test(arguments: ["legacy", "nft"])
    func theDaemonProgramsBothFamiliesAndFollowsChanges(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        try scene.addPod("client")
        let a = (try scene.addPod("pod-a"), scene.podIPv6["pod-a"]!)
        let b = (try scene.addPod("pod-b"), scene.podIPv6["pod-b"]!)
        let client = scene.podNamespaces["client"]!
        let folder = scene.folder.appendingPathComponent("manifests")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("web.yaml")
        try FileManager.default.copyItem(atPath: try manifest(scene, "two.yaml", pods: [a, b]), toPath: file.path)
        let daemon = try DaemonProcess(
            scene: scene, manifests: folder.path, extra: ["--manifest-poll-interval", "200ms", "--iptables-sync-period", "1s"],
            node: Self.flags)
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 10) {
            let six = try scene.get(from: client, "[fd00:96::50]:80", count: 1)
            let four = try scene.get(from: client, "10.96.0.50:80", count: 1)
            return six.first?.hasPrefix("Hello") == true && four.first?.hasPrefix("Hello") == true
        }
        #expect(daemon.logText.contains("IPv4: iptables backend \(backend)"), "\(daemon.logText)")
        #expect(daemon.logText.contains("IPv6: iptables backend \(backend)"), "\(daemon.logText)")

        try FileManager.default.removeItem(at: file)
        try FileManager.default.copyItem(atPath: try manifest(scene, "one.yaml", pods: [a]), toPath: file.path)
        try waitUntil(seconds: 10) {
            let six = tally(try scene.get(from: client, "[fd00:96::50]:80", count: 10))
            let four = tally(try scene.get(from: client, "10.96.0.50:80", count: 10))
            return six == ["pod-a": 10] && four == ["pod-a": 10]
        }
        // Two drift checks past the change.
        usleep(2_500_000)
        let health = try httpGet(port: daemon.healthPort, path: "/healthz")
        #expect(health.status == 200, "\(health.body)")
        let metrics = try httpGet(port: daemon.metricsPort, path: "/metrics").body
        #expect(metricValue(metrics, "natsync_drift_repairs_total") == 0, "\(daemon.logText)")
    }

    /// Health-check node ports answer on both families: on every address without
    /// `--nodeport-addresses` (one socket for both, as kube-proxy's Go listener), on the node-port
    /// addresses of each family with it (and then not on loopback). `/healthz` and `/metrics`
    /// report each family.
    @Test(arguments: [nil, "192.168.0.0/24,fd00:192:168::/64"])
    func healthCheckNodePortsAnswerOnBothFamilies(nodePortAddresses: String?) throws {
        let scene = try Scene()
        defer { scene.close() }
        let a = (try scene.addPod("pod-a"), scene.podIPv6["pod-a"]!)
        let service = Objects.service(
            "lb", clusterIP: "10.96.0.60", type: "LoadBalancer", nodePort: 30600,
            extra: "  clusterIPs: [10.96.0.60, \"fd00:96::60\"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n"
                + "  externalTrafficPolicy: Local\n  healthCheckNodePort: 32002")
        let folder = scene.folder.appendingPathComponent("hc")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try (service + Objects.slice("lb", ["\(a.0)@node-1"], suffix: "v4") + Objects.slice("lb", ["\(a.1)@node-1"], suffix: "v6"))
            .write(to: folder.appendingPathComponent("lb.yaml"), atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(
            scene: scene, manifests: folder.path, extra: nodePortAddresses.map { ["--nodeport-addresses", $0] } ?? [], node: Self.flags)
        defer { _ = daemon.stop() }
        let local = #"{"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 1, "serviceProxyHealthy": true}"#
        for target in ["\(Scene.nodeIP):32002", "[\(Scene.nodeIPv6)]:32002"] {
            try waitUntil(seconds: 10) { try scene.get(from: scene.external, target, count: 1) == [local] }
        }
        let loopback = try scene.get(from: scene.node, "127.0.0.1:32002", count: 1)
        #expect(loopback == (nodePortAddresses == nil ? [local] : ["refused"]), "\(loopback)")

        let healthz = try httpGet(port: daemon.healthPort, path: "/healthz")
        #expect(healthz.status == 200, "\(healthz.body)")
        #expect(
            healthz.body.contains(#""status":{"IPv4":{"lastUpdated":"#) && healthz.body.contains(#"},"IPv6":{"lastUpdated":"#),
            "\(healthz.body)")
        let metrics = try httpGet(port: daemon.metricsPort, path: "/metrics").body
        for family in ["IPv4", "IPv6"] {
            let series = "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"\(family)\"}"
            #expect(metricValue(metrics, series).map { $0 >= 1 } == true, "\(series)")
        }
    }
}
