import ArgumentParser
import Foundation
import NatsyncIPTables
import NatsyncKernel

/// How natsync reaches the kernel: which namespace, how long to wait for the lock, which backend.
struct KernelFlags: ParsableArguments {
    @Option(help: "Run inside the network namespace /run/netns/NAME (as 'ip netns exec NAME').")
    var netns: String?

    @Option(
        name: .customLong("iptables-lock-timeout"),
        help: "Seconds to wait for the xtables lock (/run/xtables.lock) before failing (default 5).")
    var lockTimeout: Double = 5

    @Option(
        name: .customLong("iptables-backend"),
        help: """
            auto: legacy on hosts whose iptables is legacy, restore (through iptables-nft) on nft hosts; \
            legacy: the legacy tables, written directly; restore: the host's iptables-save and iptables-restore --noflush.
            """)
    var backend: Backend = .auto

    enum Backend: String, ExpressibleByArgument, CaseIterable {
        case auto, legacy, restore
    }

    func validate() throws {
        guard lockTimeout >= 0, lockTimeout <= 3600 else {
            throw ValidationError("--iptables-lock-timeout: \(lockTimeout) is out of range (0-3600 seconds)")
        }
        if let netns, netns.isEmpty || netns.contains("..") {
            throw ValidationError("--netns: invalid namespace name \"\(netns)\"")
        }
    }

    private var timeout: Duration { .milliseconds(Int64(lockTimeout * 1000)) }

    /// The backend for `family`'s tables, and why: the one asked for, or for `auto` the host's (as
    /// iptables-wrapper decides it).
    func tables(_ family: IPFamily) -> (tables: any TableBackend, reason: String) {
        switch backend {
        case .legacy:
            return (LegacyTables(family: family, lockTimeout: timeout), "legacy (--iptables-backend legacy)")
        case .restore:
            return (
                RestoreTables.host(family: family, lockTimeout: timeout),
                "restore with the host's iptables-save/iptables-restore (--iptables-backend restore)"
            )
        case .auto:
            let detected = HostBackend.detect(netns: netns)
            switch detected.mode {
            case .legacy: return (LegacyTables(family: family, lockTimeout: timeout), "legacy: \(detected.reason)")
            case .nft: return (RestoreTables.nft(family: family, lockTimeout: timeout), "restore through iptables-nft: \(detected.reason)")
            }
        }
    }
}

/// Which iptables backend the host uses, decided as kube-proxy's iptables-wrapper does.
enum HostBackend {
    enum Mode: String { case legacy, nft }

    /// 1. kubelet's KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY in the nft mangle table: nft.
    /// 2. The same chains anywhere in the legacy tables: legacy (read with a full save, which
    ///    never creates the legacy mangle table).
    /// 3. Otherwise whichever backend holds more rules; legacy only if strictly more.
    static func detect(netns: String?) -> (mode: Mode, reason: String) {
        func save(_ command: [String]) -> String? {
            let saved = ChildProcess.run((netns.map { ["ip", "netns", "exec", $0] } ?? []) + command)
            return saved.status == 0 ? saved.output : nil
        }
        func hints(_ text: String) -> Int {
            text.split(separator: "\n").filter { $0.hasPrefix(":KUBE-IPTABLES-HINT ") || $0.hasPrefix(":KUBE-KUBELET-CANARY ") }.count
        }
        func rules(_ text: String) -> Int { text.split(separator: "\n").filter { $0.hasPrefix("-") }.count }

        guard let nftMangle = save(["iptables-nft-save", "-t", "mangle"]) else {
            return (.legacy, "no nft iptables on this host")
        }
        if hints(nftMangle + (save(["ip6tables-nft-save", "-t", "mangle"]) ?? "")) > 0 {
            return (.nft, "kubelet's hint chains are in the nft mangle table")
        }
        let legacy = (save(["iptables-legacy-save"]) ?? "") + (save(["ip6tables-legacy-save"]) ?? "")
        if hints(legacy) > 0 { return (.legacy, "kubelet's hint chains are in the legacy tables") }
        let nft = (save(["iptables-nft-save"]) ?? "") + (save(["ip6tables-nft-save"]) ?? "")
        let (legacyRules, nftRules) = (rules(legacy), rules(nft))
        if legacyRules > nftRules { return (.legacy, "\(legacyRules) legacy rules, \(nftRules) nft rules") }
        return (.nft, "no kubelet hint chains; \(legacyRules) legacy rules, \(nftRules) nft rules")
    }
}
