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
        func entries(ofChainAt position: Int) -> [UnsafeRawPointer] {
            var result: [UnsafeRawPointer] = []
            var entry = natsync_blob_first_rule(blob, position)
            while let current = entry {
                result.append(current)
                entry = natsync_blob_next_rule(blob, position, current)
            }
            return result
        }

        enum Source {
            case live(Int)
            case rules([Rule])
        }
        let deleted = Set(plan.deleted.map(\.name))
        var rewritten: [ChainName: [Rule]] = [:]
        for (chain, _) in plan.rewritten { rewritten[chain.name] = chain.rules }
        var builtins: [(name: ChainName, position: Int)] = []
        var users: [(name: ChainName, source: Source)] = []
        users.reserveCapacity(natsync_blob_chain_count(blob) + plan.created.count)
        for position in 0..<natsync_blob_chain_count(blob) {
            let name = ChainName(String(cString: natsync_blob_chain_name(blob, position)))
            if natsync_blob_chain_is_user(blob, position) == 0 {
                builtins.append((name, position))
            } else if !deleted.contains(name) {
                users.append((name, rewritten[name].map(Source.rules) ?? .live(position)))
            }
        }
        users += plan.created.map { ($0.name, .rules($0.rules)) }
        // strcmp's order, which libiptc keeps and the writer checks. String's order is strcmp's
        // for ASCII, and much faster than comparing bytes; a name beyond ASCII may order
        // otherwise, and then the bytes decide.
        users.sort { $0.name.rawValue < $1.name.rawValue }
        let strcmpOrder = { (a: ChainName, b: ChainName) in a.rawValue.utf8.lexicographicallyPrecedes(b.rawValue.utf8) }
        if zip(users, users.dropFirst()).contains(where: { !strcmpOrder($0.name, $1.name) }) {
            users.sort { strcmpOrder($0.name, $1.name) }
        }

        for (name, position) in builtins {
            enum Item {
                case live(UnsafeRawPointer)
                case rule(Rule)
            }
            var items = entries(ofChainAt: position).map(Item.live)
            for deletion in plan.jumpDeletions where deletion.chain == name { items.remove(at: deletion.index) }
            for insertion in plan.jumpInsertions where insertion.chain == name { items.insert(.rule(insertion.rule), at: 0) }
            try check(natsync_writer_begin_chain(writer, name.rawValue), "begin chain", name)
            for item in items {
                switch item {
                case .live(let entry): try check(natsync_writer_copy(writer, entry), "copy rule", name)
                case .rule(let rule): try write(rule, in: name)
                }
            }
            try check(natsync_writer_end_chain(writer), "end chain", name)
        }
        for (name, source) in users {
            try check(natsync_writer_begin_chain(writer, name.rawValue), "begin chain", name)
            switch source {
            case .live(let position):
                try check(natsync_writer_copy_chain(writer, position), "copy chain", name)
            case .rules(let rules):
                for rule in rules { try write(rule, in: name) }
            }
            try check(natsync_writer_end_chain(writer), "end chain", name)
        }
        try check(natsync_writer_commit(writer), family == .ipv4 ? "IPT_SO_SET_REPLACE" : "IP6T_SO_SET_REPLACE")
    }
}
