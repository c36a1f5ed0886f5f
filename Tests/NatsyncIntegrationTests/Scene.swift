import Foundation
import NatsyncTestSupport
import Testing

/// Why live-kernel tests cannot run here, or nil when they can.
let liveKernelUnavailable: String? = {
    guard getuid() == 0 else { return "needs root to create network namespaces" }
    for tool in ["/usr/sbin/ip", "/usr/sbin/iptables-legacy-save", "/usr/sbin/iptables-legacy-restore"]
    where !FileManager.default.isExecutableFile(atPath: tool) {
        return "needs \(tool) (make deps)"
    }
    return nil
}()

/// Skips a test with a printed reason when the live kernel is not available.
let liveKernel = Testing.ConditionTrait.enabled(if: liveKernelUnavailable == nil, Comment(rawValue: liveKernelUnavailable ?? ""))

/// The build folder holding natsync and natsync-echo.
let buildFolder: URL = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("natsync-echo").path), folder.path != "/" {
        folder = folder.deletingLastPathComponent()
    }
    return folder
}()

/// A node, its pods and an outside host, each a network namespace this test made.
///
/// Layout (the seed's picture): the node namespace routes between point-to-point veths to each
/// pod (`10.0.N.2`, node side `10.0.N.1`) and to an external host on `192.168.0.0/24` (node
/// `192.168.0.2`, external `192.168.0.10`, which is also the node's default gateway). natsync
/// programs the node namespace. Everything made is deleted by ``close()``, which the tests call in
/// a `defer`, and namespaces left by a crashed run of this process's prefix are removed first.
final class Scene {
    let prefix: String
    let node: String
    let external: String
    private(set) var namespaces: [String] = []
    private var servers: [Process] = []
    private var podCount = 0
    let folder: URL
    static let nodeIP = "192.168.0.2"
    static let externalIP = "192.168.0.10"
    static let nodeIPv6 = "fd00:192:168::2"
    static let externalIPv6 = "fd00:192:168::10"
    /// The `--service-dispatch` every ``sync(_:extra:in:check:environment:)`` uses.
    let dispatch: String
    /// Which iptables the node looks like it uses: `legacy` (synced through libiptc) or `nft`
    /// (kubelet's hint in the nft tables; natsync's `auto` then writes through iptables-nft-restore).
    let backend: String

