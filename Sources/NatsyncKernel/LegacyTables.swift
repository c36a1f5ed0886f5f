import NatsyncIPTables
import NatsyncReconcile

#if canImport(Glibc)
import Glibc
#endif

/// What one transaction did.
public struct SyncReport: Sendable {
    /// The plan of each table, filter first.
    public var plans: [TablePlan] = []
    /// Tables replaced in the kernel (a table with nothing to change is not committed).
    public var committed: [TableName] = []
    /// Transactions started: more than one when the kernel reported the table changed underneath.
    public var attempts = 0
    public var elapsed: Duration = .zero

    public var chainsCreated: Int { plans.reduce(0) { $0 + $1.created.count } }
    public var chainsRewritten: Int { plans.reduce(0) { $0 + $1.rewritten.count } }
    public var chainsDeleted: Int { plans.reduce(0) { $0 + $1.deleted.count } }
    public var rulesWritten: Int { plans.reduce(0) { $0 + $1.rulesWritten } }
}

/// The legacy (x_tables) iptables of the calling thread's network namespace, read and written
/// through libiptc, one table at a time, under the xtables lock.
public struct LegacyTables: Sendable {
    /// How long to wait for the xtables lock (`--iptables-lock-timeout`).
    public var lockTimeout: Duration
    /// Transactions to try when a commit finds the table changed (EAGAIN).
    public var maxAttempts: Int

    public init(lockTimeout: Duration = .seconds(5), maxAttempts: Int = 5) {
        self.lockTimeout = lockTimeout
        self.maxAttempts = maxAttempts
    }

    /// Reads each table and plans the change towards `desired`, without writing (for `diff`).
    public func plan(_ desired: [TableContents]) throws(KernelError) -> [TablePlan] {
        var plans: [TablePlan] = []
        for contents in desired {
            let handle = try IPTablesHandle(contents.table)
            let live = handle.read { Ownership.needsRules($0, in: contents.table) }
            plans.append(Planner.plan(desired: contents, live: live))
        }
        return plans
    }

    /// Makes the owned part of each table equal to `desired`, committing each changed table in
    /// one atomic replace, filter before nat. If a later table's commit fails, the tables already
    /// committed are put back as they were read, so a failed sync changes nothing.
    ///
    /// - Parameters:
    ///   - deleteStaleFixedChains: also delete owned fixed chains that are not desired (cleanup).
    ///   - removedJumps: built-in chain rules to delete, per table (cleanup).
    public func sync(
        _ desired: [TableContents], deleteStaleFixedChains: Bool = false, removedJumps: [TableName: [BuiltinJump]] = [:]
    ) throws(KernelError) -> SyncReport {
        let start = ContinuousClock.now
        let lock = try XtablesLock(timeout: lockTimeout)
        var report = SyncReport()
        while true {
            report.attempts += 1
            do {
                report.plans = []
                report.committed = []
                try transaction(desired, deleteStaleFixedChains, removedJumps, &report)
                break
            } catch where error.errno == KernelError.tableChanged && report.attempts < maxAttempts {
                // Someone wrote without the lock: start over from a fresh read, after a short random wait.
                var pause = timespec(tv_sec: 0, tv_nsec: Int.random(in: 5_000_000...25_000_000) * report.attempts)
                nanosleep(&pause, nil)
            }
        }
        _ = consume lock
        report.elapsed = ContinuousClock.now - start
        return report
    }

    private func transaction(
        _ desired: [TableContents], _ deleteStaleFixedChains: Bool, _ removedJumps: [TableName: [BuiltinJump]],
        _ report: inout SyncReport
    ) throws(KernelError) {
        var before: [LiveTable] = []
        for contents in desired {
            let handle = try IPTablesHandle(contents.table)
            let live = handle.read { Ownership.needsRules($0, in: contents.table) }
            let plan = Planner.plan(
                desired: contents, live: live, deleteStaleFixedChains: deleteStaleFixedChains,
                removedJumps: removedJumps[contents.table] ?? [])
            report.plans.append(plan)
            guard !plan.isEmpty else { continue }
            do {
                try handle.apply(plan)
                try handle.commit()
            } catch {
                if !report.committed.isEmpty && error.errno != KernelError.tableChanged {
                    restore(before, desired: desired)
                }
                throw error
            }
            before.append(live)
            report.committed.append(contents.table)
        }
    }

    /// Puts committed tables back to how they were read, best effort: owned chains and natsync's
    /// jumps as they were. Tables holding foreign rules in owned chains cannot be re-encoded and
    /// are left as committed.
    private func restore(_ tables: [LiveTable], desired: [TableContents]) {
        for live in tables {
            guard let contents = desired.first(where: { $0.table == live.table }) else { continue }
            var previous = TableContents(table: live.table)
            var encodable = true
            for chain in live.chains where Ownership.owns(chain.name, in: live.table) {
                let rules = (chain.rules ?? []).compactMap(\.rule)
                if rules.count != chain.rules?.count { encodable = false }
                previous.chains.append(Chain(chain.name, rules: rules))
            }
            let liveJumps = Set(live.chains.filter { $0.name.isBuiltin }.flatMap { chain in
                (chain.rules ?? []).compactMap(\.rule).map { BuiltinJump(chain: chain.name, rule: $0) }
            })
            previous.builtinJumps = contents.builtinJumps.filter { liveJumps.contains($0) }
            let added = contents.builtinJumps.filter { !liveJumps.contains($0) }
            guard encodable, let handle = try? IPTablesHandle(live.table) else { continue }
            let now = handle.read { Ownership.needsRules($0, in: live.table) }
            let undo = Planner.plan(desired: previous, live: now, deleteStaleFixedChains: true, removedJumps: added)
            try? handle.apply(undo)
            try? handle.commit()
        }
    }

    /// The packet and byte counters of every rule of one chain (for tests and `diff`).
    public func counters(table: TableName, chain: ChainName) throws(KernelError) -> [(packets: UInt64, bytes: UInt64)] {
        try IPTablesHandle(table).counters(of: chain)
    }
}
