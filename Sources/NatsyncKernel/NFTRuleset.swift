import NatsyncIPTables
import NatsyncNet

/// One expression of an nf_tables rule as the kernel dumps it: its name (`payload`, `cmp`,
/// `meta`, `immediate`, `counter`, and iptables' compat `match` and `target`) and its data
/// attributes' bytes (`NFTA_EXPR_DATA`'s payload).
public struct NFTExpression: Equatable, Sendable {
    public var name: String
    public var data: [UInt8]

    public init(name: String, data: [UInt8]) {
        self.name = name
        self.data = data
    }

    /// The expressions of `NFTA_RULE_EXPRESSIONS`'s payload (one `NFTA_LIST_ELEM` each), or nil
    /// when the bytes are not such a list.
    static func list(_ bytes: UnsafeRawBufferPointer) -> [NFTExpression]? {
        guard let elements = NetlinkAttributes.parse(bytes) else { return nil }
        var expressions: [NFTExpression] = []
        for element in elements {
            guard element.type == NetlinkAttributes.listElement, let members = NetlinkAttributes.parse(element.payload),
                let name = members.first(where: { $0.type == NetlinkAttributes.expressionName }), let text = name.string
            else { return nil }
            let data = members.first { $0.type == NetlinkAttributes.expressionData }.map { Array($0.payload) } ?? []
            expressions.append(NFTExpression(name: text, data: data))
        }
        return expressions
    }
}

/// One rule of an nf_tables chain, as the kernel holds it.
public struct NFTRule: Equatable, Sendable {
    public var chain: String
    /// The kernel's handle, unique in its table: how a rule is deleted or replaced.
    public var handle: UInt64
    public var expressions: [NFTExpression]
    /// `NFTA_RULE_USERDATA`, empty when absent.
    public var userdata: [UInt8]
}

/// nf_tables as the kernel holds it, read over netlink in the calling thread's namespace.
public enum NFTables {
    /// The ruleset generation: every commit, by anyone, moves it.
    public static func generation() throws(KernelError) -> UInt32 {
        try Shim.nftGeneration()
    }

    /// The rules of `table` of `family` (nf_tables family ip or ip6), chain by chain; none when
    /// the table does not exist (iptables-nft makes it when first used).
    public static func rules(_ table: TableName, family: IPFamily) throws(KernelError) -> [NFTRule] {
        try Shim.nftRules(family: family, table: table)
    }
}

/// Netlink attributes (`struct nlattr`: a 16-bit length including its 4-byte header, a 16-bit
/// type whose top two bits are flags, then the payload padded to 4 bytes), read from bytes.
enum NetlinkAttributes {
    static let listElement: UInt16 = 1  // NFTA_LIST_ELEM
    static let expressionName: UInt16 = 1  // NFTA_EXPR_NAME
    static let expressionData: UInt16 = 2  // NFTA_EXPR_DATA

    struct Attribute {
        /// Without the nested and byte-order flags.
        var type: UInt16
        var payload: UnsafeRawBufferPointer

        /// A NUL-terminated string payload.
        var string: String? {
            guard let end = payload.firstIndex(of: 0) else { return nil }
            return String(decoding: payload[..<end], as: UTF8.self)
        }
    }

    /// The attributes laid one after another in `bytes`, or nil when one's length is wrong.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [Attribute]? {
        var attributes: [Attribute] = []
        var offset = 0
        while offset + 4 <= bytes.count {
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3FFF
            guard length >= 4, offset + length <= bytes.count else { return nil }
            attributes.append(Attribute(type: type, payload: UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + length)])))
            offset += (length + 3) & ~3
        }
        return offset >= bytes.count ? attributes : nil
    }
}
