import Foundation
import Logging
import NatsyncIPTables
import NatsyncKernel
import NatsyncKubernetes
import ServiceLifecycle

/// Feeds sync results to health, metrics and the log: one line per sync.
public struct DaemonObserver: SyncObserver {
    let health: HealthState
    let metrics: ProxyMetrics
    let healthChecks: HealthCheckServers
    let logger: Logger

    public func queued(_ changes: ChangeCounts) {
        health.queued()
        metrics.lastQueued.set(Date().timeIntervalSince1970)
        metrics.serviceChangesPending.set(Double(changes.pendingServices))
        metrics.endpointChangesPending.set(Double(changes.pendingEndpoints))
        metrics.serviceChangesTotal.increment(by: Int64(changes.newServiceChanges))
        metrics.endpointChangesTotal.increment(by: Int64(changes.newEndpointChanges))
    }

    public func synced(_ outcome: SyncOutcome, elapsed: Duration) {
        health.updated()
        healthChecks.update(outcome.healthChecks)
        let now = Date().timeIntervalSince1970
        for trigger in outcome.triggerTimes where trigger <= now {
            metrics.networkProgramming.record(now - trigger)
        }
        metrics.syncDuration.record(elapsed)
        (outcome.full ? metrics.fullSyncDuration : metrics.partialSyncDuration).record(elapsed)
        metrics.lastSync.set(Date().timeIntervalSince1970)
        // Nothing waits once a sync has taken every change (the runner takes them between syncs).
        metrics.serviceChangesPending.set(Double(0))
        metrics.endpointChangesPending.set(Double(0))
        metrics.noLocalEndpoints["internal"]?.set(Double(outcome.noLocalEndpoints.internal))
        metrics.noLocalEndpoints["external"]?.set(Double(outcome.noLocalEndpoints.external))
        for (table, count) in outcome.rules { metrics.rulesTotal[table]?.set(Double(count)) }
        for plan in outcome.report.plans { metrics.rulesLast[plan.table]?.set(Double(plan.rulesWritten)) }
        var metadata: Logger.Metadata = [
            "sync.kind": "\(outcome.full ? "full" : "partial")",
            "services": "\(outcome.services)", "endpoints": "\(outcome.endpoints)",
            "chains.created": "\(outcome.report.chainsCreated)", "chains.rewritten": "\(outcome.report.chainsRewritten)",
            "chains.deleted": "\(outcome.report.chainsDeleted)", "rules.written": "\(outcome.report.rulesWritten)",
            "committed": "\(outcome.report.committed.map(\.rawValue).joined(separator: ","))",
            "elapsed": "\(elapsed)",
        ]
        if let conntrack = outcome.conntrack {
            metrics.conntrackDeleted.increment(by: Int64(conntrack.deleted))
            metrics.conntrackDuration.record(conntrack.elapsed)
            if conntrack.failed > 0 { metrics.conntrackFailures.increment(by: Int64(conntrack.failed)) }
            metadata["conntrack.deleted"] = "\(conntrack.deleted)"
        }
        logger.info("synced", metadata: metadata)
    }

    public func failed(_ error: any Error, elapsed: Duration) {
        metrics.restoreFailures.increment()
        logger.error("sync failed; retrying after the sync period", metadata: ["error": "\(error)", "elapsed": "\(elapsed)"])
    }

    public func driftDetected() {
        metrics.driftRepairs.increment()
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
    public var family: IPFamily
    /// The namespace the rules live in, where health-check node ports listen too.
    public var netns: String?
    public var logger: Logger

    public init(
        proxier: any ProxyProvider, runner: SyncRunner.Configuration, source: DesiredStateSource,
        healthAddress: (host: String, port: Int)?, metricsAddress: (host: String, port: Int)?, family: IPFamily,
        netns: String?, logger: Logger
    ) {
        self.netns = netns
        self.proxier = proxier
        self.runner = runner
        self.source = source
        self.healthAddress = healthAddress
        self.metricsAddress = metricsAddress
        self.family = family
        self.logger = logger
    }

    public func run() async throws {
        let health = HealthState(timeout: runner.syncPeriod * 2)
        let metrics = ProxyMetrics(family: family)
        let healthChecks = HealthCheckServers(netns: netns, logger: logger) {
            health.response(includeNodeEligibility: false).status == 200
        }
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
