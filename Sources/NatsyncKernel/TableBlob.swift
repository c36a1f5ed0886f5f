import CNatsyncShim
import NatsyncIPTables
import NatsyncReconcile

/// A table as the kernel hands it out (`GET_ENTRIES`), walked without libiptc, for reading only.
///
/// A full sync mostly finds the table as it should be. Reading it this way costs the kernel's
/// copy of the blob; `iptc_init` adds a structure per rule and per chain on top, which only a
/// change needs (see ``LegacyTables/sync(_:deleteStaleFixedChains:removedJumps:scope:)``).
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
    /// reads them.
    func read(decoding decode: (ChainName) -> Bool, comparingWith desired: TableContents? = nil) -> LiveTable {
        let pointer = pointer
        let names = (0..<natsync_blob_chain_count(pointer)).map { ChainName(String(cString: natsync_blob_chain_name(pointer, $0))) }
        let reader = ChainReader(
            family: family, first: { natsync_blob_first_rule(pointer, $0) }, next: { natsync_blob_next_rule(pointer, $0, $1) },
            decode: { natsync_blob_decode_rule(pointer, $0, $1) }, concurrent: true)
        return LiveTable(table: table, chains: reader.chains(names, decoding: decode, comparingWith: desired))
    }
}
