import NatsyncIPTables
import NatsyncNet

/// The commits others make to nf_tables while a sync runs, from the events the kernel sends
/// (what `nft monitor` reads), so a sync can tell, before it sends, whether the commits made
/// during its read touched anything it read: a kubelet or a CNI writing its own chains does not
/// make natsync read its tables again, and a writer that commits every few milliseconds cannot
/// starve it.
final class NFTMonitor {
    /// One table, chain or rule a commit touched.
    struct Event {
        var type: UInt16
        /// nil for a family other than ip and ip6.
        var family: IPFamily?
        var table: String
        var chain: String
        var handle: UInt64
        /// The generation an `NFT_MSG_NEWGEN` closes a commit with.
        var generation: UInt32
        /// `NFTA_RULE_EXPRESSIONS` of a rule event, as in a dump (empty when absent).
        var expressions: [UInt8]
    }

    private let monitor: OpaquePointer
    /// The generation followed so far: every commit up to it was looked at.
    private var followed: UInt32 = 0
    /// Events of a commit whose closing generation has not arrived yet.
    private var pending: [Event] = []

    /// Subscribes: every commit from now on is seen, so `follow(from:)` must name a generation
    /// read after this.
    init() throws(KernelError) {
        monitor = try Shim.nftMonitorOpen()
    }

    deinit { Shim.nftMonitorClose(monitor) }

    /// Starts following at `generation`, read after the subscription: commits up to it are
    /// already in what was read, and their events are dropped as they come.
    func follow(from generation: UInt32) {
        followed = generation
        pending = []
    }

    /// The generation the ruleset has reached through commits none of whose events
    /// `matters`, or nil when one does, or when events were lost (one commit's generation does
    /// not follow the last, or the kernel dropped some).
    func advance(unless matters: (Event) -> Bool) -> UInt32? {
        guard let events = Shim.nftMonitorDrain(monitor) else { return nil }
        for event in events {
            guard event.type == NFTMessage.newGeneration else {
                pending.append(event)
                continue
            }
            let generation = event.generation
            defer { pending = [] }
            // A commit at or before the generation followed: already in what was read.
            if Int32(bitPattern: generation &- followed) <= 0 { continue }
            guard generation == NFTCommitLedger.next(followed), !pending.contains(where: matters) else { return nil }
            followed = generation
        }
        return followed
    }
}
