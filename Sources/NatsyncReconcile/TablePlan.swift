import NatsyncIPTables

/// The changes that turn one live table into the desired one, in the order they must be applied
/// to a libiptc handle: create chains (so jumps resolve), rewrite changed chains, flush then delete
/// stale chains, then fix the jumps in the built-in chains.
public struct TablePlan: Equatable, Sendable {
    public var table: TableName
    /// New chains with their rules.
    public var created: [Chain] = []
    /// Existing owned chains whose rules differ, with the new rules and the old ones (for `diff`).
    public var rewritten: [(chain: Chain, old: [LiveRule])] = []
    /// Owned chains no longer wanted, with their old rules.
    public var deleted: [(name: ChainName, old: [LiveRule])] = []
    /// Rules to delete from built-in chains, by position, highest first per chain.
    public var jumpDeletions: [(chain: ChainName, index: Int, rule: Rule)] = []
    /// Rules to insert at the top of built-in chains, in order (each at position 0).
    public var jumpInsertions: [BuiltinJump] = []

    public init(table: TableName) { self.table = table }

    /// Nothing to change: no commit is needed.
    public var isEmpty: Bool {
        created.isEmpty && rewritten.isEmpty && deleted.isEmpty && jumpDeletions.isEmpty && jumpInsertions.isEmpty
    }

    /// The user chains this plan creates, rewrites or deletes: the scope that plans the same
    /// change again from a read of only those chains (and the built-in ones).
    public var touchedChains: Set<ChainName> {
        Set(created.map(\.name) + rewritten.map(\.chain.name) + deleted.map(\.name))
    }

    /// Rules written by this plan (in created and rewritten chains, and jumps).
    public var rulesWritten: Int {
        created.reduce(0) { $0 + $1.rules.count } + rewritten.reduce(0) { $0 + $1.chain.rules.count }
            + jumpInsertions.count
    }

    public static func == (lhs: TablePlan, rhs: TablePlan) -> Bool {
        lhs.table == rhs.table && lhs.created == rhs.created
            && lhs.rewritten.map(\.chain) == rhs.rewritten.map(\.chain) && lhs.rewritten.map(\.old) == rhs.rewritten.map(\.old)
            && lhs.deleted.map(\.name) == rhs.deleted.map(\.name)
            && lhs.jumpDeletions.map(\.chain) == rhs.jumpDeletions.map(\.chain)
            && lhs.jumpDeletions.map(\.index) == rhs.jumpDeletions.map(\.index)
            && lhs.jumpInsertions == rhs.jumpInsertions
    }
}
