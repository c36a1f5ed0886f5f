import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile

#if canImport(Glibc)
import Glibc
#endif

/// The filter and nat tables of the calling thread's network namespace in nf_tables, written over
/// netlink in the form iptables-nft writes them, so `iptables-nft-save`, kubelet and CNI plugins
/// see natsync's rules as their own.
///
/// A sync reads the chains it needs (every owned chain, or for a partial sync only those in
/// scope, and the built-in chains for the jumps), compares each rule with its encoding byte for
/// byte, plans with the same ``Planner`` as the other backends, and writes only the change as one
/// nf_tables transaction for both tables: new chains added, changed chains flushed and refilled,
/// stale chains flushed and deleted, jumps inserted or deleted by handle. The transaction carries
/// the ruleset generation it was planned against, so a concurrent writer makes it fail whole; it
/// is then read, planned and sent again. Others' commits during the read that touched nothing it
/// read (``NFTMonitor``) move the transaction to the generation they made instead.
public struct NFTTables: TableBackend {
    public var family: IPFamily
    /// How long to keep trying when someone else commits between the read and the commit (the
    /// nf_tables counterpart of waiting for the xtables lock). A writer that commits every few
    /// milliseconds, such as a script of iptables-nft calls, can take many attempts: a
    /// transaction needs a gap as long as its read.
    public var retryTimeout: Duration

    /// natsync's commits to the namespace: shared by the copies of this value, as the daemon's
    /// syncs are, and by the other family's backend in the same namespace.
    public let ledger: NFTCommitLedger

    public init(family: IPFamily = .ipv4, retryTimeout: Duration = .seconds(5), ledger: NFTCommitLedger = NFTCommitLedger()) {
        self.family = family
        self.retryTimeout = retryTimeout
        self.ledger = ledger
    }

    /// Plans from what `iptables-nft-save` prints (for `diff`): a sync only needs to know which
    /// rules differ, but a diff shows the rules it would remove, which `iptables-nft-save` decodes.
    public func plan(_ desired: [TableContents]) throws(KernelError) -> [TablePlan] {
        try RestoreTables.nft(family: family).plan(desired)
    }

    public func sync(
        _ desired: [TableContents], deleteStaleFixedChains: Bool, removedJumps: [TableName: [BuiltinJump]],
        scope: Set<ChainName>?
    ) throws(KernelError) -> SyncReport {
        let start = ContinuousClock.now
        var generation = try NFTables.generation()
        let cleanup = deleteStaleFixedChains || !removedJumps.isEmpty
        if !cleanup, let remembered = ledger.recall(family, at: generation),
            var report = try trustingMemory(desired, remembered, generation: generation, scope: scope)
        {
            report.elapsed = ContinuousClock.now - start
            return report
        }
        ledger.forget(family)
        // As the legacy path: what the caller freed making the rules gives its pages back before
        // the batch, a table's size, is built.
        if scope == nil { ProcessMemory.returnFreedPages() }
        var report = SyncReport()
        while true {
            // Subscribed before the generation is read, so every commit after it is seen.
            var monitor = try? NFTMonitor()
            generation = try NFTables.generation()
            monitor?.follow(from: generation)
            report.plans = []
            report.committed = []
            let batch = try NFTBatch(generation: generation, family: family)
            let listed = try listing(scope)
            var read: [TableName: Live] = [:]
            for contents in desired {
                let removed = removedJumps[contents.table] ?? []
                let live = try self.read(contents, scope: scope, removedJumps: removed, listed: listed)
                read[contents.table] = live
                let plan = Planner.plan(
                    desired: contents, live: live.table, deleteStaleFixedChains: deleteStaleFixedChains, removedJumps: removed,
                    scope: scope)
                report.plans.append(plan)
                guard !plan.isEmpty else { continue }
                try write(plan, over: live, into: batch)
                report.committed.append(contents.table)
            }
            // Others' commits during the read (kubelet's, a CNI's, an operator's in their own
            // chains) leave the plan as it was: the batch applies at the generation they made.
            // One that touched what was read means reading again.
            var current = true
            if let moved = monitor?.advance(unless: { Self.matters($0, family: family, read: read) }) {
                report.passedOver += Int(moved &- generation)
                generation = moved
                batch.setGeneration(moved)
            } else if monitor != nil {
                current = false
            }
            // Out of the event group before committing: while anyone listens, the kernel writes
            // out every rule a commit adds as an event (a 10,000-service full sync took 1.7 to
            // 2.8 times as long).
            monitor = nil
            report.attempts += 1
            if current {
                do {
                    try batch.commit()
                    break
                } catch {
                    guard error.errno == KernelError.generationMoved else { throw error }
                }
            }
            guard ContinuousClock.now - start < retryTimeout else {
                throw KernelError(
                    errno: KernelError.generationMoved, operation: "nf_tables commit", table: nil, chain: nil,
                    message: "someone else changed nf_tables during each of \(report.attempts) attempts in \(retryTimeout)")
            }
            // A short random wait before reading again, so two writers in step fall out of it.
            var pause = timespec(tv_sec: 0, tv_nsec: Int.random(in: 500_000...4_000_000))
            nanosleep(&pause, nil)
        }
        // A full sync read every owned chain: the tables now hold `desired` exactly.
        ledger.record(
            family, at: generation, committed: !report.committed.isEmpty,
            tables: scope == nil && !cleanup ? Dictionary(desired.map { ($0.table, $0) }, uniquingKeysWith: { $1 }) : nil)
        report.elapsed = ContinuousClock.now - start
        return report
    }

