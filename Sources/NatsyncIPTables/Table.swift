/// A chain and its rules, in order.
public struct Chain: Hashable, Sendable {
    public var name: ChainName
    public var rules: [Rule]

    public init(_ name: ChainName, rules: [Rule] = []) {
        self.name = name
        self.rules = rules
    }
}

/// A rule that must sit at the top of a built-in chain (the proxy's entry points, such as
/// `-A PREROUTING ... -j KUBE-SERVICES`). Built-in chains are shared, so these are ensured one by
/// one rather than written as whole chains.
public struct BuiltinJump: Hashable, Sendable {
    public var chain: ChainName
    public var rule: Rule

    public init(chain: ChainName, rule: Rule) {
        self.chain = chain
        self.rule = rule
    }
}

/// The contents of one table that the proxy owns: the user chains it writes, in declaration order,
/// and the jumps it ensures in the built-in chains (in their final top-down order).
public struct TableContents: Hashable, Sendable {
    public var table: TableName
    public var chains: [Chain]
    public var builtinJumps: [BuiltinJump]
    /// Chains to delete (`-X`), when the contents are a change to live state.
    public var deletedChains: [ChainName]

    public init(
        table: TableName, chains: [Chain] = [], builtinJumps: [BuiltinJump] = [], deletedChains: [ChainName] = []
    ) {
        self.table = table
        self.chains = chains
        self.builtinJumps = builtinJumps
        self.deletedChains = deletedChains
    }

    /// The chain called `name`, if declared.
    public func chain(_ name: ChainName) -> Chain? {
        chains.first { $0.name == name }
    }

    /// The number of rules in all declared chains.
    public var ruleCount: Int { chains.reduce(0) { $0 + $1.rules.count } }
}
