import Foundation
import NatsyncAPIEmulator

#if canImport(Glibc)
import Glibc
#endif

/// `natsync run` from its start to its first full sync, fed by the API (an emulator in this
/// process serving the bench's cluster over HTTPS in pages of 500, as an API server does) and by
/// one kubectl JSON file of the same objects; then a relist after `410 Gone` of the unchanged
/// cluster, which must end in a compare that syncs nothing.
enum APIPathBench {
    struct Start {
        /// Start to the first full sync logged.
        var seconds: Double
        /// natsync's CPU time (user + system) by then.
        var cpuSeconds: Double
        /// Start to the end of the initial lists (the API only).
        var listSeconds: Double?
        /// 410 on the watches to the relisted state compared (the API only).
        var relistSeconds: Double?
        /// Syncs logged after the relist (none when nothing changed).
        var syncsAfterRelist: Int?
    }

    static func run(services: Int, runs: Int, natsync: String) {
        guard getuid() == 0 else {
            print("API path bench: skipped (needs root to create network namespaces)")
            return
        }
        do {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-api-path-\(getpid())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let state = cluster(services: services, endpointsPerService: 10)
            let file = folder.appendingPathComponent("cluster.json").path
            try KubectlOutput.json(state).write(toFile: file, atomically: true, encoding: .utf8)
            let (api, _) = try APIEmulator.https(in: folder)
            defer { api.stop() }
            for item in KubectlOutput.items(state) { api.put(item) }
            let kubeconfig = try api.kubeconfig(in: folder, user: "{token: natsync-bench}")

            var byFile: [Start] = []
            var byAPI: [Start] = []
            for _ in 0..<runs {
                byFile.append(try start(natsync, ["-f", file], folder: folder, api: nil))
                byAPI.append(try start(natsync, ["--kubeconfig", kubeconfig], folder: folder, api: api))
            }
            report(services: services, byFile: byFile, byAPI: byAPI)
        } catch {
            print("API path bench failed: \(error)")
        }
    }

    /// One `natsync run` in a fresh namespace, until its first full sync (and with `api`, a relist).
    static func start(_ natsync: String, _ source: [String], folder: URL, api: APIEmulator?) throws -> Start {
        try SyncBench.withNamespace("api") { namespace in
            let log = folder.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            defer { try? FileManager.default.removeItem(at: log) }
            let handle = try FileHandle(forWritingTo: log)
            defer { try? handle.close() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: natsync)
            process.arguments =
                ["run", "--netns", namespace, "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0"]
                + SyncBench.cliFlags + source
            process.standardOutput = handle
            process.standardError = handle
            let started = ContinuousClock.now
            try process.run()
            defer {
                process.terminate()
                process.waitUntilExit()
            }
            func messages() -> [Substring] {
                ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n")
            }
            func count(_ message: String) -> Int { messages().filter { $0.hasSuffix(" \(message)") }.count }
            var listSeconds: Double?
            try waitFor("the first sync", log: log, process: process) {
                if listSeconds == nil && api != nil && count("initial lists done") > 0 {
                    listSeconds = (ContinuousClock.now - started).inSeconds
                }
                return count("synced") > 0
            }
            var result = Start(seconds: (ContinuousClock.now - started).inSeconds, cpuSeconds: cpuSeconds(process.processIdentifier))
            guard let api else { return result }
            result.listSeconds = listSeconds
            let syncs = count("synced")
            let unchanged = count("cluster state unchanged")
            let relist = ContinuousClock.now
            api.expireHistory()
            // Both kinds listed again, and the last state they handed on compared.
            try waitFor("the relist", log: log, process: process) {
                let lines = messages()
                guard lines.filter({ $0.hasSuffix(" listed again") }).count == 2 else { return false }
                let last = lines.lastIndex { $0.hasSuffix(" listed again") }!
                return lines[last...].contains { $0.hasSuffix(" cluster state unchanged") || $0.hasSuffix(" synced") }
                    && count("cluster state unchanged") + count("synced") >= unchanged + syncs + 1
            }
            result.relistSeconds = (ContinuousClock.now - relist).inSeconds
            // A sync would follow within the min-sync-period (1 s): wait it out before counting.
            usleep(1_500_000)
            result.syncsAfterRelist = count("synced") - syncs
            return result
        }
    }

    static func waitFor(_ what: String, log: URL, process: Process, _ done: () -> Bool) throws {
        let deadline = ContinuousClock.now + .seconds(300)
        while !done() {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw BenchError("natsync run never reached \(what): \(text.split(separator: "\n").suffix(10).joined(separator: "\n"))")
            }
            usleep(5_000)
        }
    }

    /// User + system time of a running process, from `/proc/PID/stat`.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return .nan }
        // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func report(services: Int, byFile: [Start], byAPI: [Start]) {
        let file = median(byFile.map(\.seconds))
        let api = median(byAPI.map(\.seconds))
        let fileCPU = median(byFile.map(\.cpuSeconds))
        let apiCPU = median(byAPI.map(\.cpuSeconds))
        let list = median(byAPI.compactMap(\.listSeconds))
        let relist = median(byAPI.compactMap(\.relistSeconds))
        let syncs = byAPI.compactMap(\.syncsAfterRelist).max() ?? -1
        print("API path: natsync run, \(services) services x 10 endpoints, start to first full sync (median of \(byAPI.count))")
        print(String(format: "  -f file               %6.2f s  (CPU %5.2f s)", file, fileCPU))
        print(
            String(
                format: "  --kubeconfig          %6.2f s  (CPU %5.2f s), %.2fx the file   target <= 2.0x: %@", api, apiCPU, api / file,
                api / file <= 2.0 ? "met" : "NOT MET"))
        print(String(format: "    of which the initial lists %6.2f s (HTTPS, pages of 500)", list))
        print(
            String(
                format: "  relist after 410      %6.2f s  to the state compared, %.2fx the first list   target <= 2.0x: %@", relist,
                relist / list, relist / list <= 2.0 && syncs == 0 ? "met" : "NOT MET"))
        print("    syncs after the relist of the unchanged cluster: \(syncs) (nothing committed when 0)")
    }
}
