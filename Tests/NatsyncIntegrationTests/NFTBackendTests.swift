import Foundation
import NatsyncTestSupport
import Testing

/// The nft backend writes what iptables-nft writes: for every single-family golden feature,
/// `natsync sync --iptables-backend nft` in one fresh namespace and `iptables-nft-restore` of the
/// same dry run in another leave the same nf_tables tables, expression for expression, and
/// `iptables-nft-save` prints them alike.
@Suite(.serialized, liveKernel)
struct NFTBackendTests {
    /// `nft --debug=netlink list table` of each table, as chain name → its rules' expression lines
    /// and the chain's own declaration (hook, priority, policy); handles left out, since they
    /// number the order of creation.
    static func expressions(_ namespace: String, family: String) throws -> [String: [String]] {
        var chains: [String: [String]] = [:]
        for table in ["filter", "nat"] {
            let listed = try run(
                ["ip", "netns", "exec", namespace, "nft", "--debug=netlink", "list", "table", family, table], check: false)
            guard listed.status == 0 else { continue }
            var current: String?
            var inTable = false
            for line in listed.standardOutput.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("table ") { inTable = true }
                if inTable {
                    let text = line.trimmingCharacters(in: .whitespaces)
                    if text.hasPrefix("chain ") {
                        current = "\(table) " + text
                    } else if text.hasPrefix("type "), let chain = current {
                        chains[chain, default: []].append(text)
                    }
                    continue
                }
                if line.hasPrefix("  [ ") {
                    if let chain = current { chains[chain, default: []].append(String(line)) }
                } else if !line.isEmpty {
                    // "ip nat CHAIN HANDLE [POSITION]"
                    let words = line.split(separator: " ")
                    current = words.count >= 3 ? "\(table) chain \(words[2]) {" : nil
                    if let chain = current { chains[chain, default: []].append("rule") }
                }
            }
        }
        return chains
    }

    /// `iptables-nft-save` without its comments, chain by chain in name order.
    static func saved(_ namespace: String, family: String) throws -> [String] {
        let save = family == "ip" ? "iptables-nft-save" : "ip6tables-nft-save"
        var groups: [String: [String]] = [:]
        var table = ""
        for line in try run(["ip", "netns", "exec", namespace, save]).standardOutput.split(separator: "\n") where !line.hasPrefix("#") {
            if line.hasPrefix("*") { table = String(line) }
            let words = line.split(separator: " ")
            let chain = line.hasPrefix("-A ") ? String(words[1]) : line.hasPrefix(":") ? String(words[0].dropFirst()) : ""
            groups["\(table) \(chain)", default: []].append(String(line))
        }
        return groups.keys.sorted().flatMap { groups[$0]! }
    }

    @Test func syncWritesWhatIptablesNftRestoreOfTheDryRunWrites() throws {
        let scene = try Scene(backend: "nft")
        defer { scene.close() }
        var compared = 0
        for feature in RoundTripTests.features where feature != "dual-stack" {
            let folder = "\(KernelTests.root)/Fixtures/rules/\(feature)"
            let args = try String(contentsOfFile: "\(folder)/args", encoding: .utf8)
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            let viaNatsync = try scene.addBareNamespace("n\(compared)")
            let viaRestore = try scene.addBareNamespace("r\(compared)")
            try scene.natsync(["sync", "--iptables-backend", "nft", "-f", "\(folder)/input.yaml"] + args, in: viaNatsync)
            let dryRun = try run(
                [buildFolder.appendingPathComponent("natsync").path, "sync", "--dry-run", "-f", "\(folder)/input.yaml"] + args)
            let text = KernelTests.restoreInput(fromDryRun: dryRun.standardOutput)
            let family = text.contains("::") ? "ip6" : "ip"
            try run(["ip", "netns", "exec", viaRestore, family == "ip" ? "iptables-nft-restore" : "ip6tables-nft-restore"], input: text)

            let natsync = try Self.expressions(viaNatsync, family: family)
            let restored = try Self.expressions(viaRestore, family: family)
            #expect(restored.values.joined().filter { $0.hasPrefix("  [ ") }.count > 50, "\(feature)")
            #expect(restored["nat chain PREROUTING {"]?.contains { $0.hasPrefix("type nat hook prerouting priority dstnat") } == true)
            for chain in Set(natsync.keys).union(restored.keys).sorted() where natsync[chain] != restored[chain] {
                Issue.record(
                    "\(feature) \(chain):\nnatsync:\n\((natsync[chain] ?? []).joined(separator: "\n"))\niptables-nft-restore:\n\((restored[chain] ?? []).joined(separator: "\n"))"
                )
                break
            }
            #expect(try Self.saved(viaNatsync, family: family) == Self.saved(viaRestore, family: family), "\(feature)")
            compared += 1
        }
        #expect(compared >= 20)
    }
}
