import CNatsyncShim
import NatsyncIPTables
import NatsyncNet

/// A whole table as read from the kernel: every chain, built-in ones with their policies, and
/// every rule, foreign ones described as far as natsync can name their parts. For showing the
/// table (`natsync trace --live`), never for writing it back.
public struct TableDump: Sendable {
    public enum Entry: Hashable, Sendable {
        case rule(Rule)
        /// A rule natsync does not model: its IP header and the names of its extensions.
        case foreign(String)
    }

    public struct Chain: Sendable {
        public var name: ChainName
        /// `ACCEPT` or `DROP` for a built-in chain; `nil` for a user chain.
        public var policy: String?
        public var entries: [Entry]
    }

    public var table: TableName
    public var chains: [Chain]
}

extension LegacyTables {
    /// Reads each table whole. Reading takes no lock, as `iptables-save` takes none: libiptc gets
    /// one consistent snapshot from the kernel.
    public func dump(_ tables: [TableName]) throws(KernelError) -> [TableDump] {
        var dumps: [TableDump] = []
        for table in tables {
            dumps.append(try IPTablesHandle(table, family: family).dump())
        }
        return dumps
    }
}

extension RestoreTables {
    /// Reads each table as `iptables-save` prints it: how nf_tables tables are shown, since
    /// iptables-nft decodes its own rules.
    public func dump(_ tables: [TableName]) throws(KernelError) -> [TableDump] {
        var dumps: [TableDump] = []
        for table in tables {
            var chains: [TableDump.Chain] = []
            var index: [ChainName: Int] = [:]
            try forEachLine(of: table) { name, policy in
                index[name] = chains.count
                chains.append(TableDump.Chain(name: name, policy: policy, entries: []))
            } rule: { name, arguments in
                guard let position = index[name] else { return }
                let entry = (try? RestoreText.parseRule(arguments)).map(TableDump.Entry.rule) ?? .foreign(String(arguments))
                chains[position].entries.append(entry)
            }
            dumps.append(TableDump(table: table, chains: chains))
        }
        return dumps
    }
}

extension IPTablesHandle {
    func dump() -> TableDump {
        let names = read { _ in false }.chains.map(\.name)
        return TableDump(
            table: table,
            chains: names.map { name in
                TableDump.Chain(name: name, policy: policy(of: name), entries: entries(of: name))
            })
    }

    private func policy(of chain: ChainName) -> String? {
        Shim.policy(pointer, chain)
    }

    private func entries(of chain: ChainName) -> [TableDump.Entry] {
        var result: [TableDump.Entry] = []
        forEachEntry(of: chain) { raw, foreign, entry in
            if case .rule(let rule) = RuleCodec.decode(raw, foreign: foreign, family: family) {
                result.append(.rule(rule))
                return
            }
            let extensions = Shim.describeExtensions(pointer, entry)
            result.append(.foreign(RuleCodec.describeHeader(raw.pointee, family: family, then: extensions)))
        }
        return result
    }
}

extension RuleCodec {
    /// The IP header of a foreign entry in iptables' spelling, followed by `extensions`.
    static func describeHeader(_ raw: natsync_rule, family: IPFamily, then extensions: String) -> String {
        var raw = raw
        var header = Rule(target: .none)
        var words: [String] = []
        func flag(_ bit: natsync_rule_flag) -> Bool { raw.flags & UInt32(bit.rawValue) != 0 }
        if case .prefix(let cidr) = prefix(raw.source, raw.source_mask, family) {
            header.source = AddressMatch(cidr, inverted: flag(NATSYNC_RF_INVERT_SOURCE))
        }
        if case .prefix(let cidr) = prefix(raw.dest, raw.dest_mask, family) {
            header.destination = AddressMatch(cidr, inverted: flag(NATSYNC_RF_INVERT_DEST))
        }
        let inName = string(&raw.in_iface)
        if !inName.isEmpty { header.inInterface = InterfaceMatch(inName, inverted: flag(NATSYNC_RF_INVERT_IN)) }
        let outName = string(&raw.out_iface)
        if !outName.isEmpty { header.outInterface = InterfaceMatch(outName, inverted: flag(NATSYNC_RF_INVERT_OUT)) }
        if raw.protocol != 0 {
            if let proto = TransportProtocol.allCases.first(where: { UInt16($0.number) == raw.protocol }) {
                header.protocol = ProtocolMatch(proto, inverted: flag(NATSYNC_RF_INVERT_PROTO))
            } else {
                words.append((flag(NATSYNC_RF_INVERT_PROTO) ? "! " : "") + "-p \(raw.protocol)")
            }
        }
        words.insert(RestoreText.arguments(of: header, family: family), at: 0)
        words.append(extensions)
        return words.filter { !$0.isEmpty }.joined(separator: " ")
    }
}
