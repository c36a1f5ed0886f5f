import Foundation
import NatsyncTestSupport
import Testing

/// The kernel settings kube-proxy makes at start, made by natsync in the namespace it programs,
/// read back there; the host's own values are never touched.
@Suite(.serialized, liveKernel)
struct HostSettingsTests {
    static func sysctl(_ namespace: String?, _ name: String) throws -> String {
        let command = ["sysctl", "-n", name]
        let output = try run(namespace.map { ["ip", "netns", "exec", $0] + command } ?? command)
        return output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let watched = [
        "net.ipv4.conf.all.route_localnet", "net.netfilter.nf_conntrack_tcp_timeout_established",
        "net.netfilter.nf_conntrack_tcp_timeout_close_wait", "net.netfilter.nf_conntrack_tcp_be_liberal",
        "net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_max",
    ]

    /// Defaults: route_localnet for NodePorts on 127.0.0.1 (which then answer), kube-proxy's TCP
    /// timeouts; the conntrack limit is the host's, so it is left alone inside a namespace.
    @Test func syncMakesKubeProxysSettingsAndLocalhostNodePortsAnswer() throws {
        let scene = try Scene()
        defer { scene.close() }
        let host = try Self.watched.map { try Self.sysctl(nil, $0) }
        let a = try scene.addPod("pod-a")
        #expect(try Self.sysctl(scene.node, "net.ipv4.conf.all.route_localnet") == "0")
        let yaml = Objects.service("np", clusterIP: "10.96.0.60", type: "NodePort", nodePort: 30080) + Objects.slice("np", [a])
        let synced = try scene.sync([try scene.manifest("np.yaml", yaml)])
        #expect(synced.standardError.contains("sysctl net.ipv4.conf.all.route_localnet = 1 (was 0)"), "\(synced.standardError)")
        #expect(try Self.sysctl(scene.node, "net.ipv4.conf.all.route_localnet") == "1")
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_tcp_timeout_established") == "86400")
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_tcp_timeout_close_wait") == "3600")
        #expect(!synced.standardError.contains("nf_conntrack_max"), "\(synced.standardError)")
        let answers = try scene.get(from: scene.node, "127.0.0.1:30080", count: 3)
        #expect(answers.allSatisfy { $0.hasPrefix("Hello from pod-a") }, "\(answers)")
        // Said once: a second sync finds them made.
        let again = try scene.sync([try scene.manifest("np.yaml", yaml)])
        #expect(!again.standardError.contains("sysctl"), "\(again.standardError)")
        #expect(try Self.watched.map { try Self.sysctl(nil, $0) } == host, "the host's own values")
    }

    @Test func flagsChooseTheValuesAndBeLiberalDropsTheInvalidRule() throws {
        let scene = try Scene()
        defer { scene.close() }
        let manifest = try scene.manifest("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        try scene.sync(
            [manifest],
            extra: [
                "--conntrack-tcp-timeout-established", "2h", "--conntrack-tcp-timeout-close-wait", "30m", "--conntrack-tcp-be-liberal",
                "--conntrack-udp-timeout", "45s", "--iptables-localhost-nodeports=false",
            ])
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_tcp_timeout_established") == "7200")
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_tcp_timeout_close_wait") == "1800")
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_tcp_be_liberal") == "1")
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_udp_timeout") == "45")
        #expect(try Self.sysctl(scene.node, "net.ipv4.conf.all.route_localnet") == "0", "no localhost NodePorts, no route_localnet")
        #expect(!(try scene.save()).contains("--ctstate INVALID -j DROP"), "be-liberal: kube-proxy drops no INVALID packets")
    }

    @Test func theDaemonMakesThemAtStartAndLogsEach() throws {
        let scene = try Scene()
        defer { scene.close() }
        let manifest = try scene.manifest("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        let daemon = try DaemonProcess(scene: scene, manifests: manifest, extra: ["--conntrack-udp-timeout-stream", "3m"])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try DaemonTests.matches(scene, manifest) }
        #expect(try Self.sysctl(scene.node, "net.netfilter.nf_conntrack_udp_timeout_stream") == "180")
        #expect(daemon.logText.contains("kernel setting made"), "\(daemon.logText)")
        #expect(daemon.logText.contains("net.netfilter.nf_conntrack_udp_timeout_stream = 180"), "\(daemon.logText)")
    }
}
