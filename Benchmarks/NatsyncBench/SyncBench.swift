import Foundation
import NatsyncDaemon
import NatsyncIPTables
import NatsyncKernel
import NatsyncManifest
import NatsyncModel
import NatsyncNet
import NatsyncReconcile
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// The performance targets: natsync against the other ways of programming the same rules, each
/// in a network namespace made for it, every anchor measured in the same run, every figure the
/// median of `runs` runs. Writes `results.json` and a chart of full-sync time against size.
enum SyncBench {
    /// What one size measured; times in seconds, memory in MB.
    struct Size: Codable {
        var services: Int
        var rules: Int
        var fullSync: Double
        var restoreFull: Double
        var fullSyncPeakMB: Double?
        var restorePeakMB: Double?
        var natsyncCLIFullSync: Double?
        var partial: Double?
        var partialP99: Double?
        var floorRead: Double?
        var floorReadAndCommit: Double?
        var floorKernelRead: Double?
        var floorKernelReplace: Double?
        var floorUserspaceCompile: Double?
        var tableBytes: Int?
        var tableEntries: Int?
        var kubeProxyPartial: Double?
        var kubeProxyPartialP99: Double?
        var noChange: Double?
        var save: Double?
        var noChangeCommitted: Bool?
        var generate: Double?
        var renderText: Double?
        var loadJSON: Double?
        var loadYAML: Double?
        /// Peak RSS of `natsync sync -f` of the same objects as kubectl YAML.
        var yamlSyncPeakMB: Double?
    }

    struct Target: Codable {
        var number: Int
        var name: String
        var natsync: Double
        var anchor: Double
        var anchorName: String
        var ratio: Double
        var limit: Double
        var met: Bool
    }

    struct Results: Codable {
        var machine: String
        var date: String
        var runs: Int
        var sizes: [Size]
        var targets: [Target]
    }

    static let options = ProxyOptions(nodeName: "node-0", nodeIP: .v4(0xC0A8_0002), clusterCIDRs: [CIDR("10.244.0.0/16")!])
    static let cliFlags = [
        "--hostname-override", "node-0", "--cluster-cidr", "10.244.0.0/16", "--node-ip", "192.168.0.2", "--iptables-backend", "legacy",
        "--no-conntrack",
    ]

    static func run(sizes: [Int], chartSizes: [Int], runs: Int, changes: Int, output: String, natsync: String) {
        guard getuid() == 0 else {
            print("sync bench: skipped (needs root to create network namespaces)")
            return
        }
        try? FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        // Inputs (restore texts, manifests) go to a scratch folder, results to `output`.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-bench-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        print("natsync vs the other appliers: ClusterIP services x 10 endpoints, median of \(runs) runs, each in a fresh network namespace")
        var measured: [Size] = []
        for size in (sizes + chartSizes).sorted() {
            do {
                let full = sizes.contains(size)
                let result = try measure(
                    services: size, runs: runs, changes: full ? changes : 0, folder: scratch, natsync: natsync, fullSet: full)
                measured.append(result)
                print(String(format: "  measured %d services (%d rules)%@", size, result.rules, full ? "" : ", full syncs only (chart)"))
            } catch {
                print("sync bench: \(size) services failed: \(error)")
            }
        }
        let targets = evaluate(measured.filter { sizes.contains($0.services) })
        report(measured.filter { sizes.contains($0.services) }, targets)
        let results = Results(
            machine: machine(), date: ISO8601DateFormatter().string(from: Date()), runs: runs, sizes: measured, targets: targets)
        write(results, chart: measured, to: output)
    }

    static func measure(services: Int, runs: Int, changes: Int, folder: String, natsync: String, fullSet: Bool) throws -> Size {
        let generator = RuleGenerator(options: options)
        let state = cluster(services: services, endpointsPerService: 10)
        let desired = generator.rules(for: state)
        let text = RestoreText.render(desired.tables, family: .ipv4)
        let textPath = "\(folder)/restore-\(services).txt"
        try text.write(toFile: textPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: textPath) }
        var size = Size(
            services: services, rules: desired.filter.ruleCount + desired.nat.ruleCount, fullSync: 0, restoreFull: 0)

