import NatsyncIPTables
import NatsyncNet

/// The rules a packet can meet: every chain of the nat and filter tables, built-in ones with their
/// policies, as read from a live namespace or assembled from the desired tables of a dry run.
public struct Ruleset: Sendable {
    /// A rule of the walk: one natsync can evaluate, or one it can only show.
    public enum Entry: Hashable, Sendable {
        case rule(Rule)
        /// A rule with a match or target natsync does not model, described as far as it can be.
        case opaque(String)
    }

    public struct Chain: Hashable, Sendable {
        public var entries: [Entry]
        /// The verdict at the end of a built-in chain; `nil` for a user chain, which returns.
        public var policy: Policy?

        public init(entries: [Entry], policy: Policy? = nil) {
            self.entries = entries
            self.policy = policy
        }
    }

    public enum Policy: String, Hashable, Sendable {
        case accept = "ACCEPT"
        case drop = "DROP"
    }

    public var family: IPFamily
    var tables: [TableName: [ChainName: Chain]]

    public init(family: IPFamily, tables: [TableName: [ChainName: Chain]]) {
        self.family = family
        self.tables = tables
    }

    /// The tables a dry run would leave on a node with nothing else on it: the desired chains, and
    /// built-in chains holding only natsync's jumps, with policy ACCEPT.
    public init(desired: [TableContents], family: IPFamily) {
        var tables: [TableName: [ChainName: Chain]] = [:]
        for contents in desired {
            var chains: [ChainName: Chain] = [:]
            for chain in contents.chains {
                chains[chain.name] = Chain(entries: chain.rules.map(Entry.rule))
            }
            for builtin in Self.builtinChains[contents.table] ?? [] {
                let jumps = contents.builtinJumps.filter { $0.chain == builtin }.map { Entry.rule($0.rule) }
                chains[builtin] = Chain(entries: jumps, policy: .accept)
            }
            tables[contents.table] = chains
        }
        self.init(family: family, tables: tables)
    }

    static let builtinChains: [TableName: [ChainName]] = [
        .filter: [.input, .forward, .output],
        .nat: [.prerouting, .input, .output, .postrouting],
        .mangle: [.prerouting, .input, .forward, .output, .postrouting],
    ]

    func chain(_ name: ChainName, in table: TableName) -> Chain? {
        tables[table]?[name]
    }
}
