import Foundation
import NatsyncTestSupport
import Testing

/// `natsync run` on a scene's node: manifests change, tables drift, syncs fail, the process stops.
@Suite(.serialized, liveKernel)
struct DaemonTests {
    /// True when the live tables already match `manifests` (`natsync diff` exits 0).
    static func matches(_ scene: Scene, _ manifests: String) throws -> Bool {
        try scene.natsync(["diff", "-f", manifests] + scene.backendFlags + Scene.nodeFlags, check: false).status == 0
    }

    @Test func followsAManifestDirectoryKeepingTheLastGoodStateOfABrokenFile() throws {
        let scene = try Scene()
        defer { scene.close() }
        let folder = scene.folder.appendingPathComponent("manifests")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try write("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1", "10.0.9.2"]))
        let daemon = try DaemonProcess(scene: scene, manifests: folder.path)
        defer { _ = daemon.stop() }
        // min-sync-period 200 ms + 1 s.
        let bound = 1.2 + 0.5
        try waitUntil(seconds: 5) { try Self.matches(scene, folder.path) }

        try write("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        try waitUntil(seconds: bound) { try Self.matches(scene, folder.path) }
        try write(
            "dns.yaml",
            Objects.service("dns", clusterIP: "10.96.0.10", port: 53, proto: "UDP") + Objects.slice("dns", ["10.0.9.3"], proto: "UDP"))
        try waitUntil(seconds: bound) { try Self.matches(scene, folder.path) }
        #expect(try scene.save().contains("kube-system") == false)
        // A deletion counts at the look after the one that found the file gone (1 s later).
        try FileManager.default.removeItem(at: folder.appendingPathComponent("dns.yaml"))
        try waitUntil(seconds: bound + 1) { try Self.matches(scene, folder.path) }

        // A broken file: the rules keep its last good contents and the log says why.
        let good = try String(contentsOf: folder.appendingPathComponent("web.yaml"), encoding: .utf8)
        let snapshot = scene.folder.appendingPathComponent("good.yaml")
        try good.write(to: snapshot, atomically: true, encoding: .utf8)
        try write("web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web\n")
        try waitUntil(seconds: bound) { daemon.logText.contains("keeping its last good contents") }
        #expect(try Self.matches(scene, snapshot.path))
        try write("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.7"]))
        try waitUntil(seconds: bound) { try Self.matches(scene, folder.path) }
        #expect(daemon.stop() == 0)
        #expect(try Self.matches(scene, folder.path), "rules stay in place after a graceful stop")
    }

    /// With --config, the daemon takes its addresses, periods and cluster CIDR from the file, and
    /// says which flags the file overrode (kube-proxy's precedence).
    @Test func aConfigFileSetsTheDaemonsAddressesAndPeriods() throws {
        let scene = try Scene()
        defer { scene.close() }
        let config = try scene.manifest(
            "config.yaml",
            """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            healthzBindAddress: 127.0.0.1:0
            metricsBindAddress: 127.0.0.1:0
            clusterCIDR: 10.0.0.0/16
            iptables: {minSyncPeriod: 200ms, syncPeriod: 2s}
            oomScoreAdj: 300
            logging: {format: json, verbosity: 4}

            """)
        let manifest = try scene.manifest("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        let daemon = try DaemonProcess(scene: scene, manifests: manifest, extra: ["--config", config, "--oom-score-adj", "100"])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try Self.matches(scene, manifest) }
        #expect(daemon.logText.contains("--healthz-bind-address ignored: --config is given"), "\(daemon.logText)")
        #expect(daemon.logText.contains("--iptables-min-sync-period ignored"), "\(daemon.logText)")
        #expect(daemon.logText.contains("--oom-score-adj ignored"), "\(daemon.logText)")
        #expect(try String(contentsOfFile: "/proc/\(daemon.process.processIdentifier)/oom_score_adj", encoding: .utf8) == "300\n")
        // logging.format json, verbosity 4 (debug): every line one JSON object, debug lines included.
        let lines = daemon.logText.split(separator: "\n")
        #expect(
            !lines.isEmpty && lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] },
            "\(daemon.logText)")
        #expect(lines.contains { $0.contains(#""msg":"synced""#) && $0.contains(#""v":0"#) }, "\(daemon.logText)")
        #expect(try httpGet(port: daemon.healthPort, path: "/healthz").status == 200)
        // The file's 2 s sync period: a flushed chain is repaired within it.
        let sep = try scene.save().split(separator: "\n").first { $0.hasPrefix(":KUBE-SEP-") }.map {
            String($0.dropFirst().prefix { $0 != " " })
        }!
        try run(["ip", "netns", "exec", scene.node, "iptables-legacy", "-t", "nat", "-F", sep])
        try waitUntil(seconds: 4) { try Self.matches(scene, manifest) }
    }

    @Test(arguments: ["legacy", "nft"])
    func repairsTablesChangedBehindItsBackWithinOneSyncPeriod(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        let manifest = try scene.manifest(
            "web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1", "10.0.9.2"]))
        let daemon = try DaemonProcess(scene: scene, manifests: manifest, extra: ["--iptables-sync-period", "2s"])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try Self.matches(scene, manifest) }
        let node = ["ip", "netns", "exec", scene.node, "iptables-\(backend)", "-t", "nat"]
        let sep = try scene.save().split(separator: "\n").first { $0.hasPrefix(":KUBE-SEP-") }.map {
            String($0.dropFirst().prefix { $0 != " " })
        }!
        let svc = try scene.save().split(separator: "\n").first { $0.hasPrefix(":KUBE-SVC-") }.map {
            String($0.dropFirst().prefix { $0 != " " })
        }!
        try run(node + ["-F", "KUBE-SERVICES"])
        try run(node + ["-F", svc])
        try run(node + ["-F", sep])
        try run(node + ["-X", sep])
        #expect(try !Self.matches(scene, manifest))
        try waitUntil(seconds: 2 + 1) { try Self.matches(scene, manifest) }
        let metrics = try httpGet(port: daemon.metricsPort, path: "/metrics").body
        let repairs = metrics.split(separator: "\n").first { $0.hasPrefix("natsync_drift_repairs_total") }
        #expect(repairs.map { !$0.hasSuffix(" 0") } == true, "\(repairs ?? "no drift metric")")
    }

    @Test func healthAndMetricsAnswerAsKubeProxysAndHealthFailsWhenSyncsCannotApply() throws {
        let scene = try Scene()
        defer { scene.close() }
        let lock = scene.folder.appendingPathComponent("xtables.lock").path
        let folder = scene.folder.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("web.yaml")
        try (Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"])).write(
            to: file, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(
            scene: scene, manifests: folder.path, extra: ["--iptables-sync-period", "1s", "--iptables-lock-timeout", "0.2"],
            environment: ["XTABLES_LOCKFILE": lock])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try Self.matches(scene, folder.path) }

        let healthz = try httpGet(port: daemon.healthPort, path: "/healthz")
        #expect(healthz.status == 200)
        // kube-proxy's default; lowering it takes CAP_SYS_RESOURCE, without which it is a warning.
        if hasCapability(capSysResource) {
            #expect(try String(contentsOfFile: "/proc/\(daemon.process.processIdentifier)/oom_score_adj", encoding: .utf8) == "-999\n")
        } else {
            #expect(daemon.logText.contains("oom_score_adj = -999 not set"), "\(daemon.logText)")
        }
        #expect(healthz.body.hasPrefix("{\"lastUpdated\":\""), "\(healthz.body)")
        #expect(
            healthz.body.contains(",\"currentTime\":\"") && healthz.body.contains(",\"nodeEligible\":true,\"healthy\":true,"),
            "\(healthz.body)")
        #expect(healthz.body.contains(",\"status\":{\"IPv4\":{\"lastUpdated\":\""), "\(healthz.body)")
        let livez = try httpGet(port: daemon.healthPort, path: "/livez")
        #expect(livez.status == 200 && !livez.body.contains("nodeEligible"))
        let metrics = try httpGet(port: daemon.metricsPort, path: "/metrics")
        #expect(metrics.status == 200)
        for name in [
            "kubeproxy_sync_proxy_rules_duration_seconds_bucket", "kubeproxy_sync_full_proxy_rules_duration_seconds_count",
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\",ip_family=\"IPv4\"}",
            "kubeproxy_proxy_healthz_total{code=\"200\"}",
        ] {
            #expect(metrics.body.contains(name), "\(name)")
        }

        // Someone holds the xtables lock: a queued change cannot be applied, and after 2 sync
        // periods the proxy reports itself unhealthy, until the lock is free again.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = [lock, "sleep", "4"]
        try holder.run()
        defer { holder.waitUntilExit() }
        usleep(200_000)
        try (Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.2"])).write(
            to: file, atomically: true, encoding: .utf8)
        try waitUntil(seconds: 3.5) { try httpGet(port: daemon.healthPort, path: "/healthz").status == 503 }
        #expect(try httpGet(port: daemon.healthPort, path: "/livez").status == 503)
        holder.waitUntilExit()
        try waitUntil(seconds: 3) { try httpGet(port: daemon.healthPort, path: "/healthz").status == 200 }
        #expect(try Self.matches(scene, folder.path))
        let after = try httpGet(port: daemon.metricsPort, path: "/metrics").body
        #expect(after.contains("kubeproxy_proxy_healthz_total{code=\"503\"}"))
        #expect(
            after.split(separator: "\n").contains {
                $0.hasPrefix("kubeproxy_sync_proxy_rules_iptables_restore_failures_total") && !$0.hasSuffix(" 0")
            })
    }

    @Test func healthCheckNodePortsFollowLocalEndpointsAndLatencyIsMeasured() throws {
        let scene = try Scene()
        defer { scene.close() }
        let folder = scene.folder.appendingPathComponent("hc")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("lb.yaml")
        let service = Objects.service(
            "lb", clusterIP: "10.96.0.30", type: "LoadBalancer", nodePort: 30300,
            extra: "  externalTrafficPolicy: Local\n  healthCheckNodePort: 32001")
        func slice(_ endpoint: String) -> String {
            let trigger = ISO8601DateFormatter().string(from: Date())
            return Objects.slice("lb", [endpoint]).replacingOccurrences(
                of: "  labels: {kubernetes.io/service-name: lb}",
                with:
                    "  labels: {kubernetes.io/service-name: lb}\n  annotations: {endpoints.kubernetes.io/last-change-trigger-time: \"\(trigger)\"}"
            )
        }
        try (service + slice("10.0.9.1@node-1")).write(to: file, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(scene: scene, manifests: folder.path)
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try Self.matches(scene, folder.path) }
        let local = #"{"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 1, "serviceProxyHealthy": true}"#
        try waitUntil(seconds: 2) { try scene.get(from: scene.external, "\(Scene.nodeIP):32001", count: 1) == [local] }

        try (service + slice("10.0.9.2@node-2")).write(to: file, atomically: true, encoding: .utf8)
        let none = #"{"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 0, "serviceProxyHealthy": true}"#
        try waitUntil(seconds: 2) { try scene.get(from: scene.external, "\(Scene.nodeIP):32001", count: 1) == [none] }

        let metrics = try httpGet(port: daemon.metricsPort, path: "/metrics").body
        let count = metricValue(metrics, "kubeproxy_network_programming_duration_seconds_count")
        #expect((count ?? 0) > 0, "latency samples: \(count.map { "\($0)" } ?? "no metric")")
        // kube-proxy's change and no-local-endpoint series: the slice changed twice, the service
        // once, and its endpoint is now on another node.
        #expect(metricValue(metrics, "kubeproxy_sync_proxy_rules_endpoint_changes_total") == 2, "\(metrics)")
        #expect(metricValue(metrics, "kubeproxy_sync_proxy_rules_service_changes_total") == 1, "\(metrics)")
        #expect(metricValue(metrics, "kubeproxy_sync_proxy_rules_endpoint_changes_pending") == 0, "\(metrics)")
        #expect(metricValue(metrics, #"kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external""#) == 1, "\(metrics)")
        #expect(metricValue(metrics, #"kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="internal""#) == 0, "\(metrics)")
    }

    /// With `--nodeport-addresses`, an address added to the node answers NodePorts and health-check
    /// node ports within a sync period, without a restart.
    @Test func nodePortsFollowAnAddressAddedToTheNode() throws {
        let scene = try Scene()
        defer { scene.close() }
        let pod = try scene.addPod("pod-a")
        let folder = scene.folder.appendingPathComponent("np")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let service = Objects.service(
            "lb", clusterIP: "10.96.0.70", type: "LoadBalancer", nodePort: 30700,
            extra: "  externalTrafficPolicy: Local\n  healthCheckNodePort: 32003")
        try (service + Objects.slice("lb", ["\(pod)@node-1"])).write(
            to: folder.appendingPathComponent("lb.yaml"), atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(
            scene: scene, manifests: folder.path, extra: ["--nodeport-addresses", "192.168.0.0/24", "--iptables-sync-period", "1s"])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 10) {
            try scene.get(from: scene.external, "\(Scene.nodeIP):30700", count: 1).first?.hasPrefix("Hello") == true
        }
        #expect(try scene.get(from: scene.node, "127.0.0.1:32003", count: 1) == ["refused"], "listening on the node-port addresses only")

        try run(["ip", "-n", scene.node, "addr", "add", "192.168.0.3/24", "dev", "eth0"])
        try waitUntil(seconds: 10) { try scene.get(from: scene.external, "192.168.0.3:30700", count: 1).first?.hasPrefix("Hello") == true }
        let local = #"{"service": {"namespace": "default", "name": "lb"}, "localEndpoints": 1, "serviceProxyHealthy": true}"#
        try waitUntil(seconds: 5) { try scene.get(from: scene.external, "192.168.0.3:32003", count: 1) == [local] }
        #expect(try scene.get(from: scene.external, "\(Scene.nodeIP):32003", count: 1) == [local])
        #expect(daemon.logText.contains("node addresses changed; resyncing"), "\(daemon.logText)")
    }
}
