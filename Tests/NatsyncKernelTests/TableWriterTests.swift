import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile
import NatsyncTestSupport
import Testing

@testable import NatsyncKernel

/// The table writer (no libiptc) gives the kernel the very table libiptc's commit gives it, byte
/// for byte, counters included, for every change between golden tables beside Docker's and an
/// operator's rules, and for every kind of entry it copies.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct TableWriterTests {
    static let root = RuleCodecTests.root

    /// Each golden feature's tables changed into the next one's (chains created, rewritten and
    /// deleted, jumps inserted and a duplicate jump deleted), once through libiptc and once through
    /// the writer, in two namespaces that start equal; the writer places the chains by halving
    /// over the live ones, and every other time by their names.
    @Test func writesEveryChangeAsLibiptcCommitsIt() throws {
        let features = Dictionary(grouping: try GoldenFeature.singleFamily(), by: \.family)
        var compared = 0
        var kinds = Set<String>()
        for (family, list) in features {
            for (from, to) in zip(list, list.dropFirst() + list.prefix(1)) where from.name != to.name {
                let pair = try NamespacePair(family: family, tag: "writer")
                defer { pair.close() }
                try pair.restoreBoth(Self.root + "/Fixtures/foreign/docker-and-operator.rules", family: .ipv4)
                try pair.restoreBoth(from.path, family: family)
                // Two copies of a jump natsync keeps once in PREROUTING (the plan deletes one),
                // none in OUTPUT (the plan inserts it).
                let jump = "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
                try pair.restoreBoth(text: "*nat\n-I PREROUTING \(jump)\n-I PREROUTING \(jump)\nCOMMIT\n", family: family)
                let jumps = try RestoreText.parse("*nat\n-A PREROUTING \(jump)\n-A OUTPUT \(jump)\nCOMMIT\n")[0].builtinJumps
                for var contents in try RestoreText.parse(to.text) {
                    if contents.table == .nat { contents.builtinJumps += jumps }
                    let plan = try pair.run(in: pair.second) {
                        let live = try TableBlob(contents.table, family: family).read(
                            decoding: { Ownership.needsRules($0, in: contents.table) }, comparingWith: contents)
                        return Planner.plan(desired: contents, live: live)
                    }
                    guard !plan.isEmpty else { continue }
                    if !plan.created.isEmpty { kinds.insert("created") }
                    if !plan.rewritten.isEmpty { kinds.insert("rewritten") }
                    if !plan.deleted.isEmpty { kinds.insert("deleted") }
                    if !plan.jumpInsertions.isEmpty { kinds.insert("inserted") }
                    if !plan.jumpDeletions.isEmpty { kinds.insert("jump deleted") }
                    try pair.run(in: pair.first) {
                        let handle = try IPTablesHandle(contents.table, family: family)
                        try handle.apply(plan)
                        try handle.commit()
                    }
                    let byName = compared % 2 == 1
                    try pair.run(in: pair.second) { try TableBlob(contents.table, family: family).write(plan, placingByName: byName) }
                    let tables = try pair.bytes(of: contents.table, family: family)
                    #expect(
                        firstDifference(tables, family: family) == nil, "\(from.name) -> \(to.name), \(contents.table), by name: \(byName)")
                    compared += 1
                }
                let save = family == .ipv4 ? "iptables-legacy-save" : "ip6tables-legacy-save"
                #expect(try pair.rules(in: pair.first, save) == pair.rules(in: pair.second, save))
            }
        }
        #expect(compared >= 30)
        #expect(kinds == ["created", "rewritten", "deleted", "inserted", "jump deleted"])
    }

    /// Copied entries of every kind the blob reader tells apart (an empty chain, a rule without
    /// a target, a goto, RETURN, QUEUE, an extension target), with counters, beside a new chain
    /// and a new jump.
    @Test func copiesEdgeEntriesAsLibiptcDoes() throws {
        let pair = try NamespacePair(family: .ipv4, tag: "writer-edge")
        defer { pair.close() }
        try pair.restoreBoth(
            text: """
                *filter
                :INPUT DROP [5:500]
                :FORWARD ACCEPT [0:0]
                :OUTPUT ACCEPT [0:0]
                :A-EMPTY - [0:0]
                :B - [0:0]
                :C - [0:0]
                [1:10] -A INPUT -s 10.0.0.0/8
                [2:20] -A INPUT -j B
                [3:30] -A INPUT -g C
                [4:40] -A B -p tcp -m tcp --dport 22 -j ACCEPT
                -A B -j RETURN
                -A B -j QUEUE
                [5:50] -A C -j LOG --log-prefix x
                -A C -j A-EMPTY
                [6:60] -A OUTPUT -j C
                COMMIT

                """, family: .ipv4)
        var plan = TablePlan(table: .filter)
        plan.created = [
            Chain(
                "KUBE-SERVICES",
                rules: [
                    Rule(target: .none), Rule(target: .goto("B")), Rule(target: .accept), Rule(target: .drop), Rule(target: .return),
                    Rule(target: .jump("A-EMPTY")),
                ])
        ]
        plan.jumpInsertions = [BuiltinJump(chain: .input, rule: Rule(target: .jump("KUBE-SERVICES")))]
        try pair.run(in: pair.first) {
            let handle = try IPTablesHandle(.filter, family: .ipv4)
            try handle.apply(plan)
            try handle.commit()
        }
        try pair.run(in: pair.second) { try TableBlob(.filter, family: .ipv4).write(plan) }
        #expect(firstDifference(try pair.bytes(of: .filter, family: .ipv4), family: .ipv4) == nil)
        #expect(try pair.rules(in: pair.first, "iptables-legacy-save") == pair.rules(in: pair.second, "iptables-legacy-save"))
        let saved = try pair.output(in: pair.second, "iptables-legacy-save", "-c")
        #expect(saved.contains("[2:20] -A INPUT -j B") && saved.contains("[3:30] -A INPUT -g C"))
        // libiptc's commit restarts a built-in chain's policy counters; the writer keeps them.
        #expect(saved.contains(":INPUT DROP [5:500]"))
        #expect(saved.contains("-A INPUT -j KUBE-SERVICES\n[1:10] -A INPUT -s 10.0.0.0/8"))
    }

    /// A plan whose jump names a chain the table will not hold is refused, and the table is left
    /// as it was.
    @Test func aJumpToAMissingChainIsRefusedAndChangesNothing() throws {
        let pair = try NamespacePair(family: .ipv4, tag: "writer-missing")
        defer { pair.close() }
        try pair.restoreBoth(Self.root + "/Fixtures/foreign/docker-and-operator.rules", family: .ipv4)
        var plan = TablePlan(table: .nat)
        plan.created = [Chain("KUBE-SERVICES", rules: [Rule(target: .jump("KUBE-SVC-NOWHERE"))])]
        let before = try pair.output(in: pair.second, "iptables-legacy-save", "-c")
        _ = try pair.run(in: pair.second) {
            #expect {
                try TableBlob(.nat, family: .ipv4).write(plan)
            } throws: { error in
                (error as? KernelError)?.errno == KernelError.notFound && "\(error)".contains("KUBE-SVC-NOWHERE")
            }
        }
        #expect(try pair.output(in: pair.second, "iptables-legacy-save", "-c") == before)
    }
}

