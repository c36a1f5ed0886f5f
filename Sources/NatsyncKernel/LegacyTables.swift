import NatsyncIPTables
import NatsyncNet
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
    /// Planned against what natsync last wrote, without reading the tables: nobody else committed
    /// since (the nft backend).
    public var fromMemory = false
    /// Commits by others during the read that touched nothing the plan was made from (the nft
    /// backend): the transaction went at the generation they made instead of reading again.
    public var passedOver = 0
    public var elapsed: Duration = .zero

    public init() {}

    public var chainsCreated: Int { plans.reduce(0) { $0 + $1.created.count } }
    public var chainsRewritten: Int { plans.reduce(0) { $0 + $1.rewritten.count } }
    public var chainsDeleted: Int { plans.reduce(0) { $0 + $1.deleted.count } }
    public var rulesWritten: Int { plans.reduce(0) { $0 + $1.rulesWritten } }
}

/// The legacy (x_tables) iptables of the calling thread's network namespace, one table at a time,
/// under the xtables lock: synced as the kernel's blob, read and written whole in libiptc's layout
/// (``TableBlob``); read through libiptc for `diff`, and written through it to put tables back
/// after a failed commit.
public struct LegacyTables: Sendable {
    /// The IPv4 tables (libip4tc) or the IPv6 ones (libip6tc).
    public var family: IPFamily
    /// How long to wait for the xtables lock (`--iptables-lock-timeout`).
    public var lockTimeout: Duration
    /// Transactions to try when a commit finds the table changed (EAGAIN).
    public var maxAttempts: Int

    public init(family: IPFamily = .ipv4, lockTimeout: Duration = .seconds(5), maxAttempts: Int = 5) {
        self.family = family
        self.lockTimeout = lockTimeout
        self.maxAttempts = maxAttempts
    }

    /// Reads each table and plans the change towards `desired`, without writing (for `diff`).
    public func plan(_ desired: [TableContents]) throws(KernelError) -> [TablePlan] {
        var plans: [TablePlan] = []
        for contents in desired {
            let handle = try IPTablesHandle(contents.table, family: family)
            let live = handle.read { Ownership.needsRules($0, in: contents.table) }
            plans.append(Planner.plan(desired: contents, live: live))
        }
        return plans
    }

    /// Makes the owned part of each table equal to `desired`, committing each changed table in
    /// one atomic replace, filter before nat. If the sync fails after committing a table (a later
    /// table cannot be read or written, or kept changing through every attempt), the tables it
    /// committed are put back as they were read, so a failed sync changes nothing; the error says
    /// which table could not be.
    ///
    /// - Parameters:
    ///   - deleteStaleFixedChains: also delete owned fixed chains that are not desired (cleanup).
    ///   - removedJumps: built-in chain rules to delete, per table (cleanup).
    ///   - scope: for a partial sync, the only chains to read, compare and change (built-in chains
    ///     are always read for the jumps). Other chains are neither decoded nor touched.
    public func sync(
        _ desired: [TableContents], deleteStaleFixedChains: Bool = false, removedJumps: [TableName: [BuiltinJump]] = [:],
        scope: Set<ChainName>? = nil
    ) throws(KernelError) -> SyncReport {
        let start = ContinuousClock.now
        // A full sync reads and writes whole tables: what the caller freed making the rules (the
        // manifests, the cluster state) gives its pages back first, so the blobs fill them rather
        // than grow the heap. A partial sync's small reads do not need it.
        if scope == nil { ProcessMemory.returnFreedPages() }
        let lock = try XtablesLock(timeout: lockTimeout)
        var report = SyncReport()
        // Each table as read before this sync first committed it, to put it back if the sync fails.
        var committed: [Committed] = []
        while true {
            report.attempts += 1
            do {
                report.plans = []
                report.committed = []
                try transaction(desired, deleteStaleFixedChains, removedJumps, scope, &report, &committed)
                break
            } catch  where error.errno == KernelError.tableChanged && report.attempts < maxAttempts {
                // Someone wrote without the lock: start over from a fresh read, after a short random wait.
                var pause = timespec(tv_sec: 0, tv_nsec: Int.random(in: 5_000_000...25_000_000) * report.attempts)
                nanosleep(&pause, nil)
            } catch {
                var failure = error
                if error.errno == KernelError.tableChanged {
                    failure.message += " (someone changed the table without the xtables lock during each of \(report.attempts) attempts)"
                }
                throw restore(committed, desired: desired, after: failure)
            }
        }
        _ = consume lock
        report.elapsed = ContinuousClock.now - start
        return report
    }

