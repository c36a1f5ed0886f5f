import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncTestSupport
import Testing

@testable import NatsyncKernel

/// The nf_tables reader sees what iptables-nft writes as nft itself lists it, and follows the
/// ruleset generation.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct NFTablesTests {
    /// Each rule as `nft --debug=netlink list table` prints it: chain, handle, expression names.
    static func listed(_ namespace: String, _ table: TableName, _ family: IPFamily) throws -> [String] {
        let output = try run([
            "ip", "netns", "exec", namespace, "nft", "--debug=netlink", "list", "table", family == .ipv4 ? "ip" : "ip6", table.rawValue,
        ])
        .standardOutput
        var rules: [String] = []
        var current: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("table ") { break }
            if line.hasPrefix("  [ ") {
                current? += " " + (line.dropFirst(4).split(separator: " ").first.map(String.init) ?? "")
            } else if line.isEmpty {
                if let rule = current { rules.append(rule) }
                current = nil
            } else {
                // "ip nat CHAIN HANDLE [POSITION]"
                let words = line.split(separator: " ")
                current = words.count >= 4 ? "\(words[2]) #\(words[3]):" : nil
            }
        }
        if let rule = current { rules.append(rule) }
        return rules
    }

    static func read(_ rules: [NFTRule]) -> [String] {
        rules.map { rule in "\(rule.chain) #\(rule.handle):" + rule.expressions.map { " \($0.name)" }.joined() }
    }

    /// Every golden feature's tables restored by iptables-nft (or ip6tables-nft) into a namespace
    /// of their own: the reader finds the same rules, in the same order, with the same handles
    /// and expressions.
    @Test func readsWhatIptablesNftWroteAsNftListsIt() throws {
        var compared = 0
        for golden in try GoldenFeature.singleFamily() {
            let (feature, path, text, family) = (golden.name, golden.path, golden.text, golden.family)
            let namespace = "natsync-nft-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            #expect(shell("ip", "netns", "add", namespace) == 0)
            defer { _ = shell("ip", "netns", "delete", namespace) }
            let restore = family == .ipv4 ? "iptables-nft-restore" : "ip6tables-nft-restore"
            #expect(shell("ip", "netns", "exec", namespace, restore, path) == 0, "\(feature)")
            for table in [TableName.filter, .nat] where text.contains("*\(table.rawValue)") {
                let rules = try NetworkNamespace.run(in: namespace) { try NFTables.rules(table, family: family) }
                #expect(!rules.isEmpty, "\(feature) \(table)")
                #expect(Self.read(rules) == (try Self.listed(namespace, table, family)), "\(feature) \(table)")
                compared += 1
            }
        }
        #expect(compared >= 40)
    }

    /// Every commit moves the generation; a rule added shows with a handle of its own; a table
    /// that does not exist yet (iptables-nft makes one when first used) has no rules.
    @Test func theGenerationMovesWithEveryCommit() throws {
        let namespace = "natsync-nft-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        #expect(try NetworkNamespace.run(in: namespace) { try NFTables.rules(.nat, family: .ipv4) } == [])

        let before = try NetworkNamespace.run(in: namespace) { try NFTables.generation() }
        #expect(shell("ip", "netns", "exec", namespace, "iptables-nft", "-t", "nat", "-N", "KUBE-SERVICES") == 0)
        #expect(shell("ip", "netns", "exec", namespace, "iptables-nft", "-t", "nat", "-A", "KUBE-SERVICES", "-j", "RETURN") == 0)
        let (after, first) = try NetworkNamespace.run(in: namespace) {
            (try NFTables.generation(), try NFTables.rules(.nat, family: .ipv4))
        }
        #expect(after != before)
        #expect(shell("ip", "netns", "exec", namespace, "iptables-nft", "-t", "nat", "-A", "KUBE-SERVICES", "-j", "RETURN") == 0)
        let (again, second) = try NetworkNamespace.run(in: namespace) {
            (try NFTables.generation(), try NFTables.rules(.nat, family: .ipv4))
        }
        #expect(again != after)
        #expect(first.map(\.chain) == ["KUBE-SERVICES"])
        #expect(second.count == 2 && second[0] == first[0] && second[1].handle != first[0].handle)
        #expect(second[1].expressions.map(\.name) == ["counter", "immediate"])
    }
}

/// Netlink attributes as the kernel lays them out: lengths, padding, nesting; a length that
/// runs past the end is refused rather than read.
struct NetlinkAttributesTests {
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let length = UInt16(4 + payload.count)
        var bytes = withUnsafeBytes(of: length) { Array($0) } + withUnsafeBytes(of: type) { Array($0) } + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    @Test func expressionsAreReadByNameAndData() {
        let data = Self.attribute(1, [0, 0, 0, 0, 0, 0, 0, 7])
        let counter = Self.attribute(1 | 0x8000, Self.attribute(1, Array("counter\0".utf8)) + Self.attribute(2 | 0x8000, data))
        let immediate = Self.attribute(1 | 0x8000, Self.attribute(1, Array("immediate\0".utf8)))
        let bytes = counter + immediate
        let expressions = bytes.withUnsafeBytes { NFTExpression.list($0) }
        #expect(expressions == [NFTExpression(name: "counter", data: data), NFTExpression(name: "immediate", data: [])])

        var truncated = bytes
        truncated[0] = 200
        #expect(truncated.withUnsafeBytes { NFTExpression.list($0) } == nil)
        let nameless = Self.attribute(1 | 0x8000, Self.attribute(2, data))
        #expect(nameless.withUnsafeBytes { NFTExpression.list($0) } == nil)
        #expect([UInt8]().withUnsafeBytes { NFTExpression.list($0) } == [])
    }
}