    /// A sync planned against what natsync last wrote, without reading the kernel: the generation
    /// has not moved since, so nobody else has committed. The transaction still carries the
    /// generation; nil (read instead) when someone commits first, or when the plan would touch
    /// the built-in chains, whose rules' positions and handles only a read gives.
    func trustingMemory(_ desired: [TableContents], _ remembered: [TableName: TableContents], generation: UInt32, scope: Set<ChainName>?)
        throws(KernelError) -> SyncReport?
    {
        var report = SyncReport()
        report.attempts = 1
        report.fromMemory = true
        let batch = try NFTBatch(generation: generation, family: family)
        var next = remembered
        for contents in desired {
            guard let known = remembered[contents.table] else { return nil }
            if scope == nil && known == contents {
                report.plans.append(TablePlan(table: contents.table))
                continue
            }
            var chains = known.chains.filter { scope?.contains($0.name) ?? true }.map { chain in
                LiveTable.LiveChain(name: chain.name, rules: chain.rules.map(LiveRule.rule))
            }
            for (chain, jumps) in Dictionary(grouping: known.builtinJumps, by: \.chain) {
                chains.append(LiveTable.LiveChain(name: chain, rules: jumps.map { LiveRule.rule($0.rule) }))
            }
            let live = Live(table: LiveTable(table: contents.table, chains: chains), exists: true, baseChains: [], handles: [:])
            let plan = Planner.plan(desired: contents, live: live.table, scope: scope)
            guard plan.jumpDeletions.isEmpty, plan.jumpInsertions.isEmpty else { return nil }
            report.plans.append(plan)
            guard !plan.isEmpty else { continue }
            try write(plan, over: live, into: batch)
            report.committed.append(contents.table)
            if let scope {
                next[contents.table]?.chains =
                    known.chains.filter { !scope.contains($0.name) } + contents.chains.filter { scope.contains($0.name) }
            } else {
                next[contents.table] = contents
            }
        }
        guard !batch.isEmpty else { return report }
        do {
            try batch.commit()
        } catch  where error.errno == KernelError.generationMoved {
            return nil
        }
        ledger.record(family, at: generation, committed: true, tables: next)
        return report
    }

    /// From the ruleset generation, which moves with every commit to nf_tables: equal fingerprints
    /// mean nobody but natsync (either family) committed anything in between.
    public func fingerprints(_ tables: [TableName]) throws(KernelError) -> [TableName: TableFingerprint] {
        let fingerprint = ledger.fingerprint(at: try NFTables.generation())
        var result: [TableName: TableFingerprint] = [:]
        for table in tables { result[table] = fingerprint }
        return result
    }

    /// One table as read for a plan: its chains with the rules compared or recognised, and what
    /// the transaction needs besides (whether the table exists, its base chains, the handles of the
    /// built-in chains' rules).
    struct Live {
        var table: LiveTable
        var exists: Bool
        var baseChains: Set<ChainName>
        var handles: [ChainName: [UInt64]]
        /// The encodings of natsync's jumps (desired and removed) in each built-in chain.
        var jumps: [ChainName: [[UInt8]]] = [:]
        /// The handles of the built-in chains' rules recognised as natsync's jumps.
        var jumpHandles: Set<UInt64> = []
    }