        var full: [Double] = []
        var restore: [Double] = []
        var restorePeak: [Double] = []
        var noChange: [Double] = []
        var save: [Double] = []
        var partial: [Double] = []
        var kubeProxy: [Double] = []
        var floors: [KernelFloor] = []
        var generate: [Double] = []
        var committedWithoutChange = false
        for run in 0..<runs {
            // Generation beside the full sync it is compared with, in the same state of the
            // process (measured after the loading runs below, it paid for their garbage).
            if fullSet {
                var rules: ProxyRules?
                generate.append(seconds { rules = generator.rules(for: state) })
                // Freed here, after the timing: a sync does not free its rules before it is done.
                withExtendedLifetime(rules) {}
            }

            // The anchor: iptables-legacy-restore of natsync's own dry-run text into an empty table.
            let anchorRun = try withNamespace("restore") { namespace in
                try ChildRun.run(["ip", "netns", "exec", namespace, "iptables-legacy-restore", "-w", "30", textPath])
            }
            guard anchorRun.status == 0 else { throw BenchError("iptables-legacy-restore exited \(anchorRun.status)") }
            restore.append(anchorRun.seconds)
            restorePeak.append(anchorRun.peakMegabytes)

            try withNamespace("natsync") { namespace in
                // natsync's full sync into an empty table: generation, planning and libiptc.
                let proxier = Proxier(
                    generator: generator,
                    applier: TablesApplier(
                        tables: LegacyTables(lockTimeout: .seconds(30)), family: .ipv4, netns: namespace, conntrack: false))
                proxier.update(state)
                var start = ContinuousClock.now
                _ = try proxier.sync()
                full.append(ConntrackBench.seconds(since: start))
                guard fullSet else { return }

                // No change: a full compare of the loaded table, which must not commit.
                start = ContinuousClock.now
                let report = try NetworkNamespace.run(in: namespace) { try LegacyTables(lockTimeout: .seconds(30)).sync(desired.tables) }
                noChange.append(ConntrackBench.seconds(since: start))
                committedWithoutChange = committedWithoutChange || !report.committed.isEmpty
                let saveRun = try ChildRun.run(["ip", "netns", "exec", namespace, "iptables-legacy-save", "-t", "nat"])
                save.append(saveRun.seconds)

                // One endpoint added to one service: natsync's partial sync, the floor on the same
                // table, and kube-proxy's partial restore of the same change.
                let fixed = desired.nat.chains.filter { !Ownership.isServiceChain($0.name) }
                var slices = state.endpointSlices
                for change in 0..<changes {
                    let (before, after) = addEndpoint(to: &slices, change: run * changes + change, services: services)
                    proxier.apply([.endpointSlice(before.name, after)])
                    start = ContinuousClock.now
                    _ = try proxier.sync()
                    partial.append(ConntrackBench.seconds(since: start))

                    floors.append(try NetworkNamespace.run(in: namespace) { try KernelFloor.measure("nat") })

                    let kubeProxyText = kubeProxyPartial(generator: generator, state: state, before: before, after: after, fixed: fixed)
                    let kubeProxyPath = "\(folder)/kube-proxy-partial.txt"
                    try kubeProxyText.write(toFile: kubeProxyPath, atomically: true, encoding: .utf8)
                    let kubeProxyRun = try ChildRun.run(
                        ["ip", "netns", "exec", namespace, "iptables-legacy-restore", "--noflush", "-w", "30", kubeProxyPath])
                    try? FileManager.default.removeItem(atPath: kubeProxyPath)
                    guard kubeProxyRun.status == 0 else { throw BenchError("kube-proxy's partial restore exited \(kubeProxyRun.status)") }
                    kubeProxy.append(kubeProxyRun.seconds)
                }
            }
        }
        size.fullSync = median(full)
        size.restoreFull = median(restore)
        size.restorePeakMB = median(restorePeak)
        guard fullSet else { return size }

