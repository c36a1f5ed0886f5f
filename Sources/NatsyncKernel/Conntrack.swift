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
        let box = SelectorBox(selector)
        let context = Unmanaged.passUnretained(box).toOpaque()
        let select: natsync_flow_selector = { flow, context in
            let box = Unmanaged<SelectorBox>.fromOpaque(context!).takeUnretainedValue()
            return box.selector.isStale(ConntrackFlow(flow!.pointee)) ? 1 : 0
        }
        var result = natsync_conntrack_result()
        var status: Int32 = 1
        if selector.count <= filteredDumpLimit {
            let frontends = selector.frontendList.map { frontend in
                var raw = natsync_frontend()
                raw.port = frontend.port
                if let address = frontend.address {
                    RuleCodec.store(address.bytes, into: &raw.address)
                    raw.has_address = 1
                }
                return raw
            }
            status = withExtendedLifetime(box) {
                natsync_conntrack_delete_udp_frontends(family.shimFamily, frontends, frontends.count, select, context, &result)
            }
        }
        if status == 1 {
            status = withExtendedLifetime(box) { natsync_conntrack_delete_udp(family.shimFamily, select, context, &result) }
        }
        guard status == 0 else {
            throw .lastShimError("conntrack dump")
        }
        report.visited = result.visited
        report.deleted = result.deleted
        report.vanished = result.vanished
        report.failed = result.failed
        report.elapsed = ContinuousClock.now - start
        return report
    }

    /// Carries the selector through the C callback's context pointer.
    private final class SelectorBox {
        let selector: StaleFlowSelector
        init(_ selector: StaleFlowSelector) { self.selector = selector }
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