    /// Reads `contents.table`: the chains natsync needs (owned ones, within `scope` when given,
    /// and the built-in ones), each compared with the desired chain of the same name; a built-in
    /// chain's rules are recognised as desired or removed jumps, or foreign. `listed` holds every
    /// table's chains; without it (a partial sync) the chains in scope are looked up by name.
    func read(
        _ contents: TableContents, scope: Set<ChainName>?, removedJumps: [BuiltinJump],
        listed: [TableName: [(name: ChainName, base: Bool)]]?
    )
        throws(KernelError) -> Live
    {
        let table = contents.table
        let chains: [(name: ChainName, base: Bool)]
        let exists: Bool
        if let listed {
            chains = listed[table] ?? []
            exists = !chains.isEmpty
        } else {
            // A partial sync looks its few chains up by name: listing a large table's chains
            // costs as much as reading its rules.
            let inScope = (scope ?? []).filter { !$0.isBuiltin }.sorted { $0.rawValue < $1.rawValue }
            let names = Self.builtinChains[table, default: []] + inScope
            let found = try Shim.nftLookup(family: family, table: table, chains: names)
            chains = zip(names, found.chains).compactMap { name, base in base.map { (name, $0) } }
            exists = found.tableExists
        }
        var live = Live(table: LiveTable(table: table, chains: []), exists: exists, baseChains: [], handles: [:])
        guard !chains.isEmpty else { return live }
        let needed = chains.filter { chain in
            Ownership.needsRules(chain.name, in: table) && (chain.name.isBuiltin || scope?.contains(chain.name) ?? true)
        }
        // A built-in chain's rules are only looked at for natsync's jumps: the others (kubelet's,
        // a CNI's, an operator's, thousands at times) are read as handles only.
        let jumps = contents.builtinJumps + removedJumps
        var candidates: [ChainName: [(rule: Rule, expressions: [UInt8])]] = [:]
        for jump in jumps {
            candidates[jump.chain, default: []].append((jump.rule, try expressions(of: jump.rule, in: table, chain: jump.chain)))
        }
        live.jumps = candidates.mapValues { $0.map(\.expressions) }
        var jumpLengths: [String: Set<Int>] = [:]
        for (chain, list) in candidates { jumpLengths[chain.rawValue] = Set(list.map(\.expressions.count)) }
        let bytes: (String, Int) -> Bool = { chain, length in jumpLengths[chain].map { $0.contains(length) } ?? true }
        let rules = Dictionary(
            grouping: try Shim.nftRules(family: family, table: table, chains: needed.map(\.name), bytes: bytes), by: \.chain)
        var desiredIndex: [ChainName: Int] = [:]
        for (index, chain) in contents.chains.enumerated() { desiredIndex[chain.name] = index }
        let neededNames = Set(needed.map(\.name))

        for (name, base) in chains {
            if base { live.baseChains.insert(name) }
            let index = desiredIndex[name]
            guard neededNames.contains(name) else {
                live.table.chains.append(LiveTable.LiveChain(name: name, rules: nil, desiredIndex: index))
                continue
            }
            let read = rules[name.rawValue] ?? []
            if name.isBuiltin {
                live.handles[name] = read.map(\.handle)
                let recognised = read.map { rule in
                    candidates[name]?.first { rule.holds($0.expressions) }.map { LiveRule.rule($0.rule) } ?? .foreign
                }
                for (rule, recognised) in zip(read, recognised) where recognised != .foreign { live.jumpHandles.insert(rule.handle) }
                live.table.chains.append(LiveTable.LiveChain(name: name, rules: recognised, desiredIndex: index))
                continue
            }
            let wanted = index.map { contents.chains[$0].rules } ?? []
            var compared: [LiveRule] = []
            var same = index != nil && read.count == wanted.count
            for (position, rule) in read.enumerated() {
                if position < wanted.count, rule.holds(try expressions(of: wanted[position], in: table, chain: name)) {
                    compared.append(.rule(wanted[position]))
                } else {
                    compared.append(.foreign)
                    same = false
                }
            }
            live.table.chains.append(
                same
                    ? LiveTable.LiveChain(name: name, rules: nil, matchesDesired: true, desiredIndex: index)
                    : LiveTable.LiveChain(name: name, rules: compared, desiredIndex: index))
        }
        return live
    }

