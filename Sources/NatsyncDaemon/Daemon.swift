import Foundation
import Logging
import NatsyncIPTables
import NatsyncKernel
import NatsyncKubernetes
import NatsyncModel
import NatsyncNet
import NatsyncRules
import ServiceLifecycle
import Synchronization

/// Feeds sync results to health, metrics and the log: one line per family's sync.
public final class DaemonObserver: SyncObserver {
    let health: HealthState
    let metrics: ProxyMetrics
    let healthChecks: HealthCheckServers
    let logger: Logger
    /// Each family's last health checks and node-port addresses: a dual-stack service is served
    /// by the family with the most local endpoints, and a family that failed keeps its last word.
    private let checksByFamily = Mutex<[IPFamily: (checks: [HealthCheck], addresses: [IPAddress]?)]>([:])

    init(health: HealthState, metrics: ProxyMetrics, healthChecks: HealthCheckServers, logger: Logger) {
        self.health = health
        self.metrics = metrics
        self.healthChecks = healthChecks
        self.logger = logger
    }

    public func queued(_ changes: ChangeCounts, families: [IPFamily]) {
        let now = Date().timeIntervalSince1970
        for family in families {
            health.queued(family)
            metrics.families[family]?.lastQueued.set(now)
        }
        metrics.serviceChangesPending.set(Double(changes.pendingServices))
        metrics.endpointChangesPending.set(Double(changes.pendingEndpoints))
        metrics.serviceChangesTotal.increment(by: Int64(changes.newServiceChanges))
        metrics.endpointChangesTotal.increment(by: Int64(changes.newEndpointChanges))
    }

    public func synced(_ outcome: SyncOutcome, family: IPFamily, elapsed: Duration) {
        health.updated(family)
        let (checks, addresses) = checksByFamily.withLock { byFamily in
            byFamily[family] = (outcome.healthChecks, outcome.healthCheckAddresses)
            return (Self.merged(byFamily.values.map(\.checks)), Self.merged(byFamily.values.map(\.addresses)))
        }
        healthChecks.update(checks, addresses: addresses)
        let now = Date().timeIntervalSince1970
        if let series = metrics.families[family] {
            for trigger in outcome.triggerTimes where trigger <= now {
                series.networkProgramming.record(now - trigger)
            }
            series.syncDuration.record(elapsed)
            (outcome.full ? series.fullSyncDuration : series.partialSyncDuration).record(elapsed)
            series.lastSync.set(now)
            series.noLocalEndpoints["internal"]?.set(Double(outcome.noLocalEndpoints.internal))
            series.noLocalEndpoints["external"]?.set(Double(outcome.noLocalEndpoints.external))
            for (table, count) in outcome.rules { series.rulesTotal[table]?.set(Double(count)) }
            for plan in outcome.report.plans { series.rulesLast[plan.table]?.set(Double(plan.rulesWritten)) }
            if let conntrack = outcome.conntrack {
                series.conntrackDeleted.increment(by: Int64(conntrack.deleted))
                series.conntrackDuration.record(conntrack.elapsed)
                if conntrack.failed > 0 { series.conntrackFailures.increment(by: Int64(conntrack.failed)) }
            }
        }
        // Nothing waits once a sync has taken every change (the runner takes them between syncs).
        metrics.serviceChangesPending.set(Double(0))
        metrics.endpointChangesPending.set(Double(0))
        var metadata: Logger.Metadata = [
            "ip_family": "\(family.rawValue)",
            "sync.kind": "\(outcome.full ? "full" : "partial")",
            "services": "\(outcome.services)", "endpoints": "\(outcome.endpoints)",
            "chains.created": "\(outcome.report.chainsCreated)", "chains.rewritten": "\(outcome.report.chainsRewritten)",
            "chains.deleted": "\(outcome.report.chainsDeleted)", "rules.written": "\(outcome.report.rulesWritten)",
            "committed": "\(outcome.report.committed.map(\.rawValue).joined(separator: ","))",
            "elapsed": "\(elapsed)",
        ]
        if let conntrack = outcome.conntrack { metadata["conntrack.deleted"] = "\(conntrack.deleted)" }
        logger.info("synced", metadata: metadata)
    }

    public func failed(_ error: any Error, family: IPFamily, elapsed: Duration) {
        metrics.families[family]?.restoreFailures.increment()
        logger.error(
            "sync failed; retrying after the sync period",
            metadata: ["ip_family": "\(family.rawValue)", "error": "\(error)", "elapsed": "\(elapsed)"])
    }

