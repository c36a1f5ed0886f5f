import Foundation
import NatsyncIPTables
import NatsyncNet

/// natsync's own commits to one network namespace's nf_tables ruleset, shared by the backends of
/// both families (one ledger per process and namespace).
///
/// The ruleset generation moves with every commit to the namespace, whichever family or program
/// made it. A family's memory of what it wrote stays true while every commit since was natsync's
/// own: the IPv6 commit that follows an IPv4 one moves the generation without touching the IPv4
/// tables. The ledger follows that chain of own commits, so each family keeps planning against
/// what it wrote, and the drift check only fires when someone else committed.
public final class NFTCommitLedger: @unchecked Sendable {
    private let lock = NSLock()
    /// The generation after natsync's last commit or read: the chain of own commits ends here.
    private var generation: UInt32?
    /// How many times the chain broke (someone else committed between two of natsync's).
    private var breaks: UInt32 = 0
    /// What each family last wrote or read whole, true while the chain holds.
    private var tables: [IPFamily: [TableName: TableContents]] = [:]

    public init() {}

    /// What `family` last wrote or read whole, when nobody else has committed since.
    func recall(_ family: IPFamily, at now: UInt32) -> [TableName: TableContents]? {
        lock.withLock { generation == now ? tables[family] : nil }
    }

    /// Records a commit planned at `generation` (or with `committed` false, a read at it that
    /// found nothing to change) and what `family`'s tables hold after it: nil when only part of
    /// them was read. A generation other than the chain's end means someone else committed in
    /// between: every family's memory goes.
    func record(_ family: IPFamily, at generation: UInt32, committed: Bool, tables known: [TableName: TableContents]?) {
        lock.withLock {
            if self.generation != generation {
                breaks &+= 1
                tables = [:]
            }
            self.generation = committed ? Self.next(generation) : generation
            tables[family] = known
        }
    }

    func forget(_ family: IPFamily) {
        lock.withLock { _ = tables.removeValue(forKey: family) }
    }

    /// Equal across natsync's own commits, different once someone else committed.
    func fingerprint(at now: UInt32) -> TableFingerprint {
        lock.withLock { generation == now ? TableFingerprint(entries: breaks, size: 1) : TableFingerprint(entries: now, size: 0) }
    }

    /// The generation after one commit at `generation` (the kernel skips 0).
    static func next(_ generation: UInt32) -> UInt32 { generation == .max ? 1 : generation + 1 }
}
