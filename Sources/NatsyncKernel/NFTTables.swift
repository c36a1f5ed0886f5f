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
/// is then read, planned and sent again.
public struct NFTTables: TableBackend {
    public var family: IPFamily
    /// How long to keep trying when someone else commits between the read and the commit (the
    /// nf_tables counterpart of waiting for the xtables lock). A writer that commits every few
    /// milliseconds, such as a script of iptables-nft calls, can take many attempts: a
    /// transaction needs a gap as long as its read.
    public var retryTimeout: Duration

    public init(family: IPFamily = .ipv4, retryTimeout: Duration = .seconds(5)) {
        self.family = family
        self.retryTimeout = retryTimeout
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
        var report = SyncReport()
        while true {
            report.attempts += 1
            report.plans = []
            report.committed = []
            let batch = try NFTBatch(generation: try NFTables.generation(), family: family)
            for contents in desired {
                let removed = removedJumps[contents.table] ?? []
                let live = try read(contents, scope: scope, removedJumps: removed)
                let plan = Planner.plan(
                    desired: contents, live: live.table, deleteStaleFixedChains: deleteStaleFixedChains, removedJumps: removed,
                    scope: scope)
                report.plans.append(plan)
                guard !plan.isEmpty else { continue }
                try write(plan, over: live, into: batch)
                report.committed.append(contents.table)
            }
            do {
                try batch.commit()
                break
            } catch  where error.errno == KernelError.generationMoved && ContinuousClock.now - start < retryTimeout {
                // Someone committed since the read: read again after a short random wait, so two
                // writers in step fall out of it.
                var pause = timespec(tv_sec: 0, tv_nsec: Int.random(in: 500_000...4_000_000))
                nanosleep(&pause, nil)
            } catch  where error.errno == KernelError.generationMoved {
                var failure = error
                failure.message += "; someone else committed during each of \(report.attempts) attempts in \(retryTimeout)"
                throw failure
            }
        }
        report.elapsed = ContinuousClock.now - start
        return report
    }

    /// The ruleset generation for every table: it moves with every commit to nf_tables, natsync's
    /// own included, so equal fingerprints mean nobody committed anything in between.
    public func fingerprints(_ tables: [TableName]) throws(KernelError) -> [TableName: TableFingerprint] {
        let generation = try NFTables.generation()
        var result: [TableName: TableFingerprint] = [:]
        for table in tables { result[table] = TableFingerprint(entries: generation, size: 0) }
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
    }

    /// Reads `contents.table`: the chains natsync needs (owned ones, within `scope` when given,
    /// and the built-in ones), each compared with the desired chain of the same name; a built-in
    /// chain's rules are recognised as desired or removed jumps, or foreign.
    func read(_ contents: TableContents, scope: Set<ChainName>?, removedJumps: [BuiltinJump])
        throws(KernelError) -> Live
    {
        let table = contents.table
        let chains = try NFTables.chains(table, family: family)
        var live = Live(table: LiveTable(table: table, chains: []), exists: !chains.isEmpty, baseChains: [], handles: [:])
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
        var jumpLengths: [String: Set<Int>] = [:]
        for (chain, list) in candidates { jumpLengths[chain.rawValue] = Set(list.map(\.expressions.count)) }
        let bytes: (String, Int) -> Bool = { chain, length in jumpLengths[chain].map { $0.contains(length) } ?? true }
        var rules: [String: [NFTRule]] = [:]
        if scope == nil {
            let names = Set(needed.map(\.name.rawValue))
            rules = Dictionary(
                grouping: try Shim.nftRules(family: family, table: table, keeping: { names.contains($0) }, bytes: bytes), by: \.chain)
        } else {
            for chain in needed {
                rules[chain.name.rawValue] = try Shim.nftRules(family: family, table: table, chain: chain.name, bytes: bytes)
            }
        }
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