    init(dispatch: String = "linear", backend: String = "legacy") throws {
        self.dispatch = dispatch
        self.backend = backend
        Scene.removeLeftovers()
        prefix = "nstest\(getpid())x\(Int.random(in: 1000...9999))"
        folder = FileManager.default.temporaryDirectory.appendingPathComponent(prefix)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        node = "\(prefix)-node"
        external = "\(prefix)-ext"
        do {
            try addNamespace(node)
            try addNamespace(external)
            try run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            try run(["ip", "-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", external])
            try run(["ip", "-n", node, "addr", "add", "\(Scene.nodeIP)/24", "dev", "eth0"])
            try run(["ip", "-n", external, "addr", "add", "\(Scene.externalIP)/24", "dev", "eth0"])
            try run(["ip", "-n", node, "link", "set", "eth0", "up"])
            try run(["ip", "-n", external, "link", "set", "eth0", "up"])
            try run(["ip", "-n", node, "route", "add", "default", "via", Scene.externalIP])
            // Services' external IPs and VIPs are reached through the node.
            try run(["ip", "-n", external, "route", "add", "default", "via", Scene.nodeIP])
            // The same layout in IPv6, without duplicate address detection so addresses work at once.
            try run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
            try run(["ip", "-n", node, "-6", "addr", "add", "\(Scene.nodeIPv6)/64", "dev", "eth0", "nodad"])
            try run(["ip", "-n", external, "-6", "addr", "add", "\(Scene.externalIPv6)/64", "dev", "eth0", "nodad"])
            try run(["ip", "-n", node, "-6", "route", "add", "default", "via", Scene.externalIPv6])
            try run(["ip", "-n", external, "-6", "route", "add", "default", "via", Scene.nodeIPv6])
            // Look like a legacy host with kubelet, as natsync's backend check expects.
            try run(["ip", "netns", "exec", node, "iptables-\(backend)", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"])
        } catch {
            close()
            throw error
        }
    }

    /// A namespace with nothing in it but loopback.
    func addBareNamespace(_ suffix: String) throws -> String {
        let name = "\(prefix)-\(suffix)"
        try addNamespace(name)
        return name
    }

    private func addNamespace(_ name: String) throws {
        try run(["ip", "netns", "add", name])
        namespaces.append(name)
        try run(["ip", "-n", name, "link", "set", "lo", "up"])
    }

    /// A pod: a namespace at `10.0.N.2` behind the node, serving `natsync-echo` on `port` (TCP and UDP).
    @discardableResult
    func addPod(_ name: String, port: Int = 8080) throws -> String {
        podCount += 1
        let subnet = podCount
        let namespace = "\(prefix)-p\(subnet)"
        try addNamespace(namespace)
        let nodeSide = "veth\(subnet)"
        try run(["ip", "-n", node, "link", "add", nodeSide, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        try run(["ip", "-n", node, "addr", "add", "10.0.\(subnet).1/24", "dev", nodeSide])
        try run(["ip", "-n", namespace, "addr", "add", "10.0.\(subnet).2/24", "dev", "eth0"])
        try run(["ip", "-n", node, "link", "set", nodeSide, "up"])
        try run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
        try run(["ip", "-n", namespace, "route", "add", "default", "via", "10.0.\(subnet).1"])
        try run(["ip", "-n", node, "-6", "addr", "add", "fd00:10:0:\(subnet)::1/64", "dev", nodeSide, "nodad"])
        try run(["ip", "-n", namespace, "-6", "addr", "add", "fd00:10:0:\(subnet)::2/64", "dev", "eth0", "nodad"])
        try run(["ip", "-n", namespace, "-6", "route", "add", "default", "via", "fd00:10:0:\(subnet)::1"])
        podIPv6[name] = "fd00:10:0:\(subnet)::2"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "ip", "netns", "exec", namespace, buildFolder.appendingPathComponent("natsync-echo").path, "serve", name, "\(port)",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        servers.append(server)
        try waitForListener(namespace, port: port)
        podNamespaces[name] = namespace
        return "10.0.\(subnet).2"
    }

    private(set) var podNamespaces: [String: String] = [:]
    /// Each pod's IPv6 address (``addPod(_:port:)`` returns the IPv4 one).
    private(set) var podIPv6: [String: String] = [:]

    private func waitForListener(_ namespace: String, port: Int) throws {
        for _ in 0..<100 {
            let sockets = try run(["ip", "netns", "exec", namespace, "ss", "-ltnH"]).standardOutput
            if sockets.contains(":\(port) ") { return }
            usleep(20_000)
        }
        throw CommandFailure(command: ["natsync-echo serve"], status: -1, output: "no listener on \(port) in \(namespace)")
    }

    /// Writes a manifest into this scene's folder and returns its path.
    func manifest(_ name: String, _ yaml: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Runs natsync against the node namespace.
    @discardableResult
    func natsync(
        _ arguments: [String], in namespace: String? = nil, check: Bool = true, environment: [String: String] = [:]
    ) throws -> CommandOutput {
        let executable = buildFolder.appendingPathComponent("natsync").path
        return try run([executable] + arguments + ["--netns", namespace ?? node], check: check, environment: environment)
    }

    /// `natsync sync` of manifests with the scene's node settings.
    @discardableResult
    func sync(
        _ paths: [String], extra: [String] = [], in namespace: String? = nil, check: Bool = true,
        environment: [String: String] = [:], node: [String] = Scene.nodeFlags
    ) throws -> CommandOutput {
        try natsync(
            ["sync", "--service-dispatch", dispatch] + backendFlags + node + paths.flatMap { ["-f", $0] }
                + extra, in: namespace,
            check: check, environment: environment)
    }

    static let nodeFlags = ["--hostname-override", "node-1", "--cluster-cidr", "10.0.0.0/16", "--node-ip", Scene.nodeIP]
    static let nodeFlagsIPv6 = [
        "--hostname-override", "node-1", "--cluster-cidr", "fd00:10::/48", "--node-ip", Scene.nodeIPv6, "--ip-family", "ipv6",
    ]

    /// `count` HTTP requests from `namespace` to `target`: one answer (`Hello from NAME; you are IP`), `refused` or `timeout` each.
    func get(from namespace: String, _ target: String, count: Int) throws -> [String] {
        let echo = buildFolder.appendingPathComponent("natsync-echo").path
        let output = try run(["ip", "netns", "exec", namespace, echo, "get", target, "\(count)"])
        return output.standardOutput.split(separator: "\n").map(String.init)
    }

    /// Datagrams from fixed source ports: one `PORT ANSWER` or `PORT timeout` line each.
    func udp(from namespace: String, _ target: String, ports: ClosedRange<Int>, rounds: Int) throws -> [String] {
        let echo = buildFolder.appendingPathComponent("natsync-echo").path
        let output = try run([
            "ip", "netns", "exec", namespace, echo, "udp", target, "\(ports.lowerBound)", "\(ports.upperBound)", "\(rounds)",
        ])
        return output.standardOutput.split(separator: "\n").map(String.init)
    }

    /// `--iptables-backend legacy` on a legacy node; `auto`, which must pick restore, on an nft one.
    var backendFlags: [String] { ["--iptables-backend", backend == "legacy" ? "legacy" : "auto"] }

    /// `iptables-legacy-restore` or `iptables-nft-restore`, for rules of other programs.
    var restoreCommand: String { "iptables-\(backend)-restore" }

    /// `iptables-legacy-save` (or `-nft-save`) of the node namespace (with counters when asked).
    func save(_ namespace: String? = nil, counters: Bool = false, tables: [String] = ["filter", "nat"]) throws -> String {
        try tables.map { table in
            try run(["ip", "netns", "exec", namespace ?? node, "iptables-\(backend)-save", "-t", table] + (counters ? ["-c"] : []))
                .standardOutput
        }.joined()
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
    }

    func close() {
        for server in servers where server.isRunning {
            server.terminate()
        }
        // `ip netns exec` forwards nothing to the server it started: kill it by namespace.
        for namespace in namespaces {
            if let pids = try? run(["ip", "netns", "pids", namespace], check: false).standardOutput {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
        }
        for server in servers { server.waitUntilExit() }
        for namespace in namespaces.reversed() {
            _ = try? run(["ip", "netns", "delete", namespace], check: false)
        }
        namespaces = []
        try? FileManager.default.removeItem(at: folder)
    }

    /// Deletes namespaces of earlier test processes that died before cleaning up.
    static func removeLeftovers() {
        guard let list = try? run(["ip", "netns", "list"], check: false).standardOutput else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("nstest"), let pid = Int32(name.dropFirst(6).prefix { $0.isNumber }), kill(pid, 0) != 0 else { continue }
            if let pids = try? run(["ip", "netns", "pids", name], check: false).standardOutput {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            }
            _ = try? run(["ip", "netns", "delete", name], check: false)
        }
    }
}

/// Kubernetes objects for the tests, as YAML.
enum Objects {
    static func service(
        _ name: String, clusterIP: String, port: Int = 80, proto: String = "TCP", type: String = "ClusterIP", nodePort: Int? = nil,
        extra: String = ""
    ) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: default}
        spec:
          type: \(type)
          clusterIP: \(clusterIP)
          ports: [{name: p, port: \(port), protocol: \(proto)\(nodePort.map { ", nodePort: \($0)" } ?? "")}]
        \(extra)
        ---

        """
    }

    /// An EndpointSlice; each endpoint is `ip` or `ip@node`.
    static func slice(_ service: String, _ endpoints: [String], port: Int = 8080, proto: String = "TCP", suffix: String = "abc") -> String {
        let items = endpoints.map { entry -> String in
            let parts = entry.split(separator: "@")
            let node = parts.count > 1 ? ", nodeName: \(parts[1])" : ", nodeName: node-2"
            return "  - {addresses: [\"\(parts[0])\"]\(node)}"
        }
        return """
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: \(service)-\(suffix)
              namespace: default
              labels: {kubernetes.io/service-name: \(service)}
            addressType: \(endpoints.first?.contains(":") == true ? "IPv6" : "IPv4")
            ports: [{name: p, port: \(port), protocol: \(proto)}]
            endpoints:
            \(items.isEmpty ? "  []" : items.joined(separator: "\n"))
            ---

            """
    }
}

/// Pearson's chi-square statistic of `counts` against an even split.
func chiSquare(_ counts: [Int]) -> Double {
    let total = Double(counts.reduce(0, +))
    let expected = total / Double(counts.count)
    return counts.reduce(0) { $0 + pow(Double($1) - expected, 2) / expected }
}

/// Critical values at p = 0.0001 for 1 to 4 degrees of freedom: a fair split exceeds them once in 10,000 runs.
let chiSquareCritical: [Int: Double] = [1: 15.14, 2: 18.42, 3: 21.11, 4: 23.51]

/// The pod that wrote an answer ("Hello from NAME; you are IP"), or the answer itself ("refused").
func podName(_ answer: String) -> String {
    guard answer.hasPrefix("Hello from ") else { return answer }
    return String(answer.dropFirst(11).prefix { $0 != ";" })
}

/// How many answers came from each pod name.
func tally(_ answers: [String]) -> [String: Int] {
    var counts: [String: Int] = [:]
    for answer in answers { counts[podName(answer), default: 0] += 1 }
    return counts
}
