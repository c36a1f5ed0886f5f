import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncNet
import NatsyncRules

/// What the sync runner drives: one family's ``Proxier``, or a ``MetaProxier`` over both.
public protocol ProxyProvider: AnyObject, Sendable {
    /// The node whose endpoints are local.
    var nodeName: String { get }
    /// The families programmed, IPv4 first.
    var families: [IPFamily] { get }
    /// Takes a new cluster state; returns whether anything changed.
    @discardableResult func update(_ state: ClusterState) -> Bool
    /// Takes changes of single objects; returns whether anything changed.
    @discardableResult func apply(_ changes: [ClusterChange]) -> Bool
    /// The families with changes waiting for a sync, or a full sync due.
    var pendingFamilies: [IPFamily] { get }
    /// Syncs every family with work; one family's failure does not hold the others back.
    func syncFamilies() -> [FamilySync]
    /// True when the tables changed behind natsync's back; the next sync is then full.
    func checkDrift() -> Bool
    func requestFullSync()
    /// Takes the options of each family resolved again from the host; true if the rules change.
    @discardableResult func reconfigure(_ options: [ProxyOptions]) -> Bool
    /// The changes taken since the last call, and what waits for a sync (the metrics' counts).
    func takeChangeCounts() -> ChangeCounts
}

/// One family's part of a sync: its outcome or why it failed, and how long it took.
public struct FamilySync: Sendable {
    public var family: IPFamily
    public var result: Result<SyncOutcome, any Error>
    public var elapsed: Duration
}

extension Proxier: ProxyProvider {
    public var nodeName: String { generator.options.nodeName }
    public var families: [IPFamily] { [generator.options.family] }
    public var pendingFamilies: [IPFamily] { hasPendingWork ? families : [] }

    public func syncFamilies() -> [FamilySync] {
        guard hasPendingWork else { return [] }
        let clock = ContinuousClock()
        let start = clock.now
        let result = Result { try sync() }
        return [FamilySync(family: generator.options.family, result: result, elapsed: clock.now - start)]
    }
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
    public var families: [IPFamily] { proxiers.flatMap(\.families) }

    @discardableResult
    public func update(_ state: ClusterState) -> Bool {
        proxiers.map { $0.update(state) }.contains(true)
    }

    @discardableResult
    public func apply(_ changes: [ClusterChange]) -> Bool {
        proxiers.map { $0.apply(changes) }.contains(true)
    }

    public var pendingFamilies: [IPFamily] { proxiers.flatMap(\.pendingFamilies) }

    public func syncFamilies() -> [FamilySync] {
        proxiers.flatMap { $0.syncFamilies() }
    }

    public func checkDrift() -> Bool {
        proxiers.map { $0.checkDrift() }.contains(true)
    }

    public func requestFullSync() {
        for proxier in proxiers { proxier.requestFullSync() }
    }

    @discardableResult
    public func reconfigure(_ options: [ProxyOptions]) -> Bool {
        proxiers.map { $0.reconfigure(options) }.contains(true)
    }

    /// Every family takes the same changes, and kube-proxy counts changes per node, not per
    /// family: the first one's counts are the node's.
    public func takeChangeCounts() -> ChangeCounts {
        proxiers.map { $0.takeChangeCounts() }[0]
    }
}
