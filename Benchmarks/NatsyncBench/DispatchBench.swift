import Foundation
import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncNet
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// First-packet latency through nat KUBE-SERVICES, `--service-dispatch linear` against `tree`.
///
/// A node namespace routes between a client namespace and a pod namespace; S ClusterIP services
/// (one endpoint each, the same pod) are programmed into the node. The client times TCP connects
/// (SYN out, SYN-ACK back: the first packet meets every rule kube-proxy's layout puts before its
/// service) to the first and the last service in KUBE-SERVICES order, interleaved, and resets each
/// connection so no port lingers. Each mode's full sync into an empty table is timed beside it.
enum DispatchBench {
    static func run(sizes: [Int], connections: Int) {
        guard getuid() == 0 else {
            print("dispatch bench: skipped (needs root to create network namespaces)")
            return
        }
        print(
            "first-packet latency: TCP connect from a pod to the first / last service in KUBE-SERVICES order, \(connections) connections each"
        )
        print("services  dispatch  first p50   p99 (us)  last p50    p99 (us)  last/first p50  full sync (s)")
        var table: [String: (first: Double, last: Double, sync: Double)] = [:]
        for size in sizes {
            for dispatch in ServiceDispatch.allCases {
                do {
                    let result = try measure(services: size, dispatch: dispatch, connections: connections)
                    table["\(size) \(dispatch)"] = (result.first[0], result.last[0], result.sync)
                    print(
                        String(
                            format: "%8d  %-8@  %9.1f  %9.1f  %9.1f  %9.1f  %14.2f  %13.3f", size, dispatch.rawValue, result.first[0],
                            result.first[1], result.last[0], result.last[1], result.last[0] / result.first[0], result.sync))
                } catch {
                    print("dispatch bench: \(size) \(dispatch) failed: \(error)")
                }
            }
        }
        guard let small = sizes.first, let large = sizes.last, small != large,
            let tree = table["\(large) tree"], let treeSmall = table["\(small) tree"], let linear = table["\(large) linear"]
        else { return }
        print(
            String(
                format: "  tree at %d: last/first p50 %.2fx (target <= 1.2x); last at %d / last at %d %.2fx (target <= 1.2x)", large,
                tree.last / tree.first, large, small, tree.last / treeSmall.last))
        print(String(format: "  linear at %d: last/first p50 %.2fx (the growth the tree removes)", large, linear.last / linear.first))
        print(String(format: "  full sync tree / linear at %d: %.2fx (target <= 1.1x)", large, tree.sync / linear.sync))
    }

    /// Returns p50 and p99 in microseconds for the first and the last service, and the full sync's seconds.
    /// Who writes the rules into the node's tables.
    enum Writer {
        case legacy, nft
        /// `iptables-nft-restore` of the dry-run text, jumps inserted as kube-proxy inserts them.
        case nftRestore
    }

    /// Target 5 of the nft backend: the first packet crosses natsync's nf_tables rules as fast as
    /// the same rules written by iptables-nft-restore.
    static func runNFT(services: Int, connections: Int) {
        guard getuid() == 0 else { return }
        print("first-packet latency on nf_tables, \(services) services (linear), \(connections) connections each")
        print("writer                 first p50   p99 (us)  last p50    p99 (us)")
        var lasts: [Double] = []
        for (label, writer) in [("natsync nft backend", Writer.nft), ("iptables-nft-restore", Writer.nftRestore)] {
            do {
                let result = try measure(services: services, dispatch: .linear, connections: connections, writer: writer)
                lasts.append(result.last[0])
                print(
                    String(
                        format: "%@  %9.1f  %9.1f  %9.1f  %9.1f", label.padding(toLength: 21, withPad: " ", startingAt: 0), result.first[0],
                        result.first[1], result.last[0], result.last[1]))
            } catch {
                print("\(label): failed: \(error)")
            }
        }
        guard lasts.count == 2 else { return }
        print(
            String(
                format: "  5. last-service p50, natsync / iptables-nft-restore: %.2fx (target <= 1.0x, within noise)", lasts[0] / lasts[1]))
    }

