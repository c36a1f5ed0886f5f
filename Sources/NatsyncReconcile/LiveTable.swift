import NatsyncIPTables

/// A rule as read from the kernel: one natsync could have written, or a foreign one it leaves alone.
public enum LiveRule: Hashable, Sendable {
    case rule(Rule)
    /// A rule with matches or a target natsync does not write; never re-encoded or moved.
    case foreign

    public var rule: Rule? {
        if case .rule(let rule) = self { rule } else { nil }
    }
}

/// One table as read from the kernel. Rules are decoded only for the chains a plan needs: the
/// chains natsync owns and the built-in chains that hold its jumps. Other chains are listed by
/// name and never decoded.
public struct LiveTable: Hashable, Sendable {
    public struct LiveChain: Hashable, Sendable {
        public var name: ChainName
        /// `nil` for a chain that was not decoded (foreign, or found equal to the desired chain).
        public var rules: [LiveRule]?
        /// The reader compared the chain in place with the desired chain of the same name and
        /// found them equal, rule for rule, so it did not decode it.
        public var matchesDesired: Bool
        /// Where the desired table the reader was given holds the chain of this name (nil for none,
        /// or when it was given none): the planner pairs the chains without looking names up.
        public var desiredIndex: Int?

        public init(name: ChainName, rules: [LiveRule]?, matchesDesired: Bool = false, desiredIndex: Int? = nil) {
            self.name = name
            self.rules = rules
            self.matchesDesired = matchesDesired
            self.desiredIndex = desiredIndex
        }
    }

    public var table: TableName
    public var chains: [LiveChain]

    public init(table: TableName, chains: [LiveChain]) {
        self.table = table
        self.chains = chains
    }

    public func chain(_ name: ChainName) -> LiveChain? { chains.first { $0.name == name } }
}
