import CNatsyncBenchFloor
import Glibc

/// What legacy iptables makes any change cost, whoever makes it: read the whole table and replace
/// it whole. The benchmarks measure natsync's partial sync against it, on the same table.
struct KernelFloor {
    /// `iptc_init`: the blob read from the kernel and parsed into libiptc's chains.
    var read: Duration
    /// `iptc_init`, one trivial change (a chain created and deleted again), `iptc_commit`.
    var readAndCommit: Duration
    /// The same blob handed back to the kernel through `IPT_SO_SET_REPLACE`, without libiptc: the
    /// kernel's own check and swap of the table.
    var kernelReplace: Duration
    /// The blob read through `IPT_SO_GET_ENTRIES` alone.
    var kernelRead: Duration
    var entries: Int
    var bytes: Int

    /// What `iptc_commit` does in userspace: everything of read-and-commit that is neither the
    /// read nor the kernel's replace (building the new blob, counters).
    var userspaceCompile: Duration { readAndCommit - read - kernelReplace }

    /// Measures the floor on IPv4 table `table` of the calling thread's network namespace. The
    /// table keeps its rules; its counters restart at zero.
    static func measure(_ table: String) throws -> KernelFloor {
        var floor = natsync_floor()
        guard natsync_floor_measure(table, &floor) == 0 else {
            throw BenchError("measuring the floor on \(table): \(String(cString: strerror(errno)))")
        }
        return KernelFloor(
            read: .seconds(floor.read), readAndCommit: .seconds(floor.read_and_commit), kernelReplace: .seconds(floor.kernel_replace),
            kernelRead: .seconds(floor.kernel_read), entries: Int(floor.entries), bytes: Int(floor.size))
    }
}
