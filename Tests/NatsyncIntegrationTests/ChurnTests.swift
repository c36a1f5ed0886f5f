import Foundation
import NatsyncAPIEmulator
import NatsyncTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The daemon under churn: 10,000 services served by the API emulator, 100 endpoint changes per
/// second for 60 s through the watch. Every change goes to a service no other change touches, so
/// a change that was lost (or overwritten by an older state) shows in the final comparison.
@Suite(.serialized, stressEnabled)
struct ChurnTests {
    static let services = 10_000
    static let rate = 100
    static let duration = 60

    static func clusterIP(_ index: Int) -> String { "10.96.\(index / 250).\(index % 250 + 1)" }

    /// The slice of service `index`; `generation` 0 is the initial one, each change a new one.
    static func slice(_ index: Int, generation: Int, trigger: Date? = nil) -> [String: Any] {
        let second = generation == 0 ? 2 : 3 + generation / 62_500
        let host = generation == 0 ? index : generation % 62_500
        var slice = APIObjects.slice(
            "s\(index)", ["10.1.\(index / 250).\(index % 250 + 1)", "10.\(second).\(host / 250).\(host % 250 + 1)"])
        if let trigger {
            var metadata = slice["metadata"] as! [String: Any]
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            metadata["annotations"] = ["endpoints.kubernetes.io/last-change-trigger-time": formatter.string(from: trigger)]
            slice["metadata"] = metadata
        }
        return slice
    }

    /// The daemon's resident set in MB, from /proc.
    static func residentMegabytes(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Double(line.split(separator: " ").dropFirst().first ?? "").map { $0 / 1024 }
    }

    /// Least-squares slope of y over x.
    static func slope(_ points: [(x: Double, y: Double)]) -> Double {
        let count = Double(points.count)
        let meanX = points.map(\.x).reduce(0, +) / count
        let meanY = points.map(\.y).reduce(0, +) / count
        let covariance = points.map { ($0.x - meanX) * ($0.y - meanY) }.reduce(0, +)
        let variance = points.map { ($0.x - meanX) * ($0.x - meanX) }.reduce(0, +)
        return covariance / variance
    }

    /// The smallest bucket bound holding `fraction` of a Prometheus histogram's samples.
    static func quantile(_ text: String, _ name: String, _ fraction: Double) -> Double? {
        let buckets = text.split(separator: "\n").filter { $0.hasPrefix("\(name)_bucket{") }.compactMap { line -> (Double, Double)? in
            guard let bound = line.range(of: "le=\"").map({ line[$0.upperBound...].prefix { $0 != "\"" } }),
                let count = Double(line.split(separator: " ").last ?? "")
            else { return nil }
            return (bound == "+Inf" ? .infinity : Double(bound) ?? .nan, count)
        }.sorted { $0.0 < $1.0 }
        guard let total = buckets.last?.1, total > 0 else { return nil }
        return buckets.first { $0.1 >= total * fraction }?.0
    }

