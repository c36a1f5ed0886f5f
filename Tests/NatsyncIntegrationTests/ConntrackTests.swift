import Foundation
import NatsyncTestSupport
import Testing

/// UDP flows pinned to endpoints that left, cleaned through libnetfilter_conntrack after a sync.
@Suite(.serialized, liveKernel)
struct ConntrackTests {
    /// The pod names that answered, from `PORT Hello from NAME; you are IP` lines.
    static func answered(_ lines: [String]) -> [String: Int] {
        tally(lines.map { line in String(line.split(separator: " ", maxSplits: 1).last ?? "") })
    }

    /// Conntrack entries in the node namespace matching `filter` (conntrack(8) syntax).
    static func entries(_ scene: Scene, _ filter: [String]) throws -> Int {
        let output = try run(["ip", "netns", "exec", scene.node, "conntrack", "-L"] + filter, check: false)
        return output.standardOutput.split(separator: "\n").count
    }

    let dns = Objects.service("dns", clusterIP: "10.96.0.10", port: 53, proto: "UDP")

    /// Two endpoints, then one: the flows from the same source ports must follow, unless told not to.
    func removeAnEndpoint(cleanup: Bool, backend: String = "legacy") throws
        -> (before: [String: Int], after: [String: Int], removed: String, scene: Scene)
    {
        let scene = try Scene(backend: backend)
        do {
            try scene.addPod("client")
            let a = try scene.addPod("pod-a")
            let b = try scene.addPod("pod-b")
            let client = scene.podNamespaces["client"]!
            let other =
                Objects.service("other", clusterIP: "10.96.0.11", port: 53, proto: "UDP") + Objects.slice("other", [b], proto: "UDP")
            try scene.sync([try scene.manifest("two.yaml", dns + Objects.slice("dns", [a, b], proto: "UDP") + other)])
            let before = Self.answered(try scene.udp(from: client, "10.96.0.10:53", ports: 40000...40015, rounds: 1))
            // Control flows: TCP to the same service, UDP to another service, UDP straight to pod-b.
            _ = try scene.get(from: client, "10.96.0.10:53", count: 1)
            _ = try scene.udp(from: client, "10.96.0.11:53", ports: 41000...41001, rounds: 1)
            _ = try scene.udp(from: client, "\(b):8080", ports: 42000...42001, rounds: 1)
            try scene.sync(
                [try scene.manifest("one.yaml", dns + Objects.slice("dns", [a], proto: "UDP") + other)],
                extra: cleanup ? [] : ["--no-conntrack"])
            let after = Self.answered(try scene.udp(from: client, "10.96.0.10:53", ports: 40000...40015, rounds: 2))
            return (before, after, b, scene)
        } catch {
            scene.close()
            throw error
        }
    }

    @Test(arguments: ["legacy", "nft"])
    func removedEndpointsLoseTheirFlowsAndEverythingElseKeepsItsOwn(backend: String) throws {
        let (before, after, removed, scene) = try removeAnEndpoint(cleanup: true, backend: backend)
        defer { scene.close() }
        #expect(before["pod-a", default: 0] > 0 && before["pod-b", default: 0] > 0, "\(before)")
        #expect(after == ["pod-a": 32], "every datagram from the same source ports reaches the survivor: \(after)")
        #expect(try Self.entries(scene, ["-p", "tcp", "--orig-dst", "10.96.0.10"]) == 1)
        #expect(try Self.entries(scene, ["-p", "udp", "--orig-dst", "10.96.0.11"]) == 2)
        #expect(try Self.entries(scene, ["-p", "udp", "--orig-dst", removed]) == 2)
    }

    @Test func withoutCleanupTheSameSourcePortsStayPinnedToTheRemovedPod() throws {
        let (before, after, _, scene) = try removeAnEndpoint(cleanup: false)
        defer { scene.close() }
        #expect(before["pod-b", default: 0] > 0)
        #expect(after["pod-b", default: 0] == 2 * before["pod-b", default: 0], "\(after)")
    }

    /// Flows an earlier run left pinned (`--no-conntrack`) are found by the next `sync`, which
    /// changes no rule: every full sync reconciles every UDP service, as kube-proxy 1.31+ does.
    @Test func aSyncWithNothingToChangeStillCleansFlowsAnEarlierRunLeftPinned() throws {
        let (_, pinned, removed, scene) = try removeAnEndpoint(cleanup: false)
        defer { scene.close() }
        #expect(pinned["pod-b", default: 0] > 0, "\(pinned)")
        let one = scene.folder.appendingPathComponent("one.yaml").path
        let again = try scene.sync([one])
        #expect(again.standardOutput.hasPrefix("natsync: no changes; nothing committed"), "\(again.standardOutput)")
        #expect(again.standardOutput.contains("stale UDP flows deleted"), "\(again.standardOutput)")
        #expect(try Self.entries(scene, ["-p", "udp", "--orig-dst", "10.96.0.10", "--reply-src", removed]) == 0)
        let client = scene.podNamespaces["client"]!
        let after = Self.answered(try scene.udp(from: client, "10.96.0.10:53", ports: 40000...40015, rounds: 1))
        #expect(after == ["pod-a": 16], "\(after)")
        #expect(try Self.entries(scene, ["-p", "udp", "--orig-dst", "10.96.0.11"]) == 2, "another service's flows stay")
    }

