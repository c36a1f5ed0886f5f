import CNatsyncShim
import NatsyncIPTables
import NatsyncNet

/// What legacy iptables makes any change cost, whoever makes it: read the whole table and replace
/// it whole. The benchmarks measure natsync's partial sync against it, on the same table.
public struct KernelFloor: Sendable {
    /// `iptc_init`: the blob read from the kernel and parsed into libiptc's chains.
    public var read: Duration
    /// `iptc_init`, one trivial change (a chain created and deleted again), `iptc_commit`.
    public var readAndCommit: Duration
    /// The same blob handed back to the kernel through `IPT_SO_SET_REPLACE`, without libiptc: the
    /// kernel's own check and swap of the table.
    public var kernelReplace: Duration
    /// The blob read through `IPT_SO_GET_ENTRIES` alone.
    public var kernelRead: Duration
    public var entries: Int
    public var bytes: Int

    /// What `iptc_commit` does in userspace: everything of read-and-commit that is neither the
    /// read nor the kernel's replace (building the new blob, counters).
    public var userspaceCompile: Duration { readAndCommit - read - kernelReplace }

    /// Measures the floor on `table` of the calling thread's network namespace. The table keeps its
    /// rules; its counters restart at zero.
    public static func measure(_ table: TableName, family: IPFamily = .ipv4, lockTimeout: Duration = .seconds(30)) throws -> KernelFloor {
        let lock = try XtablesLock(timeout: lockTimeout)
        let clock = ContinuousClock()
        let start = clock.now
        let probe = "NATSYNC-FLOOR-PROBE"
        let read: Duration
        do {
            let handle = try IPTablesHandle(table, family: family)
            read = clock.now - start
            try handle.createChain(ChainName(probe))
            try handle.deleteChain(ChainName(probe))
            try handle.commit()
        }
        let readAndCommit = clock.now - start
        var readSeconds = 0.0
        var replaceSeconds = 0.0
        var entries: UInt32 = 0
        var bytes: UInt32 = 0
        guard natsync_replace_unchanged(table.rawValue, family.shimFamily, &readSeconds, &replaceSeconds, &entries, &bytes) == 0 else {
            throw KernelError.lastShimError("IPT_SO_SET_REPLACE", table: table)
        }
        _ = consume lock
        return KernelFloor(
            read: read, readAndCommit: readAndCommit, kernelReplace: .seconds(replaceSeconds), kernelRead: .seconds(readSeconds),
            entries: Int(entries), bytes: Int(bytes))
    }
}