    public func driftDetected() {
        metrics.driftRepairs.increment()
    }

    /// One check per service: the family with the most local endpoints answers for it.
    static func merged(_ families: some Sequence<[HealthCheck]>) -> [HealthCheck] {
        var checks: [NamespacedName: HealthCheck] = [:]
        for check in families.joined() {
            if let known = checks[check.service], known.localEndpoints >= check.localEndpoints { continue }
            checks[check.service] = check
        }
        return checks.values.sorted { $0.service < $1.service }
    }

    /// Every family's node-port addresses, or nil (every address) if any family answers on all.
    static func merged(_ families: [[IPAddress]?]) -> [IPAddress]? {
        var all: [IPAddress] = []
        for addresses in families {
            guard let addresses else { return nil }
            all += addresses
        }
        return Set(all).sorted()
    }
}

/// Where the desired state comes from.
public enum DesiredStateSource: Sendable {
    /// Manifest files and directories, polled every `interval`.
    case manifests([String], interval: Duration)
    /// The Kubernetes API: list, then watch.
    case kubernetes(APIClient)
}

/// `natsync run`: the runner, the state source and the health and metrics servers, as one
/// service group that stops gracefully on SIGTERM or SIGINT, leaving the rules in place.
public struct Daemon {
    public var proxier: any ProxyProvider
    public var runner: SyncRunner.Configuration
    public var source: DesiredStateSource
    public var healthAddress: (host: String, port: Int)?
    public var metricsAddress: (host: String, port: Int)?
    /// The namespace the rules live in, where health-check node ports listen too.
    public var netns: String?
    /// The options of each family resolved again from the host, to follow its addresses.
    public var resolveOptions: (@Sendable () throws -> [ProxyOptions])?
    public var logger: Logger

    public init(
        proxier: any ProxyProvider, runner: SyncRunner.Configuration, source: DesiredStateSource,
        healthAddress: (host: String, port: Int)?, metricsAddress: (host: String, port: Int)?,
        netns: String?, logger: Logger
    ) {
        self.netns = netns
        self.proxier = proxier
        self.runner = runner
        self.source = source
        self.healthAddress = healthAddress
        self.metricsAddress = metricsAddress
        self.logger = logger
    }

    public func run() async throws {
        let health = HealthState(families: proxier.families, timeout: runner.syncPeriod * 2)
        let metrics = ProxyMetrics(families: proxier.families)
        let healthChecks = HealthCheckServers(netns: netns, logger: logger) { health.proxyHealthy }
        defer { healthChecks.stopAll() }
        let observer = DaemonObserver(health: health, metrics: metrics, healthChecks: healthChecks, logger: logger)
        let syncRunner = SyncRunner(proxier: proxier, configuration: runner, observer: observer, logger: logger)
        let feeder: any ServiceLifecycle.Service
        switch source {
        case .manifests(let paths, let interval):
            feeder = ManifestWatcher(paths: paths, interval: interval, logger: logger, onWaiting: { health.waitingForInput($0) }) {
                syncRunner.update($0)
            }
        case .kubernetes(let client):
            feeder = KubernetesSource(
                client: client, logger: logger, nodeName: proxier.nodeName,
                onNodeEligibility: { health.nodeEligible($0) }, onState: { syncRunner.update($0) },
                onChange: { syncRunner.apply($0) })
        }
        var services: [any ServiceLifecycle.Service] = [feeder, syncRunner]
        if let resolveOptions {
            services.append(NodeAddressWatcher(interval: runner.syncPeriod, runner: syncRunner, logger: logger, resolve: resolveOptions))
        }
        if let address = healthAddress {
            services.append(
                StatusServer(name: "health", host: address.host, port: address.port, logger: logger) { path in
                    switch path {
                    case "/healthz", "/livez":
                        let response = health.response(includeNodeEligibility: path == "/healthz")
                        (path == "/healthz" ? metrics.healthz : metrics.livez)[response.status]?.increment()
                        return (response.status, "application/json", Array(response.body.utf8))
                    default:
                        return (404, "text/plain", Array("404 page not found\n".utf8))
                    }
                })
        }
        if let address = metricsAddress {
            services.append(
                StatusServer(name: "metrics", host: address.host, port: address.port, logger: logger) { path in
                    path == "/metrics"
                        ? (200, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
                        : (404, "text/plain", Array("404 page not found\n".utf8))
                })
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("stopped; rules left in place")
    }
}
