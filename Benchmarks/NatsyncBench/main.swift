import Foundation
import NatsyncIPTables
import NatsyncModel
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// `make bench`: rule generation and rendering for S ClusterIP services x 10 endpoints at two
/// sizes (growth is a ratio measured in one run), then conntrack cleanup against conntrack(8).

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
            EndpointSlice.Endpoint(address: .v4(0x0AF4_0000 &+ UInt32(index * endpointsPerService + endpoint)), nodeName: "node-\(endpoint % 3)")
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
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

let options = ProxyOptions(nodeName: "node-0", nodeIP: .v4(0xC0A8_0002), clusterCIDRs: [CIDR("10.244.0.0/16")!])
let generator = RuleGenerator(options: options)
let quick = CommandLine.arguments.contains("--quick")
/// `--only NAME` runs one part: generate, conntrack, latency, backends or dispatch.
let only = CommandLine.arguments.firstIndex(of: "--only").map { CommandLine.arguments[$0 + 1] }
func runs(_ part: String) -> Bool { only == nil || only == part }

if runs("generate") {
    let sizes = quick ? [1_000] : [1_000, 10_000]
    var perRule: [Int: Double] = [:]

    print("natsync bench: rule generation + iptables-restore rendering, ClusterIP services x 10 endpoints")
    print("services  rules    generate (s)  render (s)  total (s)  us/rule  text (MB)")
    for size in sizes {
        let state = cluster(services: size, endpointsPerService: 10)
        var generateTimes: [Double] = []
        var renderTimes: [Double] = []
        var ruleCount = 0
        var textBytes = 0
        for _ in 0..<3 {
            var rules: ProxyRules?
            generateTimes.append(seconds { rules = generator.rules(for: state) })
            var text = ""
            renderTimes.append(seconds { text = RestoreText.render(rules!.tables, family: .ipv4) })
            ruleCount = rules!.filter.ruleCount + rules!.nat.ruleCount
            textBytes = text.utf8.count
        }
        let total = median(generateTimes) + median(renderTimes)
        perRule[size] = total / Double(ruleCount)
        print(
            String(
                format: "%8d  %7d  %12.3f  %10.3f  %9.3f  %7.2f  %9.1f", size, ruleCount, median(generateTimes),
                median(renderTimes), total, total / Double(ruleCount) * 1e6, Double(textBytes) / 1e6))
    }
    if let small = perRule[1_000], let large = perRule[10_000] {
        print(String(format: "linearity: time per rule at 10k / at 1k = %.2fx (1.0 = linear)", large / small))
    }
    print(String(format: "peak RSS: %.1f MB", peakResidentMegabytes()))
    print("")
}
if runs("conntrack") {
    ConntrackBench.run(entries: quick ? 20_000 : 100_000, stale: 1_000)
    print("")
}
if runs("latency") {
    LatencyBench.run(services: quick ? 1_000 : 10_000, changes: quick ? 10 : 50)
    print("")
}
if runs("backends") {
    // 1,000 services at both sizes: iptables-nft-restore of 10,000 x 10 (320k rules) into an empty
    // table ran for over 12 minutes here, which would stall the whole bench.
    BackendBench.run(services: 1_000, changes: 5)
    print("")
}
if runs("dispatch") {
    DispatchBench.run(sizes: quick ? [1_000] : [1_000, 30_000], connections: 2_000)
}
