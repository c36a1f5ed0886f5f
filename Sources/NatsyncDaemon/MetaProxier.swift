import NatsyncIPTables
import NatsyncKernel
import NatsyncModel

/// What the sync runner drives: one family's ``Proxier``, or a ``MetaProxier`` over both.
public protocol ProxyProvider: AnyObject, Sendable {
    /// The node whose endpoints are local.
    var nodeName: String { get }
    /// Takes a new cluster state; returns whether anything changed.
    @discardableResult func update(_ state: ClusterState) -> Bool
    /// Takes changes of single objects; returns whether anything changed.
    @discardableResult func apply(_ changes: [ClusterChange]) -> Bool
    var hasPendingWork: Bool { get }
    func sync() throws -> SyncOutcome
    /// True when the tables changed behind natsync's back; the next sync is then full.
    func checkDrift() -> Bool
    func requestFullSync()
    /// The changes taken since the last call, and what waits for a sync (the metrics' counts).
    func takeChangeCounts() -> ChangeCounts
}

extension Proxier: ProxyProvider {
    public var nodeName: String { generator.options.nodeName }
}

/// A dual-stack node: one proxier per family, fed the same state, each with its own tables, as
/// kube-proxy's metaproxier. A family that fails to sync does not hold the other back; its own
/// next sync is full.
///
/// - Important: not thread-safe by itself, like ``Proxier``; the sync runner serializes access.
public final class MetaProxier: ProxyProvider, @unchecked Sendable {
    public let proxiers: [Proxier]

    public init(_ proxiers: [Proxier]) {
        precondition(!proxiers.isEmpty, "a metaproxier needs a proxier")
        self.proxiers = proxiers
    }

    public var nodeName: String { proxiers[0].nodeName }

    @discardableResult
    public func update(_ state: ClusterState) -> Bool {
        proxiers.map { $0.update(state) }.contains(true)
    }

    @discardableResult
    public func apply(_ changes: [ClusterChange]) -> Bool {
        proxiers.map { $0.apply(changes) }.contains(true)
    }

    public var hasPendingWork: Bool { proxiers.contains { $0.hasPendingWork } }

    public func sync() throws -> SyncOutcome {
        var outcomes: [SyncOutcome] = []
        var failure: (any Error)?
        for proxier in proxiers where proxier.hasPendingWork {
            do {
                outcomes.append(try proxier.sync())
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return SyncOutcome(merging: outcomes)
    }

    public func checkDrift() -> Bool {
        proxiers.map { $0.checkDrift() }.contains(true)
    }

    public func requestFullSync() {
        for proxier in proxiers { proxier.requestFullSync() }
    }

    /// Every family takes the same changes: the first one's counts are the node's.
    public func takeChangeCounts() -> ChangeCounts {
        proxiers.map { $0.takeChangeCounts() }[0]
    }
}

extension SyncOutcome {
    /// The outcomes of one sync per family as one: work added up, the same services counted once.
    init(merging outcomes: [SyncOutcome]) {
        var report = SyncReport()
        var conntrack: ConntrackReport?
        var rules: [TableName: Int] = [:]
        var checks: [NamespacedName: HealthCheck] = [:]
        for outcome in outcomes {
            report.plans += outcome.report.plans
            report.committed += outcome.report.committed
            report.attempts += outcome.report.attempts
            report.elapsed += outcome.report.elapsed
            if let cleaned = outcome.conntrack {
                var total = conntrack ?? ConntrackReport()
                total.visited += cleaned.visited
                total.deleted += cleaned.deleted
                total.vanished += cleaned.vanished
                total.failed += cleaned.failed
                total.elapsed += cleaned.elapsed
                conntrack = total
            }
            rules.merge(outcome.rules, uniquingKeysWith: +)
            for check in outcome.healthChecks {
                if let known = checks[check.service], known.localEndpoints >= check.localEndpoints { continue }
                checks[check.service] = check
            }
        }
        self.init(
            full: outcomes.contains { $0.full }, report: report, conntrack: conntrack,
            services: outcomes.map(\.services).max() ?? 0, endpoints: outcomes.reduce(0) { $0 + $1.endpoints },
            rules: rules, triggerTimes: outcomes.flatMap(\.triggerTimes),
            healthChecks: checks.values.sorted { $0.service < $1.service },
            noLocalEndpoints: outcomes.reduce((0, 0)) { ($0.0 + $1.noLocalEndpoints.internal, $0.1 + $1.noLocalEndpoints.external) })
    }
}
