import Foundation
import NatsyncDaemon
import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncReconcile
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// Network programming latency: with S services x 10 endpoints live in a namespace, the time from
/// one endpoint change handed to the proxier until its partial sync has committed, over `changes`
/// changes; beside it, in the same run, `iptables-legacy-restore --noflush` of just the changed
/// chains, and of what kube-proxy's partial sync writes (the fixed chains plus the service's).
enum LatencyBench {
    static func run(services: Int, changes: Int) {
        guard getuid() == 0 else {
            print("latency bench: skipped (needs root to create a network namespace)")
            return
        }
        let namespace = "natsync-latency-\(getpid())"
        guard ConntrackBench.shell(["ip", "netns", "add", namespace]) == 0 else {
            print("latency bench: skipped (cannot create a network namespace)")
            return
        }
        defer { _ = ConntrackBench.shell(["ip", "netns", "delete", namespace]) }
        do {
            try measure(namespace: namespace, services: services, changes: changes)
        } catch {
            print("latency bench: failed: \(error)")
        }
    }

    static func measure(namespace: String, services: Int, changes: Int) throws {
        let options = ProxyOptions(nodeName: "node-0", nodeIP: .v4(0xC0A8_0002), clusterCIDRs: [CIDR("10.244.0.0/16")!])
        let generator = RuleGenerator(options: options)
        let applier = TablesApplier(tables: LegacyTables(lockTimeout: .seconds(30)), family: .ipv4, netns: namespace, conntrack: false)
        let proxier = Proxier(generator: generator, applier: applier)
        var state = cluster(services: services, endpointsPerService: 10)
        proxier.update(state)
        let loadStart = ContinuousClock.now
        _ = try proxier.sync()
        print("network programming latency, \(services) services x 10 endpoints loaded (first full sync \(ms(ContinuousClock.now - loadStart)))")

        // The fixed chains do not change when an endpoint moves: kube-proxy's partial restore
        // writes them as they are.
        let fixed = generator.rules(for: state).nat.chains.filter { !Ownership.isServiceChain($0.name) }
        var natsync: [Double] = []
        var changedOnly: [Double] = []
        var kubeProxyPartial: [Double] = []
        for change in 0..<changes {
            // One endpoint of one service moves to a new address.
            let index = (change * 7919) % services
            var slices = state.endpointSlices
            let position = slices.firstIndex { $0.service.name == "svc-\(index)" }!
            let old = slices[position]
            slices[position].endpoints[change % 10].address = .v4(0x0B00_0000 + UInt32(change))
            state = ClusterState(services: state.services, endpointSlices: slices)
            let start = ContinuousClock.now
            proxier.update(state)
            _ = try proxier.sync()
            natsync.append(seconds(ContinuousClock.now - start))

            // The anchors restore the same change into the same table (content natsync already
            // wrote, so the table stays as it is for the next round).
            let service = state.services.first { $0.name == old.service }!
            func chains(_ slice: EndpointSlice) -> [Chain] {
                generator.servicePorts(of: service, slices: [slice])
                    .flatMap { generator.rules(for: $0.0, endpoints: $0.1, largeClusterMode: true).natChains }
            }
            let before = chains(old)
            let after = chains(slices[position])
            let changedChains = after.filter { !before.contains($0) }
            let deleted = before.map(\.name).filter { name in !after.contains { $0.name == name } }
            changedOnly.append(try restore(namespace, TableContents(table: .nat, chains: changedChains, deletedChains: deleted)))
            kubeProxyPartial.append(
                try restore(namespace, TableContents(table: .nat, chains: fixed + changedChains, deletedChains: deleted)))
        }
        func percentile(_ values: [Double], _ fraction: Double) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
        }
        func line(_ label: String, _ values: [Double]) {
            let padded = label.padding(toLength: 58, withPad: " ", startingAt: 0)
            print(String(format: "  %@ p50 %7.0f ms, p99 %7.0f ms", padded, percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000))
        }
        line("natsync partial sync (change handed over -> committed):", natsync)
        line("iptables-legacy-restore --noflush, changed chains only:", changedOnly)
        line("iptables-legacy-restore --noflush, kube-proxy's partial:", kubeProxyPartial)
        let ratio = percentile(natsync, 0.99) / percentile(kubeProxyPartial, 0.99)
        print(String(format: "  ratio natsync p99 / kube-proxy partial restore p99: %.2fx", ratio))
    }

    static func restore(_ namespace: String, _ table: TableContents) throws -> Double {
        let text = RestoreText.render([table], family: .ipv4)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace, "iptables-legacy-restore", "--noflush", "-w", "30"]
        let input = Pipe()
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        return seconds(ContinuousClock.now - start)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func ms(_ duration: Duration) -> String { String(format: "%.0f ms", seconds(duration) * 1000) }
}