        // Memory: the natsync command doing the whole job (load, generate, sync) in its own process.
        let jsonPath = "\(folder)/cluster-\(services).json"
        let yamlPath = "\(folder)/cluster-\(services).yaml"
        try KubectlOutput.json(state).write(toFile: jsonPath, atomically: true, encoding: .utf8)
        try KubectlOutput.yaml(state).write(toFile: yamlPath, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(atPath: jsonPath)
            try? FileManager.default.removeItem(atPath: yamlPath)
        }
        var cliPeak: [Double] = []
        var cliTime: [Double] = []
        var yamlPeak: [Double] = []
        for _ in 0..<runs {
            let cli = try withNamespace("cli") { namespace in
                try ChildRun.run([natsync, "sync", "-f", jsonPath, "--netns", namespace] + cliFlags)
            }
            guard cli.status == 0 else { throw BenchError("natsync sync exited \(cli.status)") }
            cliPeak.append(cli.peakMegabytes)
            cliTime.append(cli.seconds)
            let fromYAML = try withNamespace("cli") { namespace in
                try ChildRun.run([natsync, "sync", "-f", yamlPath, "--netns", namespace] + cliFlags)
            }
            guard fromYAML.status == 0 else { throw BenchError("natsync sync -f YAML exited \(fromYAML.status)") }
            yamlPeak.append(fromYAML.peakMegabytes)
        }
        size.fullSyncPeakMB = median(cliPeak)
        size.natsyncCLIFullSync = median(cliTime)
        size.yamlSyncPeakMB = median(yamlPeak)

