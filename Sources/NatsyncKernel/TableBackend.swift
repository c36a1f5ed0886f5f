import NatsyncIPTables
import NatsyncReconcile

/// How natsync reads and writes a node's filter and nat tables: the legacy tables directly
/// (``LegacyTables``), or the host's `iptables-save` / `iptables-restore --noflush`, whichever
/// backend they drive (``RestoreTables``). Both plan with the same ``Planner``.
public protocol TableBackend: Sendable {
    /// Reads each table and plans the change towards `desired`, without writing (for `diff`).
    func plan(_ desired: [TableContents]) throws(KernelError) -> [TablePlan]

    /// Makes the owned part of each table equal to `desired`, filter before nat; a failed later
    /// table puts the earlier ones back.
    func sync(
        _ desired: [TableContents], deleteStaleFixedChains: Bool, removedJumps: [TableName: [BuiltinJump]],
        scope: Set<ChainName>?
    ) throws(KernelError) -> SyncReport

    /// A cheap summary of each table: equal summaries mean nobody changed it in between.
    func fingerprints(_ tables: [TableName]) throws(KernelError) -> [TableName: TableFingerprint]
}

extension TableBackend {
    public func sync(_ desired: [TableContents], scope: Set<ChainName>? = nil) throws(KernelError) -> SyncReport {
        try sync(desired, deleteStaleFixedChains: false, removedJumps: [:], scope: scope)
    }
}

extension LegacyTables: TableBackend {}

/// How to put a committed table back as it was read: the owned chains as they were and only the
/// jumps that were there. `nil` when an owned chain held a rule natsync cannot write back.
struct Undo {
    var previous: TableContents
    var scope: Set<ChainName>
    var addedJumps: [BuiltinJump]

    init?(live: LiveTable, desired: TableContents, plan: TablePlan) {
        previous = TableContents(table: live.table)
        // Only chains that were read can be put back; the undo touches nothing else. Chains found
        // equal to the desired ones (not decoded) were not changed, so they stay out of it.
        scope = Set(plan.created.map(\.name))
        for chain in live.chains where Ownership.owns(chain.name, in: live.table) {
            guard let read = chain.rules else { continue }
            let rules = read.compactMap(\.rule)
            guard rules.count == read.count else { return nil }
            previous.chains.append(Chain(chain.name, rules: rules))
            scope.insert(chain.name)
        }
        let liveJumps = Set(
            live.chains.filter { $0.name.isBuiltin }.flatMap { chain in
                (chain.rules ?? []).compactMap(\.rule).map { BuiltinJump(chain: chain.name, rule: $0) }
            })
        previous.builtinJumps = desired.builtinJumps.filter { liveJumps.contains($0) }
        addedJumps = desired.builtinJumps.filter { !liveJumps.contains($0) }
    }

    /// The plan that takes `now` back.
    func plan(from now: LiveTable) -> TablePlan {
        Planner.plan(desired: previous, live: now, deleteStaleFixedChains: true, removedJumps: addedJumps, scope: scope)
    }
}
