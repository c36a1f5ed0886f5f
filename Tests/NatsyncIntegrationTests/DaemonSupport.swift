import Foundation
import NatsyncTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A `natsync run` process on the scene's node, with its health and metrics servers on
/// loopback ports it chose (read from its log).
final class DaemonProcess {
    let process = Process()
    let log: URL
    private(set) var healthPort = 0
    private(set) var metricsPort = 0

    /// `wrapper` runs before natsync, as `setpriv ...` does to drop capabilities.
    init(
        scene: Scene, manifests: String, extra: [String] = [], environment: [String: String] = [:], node: [String] = Scene.nodeFlags,
        wrapper: [String] = []
    ) throws {
        log = scene.folder.appendingPathComponent("daemon-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let natsync = buildFolder.appendingPathComponent("natsync")
        process.executableURL = wrapper.isEmpty ? natsync : URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            (wrapper.isEmpty ? [] : wrapper + [natsync.path]) + ["run"] + (manifests.isEmpty ? [] : ["-f", manifests]) + [
                "--netns", scene.node,
            ] + scene.backendFlags + [
                "--healthz-bind-address", "127.0.0.1:0",
                "--metrics-bind-address", "127.0.0.1:0", "--iptables-min-sync-period", "200ms",
            ] + node + extra
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        try waitUntil(seconds: 10) { self.readPorts() }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    private func readPorts() -> Bool {
        for line in logText.split(separator: "\n") {
            guard let range = line.range(of: "127.0.0.1:") else { continue }
            let port = Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
            if line.contains("health server") { healthPort = port }
            if line.contains("metrics server") { metricsPort = port }
        }
        return healthPort > 0 && metricsPort > 0
    }

    /// SIGTERM, then the exit status.
    func stop() -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

struct Timeout: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass; a timeout ends with the tail
/// of `daemon`'s log, so a failure far away (CI) says what the daemon was doing.
func waitUntil(
    seconds: Double, showing daemon: DaemonProcess? = nil, file: StaticString = #fileID, line: UInt = #line, _ condition: () throws -> Bool
) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(50_000)
    }
    if try condition() { return }
    let log = daemon.map { "; the daemon's log ends:\n" + $0.logText.split(separator: "\n").suffix(30).joined(separator: "\n") } ?? ""
    throw Timeout(description: "\(file):\(line): condition not met within \(seconds) s" + log)
}

/// A plain HTTP/1.0 GET to 127.0.0.1 (no proxy settings involved): status and body.
func httpGet(port: Int, path: String) throws -> (status: Int, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw Timeout(description: "cannot connect to 127.0.0.1:\(port)") }
    let request = "GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n"
    _ = request.withCString { write(fd, $0, strlen($0)) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

/// A metric's value from Prometheus text: the first sample whose name and labels start with `prefix`.
func metricValue(_ text: String, _ prefix: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.split(separator: " ").last ?? "") }
}

/// Whether this process holds `capability` (its bit in `CapEff`).
func hasCapability(_ capability: Int32) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
        let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return false }
    return mask & (1 << UInt64(capability)) != 0
}

/// `CAP_SYS_RESOURCE` of `linux/capability.h`, which Glibc's module does not export.
let capSysResource: Int32 = 24
