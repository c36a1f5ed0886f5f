import CNatsyncShim
import NatsyncIPTables
import NatsyncReconcile

extension TableBlob {
    /// Replaces the table with this live one changed by `plan`, in one `SET_REPLACE`, without
    /// libiptc: the chains the plan leaves alone are copied entry by entry (their counters kept),
    /// the others written from its rules, in the layout libiptc gives a table (built-in chains in
    /// hook order, then user chains in strcmp order).
    ///
    /// libiptc would first build a structure for every rule of the table (`iptc_init`), then
    /// rebuild the blob from them; the blob already read holds everything the change keeps.
    ///
    /// - Warning: hold the ``XtablesLock`` from the read until this returns. If someone changed
    ///   the table since the read, the kernel refuses the replace (``KernelError/tableChanged``).
    func write(_ plan: TablePlan) throws(KernelError) {
        guard let writer = natsync_writer_open(pointer) else { throw .lastShimError("open table writer", table: table) }
        defer { natsync_writer_free(writer) }
        let blob = pointer
        let table = table
        let family = family

        func check(_ result: Int32, _ operation: String, _ chain: ChainName? = nil) throws(KernelError) {
            guard result == 0 else { throw .lastShimError(operation, table: table, chain: chain) }
        }
        func write(_ rule: Rule, in chain: ChainName) throws(KernelError) {
            var raw = try RuleCodec.encode(rule, family: family, table: table, chain: chain)
            try check(natsync_writer_rule(writer, &raw), "write rule", chain)
        }

        let deleted = Set(plan.deleted.map(\.name))
        var rewritten: [ChainName: [Rule]] = [:]
        for (chain, _) in plan.rewritten { rewritten[chain.name] = chain.rules }
        var builtins: [(name: ChainName, position: Int)] = []
        // User chains kept or rewritten, in the live blob's order (libiptc's strcmp order, unless
        // someone else wrote the table), then the new ones, each list sorted, then merged.
        var live: [UserChain] = []
        live.reserveCapacity(natsync_blob_chain_count(blob))
        for position in 0..<natsync_blob_chain_count(blob) {
            let name = ChainName(String(cString: natsync_blob_chain_name(blob, position)))
            if natsync_blob_chain_is_user(blob, position) == 0 {
                builtins.append((name, position))
            } else if !deleted.contains(name) {
                live.append(UserChain(name: name, livePosition: position, rules: rewritten[name]))
            }
        }
        let users = UserChain.merged(live, plan.created.map { UserChain(name: $0.name, livePosition: nil, rules: $0.rules) })

        for (name, position) in builtins {
            enum Item {
                case live(Int)
                case rule(Rule)
            }
            var count = 0
            var entry = natsync_blob_first_rule(blob, position)
            while let current = entry {
                count += 1
                entry = natsync_blob_next_rule(blob, position, current)
            }
            var items = (0..<count).map(Item.live)
            for deletion in plan.jumpDeletions where deletion.chain == name { items.remove(at: deletion.index) }
            for insertion in plan.jumpInsertions where insertion.chain == name { items.insert(.rule(insertion.rule), at: 0) }
            try check(natsync_writer_begin_chain(writer, name.rawValue, -1), "begin chain", name)
            for item in items {
                switch item {
                case .live(let index): try check(natsync_writer_copy_rule(writer, position, index), "copy rule", name)
                case .rule(let rule): try write(rule, in: name)
                }
            }
            try check(natsync_writer_end_chain(writer), "end chain", name)
        }
        for chain in users {
            try check(natsync_writer_begin_chain(writer, chain.name.rawValue, chain.livePosition ?? -1), "begin chain", chain.name)
            if let rules = chain.rules {
                for rule in rules { try write(rule, in: chain.name) }
            } else if let position = chain.livePosition {
                try check(natsync_writer_copy_chain(writer, position), "copy chain", chain.name)
            }
            try check(natsync_writer_end_chain(writer), "end chain", chain.name)
        }
        try check(natsync_writer_commit(writer), family == .ipv4 ? "IPT_SO_SET_REPLACE" : "IP6T_SO_SET_REPLACE")
    }
}

/// A user chain of the table being written: copied from the live chain at `livePosition`, or
/// written from `rules` (a rewritten chain has both, a new one no live position).
private struct UserChain {
    var name: ChainName
    var livePosition: Int?
    var rules: [Rule]?

    /// `live` and `created` (disjoint) in strcmp's order, which libiptc keeps and the writer
    /// checks. The live chains mostly are in that order already and the new ones are few (but for
    /// a fresh table), so each list is sorted only when it is not, and the two are merged.
    static func merged(_ live: [UserChain], _ created: [UserChain]) -> [UserChain] {
        let (live, created) = (inOrder(live), inOrder(created))
        var result: [UserChain] = []
        result.reserveCapacity(live.count + created.count)
        var (i, j) = (0, 0)
        while i < live.count || j < created.count {
            if j == created.count || (i < live.count && precedes(live[i].name, created[j].name)) {
                result.append(live[i])
                i += 1
            } else {
                result.append(created[j])
                j += 1
            }
        }
        return result
    }

    private static func inOrder(_ chains: [UserChain]) -> [UserChain] {
        if zip(chains, chains.dropFirst()).allSatisfy({ precedes($0.name, $1.name) }) { return chains }
        // String's order is strcmp's for ASCII, and much faster than comparing bytes; a name
        // beyond ASCII may order otherwise, and then the bytes decide.
        var sorted = chains.sorted { $0.name.rawValue < $1.name.rawValue }
        if !zip(sorted, sorted.dropFirst()).allSatisfy({ precedes($0.name, $1.name) }) {
            sorted.sort { precedes($0.name, $1.name) }
        }
        return sorted
    }

    private static func precedes(_ a: ChainName, _ b: ChainName) -> Bool {
        a.rawValue.utf8.lexicographicallyPrecedes(b.rawValue.utf8)
    }
}
