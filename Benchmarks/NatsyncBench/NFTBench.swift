import Foundation
import NatsyncDaemon
import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncNet
import NatsyncReconcile
import NatsyncRules

/// The nft backend's targets (`make bench ONLY=nft`): natsync writing nf_tables over netlink
/// against iptables-nft (what kube-proxy runs on an nft host) and against natsync's own legacy
/// path, each in fresh namespaces, every anchor measured in the same run.
enum NFTBench {
    struct Size {
        var services: Int
        var rules = 0
        var full = 0.0
        var legacyFull = 0.0
        var restoreFull: Double?
        var partial = 0.0
        var legacyPartial = 0.0
        var kubeProxyPartial = 0.0
        var noChange = 0.0
        var unmoved = 0.0
        var floor = 0.0
        var save = 0.0
        var peakMB = 0.0
        var legacyPeakMB = 0.0
    }

    static func run(sizes: [Int], runs: Int, changes: Int, natsync: String) {
        guard getuid() == 0 else {
            print("nft bench: skipped (needs root to create network namespaces)")
            return
        }
        print("nft backend, services x 10 endpoints, median of \(runs) runs (\(changes) changes each for partial syncs)")
        var measured: [Size] = []
        for services in sizes {
            do {
                measured.append(try measure(services: services, runs: runs, changes: changes, natsync: natsync))
            } catch {
                print("\(services) services: failed: \(error)")
            }
        }
        report(measured)
    }

    static func measure(services: Int, runs: Int, changes: Int, natsync: String) throws -> Size {
        let generator = RuleGenerator(options: SyncBench.options)
        let state = cluster(services: services, endpointsPerService: 10)
        let desired = generator.rules(for: state)
        var size = Size(services: services, rules: desired.filter.ruleCount + desired.nat.ruleCount)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-nft-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let textPath = "\(folder)/restore.txt"
        try RestoreText.render(desired.tables, family: .ipv4).write(toFile: textPath, atomically: true, encoding: .utf8)
        let jsonPath = "\(folder)/cluster.json"
        try KubectlOutput.json(state).write(toFile: jsonPath, atomically: true, encoding: .utf8)
        let fixed = desired.nat.chains.filter { !Ownership.isServiceChain($0.name) }

        var full: [Double] = []
        var legacyFull: [Double] = []
        var restoreFull: [Double] = []
        var partial: [Double] = []
        var legacyPartial: [Double] = []
        var kubeProxy: [Double] = []
        var noChange: [Double] = []
        var unmoved: [Double] = []
        var floor: [Double] = []
        var save: [Double] = []
        var peak: [Double] = []
        var legacyPeak: [Double] = []
        for run in 0..<runs {
            // iptables-nft-restore of the whole text is the full-sync anchor where it loads in
            // reasonable time (at 10,000 services it ran for over 12 minutes).
            if services <= 2_000 {
                let anchor = try SyncBench.withNamespace("nft-restore") { namespace in
                    try ChildRun.run(["ip", "netns", "exec", namespace, "iptables-nft-restore", textPath])
                }
                guard anchor.status == 0 else { throw BenchError("iptables-nft-restore exited \(anchor.status)") }
                restoreFull.append(anchor.seconds)
            }
            for legacy in [false, true] {
                let tables: any TableBackend = legacy ? LegacyTables(lockTimeout: .seconds(30)) : NFTTables(retryTimeout: .seconds(30))
                try SyncBench.withNamespace(legacy ? "legacy" : "nft") { namespace in
                    let proxier = Proxier(
                        generator: generator, applier: TablesApplier(tables: tables, family: .ipv4, netns: namespace, conntrack: false))
                    proxier.update(state)
                    var start = ContinuousClock.now
                    _ = try proxier.sync()
                    (legacy ? { legacyFull.append($0) } : { full.append($0) })(ConntrackBench.seconds(since: start))
                    if !legacy {
                        // No change: through the backend that wrote the table (the generation has
                        // not moved since), and a forced full comparison by a fresh one.
                        start = ContinuousClock.now
                        var report = try NetworkNamespace.run(in: namespace) { try tables.sync(desired.tables) }
                        unmoved.append(ConntrackBench.seconds(since: start))
                        guard report.committed.isEmpty else { throw BenchError("a sync without changes committed \(report.committed)") }
                        start = ContinuousClock.now
                        report = try NetworkNamespace.run(in: namespace) { try NFTTables().sync(desired.tables) }
                        noChange.append(ConntrackBench.seconds(since: start))
                        guard report.committed.isEmpty else { throw BenchError("a sync without changes committed \(report.committed)") }
                        let saved = try ChildRun.run(["ip", "netns", "exec", namespace, "iptables-nft-save"])
                        save.append(saved.seconds)
                        // The kernel's floor for any change: the smallest transaction that adds a
                        // rule with a jump, for which nf_tables validates the whole table.
                        let probe = Rule(matches: [.comment("natsync floor probe")], target: .jump("KUBE-MARK-MASQ"))
                        let floorTable = TableContents(
                            table: .nat, chains: [Chain(ChainName("KUBE-SEP-NATSYNCFLOOR\(run)"), rules: [probe])])
                        start = ContinuousClock.now
                        _ = try NetworkNamespace.run(in: namespace) {
                            try NFTTables().sync([floorTable], scope: [ChainName("KUBE-SEP-NATSYNCFLOOR\(run)")])
                        }
                        floor.append(ConntrackBench.seconds(since: start))
                    }
                    // One endpoint added to one service: the daemon's partial sync and, on the nft
                    // table, kube-proxy's partial restore of the same change.
                    var slices = state.endpointSlices
                    for change in 0..<changes {
                        let (before, after) = SyncBench.addEndpoint(to: &slices, change: run * changes + change, services: services)
                        proxier.apply([.endpointSlice(before.name, after)])
                        start = ContinuousClock.now
                        _ = try proxier.sync()
                        (legacy ? { legacyPartial.append($0) } : { partial.append($0) })(ConntrackBench.seconds(since: start))
                        guard !legacy else { continue }
                        let text = SyncBench.kubeProxyPartial(
                            generator: generator, state: state, before: before, after: after, fixed: fixed)
                        let path = "\(folder)/kube-proxy-partial.txt"
                        try text.write(toFile: path, atomically: true, encoding: .utf8)
                        let restored = try ChildRun.run(["ip", "netns", "exec", namespace, "iptables-nft-restore", "--noflush", path])
                        guard restored.status == 0 else { throw BenchError("kube-proxy's partial restore exited \(restored.status)") }
                        kubeProxy.append(restored.seconds)
                    }
                }
            }
            // Peak memory of the whole job in a process of its own, each backend.
            for legacy in [false, true] {
                let cli = try SyncBench.withNamespace("cli") { namespace in
                    try ChildRun.run(
                        [natsync, "sync", "-f", jsonPath, "--netns", namespace] + SyncBench.cliFlags.dropLast(3)
                            + ["--iptables-backend", legacy ? "legacy" : "nft", "--no-conntrack"])
                }
                guard cli.status == 0 else { throw BenchError("natsync sync exited \(cli.status)") }
                (legacy ? { legacyPeak.append($0) } : { peak.append($0) })(cli.peakMegabytes)
            }
        }
        size.full = median(full)
        size.legacyFull = median(legacyFull)
        size.restoreFull = restoreFull.isEmpty ? nil : median(restoreFull)
        size.partial = median(partial)
        size.legacyPartial = median(legacyPartial)
        size.kubeProxyPartial = median(kubeProxy)
        size.noChange = median(noChange)
        size.unmoved = median(unmoved)
        size.floor = median(floor)
        size.save = median(save)
        size.peakMB = median(peak)
        size.legacyPeakMB = median(legacyPeak)
        return size
    }

