import CNatsyncShim
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
        guard let pointer = natsync_blob_read(table.rawValue, family.shimFamily) else {
            throw .lastShimError(family == .ipv4 ? "IPT_SO_GET_ENTRIES" : "IP6T_SO_GET_ENTRIES", table: table)
        }
        self.table = table
        self.family = family
        self.pointer = pointer
    }

    deinit {
        natsync_blob_free(pointer)
    }

    /// The chains of the table in the blob's order, read as ``IPTablesHandle/read(decoding:comparingWith:)``
    /// reads them; with `only`, the built-in chains and those of `only` that exist (a partial
    /// sync's read, which decodes and compares the chains asked for, not the table).
    func read(only: Set<ChainName>? = nil, decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents? = nil)
        -> LiveTable
    {
        let pointer = pointer
        let positions = if let only { positions(of: only) } else { Array(0..<natsync_blob_chain_count(pointer)) }
        let reader = ChainReader(
            family: family, first: { natsync_blob_first_rule(pointer, positions[$0]) },
            next: { natsync_blob_next_rule(pointer, positions[$0], $1) }, decode: { natsync_blob_decode_rule(pointer, $0, $1) },
            concurrent: true)
        let chains = reader.chains(
            count: positions.count, key: { ChainReader.key(ofCString: natsync_blob_chain_name(pointer, positions[$0])) },
            name: { ChainName(String(cString: natsync_blob_chain_name(pointer, positions[$0]))) }, decoding: decode,
            comparingWith: desired)
        return LiveTable(table: table, chains: chains)
    }

    /// The positions of the built-in chains and of the user chains called one of `names`, in the
    /// blob's order. The user chains are found by halving when they are in strcmp order (as
    /// libiptc writes them): a partial sync makes no string of the other hundred thousand names.
    private func positions(of names: Set<ChainName>) -> [Int] {
        let pointer = pointer
        var positions = (0..<natsync_blob_chain_count(pointer)).filter { natsync_blob_chain_is_user(pointer, $0) == 0 }
        for name in names {
            var found: Int32 = 0
            let position = natsync_blob_user_search(pointer, name.rawValue, &found)
            if found != 0 { positions.append(position) }
        }
        return positions.sorted()
    }

    /// The entries as the kernel handed them out, counters included (for comparing tables).
    var bytes: [UInt8] {
        var size = 0
        let entries = natsync_blob_entries(pointer, &size)
        return Array(UnsafeRawBufferPointer(start: entries, count: size))
    }
}