    static func measure(services: Int, dispatch: ServiceDispatch, connections: Int, writer: Writer = .legacy) throws -> (
        first: [Double], last: [Double], sync: Double
    ) {
        let prefix = "natsync-dsp-\(getpid())"
        let node = "\(prefix)-node"
        let client = "\(prefix)-client"
        let pod = "\(prefix)-pod"
        defer { for name in [client, pod, node] { ConntrackBench.shell(["ip", "netns", "delete", name]) } }
        for name in [node, client, pod] { try shell(["ip", "netns", "add", name]) }
        try shell(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for (index, name) in [client, pod].enumerated() {
            let subnet = index + 1
            try shell(["ip", "-n", node, "link", "add", "veth\(subnet)", "type", "veth", "peer", "name", "eth0", "netns", name])
            try shell(["ip", "-n", node, "addr", "add", "10.0.\(subnet).1/24", "dev", "veth\(subnet)"])
            try shell(["ip", "-n", name, "addr", "add", "10.0.\(subnet).2/24", "dev", "eth0"])
            for (namespace, device) in [(node, "veth\(subnet)"), (name, "eth0"), (name, "lo")] {
                try shell(["ip", "-n", namespace, "link", "set", device, "up"])
            }
            try shell(["ip", "-n", name, "route", "add", "default", "via", "10.0.\(subnet).1"])
        }

        let state = cluster(services)
        let options = ProxyOptions(nodeName: "node-0", clusterCIDRs: [CIDR("10.0.0.0/16")!], serviceDispatch: dispatch)
        let rules = RuleGenerator(options: options).rules(for: state)
        let start = ContinuousClock.now
        switch writer {
        case .legacy: try NetworkNamespace.run(in: node) { _ = try LegacyTables(lockTimeout: .seconds(30)).sync(rules.tables) }
        case .nft: try NetworkNamespace.run(in: node) { _ = try NFTTables(retryTimeout: .seconds(30)).sync(rules.tables) }
        case .nftRestore:
            var lines: [Substring] = []
            var inserts: [Substring] = []
            for line in RestoreText.render(rules.tables, family: .ipv4).split(separator: "\n") {
                if line.hasPrefix("# -I ") {
                    inserts.append(line.dropFirst(2))
                } else if line == "COMMIT" {
                    lines += inserts + ["COMMIT"]
                    inserts = []
                } else {
                    lines.append(line)
                }
            }
            let restored = try ChildRun.run(
                ["ip", "netns", "exec", node, "iptables-nft-restore"], input: try write(lines.joined(separator: "\n") + "\n"))
            guard restored.status == 0 else { throw BenchError("iptables-nft-restore exited \(restored.status)") }
        }
        let sync = ConntrackBench.seconds(since: start)

        let listener = try NetworkNamespace.run(in: pod) { try Listener(port: 8080) }
        defer { listener.stop() }
        let first = socketAddress(for: state.services.first!.clusterIPs[0])
        let last = socketAddress(for: state.services.last!.clusterIPs[0])
        var firstTimes: [Double] = []
        var lastTimes: [Double] = []
        try NetworkNamespace.run(in: client) {
            for _ in 0..<100 {
                _ = try connectTime(first)
                _ = try connectTime(last)
            }
            for _ in 0..<connections {
                firstTimes.append(try connectTime(first))
                lastTimes.append(try connectTime(last))
            }
        }
        return (
            [percentile(firstTimes, 0.5), percentile(firstTimes, 0.99)], [percentile(lastTimes, 0.5), percentile(lastTimes, 0.99)], sync
        )
    }

    /// `text` in a temporary file, for a child's standard input.
    static func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-dispatch-\(getpid()).rules").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `count` services named so that name order is KUBE-SERVICES order, cluster IPs from 10.96.0.1 on.
    static func cluster(_ count: Int) -> ClusterState {
        var services: [Service] = []
        var slices: [EndpointSlice] = []
        for index in 0..<count {
            let name = NamespacedName(
                namespace: "bench", name: "svc-" + String(repeating: "0", count: 6 - String(index).count) + String(index))
            let clusterIP = IPAddress.v4(0x0A60_0000 + UInt32(index / 250) << 8 + UInt32(index % 250 + 1))
            services.append(Service(name: name, clusterIPs: [clusterIP], ports: [.init(name: "http", protocol: .tcp, port: 80)]))
            slices.append(
                EndpointSlice(
                    name: NamespacedName(namespace: "bench", name: name.name + "-a"), service: name, addressType: .ipv4,
                    ports: [.init(name: "http", protocol: .tcp, port: 8080)], endpoints: [.init(address: IPAddress("10.0.2.2")!)]))
        }
        return ClusterState(services: services, endpointSlices: slices)
    }

    static func socketAddress(for address: IPAddress) -> sockaddr_in {
        var result = sockaddr_in()
        result.sin_family = sa_family_t(AF_INET)
        result.sin_port = UInt16(80).bigEndian
        guard case .v4(let value) = address else { return result }
        result.sin_addr.s_addr = value.bigEndian
        return result
    }

    /// Microseconds for one blocking connect; the socket is then reset (SO_LINGER 0).
    static func connectTime(_ target: sockaddr_in) throws -> Double {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        var target = target
        let start = ContinuousClock.now
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let elapsed = ConntrackBench.seconds(since: start) * 1e6
        guard result == 0 else { throw BenchError("connect: \(String(cString: strerror(errno)))") }
        return elapsed
    }

    static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    static func shell(_ arguments: [String]) throws {
        guard ConntrackBench.shell(arguments) == 0 else { throw BenchError("failed: \(arguments.joined(separator: " "))") }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A TCP listener in the namespace it was made in, accepting and closing on its own thread.
final class Listener: @unchecked Sendable {
    let fd: Int32
    private let thread: Thread

    init(port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 4096) == 0 else { throw BenchError("listen: \(String(cString: strerror(errno)))") }
        thread = Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                close(client)
            }
        }
        thread.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
