import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile

/// The tables of the calling thread's network namespace through the host's `iptables-save` and
/// `iptables-restore --noflush`, for hosts whose iptables is nft (libiptc only reaches the legacy
/// tables) or whenever told to.
///
/// A sync reads each table with `iptables-save`, plans with the same ``Planner`` as libiptc, and
/// writes only the change: owned chains declared (which flushes them under `--noflush`) and
/// filled, stale ones flushed and deleted, jumps in built-in chains inserted at the top or deleted
/// by their rule, never by position. `iptables-restore -w` takes the xtables lock for the commit
/// itself (nft commits are one transaction), so natsync does not hold it around the call.
public struct RestoreTables: TableBackend {
    public var family: IPFamily
    /// The save and restore commands, e.g. `["iptables-nft-save"]`.
    public var save: [String]
    public var restore: [String]
    public var lockTimeout: Duration

    public init(family: IPFamily = .ipv4, save: [String], restore: [String], lockTimeout: Duration = .seconds(5)) {
        self.family = family
        self.save = save
        self.restore = restore
        self.lockTimeout = lockTimeout
    }

    /// The host's own `iptables-save` and `iptables-restore` (or the ip6tables ones).
    public static func host(family: IPFamily = .ipv4, lockTimeout: Duration = .seconds(5)) -> RestoreTables {
        let prefix = family == .ipv4 ? "iptables" : "ip6tables"
        return RestoreTables(family: family, save: ["\(prefix)-save"], restore: ["\(prefix)-restore"], lockTimeout: lockTimeout)
    }

    /// The nft backend's commands, whatever the host's `iptables` points at.
    public static func nft(family: IPFamily = .ipv4, lockTimeout: Duration = .seconds(5)) -> RestoreTables {
        let prefix = family == .ipv4 ? "iptables" : "ip6tables"
        return RestoreTables(family: family, save: ["\(prefix)-nft-save"], restore: ["\(prefix)-nft-restore"], lockTimeout: lockTimeout)
    }

    public func plan(_ desired: [TableContents]) throws(KernelError) -> [TablePlan] {
        var plans: [TablePlan] = []
        for contents in desired {
            plans.append(Planner.plan(desired: contents, live: try read(contents.table) { Ownership.needsRules($0, in: contents.table) }))
        }
        return plans
    }

    public func sync(
        _ desired: [TableContents], deleteStaleFixedChains: Bool, removedJumps: [TableName: [BuiltinJump]],
        scope: Set<ChainName>?
    ) throws(KernelError) -> SyncReport {
        let start = ContinuousClock.now
        var report = SyncReport()
        report.attempts = 1
        var committed: [(LiveTable, TableContents, TablePlan)] = []
        for contents in desired {
            // As libiptc's path: a partial sync parses only the chains in scope (and the built-ins).
            let live = try read(contents.table) { name in
                Ownership.needsRules(name, in: contents.table) && (name.isBuiltin || scope?.contains(name) ?? true)
            }
            let plan = Planner.plan(
                desired: contents, live: live, deleteStaleFixedChains: deleteStaleFixedChains,
                removedJumps: removedJumps[contents.table] ?? [], scope: scope)
            report.plans.append(plan)
            guard !plan.isEmpty else { continue }
            do {
                try apply(plan)
            } catch {
                for (live, contents, plan) in committed.reversed() {
                    guard let undo = Undo(live: live, desired: contents, plan: plan),
                        let now = try? read(live.table, decoding: { undo.scope.contains($0) || $0.isBuiltin })
                    else { continue }
                    try? apply(undo.plan(from: now))
                }
                throw error
            }
            committed.append((live, contents, plan))
            report.committed.append(contents.table)
        }
        report.elapsed = ContinuousClock.now - start
        return report
    }

    /// The number of rules and a hash of the saved text (counters left out).
    public func fingerprints(_ tables: [TableName]) throws(KernelError) -> [TableName: TableFingerprint] {
        var result: [TableName: TableFingerprint] = [:]
        for table in tables {
            var hash: UInt32 = 2_166_136_261
            var rules: UInt32 = 0
            for line in try saved(table).split(separator: "\n") where !line.hasPrefix("#") {
                if line.hasPrefix("-A ") { rules += 1 }
                let kept = line.hasPrefix(":") ? line.prefix { $0 != "[" } : line
                for byte in kept.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
            }
            result[table] = TableFingerprint(entries: rules, size: hash)
        }
        return result
    }