    @Test func tenThousandServicesUnderAHundredEndpointChangesPerSecond() throws {
        let scene = try Scene()
        defer { scene.close() }
        let api = try APIEmulator()
        // Bookmarks as the real server sends them (one a minute; here more often): the Service
        // watch has no other traffic for the whole run, and a watch silent past the client's idle
        // deadline is taken for a dead connection.
        api.sendBookmarks(every: .seconds(10))
        defer { api.stop() }
        for index in 0..<Self.services {
            api.put(APIObjects.service("s\(index)", clusterIP: Self.clusterIP(index)))
            api.put(Self.slice(index, generation: 0))
        }
        let kubeconfig = try APISourceTests.kubeconfig(scene, api, token: "t")
        let expected = scene.folder.appendingPathComponent("expected.json")
        func converged() throws -> Bool {
            try api.listManifest().write(to: expected)
            return try DaemonTests.matches(scene, expected.path)
        }
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", kubeconfig])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 120) { try converged() }

        // Samples once a second: the daemon's memory and /healthz.
        let samples = Mutex<[(time: Double, megabytes: Double, health: Int)]>([])
        let sampling = Atomic<Bool>(true)
        let start = Date()
        let pid = daemon.process.processIdentifier
        let healthPort = daemon.healthPort
        let sampler = Thread {
            while sampling.load(ordering: .relaxed) {
                let health = (try? httpGet(port: healthPort, path: "/healthz").status) ?? 0
                let megabytes = Self.residentMegabytes(pid) ?? 0
                samples.withLock { $0.append((Date().timeIntervalSince(start), megabytes, health)) }
                usleep(1_000_000)
            }
        }
        sampler.start()

        let changes = Self.rate * Self.duration
        for change in 0..<changes {
            let due = start.addingTimeInterval(Double(change) / Double(Self.rate))
            let wait = due.timeIntervalSinceNow
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            // Spread over the services so consecutive changes land in different parts of the table.
            let index = change * 7_919 % Self.services
            api.put(Self.slice(index, generation: change + 1, trigger: Date()))
        }
        let churnSeconds = Date().timeIntervalSince(start)
        let lastChange = Date()
        try waitUntil(seconds: 60) { try converged() }
        let catchUp = Date().timeIntervalSince(lastChange)
        sampling.store(false, ordering: .relaxed)
        while sampler.isExecuting { usleep(10_000) }

        let taken = samples.withLock { $0 }
        let unhealthy = taken.filter { $0.health != 200 }
        #expect(unhealthy.isEmpty, "/healthz was not 200 at \(unhealthy.map { String(format: "%.0f s: %d", $0.time, $0.health) })")
        // Warm-up: the first 10 s of churn.
        let warm = taken.filter { $0.time >= 10 && $0.megabytes > 0 }
        let slope = Self.slope(warm.map { ($0.time, $0.megabytes) }) * 60
        let resident = warm.map(\.megabytes).max() ?? 0
        #expect(warm.count >= 40, "too few memory samples: \(warm.count)")
        // glibc's arenas grow in steps: three runs of the same code measured -3.5, +2.0 and +20.9 MB
        // over the minute, so the bound is what a leak would pass in a minute, not allocator noise.
        #expect(slope * Double(Self.duration) / 60 < max(32, resident * 0.15), "memory grows \(slope) MB/min")

        let metrics = try httpGet(port: daemon.metricsPort, path: "/metrics").body
        let recorded = metricValue(metrics, "kubeproxy_network_programming_duration_seconds_count") ?? 0
        let latencySum = metricValue(metrics, "kubeproxy_network_programming_duration_seconds_sum") ?? 0
        let latencyP99 = Self.quantile(metrics, "kubeproxy_network_programming_duration_seconds", 0.99) ?? .nan
        let syncs = metricValue(metrics, "kubeproxy_sync_proxy_rules_duration_seconds_count") ?? 0
        let failures = metricValue(metrics, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total") ?? 0
        // Every change carried its own trigger time, and each is recorded once, when it is committed.
        #expect(Int(recorded) == changes, "network programming latency recorded for \(Int(recorded)) of \(changes) changes")
        #expect(failures == 0)
        let problems = daemon.logText.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" warning ") }
        #expect(problems.isEmpty, "daemon log: \(problems.prefix(5))")
        print(
            String(
                format: "churn: %d services, %d endpoint changes in %.1f s (%.1f/s held); all landed (converged %.1f s after the last, "
                    + "natsync diff's own time included); %.0f syncs; network programming latency mean %.2f s, p99 <= %.2f s (bucket); RSS %.0f MB, slope after warm-up %+.2f MB/min; "
                    + "/healthz 200 in %d of %d samples",
                Self.services, changes, churnSeconds, Double(changes) / churnSeconds, catchUp, syncs, latencySum / max(recorded, 1),
                latencyP99,
                resident, slope, taken.count - unhealthy.count, taken.count))
    }
}
