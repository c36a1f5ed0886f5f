import Foundation
import Logging
import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncReconcile
import Testing

@testable import NatsyncDaemon

/// Why `promtool` cannot check the exposition here, or nil when it can.
let promtoolUnavailable: String? =
    FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") ? nil : "needs /usr/bin/promtool (Debian's prometheus package)"

/// The metrics of a dual-stack node after one sync per family, as `/metrics` serves them.
struct ProxyMetricsTests {
    func exposition() -> String {
        let metrics = ProxyMetrics(families: [.ipv4, .ipv6])
        let observer = DaemonObserver(
            health: HealthState(families: [.ipv4, .ipv6], timeout: .seconds(60)), metrics: metrics,
            healthChecks: HealthCheckServers(netns: nil, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) {
                true
            }, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        var changes = ChangeCounts()
        changes.newServiceChanges = 3
        changes.newEndpointChanges = 5
        observer.queued(changes, families: [.ipv4, .ipv6])
        var report = SyncReport()
        var plan = TablePlan(table: .nat)
        plan.created = [Chain("KUBE-SVC-X", rules: Array(repeating: Rule(target: .accept), count: 7))]
        report.plans = [plan]
        var four = SyncOutcome(full: true, report: report, conntrack: nil, services: 2, endpoints: 4, rules: [.filter: 3, .nat: 20])
        four.noLocalEndpoints = (1, 2)
        observer.synced(four, family: .ipv4, elapsed: .milliseconds(12))
        observer.failed(KernelError(errno: EAGAIN, operation: "commit", message: "busy"), family: .ipv6, elapsed: .milliseconds(3))
        return String(decoding: metrics.exposition(), as: UTF8.self)
    }

    @Test func everySyncSeriesIsPerFamilyAndTheChangeCountsPerNode() {
        let text = exposition()
        for family in ["IPv4", "IPv6"] {
            for series in [
                "kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family=\"\(family)\"}",
                "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family=\"\(family)\"}",
                "kubeproxy_sync_proxy_rules_iptables_total{table=\"nat\",ip_family=\"\(family)\"}",
                "kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy=\"external\",ip_family=\"\(family)\"}",
            ] {
                #expect(text.contains(series + " "), "\(series)")
            }
        }
        #expect(metricValue(text, #"kubeproxy_sync_proxy_rules_iptables_total{table="nat",ip_family="IPv4"}"#) == 20)
        #expect(metricValue(text, #"kubeproxy_sync_proxy_rules_iptables_last{table="nat",ip_family="IPv4"}"#) == 7)
        #expect(metricValue(text, #"kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy="external",ip_family="IPv4"}"#) == 2)
        #expect(metricValue(text, #"kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv6"}"#) == 1)
        #expect(metricValue(text, #"kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"}"#) == 0)
        #expect(metricValue(text, #"kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}"#) == 1)
        #expect(metricValue(text, #"kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv6"}"#) == 0)
        #expect(metricValue(text, "kubeproxy_sync_proxy_rules_service_changes_total") == 3)
        #expect(metricValue(text, "kubeproxy_sync_proxy_rules_endpoint_changes_total") == 5)
        #expect(text.contains("# HELP kubeproxy_sync_proxy_rules_duration_seconds SyncProxyRules latency in seconds\n"))
    }

    /// `promtool check metrics` accepts the exposition; the only lints are the ones kube-proxy's
    /// own names draw (gauges named `_total`), kept so kube-proxy's dashboards work.
    @Test(.enabled(if: promtoolUnavailable == nil, Comment(rawValue: promtoolUnavailable ?? "")))
    func promtoolAcceptsTheExposition() throws {
        let text = exposition()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let allowed: Set<String> = [
            #"kubeproxy_sync_proxy_rules_iptables_total non-counter metrics should not have "_total" suffix"#,
            #"kubeproxy_sync_proxy_rules_no_local_endpoints_total non-counter metrics should not have "_total" suffix"#,
        ]
        let problems = report.split(separator: "\n").map(String.init).filter { !$0.isEmpty && !allowed.contains($0) }
        #expect(problems.isEmpty, "\(report)")
        // 3: lint problems only (the allowed ones); anything else is a parse error.
        #expect(process.terminationStatus == 0 || process.terminationStatus == 3, "\(report)")
    }

    @Test func everySeriesHasHelp() {
        let text = exposition()
        let typed = Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(!typed.isEmpty && typed == helped, "\(typed.subtracting(helped))")
    }

    /// The value of the first sample whose name and labels start with `prefix`.
    func metricValue(_ text: String, _ prefix: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix + " ") || $0.hasPrefix(prefix + "{") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }
}
