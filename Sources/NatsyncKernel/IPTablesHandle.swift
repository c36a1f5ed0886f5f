import CNatsyncShim
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile

/// An open libiptc handle on one table: the table as read, plus the changes made to it so far,
/// which ``commit()`` applies in one atomic replace.
///
/// - Important: libiptc has no locking and keeps iterator state in the handle, so a handle is used
///   on one thread only, and rule and chain pointers it hands out die at the next change. The type
///   is neither copyable nor sendable, and every pointer is copied into Swift values at once.
/// - Warning: hold the ``XtablesLock`` from before opening until after the commit.
struct IPTablesHandle: ~Copyable {
    let table: TableName
    let family: IPFamily
    let pointer: OpaquePointer

    /// Reads `table` of `family` from the kernel of the calling thread's network namespace
    /// (`iptc_init` or `ip6tc_init`).
    init(_ table: TableName, family: IPFamily) throws(KernelError) {
        let pointer = try Shim.openTable(table, family: family)
        self.table = table
        self.family = family
        self.pointer = pointer
    }

    deinit {
        Shim.freeTable(pointer)
    }

    /// The chains of the table, in libiptc's order, with the rules of those `decode` selects.
    /// A user chain that `desired` also holds is first compared with it in place; when they are
    /// equal it is marked so and not decoded.
    func read(decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents? = nil) -> LiveTable {
        var names: [ChainName] = []
        var next = Shim.firstChain(pointer)
        while let name = next {
            names.append(ChainName(String(cString: name)))
            next = Shim.nextChain(pointer)
        }
        return LiveTable(table: table, chains: reader(names).chains(names, decoding: decode, comparingWith: desired))
    }

    /// The built-in chains and those of `names` that exist, in libiptc's order, each decoded if
    /// `decode` selects it. Costs the chains asked for, not the table: a partial sync's read.
    func read(only names: Set<ChainName>, decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents? = nil) -> LiveTable {
        // libiptc lists built-ins in hook order, then user chains in strcmp order (String's, for ASCII).
        let present = (ChainName.builtins + names.filter { !$0.isBuiltin }.sorted { $0.rawValue < $1.rawValue })
            .filter { Shim.chainExists(pointer, $0) }
        return LiveTable(table: table, chains: reader(present).chains(present, decoding: decode, comparingWith: desired))
    }

    /// Entries of the chains called `names`, by position, through libiptc.
    private func reader(_ names: [ChainName]) -> ChainReader {
        let pointer = pointer
        return ChainReader(
            family: family, first: { Shim.firstRule(pointer, names[$0]) }, next: { Shim.nextRule(pointer, after: $1) },
            decode: { Shim.decodeRule(pointer, $0, into: $1) })
    }

    /// Calls `body` with each entry of `chain`, decoded into `raw` (and whether it is foreign).
    func forEachEntry(
        of chain: ChainName, _ body: (_ raw: UnsafeMutablePointer<natsync_rule>, _ foreign: Bool, _ entry: UnsafeRawPointer) -> Void
    ) {
        reader([chain]).forEachEntry(ofChainAt: 0, body)
    }

    /// The packet and byte counters of each rule of `chain`.
    func counters(of chain: ChainName) -> [(packets: UInt64, bytes: UInt64)] {
        var result: [(UInt64, UInt64)] = []
        forEachEntry(of: chain) { raw, _, _ in result.append((raw.pointee.packets, raw.pointee.bytes)) }
        return result
    }

    /// `iptc_create_chain`.
    func createChain(_ chain: ChainName) throws(KernelError) {
        try Shim.createChain(pointer, chain, table: table)
    }

    /// `iptc_flush_entries`.
    func flush(_ chain: ChainName) throws(KernelError) {
        try Shim.flushChain(pointer, chain, table: table)
    }

    /// `iptc_delete_chain`; the chain must be empty and unreferenced.
    func deleteChain(_ chain: ChainName) throws(KernelError) {
        try Shim.deleteChain(pointer, chain, table: table)
    }

    /// `iptc_append_entry` of an encoded rule.
    func append(_ rule: Rule, to chain: ChainName) throws(KernelError) {
        var raw = try encode(rule, chain)
        try Shim.appendRule(pointer, &raw, to: chain, table: table)
    }

    /// `iptc_insert_entry` at a 0-based position.
    func insert(_ rule: Rule, into chain: ChainName, at index: Int) throws(KernelError) {
        var raw = try encode(rule, chain)
        try Shim.insertRule(pointer, &raw, into: chain, at: index, table: table)
    }

    /// `iptc_delete_num_entry` at a 0-based position.
    func deleteRule(in chain: ChainName, at index: Int) throws(KernelError) {
        try Shim.deleteRule(pointer, in: chain, at: index, table: table)
    }

    /// `iptc_commit`: replaces the table in one step, or does nothing when the handle is unchanged.
    func commit() throws(KernelError) {
        try Shim.commit(pointer, table: table, family: family)
    }

    private func encode(_ rule: Rule, _ chain: ChainName) throws(KernelError) -> natsync_rule {
        try RuleCodec.encode(rule, family: family, table: table, chain: chain)
    }
}

extension IPTablesHandle {
    /// Applies a plan to the handle (not yet to the kernel).
    func apply(_ plan: TablePlan) throws(KernelError) {
        // libiptc keeps user chains in one sorted list, indexed every 40 chains and re-indexed only
        // after 355 insertions: a chain created in random name order walks a long bucket of
        // strcmp calls to find its place. Created in descending order each new chain goes at the
        // front, in constant time, and later lookups walk short buckets (a 10,000-service table
        // filled about twice as fast).
        // Chain names are ASCII, for which String's order is strcmp's.
        for chain in plan.created.map(\.name.rawValue).sorted(by: >) {
            try createChain(ChainName(chain))
        }
        for chain in plan.created {
            for rule in chain.rules { try append(rule, to: chain.name) }
        }
        for (chain, _) in plan.rewritten {
            try flush(chain.name)
            for rule in chain.rules { try append(rule, to: chain.name) }
        }
        for (chain, index, _) in plan.jumpDeletions {
            try deleteRule(in: chain, at: index)
        }
        for jump in plan.jumpInsertions {
            try insert(jump.rule, into: jump.chain, at: 0)
        }
        // Flush every stale chain before deleting any: stale chains may jump to each other.
        for (chain, _) in plan.deleted {
            try flush(chain)
        }
        for (chain, _) in plan.deleted {
            try deleteChain(chain)
        }
    }
}