    /// The daemon's first sync is full: it reconciles flows pinned before it started.
    @Test func theDaemonsFirstSyncCleansFlowsPinnedBeforeItStarted() throws {
        let (_, pinned, removed, scene) = try removeAnEndpoint(cleanup: false)
        defer { scene.close() }
        #expect(pinned["pod-b", default: 0] > 0, "\(pinned)")
        let daemon = try DaemonProcess(scene: scene, manifests: scene.folder.appendingPathComponent("one.yaml").path)
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { daemon.logText.contains("conntrack.deleted=") }
        #expect(try Self.entries(scene, ["-p", "udp", "--orig-dst", "10.96.0.10", "--reply-src", removed]) == 0)
    }

    @Test func flowsCreatedBeforeTheServiceHadEndpointsAreCleanedWhenEndpointsAppear() throws {
        let scene = try Scene()
        defer { scene.close() }
        try scene.addPod("client")
        let a = try scene.addPod("pod-a")
        let client = scene.podNamespaces["client"]!
        // The node already proxies another service (so conntrack runs there), but not this one yet:
        // its datagrams leave un-DNATed towards the node's default route.
        let unrelated = Objects.service("web", clusterIP: "10.96.0.20") + Objects.slice("web", [a])
        try scene.sync([try scene.manifest("web.yaml", unrelated)])
        let early = try scene.udp(from: client, "10.96.0.10:53", ports: 40000...40007, rounds: 1)
        #expect(early.allSatisfy { $0.hasSuffix("timeout") })
        #expect(try Self.entries(scene, ["-p", "udp", "--orig-dst", "10.96.0.10"]) == 8)
        let synced = try scene.sync([try scene.manifest("dns.yaml", unrelated + dns + Objects.slice("dns", [a], proto: "UDP"))])
        #expect(synced.standardOutput.contains("conntrack: 8 stale UDP flows deleted"), "\(synced.standardOutput)")
        let later = Self.answered(try scene.udp(from: client, "10.96.0.10:53", ports: 40000...40007, rounds: 1))
        #expect(later == ["pod-a": 8])
    }

    @Test func nodePortFlowsFollowTheSurvivor() throws {
        let scene = try Scene()
        defer { scene.close() }
        let a = try scene.addPod("pod-a")
        let b = try scene.addPod("pod-b")
        let service = Objects.service("dnsnp", clusterIP: "10.96.0.12", port: 53, proto: "UDP", type: "NodePort", nodePort: 30053)
        try scene.sync([try scene.manifest("two.yaml", service + Objects.slice("dnsnp", [a, b], proto: "UDP"))])
        let before = Self.answered(try scene.udp(from: scene.external, "\(Scene.nodeIP):30053", ports: 40000...40015, rounds: 1))
        #expect(before["pod-b", default: 0] > 0, "\(before)")
        try scene.sync([try scene.manifest("one.yaml", service + Objects.slice("dnsnp", [a], proto: "UDP"))])
        let after = Self.answered(try scene.udp(from: scene.external, "\(Scene.nodeIP):30053", ports: 40000...40015, rounds: 1))
        #expect(after == ["pod-a": 16], "\(after)")
    }
}

/// Past ``Conntrack.filteredDumpLimit`` frontends, cleanup reads the table in one full dump.
@Suite(.serialized, liveKernel)
struct ConntrackFullDumpTests {
    @Test func manyTouchedServicesAreCleanedWithOneDump() throws {
        let scene = try Scene()
        defer { scene.close() }
        try scene.addPod("client")
        let a = try scene.addPod("pod-a")
        let b = try scene.addPod("pod-b")
        func manifest(_ endpoints: [String]) -> String {
            (0..<70).map { index in
                Objects.service("udp\(index)", clusterIP: "10.96.1.\(index + 1)", port: 53, proto: "UDP")
                    + Objects.slice("udp\(index)", endpoints, proto: "UDP")
            }.joined()
        }
        try scene.sync([try scene.manifest("two.yaml", manifest([a, b]))])
        let client = scene.podNamespaces["client"]!
        let before = ConntrackTests.answered(try scene.udp(from: client, "10.96.1.1:53", ports: 40000...40015, rounds: 1))
        #expect(before["pod-b", default: 0] > 0, "\(before)")
        let synced = try scene.sync([try scene.manifest("one.yaml", manifest([a]))])
        #expect(synced.standardOutput.contains("stale UDP flows deleted"), "\(synced.standardOutput)")
        let after = ConntrackTests.answered(try scene.udp(from: client, "10.96.1.1:53", ports: 40000...40015, rounds: 1))
        #expect(after == ["pod-a": 16], "\(after)")
    }
}
