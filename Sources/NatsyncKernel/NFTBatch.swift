import NatsyncIPTables
import NatsyncNet

/// One nf_tables transaction being built: table, chain and rule messages in order, sent as one
/// netlink batch that the kernel applies all or nothing, and only while the ruleset generation is
/// still the one the batch was planned against.
final class NFTBatch {
    private let batch: OpaquePointer
    let family: IPFamily

    init(generation: UInt32, family: IPFamily) throws(KernelError) {
        batch = try Shim.nftBatchBegin(generation: generation)
        self.family = family
    }

    deinit { Shim.nftBatchFree(batch) }

    var isEmpty: Bool { Shim.nftBatchMessageCount(batch) == 0 }

    func addTable(_ table: TableName) throws(KernelError) {
        try Shim.nftBatchAddTable(batch, family: family, table: table)
    }

    /// A user chain, or the base chain `chain` of `table` as iptables-nft makes it.
    func addChain(_ chain: ChainName, in table: TableName, base: Bool = false) throws(KernelError) {
        var hook: (type: String, hook: Int32, priority: Int32)?
        if base {
            guard let spec = Self.baseChain(chain, in: table) else {
                throw KernelError(
                    errno: KernelError.notFound, operation: NFTMessage.name(NFTMessage.newChain), table: table, chain: chain,
                    message: "not a built-in chain of this table")
            }
            hook = spec
        }
        try Shim.nftBatchAddChain(batch, family: family, table: table, chain: chain, base: hook)
    }

    func flushChain(_ chain: ChainName, in table: TableName) throws(KernelError) {
        try Shim.nftBatchFlushChain(batch, family: family, table: table, chain: chain)
    }

    func deleteChain(_ chain: ChainName, in table: TableName) throws(KernelError) {
        try Shim.nftBatchDeleteChain(batch, family: family, table: table, chain: chain)
    }

    /// A rule given as its encoded expressions (``NFTRuleEncoding``), appended or put at the top.
    func addRule(_ rule: Rule, expressions: [UInt8], to chain: ChainName, in table: TableName, atTop: Bool = false) throws(KernelError) {
        try Shim.nftBatchAddRule(
            batch, family: family, table: table, chain: chain, expressions: expressions, protocol: rule.protocol, atTop: atTop)
    }

    func deleteRule(handle: UInt64, from chain: ChainName, in table: TableName) throws(KernelError) {
        try Shim.nftBatchDeleteRule(batch, family: family, table: table, chain: chain, handle: handle)
    }

    /// Makes the batch apply at `generation` instead of the one it was planned against: after
    /// commits by others during the read that touched nothing it was planned from.
    func setGeneration(_ generation: UInt32) {
        Shim.nftBatchSetGeneration(batch, generation)
    }

    /// Applies the batch; throws, with nothing applied, when the kernel refuses any message or
    /// the generation moved (``KernelError/generationMoved``).
    func commit() throws(KernelError) {
        guard !isEmpty, let (failure, index) = Shim.nftBatchCommit(batch) else { return }
        var error = failure
        // The batch itself says what the refused message did: a list of what every message does
        // would cost a large batch megabytes.
        if let index, let message = Shim.nftBatchMessage(batch, index) {
            error.operation = message.operation
            error.table = message.table
            error.chain = message.chain
        } else if error.errno == KernelError.generationMoved {
            error.message = "someone else changed nf_tables since it was read"
        }
        error.message += " (nothing of the transaction was applied)"
        throw error
    }

    /// The hook, priority and type iptables-nft gives each built-in chain it creates.
    static func baseChain(_ chain: ChainName, in table: TableName) -> (type: String, hook: Int32, priority: Int32)? {
        // NF_INET_PRE_ROUTING 0, LOCAL_IN 1, FORWARD 2, LOCAL_OUT 3, POST_ROUTING 4; nat's
        // priorities are dstnat (-100) and srcnat (100).
        switch (table, chain.rawValue) {
        case (.nat, "PREROUTING"): ("nat", 0, -100)
        case (.nat, "INPUT"): ("nat", 1, 100)
        case (.nat, "OUTPUT"): ("nat", 3, -100)
        case (.nat, "POSTROUTING"): ("nat", 4, 100)
        case (.filter, "INPUT"): ("filter", 1, 0)
        case (.filter, "FORWARD"): ("filter", 2, 0)
        case (.filter, "OUTPUT"): ("filter", 3, 0)
        default: nil
        }
    }
}
