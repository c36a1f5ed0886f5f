import CNatsyncShim
import NatsyncConntrack
import NatsyncIPTables
import NatsyncNet

/// What one conntrack cleanup did.
public struct ConntrackReport: Sendable {
    public var visited: UInt64 = 0
    public var deleted: UInt64 = 0
    /// Selected flows that expired before they could be deleted: not an error.
    public var vanished: UInt64 = 0
    public var failed: UInt64 = 0
    public var elapsed: Duration = .zero
    /// Why the cleanup could not run, when it could not (the rules stay as committed).
    public var error: String?

    public init() {}
}

/// The conntrack table of the calling thread's network namespace, through libnetfilter_conntrack.
public enum Conntrack {
    /// Above this many frontends one full dump is cheaper than a filtered dump per frontend (each
    /// of which walks the whole table in the kernel).
    public static let filteredDumpLimit = 64

    /// Deletes every UDP flow `selector` finds stale: with a kernel-filtered dump per frontend
    /// when there are few (only those flows leave the kernel), else with one dump of the table.
    public static func deleteStaleFlows(_ selector: StaleFlowSelector, family: IPFamily = .ipv4) throws(KernelError)
        -> ConntrackReport
    {
        let start = ContinuousClock.now
        var report = ConntrackReport()
        guard !selector.isEmpty else { return report }
        let select: (UnsafePointer<natsync_flow>) -> Bool = { selector.isStale(ConntrackFlow($0.pointee)) }
        var frontends: [natsync_frontend]? = nil
        if selector.count <= filteredDumpLimit {
            frontends = selector.frontendList.map { frontend in
                var raw = natsync_frontend()
                raw.port = frontend.port
                if let address = frontend.address {
                    RuleCodec.store(address.bytes, into: &raw.address)
                    raw.has_address = 1
                }
                return raw
            }
        }
        var dumped = try Shim.deleteUDPFlows(family: family, frontends: frontends, select: select)
        if dumped == nil {
            // The kernel cannot filter dumps: one dump of the table.
            dumped = try Shim.deleteUDPFlows(family: family, frontends: nil, select: select)
        }
        guard let result = dumped else { return report }
        report.visited = result.visited
        report.deleted = result.deleted
        report.vanished = result.vanished
        report.failed = result.failed
        report.elapsed = ContinuousClock.now - start
        return report
    }
}

extension ConntrackFlow {
    init(_ raw: natsync_flow) {
        let family: IPFamily = raw.family == 6 ? .ipv6 : .ipv4
        func address(_ bytes: RuleCodec.AddressBytes) -> IPAddress { RuleCodec.load(bytes, family) }
        self.init(
            originalSource: address(raw.original_source), originalDestination: address(raw.original_dest),
            originalSourcePort: raw.original_source_port, originalDestinationPort: raw.original_dest_port,
            replySource: address(raw.reply_source))
    }
}
