import NatsyncIPTables

/// Computes the minimal change from live tables to desired ones. Pure: no kernel access.
public enum Planner {
    /// Plans a sync of `live` towards `desired`. A live chain marked ``LiveTable/LiveChain/matchesDesired``
    /// must have been compared with this same `desired`.
    ///
    /// - Owned chains that are desired but missing are created; owned chains whose rules differ
    ///   (or hold a rule natsync cannot have written) are rewritten; equal chains are untouched.
    /// - Stale per-service chains are deleted; with `deleteStaleFixedChains`, so are stale fixed
    ///   chains (for cleanup). Chains natsync does not own are never touched.
    /// - Each desired built-in jump must exist exactly once: a missing one is inserted at the top
    ///   (in kube-proxy's order, so a fresh node ends with kube-proxy's layout), extra copies are
    ///   deleted, and one already present stays where it is, as kube-proxy's `-C` then `-I` does.
    ///   `removedJumps` are deleted wherever they are.
    /// - With a `scope` (a partial sync), only the chains in it are compared, created or deleted;
    ///   every other chain is left as it is, whatever it holds.
    public static func plan(
        desired: TableContents, live: LiveTable, deleteStaleFixedChains: Bool = false, removedJumps: [BuiltinJump] = [],
        scope: Set<ChainName>? = nil
    ) -> TablePlan {
        var plan = TablePlan(table: desired.table)
        // Positions, not copies of the chains: a large table has a hundred thousand of them. The
        // reader pairs the live chains with the desired ones as it reads them (desiredIndex), so
        // names are looked up only for the others: built-in, foreign and stale chains, or every
        // chain of a table read without the desired one.
        var livePositionOfDesired = [Int?](repeating: nil, count: desired.chains.count)
        var paired = [Bool](repeating: false, count: live.chains.count)
        var unpairedPositions: [ChainName: Int] = [:]
        for (position, chain) in live.chains.enumerated() {
            if let index = chain.desiredIndex, desired.chains.indices.contains(index), desired.chains[index].name == chain.name {
                livePositionOfDesired[index] = position
                paired[position] = true
            } else {
                unpairedPositions[chain.name] = position
            }
        }
        // Only needed for unpaired live chains natsync owns (none, when the table is as it should be).
        lazy var unpairedDesiredNames = Set(
            desired.chains.indices.filter { livePositionOfDesired[$0] == nil }.map { desired.chains[$0].name })
        let inScope: (ChainName) -> Bool = { name in scope?.contains(name) ?? true }

        for (index, chain) in desired.chains.enumerated() where inScope(chain.name) {
            guard let position = livePositionOfDesired[index] ?? unpairedPositions[chain.name] else {
                plan.created.append(chain)
                continue
            }
            let same =
                live.chains[position].matchesDesired
                || live.chains[position].rules.map { $0.elementsEqual(chain.rules) { $0 == .rule($1) } } ?? false
            if !same {
                plan.rewritten.append((chain, live.chains[position].rules ?? [.foreign]))
            }
        }
        for (position, chain) in live.chains.enumerated()
        where !paired[position] && Ownership.owns(chain.name, in: live.table) && inScope(chain.name)
            && !unpairedDesiredNames.contains(chain.name)
        {
            let stale =
                Ownership.isServiceChain(chain.name)
                || (deleteStaleFixedChains && !Ownership.neverDeleted.contains(chain.name))
            if stale { plan.deleted.append((chain.name, chain.rules ?? [])) }
        }

        var builtins = desired.builtinJumps.map(\.chain) + removedJumps.map(\.chain)
        builtins = builtins.enumerated().filter { builtins.firstIndex(of: $0.element) == $0.offset }.map(\.element)
        for builtin in builtins {
            let rules = unpairedPositions[builtin].flatMap { live.chains[$0].rules } ?? []
            let wanted = desired.builtinJumps.filter { $0.chain == builtin }.map(\.rule)
            let unwanted = Set(removedJumps.filter { $0.chain == builtin }.map(\.rule))
            var seen = Set<Rule>()
            var deletions: [(ChainName, Int, Rule)] = []
            for (index, live) in rules.enumerated() {
                guard let rule = live.rule else { continue }
                if wanted.contains(rule) {
                    if !seen.insert(rule).inserted { deletions.append((builtin, index, rule)) }
                } else if unwanted.contains(rule) {
                    deletions.append((builtin, index, rule))
                }
            }
            plan.jumpDeletions += deletions.reversed().map { (chain: $0.0, index: $0.1, rule: $0.2) }
            // kube-proxy inserts its list in order at position 1; the final order is the list reversed.
            for rule in wanted.reversed() where !seen.contains(rule) {
                plan.jumpInsertions.append(BuiltinJump(chain: builtin, rule: rule))
            }
        }
        return plan
    }
}
