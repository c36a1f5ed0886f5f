import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile
import NatsyncTestSupport
import Testing

@testable import NatsyncKernel

/// natsync's nf_tables form of a rule is iptables-nft's: every rule of every golden feature, and
/// the rule shapes the features do not write, restored by `iptables-nft-restore` into a namespace
/// of its own and read back, equals its encoding byte for byte (counter values aside).
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct NFTRuleEncodingTests {
    /// Rules the golden features do not hold, in tables that accept their targets.
    static let shapes = """
        *filter
        :KUBE-SHAPES - [0:0]
        :KUBE-MARK-MASQ - [0:0]
        -A KUBE-SHAPES -i eth0 ! -o lo+ -p udp -m udp ! --dport 53 -j RETURN
        -A KUBE-SHAPES ! -i cali+ -o eth1 -j ACCEPT
        -A KUBE-SHAPES ! -s 10.0.0.0/8 -d 10.96.0.1/32 -p tcp -m tcp ! --sport 1000:2000 -g KUBE-MARK-MASQ
        -A KUBE-SHAPES -s 10.16.0.0/12 -p tcp -m tcp --sport 7 --dport 9 -j DROP
        -A KUBE-SHAPES -d 10.1.2.0/23 -p tcp -m tcp --dport 0:1023 -j DROP
        -A KUBE-SHAPES -p udp -m udp ! --dport 0:1023 -j DROP
        -A KUBE-SHAPES -p tcp -m tcp --dport 8000:9000 -j DROP
        -A KUBE-SHAPES ! -p tcp -j DROP
        -A KUBE-SHAPES -m conntrack ! --ctstate INVALID -j DROP
        -A KUBE-SHAPES -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A KUBE-SHAPES -m addrtype ! --src-type LOCAL --dst-type LOCAL -j ACCEPT
        -A KUBE-SHAPES -m mark ! --mark 0x4000/0x4000 -j RETURN
        -A KUBE-SHAPES -m mark --mark 0x1 -j RETURN
        -A KUBE-SHAPES -p tcp -m comment --comment "a/b:http" -j REJECT --reject-with icmp-port-unreachable
        -A KUBE-SHAPES -p sctp -m sctp --dport 9 -j REJECT --reject-with icmp-host-unreachable
        -A KUBE-SHAPES -p tcp -j REJECT --reject-with tcp-reset
        -A KUBE-SHAPES -m comment --comment "counts only"
        COMMIT
        *nat
        :KUBE-SHAPES - [0:0]
        :KUBE-SEP-ABC - [0:0]
        -A KUBE-SHAPES -p tcp -m recent --name KUBE-SEP-ABC --set -j DNAT --to-destination 10.0.0.1:80
        -A KUBE-SHAPES -m recent --name KUBE-SEP-ABC --rcheck --seconds 10800 --reap -j KUBE-SEP-ABC
        -A KUBE-SHAPES -m recent --name KUBE-SEP-ABC --rcheck -j KUBE-SEP-ABC
        -A KUBE-SHAPES -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-ABC
        -A KUBE-SHAPES -j MARK --xor-mark 0x4000
        -A KUBE-SHAPES -j MARK --or-mark 0x4000
        -A KUBE-SHAPES -j MASQUERADE --random-fully
        -A KUBE-SHAPES -j MASQUERADE
        -A KUBE-SHAPES -j DNAT --to-destination 10.0.0.1
        COMMIT

        """

    /// A restore text and its family, by name.
    static func cases() throws -> [(name: String, text: String, family: IPFamily)] {
        let shapesV6 = shapes.replacingOccurrences(of: "10.0.0.0/8", with: "fd00::/8")
            .replacingOccurrences(of: "10.96.0.1/32", with: "fd00:96::1/128")
            .replacingOccurrences(of: "10.16.0.0/12", with: "fd10::/12")
            .replacingOccurrences(of: "10.1.2.0/23", with: "fd00:1:2::/63")
            .replacingOccurrences(of: "10.0.0.1:80", with: "[fd00::1]:80")
            .replacingOccurrences(of: "10.0.0.1", with: "fd00::1")
            .replacingOccurrences(of: "icmp-port-unreachable", with: "icmp6-port-unreachable")
            .replacingOccurrences(of: "icmp-host-unreachable", with: "icmp6-addr-unreachable")
        return try GoldenFeature.singleFamily().map { ($0.name, $0.text, $0.family) }
            + [("shapes", shapes, .ipv4), ("shapes-ipv6", shapesV6, .ipv6)]
    }

    /// Expressions for comparison: a counter's values are the kernel's, not the rule's.
    static func comparable(_ expressions: [NFTExpression]) -> [NFTExpression] {
        expressions.map { $0.name == "counter" ? NFTExpression(name: "counter", data: []) : $0 }
    }

    static func hex(_ expressions: [NFTExpression]) -> String {
        expressions.map { "\($0.name)[\($0.data.map { String(format: "%02x", $0) }.joined())]" }.joined(separator: " ")
    }

    @Test func everyRuleIsEncodedAsIptablesNftWritesIt() throws {
        var compared = 0
        var mismatches: [String] = []
        for (name, text, family) in try Self.cases() {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-nft-\(getpid())-\(name).rules").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let namespace = "natsync-nfte-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            #expect(shell("ip", "netns", "add", namespace) == 0)
            defer { _ = shell("ip", "netns", "delete", namespace) }
            let restore = family == .ipv4 ? "iptables-nft-restore" : "ip6tables-nft-restore"
            try #require(shell("ip", "netns", "exec", namespace, restore, path) == 0, "\(name)")
            for contents in try RestoreText.parse(text) {
                let live = try NetworkNamespace.run(in: namespace) { try NFTables.rules(contents.table, family: family) }
                var desired: [(chain: String, rule: Rule)] = contents.builtinJumps.map { ($0.chain.rawValue, $0.rule) }
                for chain in contents.chains { desired += chain.rules.map { (chain.name.rawValue, $0) } }
                // The dump lists chains in the kernel's order: pair rules chain by chain.
                let liveByChain = Dictionary(grouping: live, by: \.chain)
                var position: [String: Int] = [:]
                for (chain, rule) in desired {
                    let index = position[chain, default: 0]
                    position[chain] = index + 1
                    guard let read = liveByChain[chain], index < read.count else {
                        mismatches.append("\(name): \(chain) has no rule \(index)")
                        continue
                    }
                    let encoded = try NFTRuleEncoding.expressions(of: rule, family: family)
                    let expressions = try #require(encoded.withUnsafeBytes { NFTExpression.list($0) })
                    if Self.comparable(expressions) != Self.comparable(read[index].expressions) {
                        mismatches.append(
                            "\(name): -A \(chain) \(RestoreText.arguments(of: rule, family: family))\n  natsync:      \(Self.hex(expressions))\n  iptables-nft: \(Self.hex(read[index].expressions))"
                        )
                    }
                    compared += 1
                }
                #expect(live.count == desired.count, "\(name) \(contents.table)")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) rules differ:\n\(mismatches.prefix(8).joined(separator: "\n"))")
        #expect(compared > 550)
    }
}

/// The nft backend's syncs against `iptables-nft-restore` of the same tables: whether a sync read
/// the kernel or trusted what it wrote last (the generation unmoved), the tables end up the same.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct NFTTablesTests {
    /// `iptables-nft-save` without comments or counters, chain by chain in name order.
    static func saved(_ namespace: String) throws -> [String] {
        var groups: [String: [String]] = [:]
        var table = ""
        for line in try run(["ip", "netns", "exec", namespace, "iptables-nft-save"]).standardOutput.split(separator: "\n")
        where !line.hasPrefix("#") {
            if line.hasPrefix("*") { table = String(line) }
            let words = line.split(separator: " ")
            let chain = line.hasPrefix("-A ") ? String(words[1]) : line.hasPrefix(":") ? String(words[0].dropFirst()) : ""
            groups["\(table) \(chain)", default: []].append(line.hasPrefix(":") ? String(words[0]) : String(line))
        }
        return groups.keys.sorted().flatMap { groups[$0]! }
    }

    /// What `iptables-nft-restore` of `tables` (jumps inserted as kube-proxy does) leaves.
    static func restored(_ tables: [TableContents]) throws -> [String] {
        let namespace = "natsync-nftr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        var text = ""
        for contents in tables {
            var table = contents
            let jumps = table.builtinJumps
            table.builtinJumps = []
            text += RestoreText.render([table], family: .ipv4).replacingOccurrences(of: "COMMIT\n", with: "")
            for jump in jumps.reversed() { text += "-I \(jump.chain) 1 \(RestoreText.arguments(of: jump.rule, family: .ipv4))\n" }
            text += "COMMIT\n"
        }
        try run(["ip", "netns", "exec", namespace, "iptables-nft-restore"], input: text)
        return try saved(namespace)
    }

    @Test func syncsThatTrustWhatTheyWroteEndAsSyncsThatRead() throws {
        let features = try GoldenFeature.singleFamily().filter { $0.family == .ipv4 }
        let first = try RestoreText.parse(try #require(features.first { $0.name == "session-affinity" }).text)
        let second = try RestoreText.parse(try #require(features.first { $0.name == "node-port" }).text)
        let namespace = "natsync-nftt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        let tables = NFTTables()

        let (written, again) = try NetworkNamespace.run(in: namespace) { (try tables.sync(first), try tables.sync(first)) }
        #expect(written.committed == [.filter, .nat] && again.committed == [])
        #expect(try Self.saved(namespace) == Self.restored(first))

        // Someone else's rule in an owned chain moves the generation: the next sync reads and
        // takes it out.
        try run(["ip", "netns", "exec", namespace, "iptables-nft", "-t", "nat", "-A", "KUBE-SERVICES", "-j", "RETURN"])
        let repaired = try NetworkNamespace.run(in: namespace) { try tables.sync(first) }
        #expect(repaired.committed == [.nat])
        #expect(try Self.saved(namespace) == Self.restored(first))

        // A partial sync of the chains that differ, planned against what was written last.
        var scope = Set<ChainName>()
        for (old, new) in zip(first, second) {
            let before = Dictionary(old.chains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            let after = Dictionary(new.chains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for name in Set(before.keys).union(after.keys) where before[name] != after[name] { scope.insert(name) }
        }
        #expect(!scope.isEmpty)
        let (partial, full) = try NetworkNamespace.run(in: namespace) {
            (try tables.sync(second, scope: scope), try tables.sync(second))
        }
        #expect(!partial.committed.isEmpty && full.committed == [])
        #expect(try Self.saved(namespace) == Self.restored(second))

        // The same partial sync after someone else committed: its chains are looked up by name
        // and read, and the change lands the same.
        let back = try NetworkNamespace.run(in: namespace) { try tables.sync(first) }
        #expect(!back.committed.isEmpty)
        try run(["ip", "netns", "exec", namespace, "iptables-nft", "-t", "filter", "-N", "OPERATOR"])
        let (looked, checked) = try NetworkNamespace.run(in: namespace) {
            (try tables.sync(second, scope: scope), try tables.sync(second))
        }
        #expect(!looked.committed.isEmpty && checked.committed == [])
        let operatorChain = ":OPERATOR"
        #expect(try Self.saved(namespace).filter { $0 != operatorChain } == Self.restored(second))
    }

    /// Both families' commits move the one generation of the namespace: with a shared ledger each
    /// family keeps planning against what it wrote across the other's commits, and the drift
    /// fingerprint only moves when someone else commits.
    @Test func bothFamiliesTrustWhatTheyWroteAcrossEachOthersCommits() throws {
        let features = try GoldenFeature.singleFamily()
        let four = try RestoreText.parse(try #require(features.first { $0.name == "session-affinity" }).text)
        let six = try RestoreText.parse(try #require(features.first { $0.name == "ipv6" }).text)
        let probe = ChainName("KUBE-SEP-LEDGERPROBE")
        func adding(_ tables: [TableContents]) -> [TableContents] {
            tables.map { contents in
                var contents = contents
                if contents.table == .nat {
                    contents.chains.append(
                        Chain(probe, rules: [Rule(matches: [.comment("ledger probe")], target: .jump("KUBE-MARK-MASQ"))]))
                }
                return contents
            }
        }
        let namespace = "natsync-nftl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        let ledger = NFTCommitLedger()
        let (v4, v6) = (NFTTables(family: .ipv4, ledger: ledger), NFTTables(family: .ipv6, ledger: ledger))
        let alone = NFTTables(family: .ipv4)

        let (first, written, changes, unmoved, foreign, afterForeign, repaired) = try NetworkNamespace.run(in: namespace) {
            let first = [try v4.sync(four), try v6.sync(six)]
            let written = try v4.fingerprints([.nat])
            // Each family adds a chain and takes it out again, planned against what it wrote.
            let changes = [
                try v4.sync(adding(four), scope: [probe]), try v6.sync(adding(six), scope: [probe]),
                try v4.sync(four, scope: [probe]), try v6.sync(six, scope: [probe]),
            ]
            let unmoved = [try v4.fingerprints([.nat]), try v6.fingerprints([.nat])]
            // A backend with a ledger of its own is someone else to this one.
            let foreign = try alone.sync(adding(four))
            return (first, written, changes, unmoved, foreign, try v4.fingerprints([.nat]), try v4.sync(four))
        }
        #expect(first.allSatisfy { !$0.fromMemory && $0.committed == [.filter, .nat] })
        #expect(changes.allSatisfy { $0.fromMemory && $0.committed == [.nat] })
        #expect(unmoved.allSatisfy { $0 == written })
        #expect(!foreign.fromMemory && foreign.committed == [.nat] && afterForeign != written)
        #expect(!repaired.fromMemory && repaired.committed == [.nat])
        #expect(try Self.saved(namespace) == Self.restored(four))

        let before = try NetworkNamespace.run(in: namespace) { try v4.fingerprints([.nat]) }
        try run(["ip", "netns", "exec", namespace, "ip6tables-nft", "-t", "filter", "-N", "OPERATOR"])
        let (moved, reads, read, trusted, after) = try NetworkNamespace.run(in: namespace) {
            let moved = try v4.fingerprints([.nat])
            let reads = [try v4.sync(four), try v6.sync(six)]
            let read = try v4.fingerprints([.nat])
            let trusted = [try v4.sync(four), try v6.sync(six)]
            return (moved, reads, read, trusted, [try v4.fingerprints([.nat]), try v6.fingerprints([.nat])])
        }
        #expect(moved != before && read != moved && read != before)
        #expect(reads.allSatisfy { !$0.fromMemory && $0.committed.isEmpty })
        #expect(trusted.allSatisfy { $0.fromMemory && $0.committed.isEmpty }, "\(trusted.map(\.plans))")
        #expect(after.allSatisfy { $0 == read }, "\(read) \(after)")
    }

    /// A sync looks at the events of others' commits during its read: others' chains,
    /// their rules in the built-in chains and the other family do not make it read again; a rule
    /// in a chain natsync owns, or one of its jumps deleted or copied, does.
    @Test func othersCommitsMatterOnlyWhenTheyTouchWhatASyncRead() throws {
        let jump = Rule(matches: [.comment("kubernetes service portals")], target: .jump("KUBE-SERVICES"))
        let tables = try RestoreText.parse(try #require(GoldenFeature.singleFamily().first { $0.name == "session-affinity" }).text)
            .map { contents in
                var contents = contents
                if contents.table == .nat {
                    contents.builtinJumps = ["PREROUTING", "OUTPUT"].map { BuiltinJump(chain: ChainName($0), rule: jump) }
                }
                return contents
            }
        let namespace = "natsync-nftm-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        let backend = NFTTables()
        func write(_ commands: String...) throws {
            for command in commands { try run(["ip", "netns", "exec", namespace, "sh", "-c", command]) }
        }
        func follow(_ monitor: NFTMonitor) throws -> (UInt32, [TableName: NFTTables.Live]) {
            try NetworkNamespace.run(in: namespace) {
                let generation = try NFTables.generation()
                monitor.follow(from: generation)
                let listed = try backend.listing(nil)
                var read: [TableName: NFTTables.Live] = [:]
                for contents in tables { read[contents.table] = try backend.read(contents, scope: nil, removedJumps: [], listed: listed) }
                return (generation, read)
            }
        }
        let monitor = try NetworkNamespace.run(in: namespace) {
            _ = try backend.sync(tables)
            return try NFTMonitor()
        }
        var (generation, read) = try follow(monitor)
        #expect(read[.nat]?.jumpHandles.count == 2)
        try write(
            "iptables-nft -N OPERATOR", "iptables-nft -A OPERATOR -j RETURN", "iptables-nft -A FORWARD -s 10.99.0.1 -j RETURN",
            "iptables-nft -t nat -I PREROUTING -s 10.99.0.2 -j RETURN", "iptables-nft -t nat -D PREROUTING -s 10.99.0.2 -j RETURN",
            "ip6tables-nft -t nat -N KUBE-SERVICES")
        #expect(monitor.advance { NFTTables.matters($0, family: .ipv4, read: read) } == generation &+ 6)
        try write("iptables-nft -A OPERATOR -j ACCEPT", "iptables-nft -t nat -A KUBE-SERVICES -j RETURN")
        #expect(monitor.advance { NFTTables.matters($0, family: .ipv4, read: read) } == nil)

        let arguments = RestoreText.arguments(of: jump, family: .ipv4)
        (generation, read) = try follow(monitor)
        try write("iptables-nft -t nat -D PREROUTING \(arguments)")
        #expect(monitor.advance { NFTTables.matters($0, family: .ipv4, read: read) } == nil)
        (generation, read) = try follow(monitor)
        try write("iptables-nft -t nat -A PREROUTING \(arguments)")
        #expect(monitor.advance { NFTTables.matters($0, family: .ipv4, read: read) } == nil)
        // A jump to the same chain that is not natsync's (another comment) is someone else's rule.
        (generation, read) = try follow(monitor)
        try write("iptables-nft -t nat -A OUTPUT -m comment --comment operator -j KUBE-SERVICES")
        #expect(monitor.advance { NFTTables.matters($0, family: .ipv4, read: read) } == generation &+ 1)
    }

    /// The error of a refused transaction names the message the kernel refused: its operation,
    /// table and chain, read back from the batch.
    @Test func aRefusedMessageIsNamedInTheError() throws {
        let namespace = "natsync-nfte-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        let service = ChainName("KUBE-SVC-NAMED")
        let (jump, flush) = try NetworkNamespace.run(in: namespace) { () throws -> (KernelError?, KernelError?) in
            func refused(_ build: (NFTBatch) throws -> Void) throws -> KernelError? {
                let batch = try NFTBatch(generation: try NFTables.generation(), family: .ipv4)
                try build(batch)
                do {
                    try batch.commit()
                    return nil
                } catch {
                    return error
                }
            }
            let rule = Rule(matches: [.comment("to a chain that is not there")], target: .jump("KUBE-MISSING"))
            let jump = try refused { batch in
                try batch.addTable(.nat)
                try batch.addChain(service, in: .nat)
                try batch.addRule(rule, expressions: try NFTRuleEncoding.expressions(of: rule, family: .ipv4), to: service, in: .nat)
            }
            let flush = try refused { batch in
                try batch.addTable(.filter)
                try batch.addChain(ChainName("KUBE-FORWARD"), in: .filter)
                try batch.flushChain(service, in: .filter)
            }
            return (jump, flush)
        }
        #expect(jump?.operation == "NFT_MSG_NEWRULE" && jump?.table == .nat && jump?.chain == service, "\(String(describing: jump))")
        #expect(
            flush?.operation == "NFT_MSG_DELRULE (flush)" && flush?.table == .filter && flush?.chain == service,
            "\(String(describing: flush))")
    }
}