    static func report(_ sizes: [Size]) {
        print(
            "services   rules  full (s)  legacy  nft-restore  partial  legacy-part  kube-proxy-part  floor   unmoved  compare  nft-save  peak MB  legacy MB"
        )
        for size in sizes {
            print(
                String(
                    format: "%8d %7d %9.3f %7.3f %12@ %8.4f %12.4f %16.4f %7.4f %8.4f %8.3f %9.3f %8.1f %10.1f", size.services, size.rules,
                    size.full, size.legacyFull, size.restoreFull.map { String(format: "%.3f", $0) } ?? "-", size.partial,
                    size.legacyPartial,
                    size.kubeProxyPartial, size.floor, size.unmoved, size.noChange, size.save, size.peakMB, size.legacyPeakMB))
        }
        guard let small = sizes.first(where: { $0.services <= 2_000 }) ?? sizes.first, let large = sizes.last else { return }
        var lines: [(String, Double, Double)] = []
        lines.append(("1. full sync \(large.services) vs natsync legacy full sync", large.full / large.legacyFull, 2.0))
        if let restore = small.restoreFull {
            lines.append(("1. full sync \(small.services) vs iptables-nft-restore of the dry run", small.full / restore, 0.05))
        }
        lines.append(
            (
                "2. one endpoint added \(small.services) vs kube-proxy's partial iptables-nft-restore",
                small.partial / small.kubeProxyPartial, 0.2
            ))
        lines.append(("2. one endpoint added \(large.services) vs natsync legacy partial sync", large.partial / large.legacyPartial, 0.05))
        lines.append(
            (
                "2. one endpoint added \(large.services) vs kube-proxy's partial iptables-nft-restore",
                large.partial / large.kubeProxyPartial, 0.2
            ))
        lines.append(("3. no change, generation unmoved, \(large.services) vs iptables-nft-save", large.unmoved / large.save, 0.1))
        lines.append(("3. forced full comparison \(large.services) vs iptables-nft-save", large.noChange / large.save, 1.0))
        lines.append(("4. peak RSS of a full sync \(large.services) vs natsync legacy", large.peakMB / large.legacyPeakMB, 1.0))
        print("")
        for (name, ratio, limit) in lines {
            print(String(format: "%@: %.3fx (limit %.2fx) %@", name, ratio, limit, ratio <= limit ? "met" : "NOT met"))
        }
        for size in sizes {
            print(
                String(
                    format:
                        "one endpoint added at %d: %.1f ms, of which the kernel's floor (the smallest transaction adding a jump) %.1f ms",
                    size.services, size.partial * 1000, size.floor * 1000))
        }
    }
}