        var render: [Double] = []
        var json: [Double] = []
        var yaml: [Double] = []
        for _ in 0..<runs {
            render.append(seconds { _ = RestoreText.render(desired.tables, family: .ipv4) })
            var loaded: LoadResult?
            json.append(seconds { loaded = ManifestLoader.load(paths: [jsonPath]) })
            guard loaded?.state.services.count == services, loaded?.warnings.isEmpty == true else {
                throw BenchError("the kubectl JSON did not load cleanly: \(loaded?.warnings.prefix(3) ?? [])")
            }
            yaml.append(seconds { loaded = ManifestLoader.load(paths: [yamlPath]) })
            guard loaded?.state.services.count == services else { throw BenchError("the kubectl YAML did not load") }
        }
        size.generate = median(generate)
        size.renderText = median(render)
        size.loadJSON = median(json)
        size.loadYAML = median(yaml)
        size.noChange = median(noChange)
        size.save = median(save)
        size.noChangeCommitted = committedWithoutChange
        size.partial = median(partial)
        size.partialP99 = percentile(partial, 0.99)
        size.kubeProxyPartial = median(kubeProxy)
        size.kubeProxyPartialP99 = percentile(kubeProxy, 0.99)
        size.floorRead = median(floors.map(\.read.inSeconds))
        size.floorReadAndCommit = median(floors.map(\.readAndCommit.inSeconds))
        size.floorKernelRead = median(floors.map(\.kernelRead.inSeconds))
        size.floorKernelReplace = median(floors.map(\.kernelReplace.inSeconds))
        size.floorUserspaceCompile = median(floors.map(\.userspaceCompile.inSeconds))
        size.tableBytes = floors.last?.bytes
        size.tableEntries = floors.last?.entries
        return size
    }

    static func evaluate(_ sizes: [Size]) -> [Target] {
        guard let large = sizes.last, let small = sizes.first else { return [] }
        var targets: [Target] = []
        func add(_ number: Int, _ name: String, _ natsync: Double?, _ anchor: Double?, _ anchorName: String, _ limit: Double) {
            guard let natsync, let anchor, anchor > 0 else { return }
            let ratio = natsync / anchor
            targets.append(
                Target(
                    number: number, name: name, natsync: natsync, anchor: anchor, anchorName: anchorName, ratio: ratio, limit: limit,
                    met: ratio <= limit))
        }
        add(1, "full sync into an empty table", large.fullSync, large.restoreFull, "iptables-legacy-restore of the dry-run text", 0.5)
        add(
            2, "one endpoint added (median)", large.partial, large.floorReadAndCommit, "floor: iptc_init + trivial change + iptc_commit",
            1.2)
        add(2, "one endpoint added (median)", large.partial, large.kubeProxyPartial, "kube-proxy's partial restore --noflush", 0.9)
        add(
            3, "no change (full compare, no commit)", large.noChange, large.save, "iptables-legacy-save -t nat",
            large.noChangeCommitted == true ? -1 : 1.0)
        add(4, "generating the desired tables", large.generate, large.fullSync, "natsync's full sync", 0.1)
        add(
            5, "peak RSS of a full sync (natsync sync)", large.fullSyncPeakMB, large.restorePeakMB, "peak RSS of iptables-legacy-restore",
            1.0)
        if large.services != small.services {
            add(
                6, "full sync time per rule, \(large.services / 1000)k vs \(small.services / 1000)k", large.fullSync / Double(large.rules),
                small.fullSync / Double(small.rules), "the same at the small size", 1.5)
        }
        add(7, "loading kubectl JSON", large.loadJSON, large.fullSync, "natsync's full sync", 0.25)
        add(
            8, "programming latency p99, one endpoint change", large.partialP99, large.kubeProxyPartialP99,
            "kube-proxy's partial restore p99", 1.0)
        add(9, "loading kubectl YAML", large.loadYAML, large.loadJSON, "loading the same as kubectl JSON", 3.0)
        add(10, "peak RSS, natsync sync -f cluster.yaml", large.yamlSyncPeakMB, large.fullSyncPeakMB, "the same from cluster.json", 1.2)
        return targets
    }

    static func report(_ sizes: [Size], _ targets: [Target]) {
        print("")
        print(
            "services  rules    full sync  restore  no change  save    one change  floor   kube-proxy  generate  load JSON  load YAML  natsync MB  restore MB"
        )
        for size in sizes {
            print(
                String(
                    format: "%8d  %7d  %9.3f  %7.3f  %9.3f  %6.3f  %10.3f  %6.3f  %10.3f  %8.3f  %9.3f  %9.3f  %10.0f  %10.0f",
                    size.services, size.rules,
                    size.fullSync, size.restoreFull, size.noChange ?? .nan, size.save ?? .nan, size.partial ?? .nan,
                    size.floorReadAndCommit ?? .nan,
                    size.kubeProxyPartial ?? .nan, size.generate ?? .nan, size.loadJSON ?? .nan, size.loadYAML ?? .nan,
                    size.fullSyncPeakMB ?? .nan,
                    size.restorePeakMB ?? .nan))
        }
        for size in sizes {
            guard let read = size.floorRead, let compile = size.floorUserspaceCompile, let replace = size.floorKernelReplace,
                let bytes = size.tableBytes, let entries = size.tableEntries
            else { continue }
            print(
                String(
                    format:
                        "  floor at %d: iptc_init %.3f s (kernel read alone %.3f s), userspace compile %.3f s, kernel replace %.3f s; %d entries, %.1f MB, %.0f bytes per rule",
                    size.services, read, size.floorKernelRead ?? .nan, compile, replace, entries, Double(bytes) / 1e6,
                    Double(bytes) / Double(entries)))
            print(
                String(
                    format: "  at %d: dry-run text rendering %.3f s; natsync sync as a command (load JSON + sync) %.3f s", size.services,
                    size.renderText ?? .nan, size.natsyncCLIFullSync ?? .nan))
        }
        print("")
        print(
            "target                                              natsync      anchor                                              ratio  limit   met"
        )
        for target in targets {
            let unit = target.number == 5 || target.number == 10 ? "MB" : "s"
            let limit = target.limit < 0 ? "commit" : String(format: "%5.2f", target.limit)
            print(
                String(
                    format: "%d %@ %9.3f %@  %@ %9.3f %@  %5.2fx  %@  %@", target.number,
                    target.name.padding(toLength: 48, withPad: " ", startingAt: 0),
                    target.natsync, unit, target.anchorName.padding(toLength: 48, withPad: " ", startingAt: 0), target.anchor, unit,
                    target.ratio, limit,
                    target.met ? "yes" : "NO"))
        }
    }

    static func write(_ results: Results, chart: [Size], to folder: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(results) else { return }
        try? data.write(to: URL(fileURLWithPath: "\(folder)/results.json"))
        let points = chart.map { String(format: "%d %.4f %.4f", $0.services, $0.fullSync, $0.restoreFull) }.joined(separator: "\n")
        try? (points + "\n").write(toFile: "\(folder)/full-sync.dat", atomically: true, encoding: .utf8)
        let script = """
            set terminal pngcairo size 800,480 font "sans,11"
            set output "\(folder)/full-sync.png"
            set title "Full sync into an empty nat table (ClusterIP services x 10 endpoints)"
            set xlabel "services"
            set ylabel "seconds"
            set key top left
            set grid
            set yrange [0:*]
            plot "\(folder)/full-sync.dat" using 1:3 with linespoints lw 2 pt 7 title "iptables-legacy-restore", \\
                 "" using 1:2 with linespoints lw 2 pt 5 title "natsync (libiptc)"
            """
        try? script.write(toFile: "\(folder)/full-sync.gnuplot", atomically: true, encoding: .utf8)
        let plotted = (try? ChildRun.run(["gnuplot", "\(folder)/full-sync.gnuplot"]))?.status == 0
        print("")
        print("wrote \(folder)/results.json" + (plotted ? " and \(folder)/full-sync.png" : " (gnuplot not available: no chart)"))
    }

    /// The `change`-th endpoint added to one of `services` services: its slice before and after.
    static func addEndpoint(to slices: inout [EndpointSlice], change: Int, services: Int) -> (EndpointSlice, EndpointSlice) {
        let position = change * 7919 % services
        let before = slices[position]
        slices[position].endpoints.append(.init(address: .v4(0x0B00_0000 + UInt32(change)), nodeName: "node-1"))
        return (before, slices[position])
    }

    /// kube-proxy's partial sync of one changed service as `iptables-restore --noflush` input:
    /// every fixed nat chain and the service's chains that changed (content natsync already wrote,
    /// so the table stays as it is for the next round).
    static func kubeProxyPartial(generator: RuleGenerator, state: ClusterState, before: EndpointSlice, after: EndpointSlice, fixed: [Chain])
        -> String
    {
        let service = state.services.first { $0.name == before.service }!
        func chains(_ slice: EndpointSlice) -> [Chain] {
            generator.servicePorts(of: service, slices: [slice])
                .flatMap { generator.rules(for: $0.0, endpoints: $0.1, largeClusterMode: true).natChains }
        }
        let old = chains(before)
        return RestoreText.render([TableContents(table: .nat, chains: fixed + chains(after).filter { !old.contains($0) })], family: .ipv4)
    }

    static func withNamespace<T>(_ role: String, _ body: (String) throws -> T) throws -> T {
        let namespace = "natsync-bench-\(role)-\(getpid())"
        guard ConntrackBench.shell(["ip", "netns", "add", namespace]) == 0 else { throw BenchError("cannot create namespace \(namespace)") }
        defer { ConntrackBench.shell(["ip", "netns", "delete", namespace]) }
        return try body(namespace)
    }

    static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    static func machine() -> String {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let model =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }.map { $0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces) }
            ?? "unknown CPU"
        return "\(ProcessInfo.processInfo.activeProcessorCount) x \(model), Linux \(release)"
    }
}
