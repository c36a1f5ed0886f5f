import Foundation
import NatsyncTestSupport
import Testing

/// Runs that need minutes: `make stress` sets NATSYNC_STRESS=1.
let stressEnabled = Testing.ConditionTrait.enabled(
    if: liveKernelUnavailable == nil && ProcessInfo.processInfo.environment["NATSYNC_STRESS"] == "1",
    Comment(rawValue: liveKernelUnavailable ?? "a stress run: make stress"))

/// `kill -9` at random moments of syncs of a 10,000-service table (2,000 on nf_tables, whose every
/// check reads the tables through iptables-nft-save): every table is always either as it was before
/// the killed sync or as that sync wanted it, and the next sync converges.
@Suite(.serialized, stressEnabled)
struct CrashConsistencyTests {
    /// A kubectl-style JSON List (JSON loads ten times faster than YAML in a debug build).
    static func manifest(services: Int, round: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var items: [String] = []
        for index in 0..<services {
            // Each round moves the endpoints of about 1% of the services and drops a few services.
            if index % 997 == round % 997 { continue }
            let moved = Int.random(in: 0..<100, using: &generator) == 0 ? round : 0
            let clusterIP = "10.96.\(index / 250).\(index % 250 + 1)"
            let endpoint = "10.1.\((index + moved) / 250 % 250).\((index + moved) % 250 + 1)"
            items.append(
                #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s\#(index)","namespace":"default"},"#
                    + #""spec":{"clusterIP":"\#(clusterIP)","ports":[{"name":"p","port":80,"protocol":"TCP"}]}}"#)
            items.append(
                #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s\#(index)-a","namespace":"default","#
                    + #""labels":{"kubernetes.io/service-name":"s\#(index)"}},"addressType":"IPv4","#
                    + #""ports":[{"name":"p","port":8080,"protocol":"TCP"}],"endpoints":[{"addresses":["\#(endpoint)"]}]}"#)
        }
        return #"{"apiVersion":"v1","kind":"List","items":["# + items.joined(separator: ",") + "]}"
    }

    @Test(arguments: ["legacy", "nft"])
    func killNineDuringSyncsNeverLeavesAMixedTable(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        let sync = ["sync", "--iptables-backend", backend, "--no-conntrack"] + Scene.nodeFlags
        let services = backend == "legacy" ? 10_000 : 2_000
        var path = try scene.manifest("round0.json", Self.manifest(services: services, round: 0))
        let started = Date()
        try scene.natsync(sync + ["-f", path])
        let fullSync = Date().timeIntervalSince(started)
        var killed = 0
        var outcomes: [String: Int] = [:]
        for round in 1...100 {
            let before = try ["filter", "nat"].map { try scene.save(tables: [$0]) }
            path = try scene.manifest("round\(round).json", Self.manifest(services: services, round: round))
            let process = Process()
            process.executableURL = buildFolder.appendingPathComponent("natsync")
            process.arguments = sync + ["-f", path, "--netns", scene.node]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32(Double.random(in: 0...(fullSync * 1.2)) * 1_000_000))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()

            // Each table is either untouched or exactly what this round wanted.
            let diff = try scene.natsync(["diff", "-f", path, "--iptables-backend", backend] + Scene.nodeFlags, check: false)
                .standardOutput
            for (index, table) in ["filter", "nat"].enumerated() {
                let unchanged = try scene.save(tables: [table]) == before[index]
                let done = !diff.contains("*\(table)\n")
                #expect(unchanged || done, "round \(round): \(table) is neither as before nor as wanted")
                outcomes["\(table) \(done ? "after" : "before")", default: 0] += 1
            }
            try scene.natsync(sync + ["-f", path])
            #expect(try scene.natsync(["diff", "-f", path, "--iptables-backend", backend] + Scene.nodeFlags, check: false).status == 0)
        }
        print(
            "crash consistency (\(backend)): 100 syncs of \(services) services (full sync \(String(format: "%.2f", fullSync)) s), \(killed) killed by SIGKILL; tables found \(outcomes.sorted { $0.key < $1.key }); every next sync converged"
        )
    }
}