/// Two network namespaces for one test, made alike and compared; both deleted by `close`.
private struct NamespacePair {
    let first: String
    let second: String

    init(family: IPFamily, tag: String) throws {
        let base = "natsync-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        first = base + "-a"
        second = base + "-b"
        for namespace in [first, second] {
            guard shell("ip", "netns", "add", namespace) == 0 else {
                close()
                throw CocoaError(.featureUnsupported)
            }
        }
    }

    func close() {
        for namespace in [first, second] { _ = shell("ip", "netns", "delete", namespace) }
    }

    func restoreBoth(_ path: String, family: IPFamily) throws {
        let restore = family == .ipv4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore"
        for namespace in [first, second] {
            #expect(shell("ip", "netns", "exec", namespace, restore, "--noflush", "--counters", path) == 0, "\(path)")
        }
    }

    func restoreBoth(text: String, family: IPFamily) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(first).rules").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try restoreBoth(file, family: family)
    }

    func run<T>(in namespace: String, _ body: () throws -> T) throws -> T {
        try NetworkNamespace.run(in: namespace, body)
    }

    func bytes(of table: TableName, family: IPFamily) throws -> (first: [UInt8], second: [UInt8]) {
        (
            try run(in: first) { try TableBlob(table, family: family).bytes },
            try run(in: second) { try TableBlob(table, family: family).bytes }
        )
    }

    /// The saved tables with counters, but for the built-in chains' policy counters, which
    /// libiptc's commit restarts and the writer keeps.
    func rules(in namespace: String, _ save: String) throws -> String {
        try output(in: namespace, save, "-c").split(separator: "\n").map { $0.hasPrefix(":") ? $0.split(separator: "[")[0] : $0 }
            .joined(separator: "\n")
    }

    func output(in namespace: String, _ arguments: String...) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace] + arguments
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // iptables-save's header and footer name the time it ran.
        return String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
    }
}

