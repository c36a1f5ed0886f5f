import ArgumentParser
import Foundation
import NatsyncIPTables
import NatsyncKernel
import NatsyncNet

/// The network namespace a command works in, for every command that reads or writes the kernel.
struct NamespaceFlags: ParsableArguments {
    @Option(help: "Work inside the network namespace /run/netns/NAME (as 'ip netns exec NAME').")
    var netns: String?

    func validate() throws {
        if let netns, netns.isEmpty || netns.contains("..") {
            throw ValidationError("--netns: invalid namespace name \"\(netns)\"")
        }
    }
}

/// How natsync reaches the kernel: which namespace, how long to wait for the lock, which backend.
struct KernelFlags: ParsableArguments {
    @OptionGroup var namespace: NamespaceFlags

    var netns: String? { namespace.netns }

    @Option(
        name: .customLong("iptables-lock-timeout"),
        help: """
            Seconds to wait for the xtables lock (/run/xtables.lock) before failing; with the nft backend, how long to keep \
            retrying while others commit (default 5).
            """)
    var lockTimeout: Double = 5

    @Option(
        name: .customLong("iptables-backend"),
        help: """
            auto: legacy on hosts whose iptables is legacy, nft on nft hosts; \
            legacy: the legacy tables, written directly; nft: nf_tables over netlink, as iptables-nft writes them; \
            restore: the host's iptables-save and iptables-restore --noflush.
            """)
    var backend: Backend = .auto

    enum Backend: String, ExpressibleByArgument, CaseIterable {
        case auto, legacy, nft, restore
    }

    func validate() throws {
        guard lockTimeout >= 0, lockTimeout <= 3600 else {
            throw ValidationError("--iptables-lock-timeout: \(lockTimeout) is out of range (0-3600 seconds)")
        }
    }

    private var timeout: Duration { .milliseconds(Int64(lockTimeout * 1000)) }

    /// One per process, as a process works in one namespace: both families' nft backends share it.
    private static let ledger = NFTCommitLedger()

    /// The backend for `family`'s tables, and why: the one asked for, or for `auto` the host's (as
    /// iptables-wrapper decides it).
    func tables(_ family: IPFamily) -> (tables: any TableBackend, reason: String) {
        switch backend {
        case .legacy:
            return (LegacyTables(family: family, lockTimeout: timeout), "legacy (--iptables-backend legacy)")
        case .nft:
            return (NFTTables(family: family, retryTimeout: timeout, ledger: Self.ledger), "nft (--iptables-backend nft)")
        case .restore:
            return (
                RestoreTables.host(family: family, lockTimeout: timeout),
                "restore with the host's iptables-save/iptables-restore (--iptables-backend restore)"
            )
        case .auto:
            let detected = HostBackend.detect(netns: netns)
            switch detected.mode {
            case .legacy: return (LegacyTables(family: family, lockTimeout: timeout), "legacy: \(detected.reason)")
            case .nft: return (NFTTables(family: family, retryTimeout: timeout, ledger: Self.ledger), "nft: \(detected.reason)")
            }
        }
    }
}

/// Whether a change of the rules is followed by the conntrack cleanup, for the commands that
/// change rules (`sync`, `run`).
struct ConntrackFlags: ParsableArguments {
    @Flag(help: "Do not delete stale UDP conntrack flows after the rules change.")
    var noConntrack = false
}
