import NatsyncIPTables
import Prometheus

/// kube-proxy's metrics (`kubeproxy_…`, with the `ip_family` label), so existing dashboards work,
/// plus natsync's drift counter. Created once; the runner's observer feeds them.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
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
    let driftRepairs: Counter
    let networkProgramming: ValueHistogram
    let serviceChangesPending: Gauge
    let serviceChangesTotal: Counter
    let endpointChangesPending: Gauge
    let endpointChangesTotal: Counter
    /// By `traffic_policy`: internal, external.
    let noLocalEndpoints: [String: Gauge]
    let healthz: [Int: Counter]
    let livez: [Int: Counter]

    public init(family: IPFamily) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let ipFamily = [("ip_family", family.rawValue)]
        // kube-proxy's buckets: exponential from 1 ms, x2, 15 buckets.
        let buckets = (0..<15).map { Duration.microseconds(1000 << $0) }
        syncDuration = registry.makeDurationHistogram(name: "kubeproxy_sync_proxy_rules_duration_seconds", labels: ipFamily, buckets: buckets)
        fullSyncDuration = registry.makeDurationHistogram(
            name: "kubeproxy_sync_full_proxy_rules_duration_seconds", labels: ipFamily, buckets: buckets)
        partialSyncDuration = registry.makeDurationHistogram(
            name: "kubeproxy_sync_partial_proxy_rules_duration_seconds", labels: ipFamily, buckets: buckets)
        lastSync = registry.makeGauge(name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", labels: ipFamily)
        lastQueued = registry.makeGauge(name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", labels: ipFamily)
        restoreFailures = registry.makeCounter(name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", labels: ipFamily)
        partialRestoreFailures = registry.makeCounter(
            name: "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total", labels: ipFamily)
        var total: [TableName: Gauge] = [:]
        var last: [TableName: Gauge] = [:]
        for table in [TableName.filter, .nat] {
            total[table] = registry.makeGauge(
                name: "kubeproxy_sync_proxy_rules_iptables_total", labels: [("table", table.rawValue)] + ipFamily)
            last[table] = registry.makeGauge(
                name: "kubeproxy_sync_proxy_rules_iptables_last", labels: [("table", table.rawValue)] + ipFamily)
        }
        rulesTotal = total
        rulesLast = last
        conntrackDeleted = registry.makeCounter(name: "kubeproxy_conntrack_reconciler_deleted_entries_total", labels: ipFamily)
        conntrackFailures = registry.makeCounter(name: "natsync_conntrack_cleanup_failures_total", labels: ipFamily)
        conntrackDuration = registry.makeDurationHistogram(
            name: "kubeproxy_conntrack_reconciler_sync_duration_seconds", labels: ipFamily, buckets: buckets)
        driftRepairs = registry.makeCounter(name: "natsync_drift_repairs_total", labels: ipFamily)
        // kube-proxy's buckets: 0.25, 0.5, 1-59 by 1, 60-115 by 5, 120-300 by 30 seconds.
        let latencyBuckets = [0.25, 0.5] + (1...59).map(Double.init) + stride(from: 60.0, through: 115, by: 5) + stride(from: 120.0, through: 300, by: 30)
        networkProgramming = registry.makeValueHistogram(
            name: "kubeproxy_network_programming_duration_seconds", labels: ipFamily, buckets: latencyBuckets)
        serviceChangesPending = registry.makeGauge(name: "kubeproxy_sync_proxy_rules_service_changes_pending", labels: ipFamily)
        serviceChangesTotal = registry.makeCounter(name: "kubeproxy_sync_proxy_rules_service_changes_total", labels: ipFamily)
        endpointChangesPending = registry.makeGauge(name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", labels: ipFamily)
        endpointChangesTotal = registry.makeCounter(name: "kubeproxy_sync_proxy_rules_endpoint_changes_total", labels: ipFamily)
        noLocalEndpoints = Dictionary(uniqueKeysWithValues: ["internal", "external"].map {
            ($0, registry.makeGauge(name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total", labels: [("traffic_policy", $0)] + ipFamily))
        })
        healthz = Dictionary(uniqueKeysWithValues: [200, 503].map {
            ($0, registry.makeCounter(name: "kubeproxy_proxy_healthz_total", labels: [("code", "\($0)")]))
        })
        livez = Dictionary(uniqueKeysWithValues: [200, 503].map {
            ($0, registry.makeCounter(name: "kubeproxy_proxy_livez_total", labels: [("code", "\($0)")]))
        })
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
