import Foundation
import NatsyncTestSupport
import Testing

/// Switching `--service-dispatch` on a live node under traffic.
@Suite(.serialized, liveKernel)
struct DispatchSwitchTests {
    @Test func switchingLinearTreeLinearUnderTrafficLosesNoConnection() throws {
        let scene = try Scene()
        defer { scene.close() }
        try scene.addPod("client")
        let a = try scene.addPod("pod-a")
        let b = try scene.addPod("pod-b")
        let client = scene.podNamespaces["client"]!
        // 300 other services around the one under test, so each commit has real work.
        var yaml = ""
        for index in 0..<300 {
            yaml +=
                Objects.service("svc\(index)", clusterIP: "10.96.\(index / 200).\(index % 200 + 10)") + Objects.slice("svc\(index)", [a])
        }
        let manifest = try scene.manifest("all.yaml", yaml + Objects.service("web", clusterIP: "10.96.7.7") + Objects.slice("web", [a, b]))
        let linear = ["sync", "--iptables-backend", "legacy", "-f", manifest] + Scene.nodeFlags
        try scene.natsync(linear + ["--service-dispatch", "linear"])

        // The client sends request after request, in batches, until every switch is done.
        let traffic = TrafficLoop(scene: scene, namespace: client, target: "10.96.7.7:80")
        traffic.start()
        var saves: [String] = []
        for mode in ["tree", "linear", "tree", "linear"] {
            usleep(300_000)
            let synced = try scene.natsync(linear + ["--service-dispatch", mode])
            #expect(synced.standardOutput.contains("committed"), "\(synced.standardOutput)")
            saves.append(try scene.save(tables: ["nat"]))
        }
        let lines = traffic.stop()
        #expect(lines.count >= 1000, "only \(lines.count) requests during the switches")
        let failures = lines.filter { !$0.hasPrefix("Hello from") }
        #expect(failures.isEmpty, "\(failures.count) of \(lines.count) requests failed: \(Set(failures))")
        #expect(saves[0].contains("-j NATSYNC-DSP-") && !saves[1].contains("NATSYNC-DSP"))
        print("dispatch switch: \(lines.count) requests across 4 switches, \(failures.count) failed")
    }
}

/// Requests to a target from a namespace, batch after batch on a thread, until stopped.
final class TrafficLoop: @unchecked Sendable {
    let scene: Scene
    let namespace: String
    let target: String
    private let condition = NSCondition()
    private var stopping = false
    private var finished = false
    private var lines: [String] = []

    init(scene: Scene, namespace: String, target: String) {
        self.scene = scene
        self.namespace = namespace
        self.target = target
    }

    func start() {
        Thread { [self] in
            while true {
                let batch = (try? scene.get(from: namespace, target, count: 200)) ?? ["client failed"]
                condition.lock()
                lines += batch
                let done = stopping
                if done { finished = true }
                condition.broadcast()
                condition.unlock()
                if done { return }
            }
        }.start()
        // Traffic is flowing before the caller goes on.
        condition.lock()
        while lines.isEmpty { condition.wait() }
        condition.unlock()
    }

    /// Lets the current batch finish and returns every answer.
    func stop() -> [String] {
        condition.lock()
        defer { condition.unlock() }
        stopping = true
        while !finished { condition.wait() }
        return lines
    }
}
