/// Which iptables backend the host uses, decided as kube-proxy's iptables-wrapper does.
public enum HostBackend {
    public enum Mode: String, Sendable { case legacy, nft }

    /// 1. kubelet's KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY in the nft mangle table: nft.
    /// 2. The same chains anywhere in the legacy tables: legacy (read with a full save, which
    ///    never creates the legacy mangle table).
    /// 3. Otherwise whichever backend holds more rules; legacy only if strictly more.
    public static func detect(netns: String?) -> (mode: Mode, reason: String) {
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