    /// Every table's chains, listed once for both tables (the kernel lists a family's chains
    /// whatever table is asked for); nil for a partial sync, which looks its chains up by name.
    func listing(_ scope: Set<ChainName>?) throws(KernelError) -> [TableName: [(name: ChainName, base: Bool)]]? {
        if let scope, scope.count <= Self.lookupLimit { return nil }
        return try NFTables.chains(family: family)
    }

    /// Whether someone else's change, seen as `event`, touches what a plan was made from (`read`):
    /// a table natsync read, a chain it owns, or one of its jumps in a built-in chain. Others'
    /// rules in the built-in chains and in their own chains do not.
    static func matters(_ event: NFTMonitor.Event, family: IPFamily, read: [TableName: Live]) -> Bool {
        guard event.family == family, let table = TableName(rawValue: event.table), let live = read[table] else { return false }
        let chain = ChainName(event.chain)
        switch event.type {
        case NFTMessage.newRule where chain.isBuiltin:
            let rule = NFTRule(chain: event.chain, handle: event.handle, expressionBytes: event.expressions, userdata: [])
            return live.jumps[chain]?.contains { rule.holds($0) } ?? false
        case NFTMessage.deleteRule where chain.isBuiltin:
            return live.jumpHandles.contains(event.handle)
        case NFTMessage.newChain where chain.isBuiltin:
            return false
        case NFTMessage.newRule, NFTMessage.deleteRule, NFTMessage.newChain, NFTMessage.deleteChain:
            return chain.isBuiltin || Ownership.owns(chain, in: table)
        default:
            return true
        }
    }

    /// The built-in chains iptables-nft may have made in each table.
    static let builtinChains: [TableName: [ChainName]] = [
        .nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"].map { ChainName($0) },
        .filter: ["INPUT", "FORWARD", "OUTPUT"].map { ChainName($0) },
    ]

    /// Up to this many chains in scope, a partial sync looks them up one by one rather than list the table's.
    static let lookupLimit = 256

    /// A rule's expressions, encoded when needed rather than kept: a large table's encodings
    /// would double what a sync holds.
    func expressions(of rule: Rule, in table: TableName, chain: ChainName) throws(KernelError) -> [UInt8] {
        do {
            return try NFTRuleEncoding.expressions(of: rule, family: family)
        } catch {
            throw KernelError(errno: Glibc.EINVAL, operation: "nf_tables rule", table: table, chain: chain, message: error.reason)
        }
    }

    /// Adds one table's plan to the transaction: chains created and filled, changed chains flushed
    /// and refilled, jumps deleted by handle and inserted at the top (creating the built-in chain
    /// as iptables-nft would when it is missing), then stale chains flushed and deleted, so no rule
    /// refers to a chain when it goes.
    func write(_ plan: TablePlan, over live: Live, into batch: NFTBatch) throws(KernelError) {
        let table = plan.table
        if !live.exists { try batch.addTable(table) }
        for chain in plan.created { try batch.addChain(chain.name, in: table) }
        for chain in plan.created {
            for rule in chain.rules {
                try batch.addRule(rule, expressions: try expressions(of: rule, in: table, chain: chain.name), to: chain.name, in: table)
            }
        }
        for (chain, _) in plan.rewritten {
            try batch.flushChain(chain.name, in: table)
            for rule in chain.rules {
                try batch.addRule(rule, expressions: try expressions(of: rule, in: table, chain: chain.name), to: chain.name, in: table)
            }
        }
        for deletion in plan.jumpDeletions {
            guard let handle = live.handles[deletion.chain]?[deletion.index] else { continue }
            try batch.deleteRule(handle: handle, from: deletion.chain, in: table)
        }
        var bases = live.baseChains
        for jump in plan.jumpInsertions {
            if bases.insert(jump.chain).inserted { try batch.addChain(jump.chain, in: table, base: true) }
            let expressions = try expressions(of: jump.rule, in: table, chain: jump.chain)
            try batch.addRule(jump.rule, expressions: expressions, to: jump.chain, in: table, atTop: true)
        }
        for (name, _) in plan.deleted { try batch.flushChain(name, in: table) }
        for (name, _) in plan.deleted { try batch.deleteChain(name, in: table) }
    }
}
