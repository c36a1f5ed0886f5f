import Foundation
import NatsyncAPIEmulator
import NatsyncTestSupport
import Testing

/// A production day of the API path, in minutes (`make stress`): over TLS with token auth, the
/// watch connection goes silent, the server is gone for a minute, then its history expires (410).
/// The rules are never emptied and end equal to a fresh sync of the server's objects.
@Suite(.serialized, stressEnabled)
struct APIOutageTests {
    @Test func silenceAMinuteOutageAnd410EndWhereAFreshSyncWould() throws {
        let scene = try Scene()
        defer { scene.close() }
        let (api, _) = try APIEmulator.https(in: scene)
        defer { api.stop() }
        api.acceptedTokens = ["outage-token"]
        api.sendBookmarks(every: .milliseconds(500))
        for index in 1...20 {
            api.put(APIObjects.service("s\(index)", clusterIP: "10.96.1.\(index)"))
            api.put(APIObjects.slice("s\(index)", ["10.0.8.\(index)"]))
        }
        let kubeconfig = try api.kubeconfig(in: scene, user: "{token: outage-token}")
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", kubeconfig, "--watch-idle-timeout", "3s"])
        defer { _ = daemon.stop() }
        let expected = scene.folder.appendingPathComponent("expected.json")
        // The daemon's log tail goes with a failure: minutes of run are not repeated lightly.
        var passed = false
        var step = "start"
        defer {
            if !passed {
                Issue.record(
                    Comment(
                        rawValue: "step \(step) at \(Date()), requests \(api.requests.suffix(6)):\n" + String(daemon.logText.suffix(8000))))
            }
        }
        func converged() throws -> Bool {
            try api.listManifest().write(to: expected)
            return try DaemonTests.matches(scene, expected.path)
        }
        try waitUntil(seconds: 10) { try converged() }

        // Every 200 ms from here on, the node must still hold a service chain for each service.
        let node = scene.node
        let emptied = Watchdog {
            let nat = try? run(["ip", "netns", "exec", node, "iptables-legacy-save", "-t", "nat"]).standardOutput
            return (nat?.components(separatedBy: "\n:KUBE-SVC-").count ?? 0) - 1 < 20
        }
        defer { emptied.stop() }

        step = "silence"
        api.silenceWatches()
        api.put(APIObjects.slice("s1", ["10.0.8.101"]))
        try waitUntil(seconds: 10) { try converged() }

        step = "outage"
        api.stop()
        api.put(APIObjects.slice("s2", ["10.0.8.102"]))
        usleep(60_000_000)
        try api.start()
        step = "back at \(Date())"
        // Backoff reaches 30 s, stretched by up to 2x: back within about a minute.
        try waitUntil(seconds: 75) { try converged() }

        step = "410 at \(Date()) after \(step)"
        api.expireHistory()
        api.put(APIObjects.slice("s3", ["10.0.8.103"]))
        // The backoff the outage grew holds for two quiet minutes (client-go's backoff manager), so
        // a watch that fails again here (the server closes each 410 answer) may wait up to 60 s.
        try waitUntil(seconds: 75) { try converged() }
        #expect(emptied.stop() == 0, "the service chains were never emptied")
        passed = true
    }
}

/// Samples `failing` every 200 ms on a thread of its own until stopped; counts the times it held.
final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var running = true

    init(_ failing: @escaping @Sendable () -> Bool) {
        Thread { [self] in
            while lock.withLock({ running }) {
                if failing() { lock.withLock { count += 1 } }
                usleep(200_000)
            }
        }.start()
    }

    /// Stops sampling; the number of samples where `failing` held.
    @discardableResult
    func stop() -> Int {
        lock.withLock {
            running = false
            return count
        }
    }
}
