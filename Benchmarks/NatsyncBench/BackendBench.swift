import Foundation
import NatsyncDaemon
import NatsyncKernel
import NatsyncModel
import NatsyncNet
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// The same syncs through each backend, each in a fresh namespace: libiptc on the legacy tables,
/// and the restore backend through iptables-nft (an nft host) and through iptables-legacy.
enum BackendBench {
    static func run(services: Int, changes: Int) {
        guard getuid() == 0 else {
            print("backend bench: skipped (needs root to create network namespaces)")
            return
        }
        print(
            "backends, \(services) services x 10 endpoints: full sync into an empty table, a full compare with no change, one endpoint changed (partial sync, median of \(changes))"
        )
        print("backend                           full sync (s)  no change (s)  one change (s)")
        let backends: [(String, any TableBackend)] = [
            ("libiptc (legacy)", LegacyTables(lockTimeout: .seconds(30))),
            ("restore via iptables-nft", RestoreTables.nft(lockTimeout: .seconds(30))),
            (
                "restore via iptables-legacy",
                RestoreTables(save: ["iptables-legacy-save"], restore: ["iptables-legacy-restore"], lockTimeout: .seconds(30))
            ),
        ]
        for (label, backend) in backends {
            let namespace = "natsync-backend-\(getpid())"
            guard ConntrackBench.shell(["ip", "netns", "add", namespace]) == 0 else { continue }
            defer { ConntrackBench.shell(["ip", "netns", "delete", namespace]) }
            do {
                let (full, same, change) = try measure(backend, namespace: namespace, services: services, changes: changes)
                print(
                    String(
                        format: "%@  %13.3f  %13.3f  %14.3f", label.padding(toLength: 32, withPad: " ", startingAt: 0), full, same, change))
            } catch {
                print("\(label): failed: \(error)")
            }
        }
    }

    static func measure(_ backend: any TableBackend, namespace: String, services: Int, changes: Int) throws -> (Double, Double, Double) {
        let options = ProxyOptions(nodeName: "node-0", nodeIP: .v4(0xC0A8_0002), clusterCIDRs: [CIDR("10.244.0.0/16")!])
        let generator = RuleGenerator(options: options)
        var state = cluster(services: services, endpointsPerService: 10)
        let proxier = Proxier(
            generator: generator, applier: TablesApplier(tables: backend, family: .ipv4, netns: namespace, conntrack: false))
        proxier.update(state)
        var start = ContinuousClock.now
        _ = try proxier.sync()
        let full = ConntrackBench.seconds(since: start)

        let desired = generator.rules(for: state).tables
        start = ContinuousClock.now
        let report = try NetworkNamespace.run(in: namespace) { try backend.sync(desired) }
        let same = ConntrackBench.seconds(since: start)
        guard report.committed.isEmpty else { throw BenchError("a sync without changes committed \(report.committed)") }

        var times: [Double] = []
        for change in 0..<changes {
            var slices = state.endpointSlices
            let position = (change * 7919) % services
            slices[position].endpoints[change % 10].address = .v4(0x0B00_0000 + UInt32(change))
            state = ClusterState(services: state.services, endpointSlices: slices)
            proxier.update(state)
            start = ContinuousClock.now
            _ = try proxier.sync()
            times.append(ConntrackBench.seconds(since: start))
        }
        return (full, same, median(times))
    }
}
