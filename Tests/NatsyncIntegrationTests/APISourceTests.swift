import Foundation
import NatsyncAPIEmulator
import NatsyncTestSupport
import Testing

/// `natsync run --kubeconfig` against an API server emulator: watches, 410 Gone, dropped
/// watches, and a server that goes away for a while.
@Suite(.serialized, liveKernel)
struct APISourceTests {
    /// `run --kubeconfig` following `api`, once it has programmed the Service `web` it serves.
    static func followWeb(_ scene: Scene, _ api: APIEmulator, within seconds: Double = 5) throws -> DaemonProcess {
        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        api.put(APIObjects.slice("web", ["10.0.9.1"]))
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", try kubeconfig(scene, api, token: "t")])
        try waitUntil(seconds: seconds) { try scene.save().contains("10.96.0.5") }
        return daemon
    }

    /// A kubeconfig in the scene's folder for the emulator, with a bearer token.
    static func kubeconfig(_ scene: Scene, _ api: APIEmulator, token: String) throws -> String {
        try api.kubeconfig(in: scene, user: "{token: \"\(token)\"}")
    }

    /// Services another proxy serves are never asked for: lists and watches carry kube-proxy's
    /// selector, and a Service that gains the label leaves the node's rules (the server's watch
    /// says DELETED), one that loses it comes back.
    @Test func servicesOfAnotherProxyAreLeftToIt() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        let kubeconfig = try Self.kubeconfig(scene, api, token: "t")
        func labelled(_ object: [String: Any]) -> [String: Any] {
            var copy = object
            var metadata = copy["metadata"] as! [String: Any]
            var labels = (metadata["labels"] as? [String: String]) ?? [:]
            labels["service.kubernetes.io/service-proxy-name"] = "mesh"
            metadata["labels"] = labels
            copy["metadata"] = metadata
            return copy
        }
        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        api.put(APIObjects.slice("web", ["10.0.9.1"]))
        api.put(labelled(APIObjects.service("mesh", clusterIP: "10.96.0.6")))
        api.put(labelled(APIObjects.slice("mesh", ["10.0.9.2"])))
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", kubeconfig])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try scene.save().contains("10.96.0.5") }
        #expect(!(try scene.save()).contains("10.96.0.6"), "another proxy's service")
        let selector = "labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%2Fheadless"
        let asked = api.requests.filter { $0.hasPrefix("/api/v1/services") || $0.hasPrefix("/apis/discovery.k8s.io/v1/endpointslices") }
        #expect(!asked.isEmpty && asked.allSatisfy { $0.contains(selector) }, "\(asked)")

