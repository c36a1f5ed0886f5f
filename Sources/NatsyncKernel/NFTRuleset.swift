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

    /// True when `bytes` are a list of expressions (see ``list(_:)``).
    static func isList(_ bytes: UnsafeRawBufferPointer) -> Bool {
        NetlinkAttributes.walk(bytes) { type, element in
            var named = false
            let valid = NetlinkAttributes.walk(element) { member, payload in
                if member == NetlinkAttributes.expressionName { named = payload.contains(0) }
                return true
            }
            return type == NetlinkAttributes.listElement && valid && named
        }
    }

    /// True when an `NFTA_LIST_ELEM`'s payload is a counter expression.
    static func isCounter(_ element: UnsafeRawBufferPointer) -> Bool {
        var counter = false
        _ = NetlinkAttributes.walk(element) { member, payload in
            if member == NetlinkAttributes.expressionName { counter = payload.starts(with: "counter\0".utf8) }
            return true
        }
        return counter
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
    /// `NFTA_RULE_EXPRESSIONS`'s payload as dumped: one `NFTA_LIST_ELEM` per expression.
    public var expressionBytes: [UInt8]
    /// `NFTA_RULE_USERDATA`, empty when absent.
    public var userdata: [UInt8]

    public var expressions: [NFTExpression] { expressionBytes.withUnsafeBytes { NFTExpression.list($0) } ?? [] }

    /// True when the rule holds exactly `encoded` (``NFTRuleEncoding``): the same expressions,
    /// byte for byte, except a counter's values.
    func holds(_ encoded: [UInt8]) -> Bool {
        // A counter's values have a fixed size: a rule of another length is another rule.
        guard expressionBytes.count == encoded.count else { return false }
        if expressionBytes == encoded { return true }
        return expressionBytes.withUnsafeBytes { live in
            encoded.withUnsafeBytes { wanted in
                guard let liveElements = NetlinkAttributes.parse(live), let wantedElements = NetlinkAttributes.parse(wanted),
                    liveElements.count == wantedElements.count
                else { return false }
                for (a, b) in zip(liveElements, wantedElements) where !a.payload.elementsEqual(b.payload) {
                    guard NFTExpression.isCounter(a.payload), NFTExpression.isCounter(b.payload) else { return false }
                }
                return true
            }
        }
    }
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

    /// The chains of each table of `family`, in the kernel's order, and which are base chains
    /// (hooked into netfilter); a table that does not exist has none.
    public static func chains(family: IPFamily) throws(KernelError) -> [TableName: [(name: ChainName, base: Bool)]] {
        var chains: [TableName: [(name: ChainName, base: Bool)]] = [:]
        for chain in try Shim.nftChains(family: family) {
            guard let table = TableName(rawValue: chain.table) else { continue }
            chains[table, default: []].append((ChainName(chain.name), chain.base))
        }
        return chains
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
        let valid = walk(bytes) { type, payload in
            attributes.append(Attribute(type: type, payload: payload))
            return true
        }
        return valid ? attributes : nil
    }

    /// Calls `body` with each attribute's type and payload, in order, without allocating; false
    /// when a length is wrong or `body` returns false.
    static func walk(_ bytes: UnsafeRawBufferPointer, _ body: (UInt16, UnsafeRawBufferPointer) -> Bool) -> Bool {
        var offset = 0
        while offset + 4 <= bytes.count {
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3FFF
            guard length >= 4, offset + length <= bytes.count else { return false }
            guard body(type, UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + length)])) else { return false }
            offset += (length + 3) & ~3
        }
        return offset >= bytes.count
    }
}