/// Where two tables' bytes first differ, counters aside (their sizes when one is a prefix of the
/// other), or nil. The counters are compared through iptables-save, for all but the policies.
private func firstDifference(_ tables: (first: [UInt8], second: [UInt8]), family: IPFamily) -> String? {
    let (first, second) = (withoutCounters(tables.first, family), withoutCounters(tables.second, family))
    if let offset = zip(first, second).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
        return "bytes differ at offset \(offset)"
    }
    return first.count == second.count ? nil : "sizes \(first.count) and \(second.count)"
}

/// The entries with their counters zeroed: ipt_entry's next_offset is at byte 90 and its counters
/// at 96 (the IPv4 header is 84 bytes), ip6t_entry's at 142 and 148 (136).
private func withoutCounters(_ bytes: [UInt8], _ family: IPFamily) -> [UInt8] {
    let (next, counters) = family == .ipv4 ? (90, 96) : (142, 148)
    var result = bytes
    var offset = 0
    while offset + counters + 16 <= result.count {
        for index in offset + counters..<offset + counters + 16 { result[index] = 0 }
        let size = Int(result[offset + next]) | Int(result[offset + next + 1]) << 8
        guard size > 0 else { break }
        offset += size
    }
    return result
}

/// The writer's user chains come in strcmp's order however the names are told apart: early,
/// late, beyond the 48 bytes their keys hold, by length, or by bytes beyond ASCII.
@Suite struct UserChainOrderTests {
    @Test func liveAndNewChainsMergeInStrcmpOrder() {
        var names: Set<String> = [
            "A", "AB", "KUBE-SEP-", "KUBE-SEP-AAAAAAAA", "KUBE-SEP-AAAAAAAB", "DOCKER", "DOCKER-USER", "Z", "é", "e\u{301}",
        ]
        for index in 0..<300 {
            names.insert("KUBE-PROXY-FIREWALL-\(index)")
            names.insert(String(repeating: "x", count: index % 20) + "\(index % 7)")
            names.insert(String(repeating: "L", count: 48 + index % 3) + "\(index % 11)")
            names.insert("KUBE-SEP-" + String((0..<16).map { _ in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".randomElement()! }))
        }
        let strcmp = { (a: String, b: String) in a.utf8.lexicographicallyPrecedes(b.utf8) }
        let all = names.shuffled()
        let split = all.count / 3
        // Live chains as the blob holds them (in order) and as someone else may have left them.
        for liveSorted in [true, false] {
            let liveNames = liveSorted ? all[..<split].sorted(by: strcmp) : Array(all[..<split])
            let live = liveNames.enumerated().map { UserChain(name: ChainName($0.element), livePosition: $0.offset, rules: nil) }
            let created = all[split...].map { UserChain(name: ChainName($0), livePosition: nil, rules: []) }
            let merged = UserChain.merged(live, created)
            #expect(merged.map(\.name.rawValue) == all.sorted(by: strcmp))
            for chain in merged where chain.livePosition != nil {
                #expect(liveNames[chain.livePosition!] == chain.name.rawValue)
            }
            #expect(merged.filter { $0.livePosition == nil }.count == all.count - split)
        }
        #expect(UserChain.merged([], []).isEmpty)
    }
}