        api.put(labelled(APIObjects.service("web", clusterIP: "10.96.0.5")))
        try waitUntil(seconds: 3) { !(try scene.save()).contains("10.96.0.5") }
        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        try waitUntil(seconds: 3) { try scene.save().contains("10.96.0.5") }
    }

    /// The client asks as client-go's reflector does: the first list from the watch cache
    /// (`resourceVersion=0`), watches that end after 5 to 10 minutes, a User-Agent that names it.
    @Test func theClientAsksAsClientGoDoes() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        let daemon = try Self.followWeb(scene, api)
        defer { _ = daemon.stop() }
        let lists = api.requests.filter { !$0.contains("watch=1") && !$0.hasPrefix("/api/v1/nodes") }
        #expect(lists.count == 2 && lists.allSatisfy { $0.contains("&resourceVersion=0") }, "\(lists)")
        let watches = api.requests.filter { $0.contains("watch=1") && !$0.hasPrefix("/api/v1/nodes") }
        let timeouts = watches.compactMap {
            $0.split(separator: "&").first { $0.hasPrefix("timeoutSeconds=") }.flatMap { Int($0.dropFirst(15)) }
        }
        #expect(timeouts.count == watches.count && timeouts.allSatisfy { (300...600).contains($0) }, "\(watches)")
        #expect(
            api.userAgents.allSatisfy { $0.range(of: #"^natsync/[0-9.]+ \(linux/[a-z0-9]+\)$"#, options: .regularExpression) != nil },
            "\(Set(api.userAgents))")
        #expect(api.compressed >= 2, "lists come gzip-compressed, as the client asks")
        let nodes = api.requests.filter { $0.hasPrefix("/api/v1/nodes") }
        #expect(!nodes.isEmpty && nodes.allSatisfy { $0.contains("fieldSelector=metadata.name%3Dnode-1") }, "only this node: \(nodes)")
    }

    /// A watch whose connection goes silent without closing is taken for dead after the idle
    /// timeout and resumed from its last version; a quiet one that gets its bookmarks is left be.
    @Test func aSilentWatchIsResumedAndAQuietOneIsLeftBe() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        api.sendBookmarks(every: .milliseconds(300))
        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        api.put(APIObjects.slice("web", ["10.0.9.1"]))
        let daemon = try DaemonProcess(
            scene: scene, manifests: "",
            extra: ["--kubeconfig", try Self.kubeconfig(scene, api, token: "t"), "--watch-idle-timeout", "1500ms"])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try scene.save().contains("10.96.0.5") }
        let watches = api.watchRequests
        usleep(4_000_000)
        #expect(api.watchRequests == watches, "bookmarks keep a quiet watch alive")

        api.silenceWatches()
        api.put(APIObjects.slice("web", ["10.0.9.2"]))
        let silenced = ContinuousClock.now
        try waitUntil(seconds: 6) { try scene.save().contains("10.0.9.2") }
        #expect(ContinuousClock.now - silenced >= .milliseconds(1000), "the change came through a new watch, not the silent one")
        #expect(api.watchRequests > watches)
        #expect(daemon.logText.contains("watch interrupted"), "\(daemon.logText)")
        #expect(!(try scene.save()).contains("10.0.9.1"))
    }

    /// The server as a real one behaves under load: pages smaller than asked, continue tokens that
    /// expire (the list starts over), `500`s, watches it ends after their `timeoutSeconds`, events
    /// split across chunks and one over 1 MB. Every change arrives and nothing is lost.
    @Test func pagesExpiringTokensTimeoutsAndSplitEventsLoseNothing() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        api.maxPageSize = 1
        api.splitEvents = true
        // 300-600 s watches end after 1.5-3 s.
        api.watchTimeoutScale = 0.005
        let expected = scene.folder.appendingPathComponent("expected.json")
        func converged() throws -> Bool {
            try api.listManifest().write(to: expected)
            return try DaemonTests.matches(scene, expected.path)
        }
        for index in 1...3 {
            api.put(APIObjects.service("s\(index)", clusterIP: "10.96.0.\(10 + index)"))
            api.put(APIObjects.slice("s\(index)", ["10.0.9.\(index)"]))
        }
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", try Self.kubeconfig(scene, api, token: "t")])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 10, showing: daemon) { try converged() }
        #expect(api.requests.contains { $0.hasPrefix("/api/v1/services?") && $0.contains("&continue=") }, "pages are followed")

        // An event over 1 MB, in two pieces.
        var big = APIObjects.service("big", clusterIP: "10.96.0.20")
        big["metadata"] = ["name": "big", "namespace": "default", "annotations": ["note": String(repeating: "x", count: 1_200_000)]]
        api.put(big)
        api.put(APIObjects.slice("big", ["10.0.9.20"]))
        try waitUntil(seconds: 5, showing: daemon) { try converged() }

        // 410 on the watch, then on the relist's second page: the list starts over.
        api.expireContinueTokens()
        api.expireHistory()
        api.put(APIObjects.slice("s2", ["10.0.9.22"]))
        try waitUntil(seconds: 10, showing: daemon) { try converged() }
        #expect(api.expiredContinues == 1)

        // 500s while relisting are backed off and retried.
        api.failLists(2, status: .internalServerError)
        api.expireHistory()
        api.put(APIObjects.slice("s3", ["10.0.9.33"]))
        try waitUntil(seconds: 15, showing: daemon) { try converged() }

        // Watches end on the server's clock many times over; changes made meanwhile all arrive.
        let watches = api.watchRequests
        for round in 1...6 {
            api.put(APIObjects.slice("s1", ["10.0.9.\(100 + round)"]))
            usleep(700_000)
        }
        try waitUntil(seconds: 5, showing: daemon) { try converged() }
        #expect(api.watchRequests >= watches + 2, "watches ended by the server are opened again")
        #expect(daemon.logText.contains("500"), "\(daemon.logText)")
    }

    /// A server in trouble is not hammered: watches that close at once with nothing in them are
    /// asked for again after a growing backoff, and a `429`'s `Retry-After` is waited out.
    @Test func aServerInTroubleIsNotHammered() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        api.failLists(1, status: .tooManyRequests, retryAfter: 2)
        api.closeWatchesAtOnce = true
        let daemon = try Self.followWeb(scene, api, within: 8)
        defer { _ = daemon.stop() }
        let services = api.requestTimes.filter { $0.uri.hasPrefix("/api/v1/services") && !$0.uri.contains("watch=1") }
        #expect(services.count >= 2 && services[1].at - services[0].at >= .seconds(2), "Retry-After: \(services)")
        usleep(4_000_000)
        let watches = api.requestTimes.filter { $0.uri.hasPrefix("/api/v1/services") && $0.uri.contains("watch=1") }
        // 0.8 s doubling, each stretched by up to 2x: a handful in these seconds, not hundreds.
        #expect(watches.count >= 2 && watches.count <= 6, "\(watches.count) watches of services:\n\(daemon.logText.suffix(6000))")
    }

    /// The client-side rate limit counts a paged list once, as the unpaged list it stands for:
    /// 40 pages at one request a second would hold the first sync back 40 s.
    @Test func aPagedListTakesOneTokenOfTheRateLimit() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        api.maxPageSize = 1
        for index in 1...20 {
            api.put(APIObjects.service("s\(index)", clusterIP: "10.96.0.\(10 + index)"))
            api.put(APIObjects.slice("s\(index)", ["10.0.9.\(index)"]))
        }
        let daemon = try DaemonProcess(
            scene: scene, manifests: "",
            extra: ["--kubeconfig", try Self.kubeconfig(scene, api, token: "t"), "--kube-api-qps", "1", "--kube-api-burst", "1"])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 15, showing: daemon) { try scene.save().contains("10.96.0.30") }
        let pages = api.requests.filter { !$0.contains("watch=1") && $0.contains("continue=") }.count
        #expect(pages >= 38, "every page was asked for: \(pages)")
    }

    /// A relist after `410 Gone` of a cluster that did not change is a compare: both kinds are
    /// listed again, the state is handed on, and no sync runs; the tables stay byte for byte.
    @Test func aRelistOfAnUnchangedClusterCommitsNothing() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        for index in 1...20 {
            api.put(APIObjects.service("s\(index)", clusterIP: "10.96.0.\(10 + index)"))
            api.put(APIObjects.slice("s\(index)", ["10.0.9.\(index)", "10.0.8.\(index)"]))
        }
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", try Self.kubeconfig(scene, api, token: "t")])
        defer { _ = daemon.stop() }
        func lines(endingWith message: String) -> Int { daemon.logText.split(separator: "\n").filter { $0.hasSuffix(message) }.count }
        try waitUntil(seconds: 10, showing: daemon) { try lines(endingWith: " synced") > 0 && scene.save().contains("10.96.0.30") }
        let before = try scene.save()
        let syncs = lines(endingWith: " synced")
        let lists = api.requests.filter { !$0.contains("watch=1") }.count

        api.expireHistory()
        try waitUntil(seconds: 10, showing: daemon) { lines(endingWith: " listed again") == 2 }
        // Past the runner's next look and its min-sync-period (200 ms).
        usleep(1_000_000)
        #expect(lines(endingWith: " cluster state unchanged") >= 1, "\(daemon.logText)")
        #expect(lines(endingWith: " synced") == syncs, "nothing to sync: \(daemon.logText)")
        #expect(try scene.save() == before)
        let relists = api.requests.filter { !$0.contains("watch=1") }.dropFirst(lists)
        #expect(relists.count >= 2 && relists.allSatisfy { !$0.contains("resourceVersion=0") }, "relists ask for the latest: \(relists)")

        // What changes after the relist still arrives, as a partial sync.
        api.put(APIObjects.slice("s3", ["10.0.9.33"]))
        try waitUntil(seconds: 5, showing: daemon) { try scene.save().contains("10.0.9.33") }
    }

    @Test func followsTheAPIThroughDroppedWatchesGoneAndDowntimeWithoutWipingRules() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        let token = "s3cr3t-token-\(UUID().uuidString)"
        let kubeconfig = try Self.kubeconfig(scene, api, token: token)
        let expected = scene.folder.appendingPathComponent("expected.json")
        func converged() throws -> Bool {
            try api.listManifest().write(to: expected)
            return try DaemonTests.matches(scene, expected.path)
        }
        // min-sync-period 200 ms + 1 s, and one watch backoff (0.8-1.6 s): a watch the server
        // drops as it opens is asked for again after a wait, as client-go's reflector does.
        let bound = 1.2 + 1.6 + 0.5

        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        api.put(APIObjects.slice("web", ["10.0.9.1", "10.0.9.2"]))
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", kubeconfig])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5, showing: daemon) { try converged() }

        // Endpoints come and go through the watch.
        api.put(APIObjects.slice("web", ["10.0.9.1", "10.0.9.2", "10.0.9.3"]))
        try waitUntil(seconds: bound, showing: daemon) { try converged() }
        api.put(APIObjects.service("dns", clusterIP: "10.96.0.10", port: 53, proto: "UDP"))
        api.put(APIObjects.slice("dns", ["10.0.9.4"], proto: "UDP"))
        try waitUntil(seconds: bound, showing: daemon) { try converged() }
        api.delete(APIObjects.slice("web", []))
        try waitUntil(seconds: bound, showing: daemon) { try converged() }

        // A dropped watch resumes at once from the last version.
        api.dropWatches()
        api.put(APIObjects.slice("web", ["10.0.9.5"]))
        try waitUntil(seconds: bound, showing: daemon) { try converged() }

        // 410 Gone: natsync lists again.
        api.expireHistory()
        api.put(APIObjects.slice("dns", ["10.0.9.6"], proto: "UDP"))
        try waitUntil(seconds: bound, showing: daemon) { try converged() }
        #expect(api.requests.filter { !$0.contains("watch=1") }.count >= 4, "\(api.requests)")

        // The server goes away: the rules stay as they are, then catch up when it is back.
        let before = try scene.save()
        api.stop()
        usleep(2_500_000)
        #expect(try scene.save() == before, "rules must never be wiped because the API is unreachable")
        api.put(APIObjects.slice("web", ["10.0.9.7", "10.0.9.8"]))
        try api.start()
        try waitUntil(seconds: 30 + bound, showing: daemon) { try converged() }

        // A node being deleted fails /healthz (nodeEligible false) but not /livez.
        #expect(try httpGet(port: daemon.healthPort, path: "/healthz").status == 200)
        api.put(["apiVersion": "v1", "kind": "Node", "metadata": ["name": "node-1", "deletionTimestamp": "2026-11-27T08:00:00Z"]])
        try waitUntil(seconds: 5) { try httpGet(port: daemon.healthPort, path: "/healthz").status == 503 }
        #expect(try httpGet(port: daemon.healthPort, path: "/healthz").body.contains("\"nodeEligible\":false,"))
        #expect(try httpGet(port: daemon.healthPort, path: "/livez").status == 200)
        api.put(["apiVersion": "v1", "kind": "Node", "metadata": ["name": "node-1"]])
        try waitUntil(seconds: 5) { try httpGet(port: daemon.healthPort, path: "/healthz").status == 200 }

        #expect(!daemon.logText.contains(token), "the token must never reach the log")
        #expect(daemon.logText.contains("http://127.0.0.1:\(api.port) with a bearer token"))
    }

    @Test func anAPIServerDownAtStartIsWaitedForAndNothingIsAppliedMeanwhile() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        defer { api.stop() }
        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        api.put(APIObjects.slice("web", ["10.0.9.1"]))
        api.stop()
        let kubeconfig = try APISourceTests.kubeconfig(scene, api, token: "t")
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", kubeconfig])
        defer { _ = daemon.stop() }
        usleep(2_000_000)
        #expect(try scene.save().contains("KUBE-SERVICES") == false, "no state yet: nothing may be applied")
        try api.start()
        let expected = scene.folder.appendingPathComponent("expected.json")
        try waitUntil(seconds: 20) {
            try api.listManifest().write(to: expected)
            return try DaemonTests.matches(scene, expected.path)
        }
        #expect(daemon.logText.contains("initial lists done"))
    }
}
