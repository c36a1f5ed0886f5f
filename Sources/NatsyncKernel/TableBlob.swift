import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile

/// A table as the kernel hands it out (`GET_ENTRIES`), walked without libiptc: read for the
/// compare, and the base of the table a sync writes (``write(_:)``).
///
/// A sync mostly finds the table as it should be. Reading it this way costs the kernel's copy of
/// the blob; `iptc_init` adds a structure per rule and per chain on top, which a change does not
/// need either (see ``LegacyTables/sync(_:deleteStaleFixedChains:removedJumps:scope:)``).
///
/// - Warning: hold the ``XtablesLock`` while reading, as for a handle.
struct TableBlob: ~Copyable {
    let table: TableName
    let family: IPFamily
    let pointer: OpaquePointer

    init(_ table: TableName, family: IPFamily) throws(KernelError) {
        let pointer = try Shim.readBlob(table, family: family)
        self.table = table
        self.family = family
        self.pointer = pointer
    }

    deinit {
        Shim.freeBlob(pointer)
    }

    /// The chains of the table in the blob's order, read as ``IPTablesHandle/read(decoding:comparingWith:)``
    /// reads them; with `only`, the built-in chains and those of `only` that exist (a partial
    /// sync's read, which decodes and compares the chains asked for, not the table).
    func read(only: Set<ChainName>? = nil, decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents? = nil)
        -> LiveTable
    {
        let pointer = pointer
        let positions = if let only { positions(of: only) } else { Array(0..<Shim.chainCount(pointer)) }
        let reader = ChainReader(
            family: family, first: { Shim.firstRule(pointer, chain: positions[$0]) },
            next: { Shim.nextRule(pointer, chain: positions[$0], after: $1) }, decode: { Shim.decodeRule(blob: pointer, $0, into: $1) },
            concurrent: true)
        let chains = reader.chains(
            count: positions.count, key: { ChainReader.key(ofCString: Shim.chainName(pointer, positions[$0])) },
            name: { ChainName(String(cString: Shim.chainName(pointer, positions[$0]))) }, decoding: decode,
            comparingWith: desired)
        return LiveTable(table: table, chains: chains)
    }

    /// The positions of the built-in chains and of the user chains called one of `names`, in the
    /// blob's order. The user chains are found by halving when they are in strcmp order (as
    /// libiptc writes them): a partial sync makes no string of the other hundred thousand names.
    private func positions(of names: Set<ChainName>) -> [Int] {
        let pointer = pointer
        var positions = (0..<Shim.chainCount(pointer)).filter { !Shim.isUserChain(pointer, $0) }
        for name in names {
            let (position, found) = Shim.searchUserChain(pointer, name)
            if found { positions.append(position) }
        }
        return positions.sorted()
    }

    /// The entries as the kernel handed them out, counters included (for comparing tables).
    var bytes: [UInt8] { Array(Shim.entries(pointer)) }
}
