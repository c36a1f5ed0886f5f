/// The nf_tables netlink message types natsync sends, or reads in events (the kernel's
/// `enum nf_tables_msg_types`, which the shim's header does not export).
enum NFTMessage {
    static let newTable: UInt16 = 0
    static let newChain: UInt16 = 3
    static let deleteChain: UInt16 = 5
    static let newRule: UInt16 = 6
    static let deleteRule: UInt16 = 8
    static let newGeneration: UInt16 = 15

    /// The kernel's name for a message of `type`, for an error that names it: a rule deletion
    /// without a handle flushes the chain.
    static func name(_ type: UInt16, byHandle: Bool = true) -> String {
        switch type {
        case newTable: "NFT_MSG_NEWTABLE"
        case newChain: "NFT_MSG_NEWCHAIN"
        case deleteChain: "NFT_MSG_DELCHAIN"
        case newRule: "NFT_MSG_NEWRULE"
        case deleteRule: byHandle ? "NFT_MSG_DELRULE" : "NFT_MSG_DELRULE (flush)"
        case newGeneration: "NFT_MSG_NEWGEN"
        default: "nf_tables message \(type)"
        }
    }
}
