import Foundation
import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// `make bench`: natsync against the other ways of programming the same rules (``SyncBench``), then
/// conntrack cleanup against conntrack(8), the backends, and first-packet latency by dispatch layout.

/// Lines go out at once (not buffered until exit), so a long run shows its progress.
func print(_ text: String = "") {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func cluster(services count: Int, endpointsPerService: Int) -> ClusterState {
    var services: [Service] = []
    var slices: [EndpointSlice] = []
    services.reserveCapacity(count)
    slices.reserveCapacity(count)
    for index in 0..<count {
        let name = NamespacedName(namespace: "bench", name: "svc-\(index)")
        let clusterIP = IPAddress.v4(0x0A60_0000 | UInt32(index))
        services.append(Service(name: name, clusterIPs: [clusterIP], ports: [.init(name: "http", protocol: .tcp, port: 80)]))
        let endpoints = (0..<endpointsPerService).map { endpoint in
            EndpointSlice.Endpoint(
                address: .v4(0x0AF4_0000 &+ UInt32(index * endpointsPerService + endpoint)), nodeName: "node-\(endpoint % 3)")
        }
        slices.append(
            EndpointSlice(
                name: NamespacedName(namespace: "bench", name: "svc-\(index)-abc"), service: name, addressType: .ipv4,
                ports: [.init(name: "http", protocol: .tcp, port: 8080)], endpoints: endpoints))
    }
    return ClusterState(services: services, endpointSlices: slices)
}

func seconds(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    let elapsed = ContinuousClock.now - start
    return elapsed.inSeconds
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

let quick = CommandLine.arguments.contains("--quick")
/// `--only NAME` runs one part: sync, api, conntrack, backends, nft or dispatch.
let only = CommandLine.arguments.firstIndex(of: "--only").map { CommandLine.arguments[$0 + 1] }
/// `--output DIR`: where the sync part writes results.json and its chart.
let output = CommandLine.arguments.firstIndex(of: "--output").map { CommandLine.arguments[$0 + 1] } ?? ".build/bench"
func runs(_ part: String) -> Bool { only == nil || only == part }

/// The natsync command of the same build.
let natsync = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("natsync").path
if runs("sync") {
    // natsync's peak memory is measured as a process of its own.
    SyncBench.run(
        sizes: quick ? [1_000] : [1_000, 10_000], chartSizes: quick ? [] : [2_500, 5_000], runs: 3, changes: quick ? 5 : 7, output: output,
        natsync: natsync)
    print("")
}
if runs("api") {
    APIDecodeBench.run(services: quick ? 1_000 : 10_000, events: 1_000)
    print("")
    APIPathBench.run(services: quick ? 1_000 : 10_000, runs: 3, natsync: natsync)
    print("")
}
if runs("conntrack") {
    ConntrackBench.run(entries: quick ? 20_000 : 100_000, stale: 1_000)
    print("")
}
if runs("backends") {
    // 1,000 services at both sizes: iptables-nft-restore of 10,000 x 10 (320k rules) into an empty
    // table ran for over 12 minutes here, which would stall the whole bench.
    BackendBench.run(services: 1_000, changes: 5)
    print("")
}
if runs("nft") {
    NFTBench.run(sizes: quick ? [2_000] : [2_000, 10_000], runs: quick ? 1 : 3, changes: quick ? 5 : 7, natsync: natsync)
    print("")
    DispatchBench.runNFT(services: quick ? 1_000 : 10_000, connections: 2_000)
    print("")
}
if runs("dispatch") {
    DispatchBench.run(sizes: quick ? [1_000] : [1_000, 30_000], connections: 2_000)
}
