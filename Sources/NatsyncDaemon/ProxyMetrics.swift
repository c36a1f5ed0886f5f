import NatsyncIPTables
import NatsyncNet
import Prometheus

/// kube-proxy's metrics, under its names, labels and help texts, so dashboards and alerts built
/// for kube-proxy work: the sync series once per family (`ip_family`), the change counts and
/// health totals once per node. Plus natsync's own `natsync_` counters. Created once; the
/// runner's observer feeds them.
public final class ProxyMetrics: Sendable {
    /// The series of one family's proxier.
    struct FamilySeries: Sendable {
        let syncDuration: DurationHistogram
        let fullSyncDuration: DurationHistogram
        let partialSyncDuration: DurationHistogram
        let lastSync: Gauge
        let lastQueued: Gauge
        let restoreFailures: Counter
        let partialRestoreFailures: Counter
        let rulesTotal: [TableName: Gauge]
        let rulesLast: [TableName: Gauge]
        let conntrackDeleted: Counter
        let conntrackFailures: Counter
        let conntrackDuration: DurationHistogram
        let networkProgramming: ValueHistogram
        /// By `traffic_policy`: internal, external.
        let noLocalEndpoints: [String: Gauge]
    }

    public let registry: PrometheusCollectorRegistry
    let families: [IPFamily: FamilySeries]
    let serviceChangesPending: Gauge
    let serviceChangesTotal: Counter
    let endpointChangesPending: Gauge
    let endpointChangesTotal: Counter
    let driftRepairs: Counter
    let healthz: [Int: Counter]
    let livez: [Int: Counter]

    public init(families: [IPFamily]) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        // kube-proxy's buckets: exponential from 1 ms, x2, 15 buckets.
        let buckets = (0..<15).map { Duration.microseconds(1000 << $0) }
        // kube-proxy's buckets: 0.25, 0.5, 1-59 by 1, 60-115 by 5, 120-300 by 30 seconds.
        let latencyBuckets =
            [0.25, 0.5] + (1...59).map(Double.init) + stride(from: 60.0, through: 115, by: 5) + stride(from: 120.0, through: 300, by: 30)
        var series: [IPFamily: FamilySeries] = [:]
        for family in families {
            let ipFamily = [("ip_family", family.rawValue)]
            func histogram(_ name: String, _ help: String) -> DurationHistogram {
                registry.makeDurationHistogram(name: name, labels: ipFamily, buckets: buckets, help: help)
            }
            func perTable(_ name: String, _ help: String) -> [TableName: Gauge] {
                Dictionary(
                    uniqueKeysWithValues: [TableName.filter, .nat].map {
                        ($0, registry.makeGauge(name: name, labels: [("table", $0.rawValue)] + ipFamily, help: help))
                    })
            }
            series[family] = FamilySeries(
                syncDuration: histogram("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds"),
                fullSyncDuration: histogram(
                    "kubeproxy_sync_full_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for full resyncs"),
                partialSyncDuration: histogram(
                    "kubeproxy_sync_partial_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds for partial resyncs"),
                lastSync: registry.makeGauge(
                    name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", labels: ipFamily,
                    help: "The last time proxy rules were successfully synced"),
                lastQueued: registry.makeGauge(
                    name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", labels: ipFamily,
                    help: "The last time a sync of proxy rules was queued"),
                restoreFailures: registry.makeCounter(
                    name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", labels: ipFamily,
                    help: "Cumulative proxy iptables restore failures"),
                partialRestoreFailures: registry.makeCounter(
                    name: "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total", labels: ipFamily,
                    help: "Cumulative proxy iptables partial restore failures"),
                rulesTotal: perTable("kubeproxy_sync_proxy_rules_iptables_total", "Total number of iptables rules owned by kube-proxy"),
                rulesLast: perTable(
                    "kubeproxy_sync_proxy_rules_iptables_last", "Number of iptables rules written by kube-proxy in last sync"),
                conntrackDeleted: registry.makeCounter(
                    name: "kubeproxy_conntrack_reconciler_deleted_entries_total", labels: ipFamily,
                    help: "Cumulative conntrack flows deleted by conntrack reconciler"),
                conntrackFailures: registry.makeCounter(
                    name: "natsync_conntrack_cleanup_failures_total", labels: ipFamily,
                    help: "Conntrack cleanups that failed after a successful sync (the flows stay until the next full sync)"),
                conntrackDuration: histogram(
                    "kubeproxy_conntrack_reconciler_sync_duration_seconds", "ReconcileConntrackFlowsLatency latency in seconds"),
                networkProgramming: registry.makeValueHistogram(
                    name: "kubeproxy_network_programming_duration_seconds", labels: ipFamily, buckets: latencyBuckets,
                    help: "In Cluster Network Programming Latency in seconds"),
                noLocalEndpoints: Dictionary(
                    uniqueKeysWithValues: ["internal", "external"].map {
                        (
                            $0,
                            registry.makeGauge(
                                name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total", labels: [("traffic_policy", $0)] + ipFamily,
                                help: "Number of services with a Local traffic policy and no endpoints")
                        )
                    }))
        }
        self.families = series
        serviceChangesPending = registry.makeGauge(
            name: "kubeproxy_sync_proxy_rules_service_changes_pending", help: "Pending proxy rules Service changes")
        serviceChangesTotal = registry.makeCounter(
            name: "kubeproxy_sync_proxy_rules_service_changes_total", help: "Cumulative proxy rules Service changes")
        endpointChangesPending = registry.makeGauge(
            name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", help: "Pending proxy rules Endpoint changes")
        endpointChangesTotal = registry.makeCounter(
            name: "kubeproxy_sync_proxy_rules_endpoint_changes_total", help: "Cumulative proxy rules Endpoint changes")
        driftRepairs = registry.makeCounter(
            name: "natsync_drift_repairs_total", help: "Full syncs run because natsync's chains were changed behind its back")
        healthz = Dictionary(
            uniqueKeysWithValues: [200, 503].map {
                (
                    $0,
                    registry.makeCounter(
                        name: "kubeproxy_proxy_healthz_total", labels: [("code", "\($0)")], help: "Cumulative proxy healthz HTTP status")
                )
            })
        livez = Dictionary(
            uniqueKeysWithValues: [200, 503].map {
                (
                    $0,
                    registry.makeCounter(
                        name: "kubeproxy_proxy_livez_total", labels: [("code", "\($0)")], help: "Cumulative proxy livez HTTP status")
                )
            })
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
