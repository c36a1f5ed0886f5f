import Foundation
import NatsyncTestSupport
import Testing

/// What natsync exposes by default.
@Suite(.serialized, liveKernel)
struct ExposureTests {
    @Test func metricsListenOnLoopbackByDefault() throws {
        let scene = try Scene()
        defer { scene.close() }
        let manifest = try scene.manifest("web.yaml", Objects.service("web", clusterIP: "10.96.0.5"))
        let log = scene.folder.appendingPathComponent("daemon.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let daemon = Process()
        // The whole process in the node's namespace, so the default port is free whatever the host runs.
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        daemon.arguments =
            [
                "ip", "netns", "exec", scene.node, buildFolder.appendingPathComponent("natsync").path, "run", "-f", manifest,
                "--healthz-bind-address", "127.0.0.1:0",
            ] + scene.backendFlags + Scene.nodeFlags
        daemon.standardError = try FileHandle(forWritingTo: log)
        try daemon.run()
        defer {
            daemon.terminate()
            daemon.waitUntilExit()
        }
        var line = ""
        try waitUntil(seconds: 10) {
            line =
                (try String(contentsOf: log, encoding: .utf8)).split(separator: "\n").first { $0.contains("metrics server listening") }.map(
                    String.init) ?? ""
            return !line.isEmpty
        }
        #expect(line.contains("127.0.0.1:10249"), "\(line)")
    }
}