    /// One table as `iptables-save` prints it, with the rules of the chains `decode` selects: the
    /// ones natsync can write as rules, the rest as foreign. Other chains are listed, not parsed.
    func read(_ table: TableName, decoding decode: (ChainName) -> Bool) throws(KernelError) -> LiveTable {
        var chains: [LiveTable.LiveChain] = []
        var index: [ChainName: Int] = [:]
        try forEachLine(of: table) { name, _ in
            let decoded = decode(name)
            if decoded { index[name] = chains.count }
            chains.append(LiveTable.LiveChain(name: name, rules: decoded ? [] : nil))
        } rule: { name, arguments in
            guard let position = index[name] else { return }
            let rule: LiveRule = (try? RestoreText.parseRule(arguments)).map(LiveRule.rule) ?? .foreign
            chains[position].rules?.append(rule)
        }
        return LiveTable(table: table, chains: chains)
    }

    /// One table as `iptables-save` prints it, line by line: each chain as it is declared (with its
    /// policy, nil for a user chain), each rule with its chain and its arguments.
    func forEachLine(of table: TableName, chain: (ChainName, String?) -> Void, rule: (ChainName, Substring) -> Void)
        throws(KernelError)
    {
        for line in try saved(table).split(separator: "\n") {
            if line.hasPrefix(":") {
                let words = line.dropFirst().split(separator: " ")
                guard let name = words.first else { continue }
                chain(ChainName(String(name)), words.count > 1 && words[1] != "-" ? String(words[1]) : nil)
            } else if line.hasPrefix("-A ") {
                let words = line.dropFirst(3)
                rule(ChainName(String(words.prefix { $0 != " " })), words.drop { $0 != " " }.dropFirst())
            }
        }
    }

    private func saved(_ table: TableName) throws(KernelError) -> String {
        let saved = ChildProcess.run(save + ["-t", table.rawValue])
        guard saved.status == 0 else {
            throw KernelError(errno: saved.status, operation: save.joined(separator: " "), table: table, message: saved.errors.trimmed)
        }
        return saved.output
    }

    /// Writes one table's plan in one `iptables-restore --noflush` call.
    func apply(_ plan: TablePlan) throws(KernelError) {
        let text = Self.render(plan, family: family)
        let seconds = max(1, Int((lockTimeout.components.seconds)))
        let restored = ChildProcess.run(restore + ["--noflush", "-w", "\(seconds)"], input: text)
        guard restored.status == 0 else {
            throw KernelError(
                errno: restored.status, operation: restore.joined(separator: " "), table: plan.table,
                message: restored.errors.trimmed.isEmpty ? "exit status \(restored.status)" : restored.errors.trimmed)
        }
    }

    /// A plan as `iptables-restore --noflush` input: declarations (which flush), deletions of
    /// jumps by rule, the rules of each written chain, jump insertions, then chain deletions.
    static func render(_ plan: TablePlan, family: IPFamily) -> String {
        var out = "*\(plan.table)\n"
        let written = plan.created + plan.rewritten.map(\.chain)
        for chain in written { out += ":\(chain.name) - [0:0]\n" }
        for (name, _) in plan.deleted { out += ":\(name) - [0:0]\n" }
        for jump in plan.jumpDeletions { out += "-D \(jump.chain) \(RestoreText.arguments(of: jump.rule, family: family))\n" }
        for chain in written {
            for rule in chain.rules { out += "-A \(chain.name) \(RestoreText.arguments(of: rule, family: family))\n" }
        }
        for jump in plan.jumpInsertions { out += "-I \(jump.chain) 1 \(RestoreText.arguments(of: jump.rule, family: family))\n" }
        for (name, _) in plan.deleted { out += "-X \(name)\n" }
        return out + "COMMIT\n"
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