    /// A table this sync committed: as it was read before, and the plan that changed it.
    private struct Committed {
        var live: LiveTable
        var plan: TablePlan
    }

    private func transaction(
        _ desired: [TableContents], _ deleteStaleFixedChains: Bool, _ removedJumps: [TableName: [BuiltinJump]],
        _ scope: Set<ChainName>?, _ report: inout SyncReport, _ committed: inout [Committed]
    ) throws(KernelError) {
        for contents in desired {
            // The kernel's blob, read and written without libiptc (see TableBlob.write): a sync
            // mostly finds the table as it should be, and then this read is all it costs.
            let blob = try TableBlob(contents.table, family: family)
            let live = blob.read(only: scope, decoding: { Ownership.needsRules($0, in: contents.table) }, comparingWith: contents)
            let plan = Planner.plan(
                desired: contents, live: live, deleteStaleFixedChains: deleteStaleFixedChains,
                removedJumps: removedJumps[contents.table] ?? [], scope: scope)
            report.plans.append(plan)
            guard !plan.isEmpty else { continue }
            try blob.write(plan)
            if !committed.contains(where: { $0.live.table == contents.table }) {
                committed.append(Committed(live: live, plan: plan))
            }
            report.committed.append(contents.table)
        }
    }

    /// Puts the tables a failed sync committed back to how they were read: owned chains and
    /// natsync's jumps as they were. Returns `failure`, saying which tables could not be put back
    /// (a table whose owned chains held rules natsync cannot write back is left as committed).
    private func restore(_ tables: [Committed], desired: [TableContents], after failure: KernelError) -> KernelError {
        var notRestored: [String] = []
        for table in tables {
            let live = table.live
            guard let contents = desired.first(where: { $0.table == live.table }),
                let undo = Undo(live: live, desired: contents, plan: table.plan)
            else {
                notRestored.append("\(live.table) (an owned chain held a rule natsync cannot write back)")
                continue
            }
            do {
                let handle = try IPTablesHandle(live.table, family: family)
                let now = handle.read { Ownership.needsRules($0, in: live.table) && ($0.isBuiltin || undo.scope.contains($0)) }
                try handle.apply(undo.plan(from: now))
                try handle.commit()
            } catch {
                notRestored.append("\(live.table) (\(error))")
            }
        }
        guard !notRestored.isEmpty else { return failure }
        var error = failure
        error.message += "; committed earlier in this sync and not put back: " + notRestored.joined(separator: ", ")
        return error
    }

    /// The packet and byte counters of every rule of one chain (for tests and `diff`).
    public func counters(table: TableName, chain: ChainName) throws(KernelError) -> [(packets: UInt64, bytes: UInt64)] {
        try IPTablesHandle(table, family: family).counters(of: chain)
    }
}

/// A table's entry count and size, read without reading its rules.
public struct TableFingerprint: Hashable, Sendable {
    public var entries: UInt32
    public var size: UInt32

    public init(entries: UInt32, size: UInt32) {
        self.entries = entries
        self.size = size
    }
}

extension LegacyTables {
    /// The fingerprint of each table (`IPT_SO_GET_INFO`): equal fingerprints before and after
    /// mean nobody added, removed or resized a rule in between.
    public func fingerprints(_ tables: [TableName]) throws(KernelError) -> [TableName: TableFingerprint] {
        var result: [TableName: TableFingerprint] = [:]
        for table in tables {
            let (entries, size) = try Shim.tableInfo(table, family: family)
            result[table] = TableFingerprint(entries: entries, size: size)
        }
        return result
    }
}
