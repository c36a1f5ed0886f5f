import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncReconcile
import NatsyncTestSupport
import Testing

@testable import NatsyncKernel

/// The blob reader (no libiptc) reads every table exactly as libiptc does: the same chains in the
/// same order, the same rules (and foreign rules as foreign), and the same answer when comparing
/// with desired chains in place.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct TableBlobTests {
    static let root = RuleCodecTests.root

    /// The tables of every golden feature together with Docker's and an operator's rules.
    @Test func readsEveryTableAsLibiptcDoes() throws {
        let namespace = "natsync-blob-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        let foreign = Self.root + "/Fixtures/foreign/docker-and-operator.rules"
        #expect(shell("ip", "netns", "exec", namespace, "iptables-legacy-restore", foreign) == 0)

        var compared = 0
        for golden in try GoldenFeature.singleFamily() {
            let (feature, path, text, family) = (golden.name, golden.path, golden.text, golden.family)
            let restore = family == .ipv4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore"
            #expect(shell("ip", "netns", "exec", namespace, restore, "--noflush", path) == 0, "\(feature)")
            let desired = try RestoreText.parse(text)
            for table in [TableName.filter, .nat, .mangle] {
                try NetworkNamespace.run(in: namespace) {
                    let everything = { (_: ChainName) in true }
                    let contents = desired.first { $0.table == table }
                    let viaLibiptc = try IPTablesHandle(table, family: family).read(decoding: everything, comparingWith: contents)
                    let viaBlob = try TableBlob(table, family: family).read(decoding: everything, comparingWith: contents)
                    #expect(viaBlob == viaLibiptc, "\(feature) \(table)")
                    let plain = try TableBlob(table, family: family).read(decoding: everything)
                    let plainViaLibiptc = try IPTablesHandle(table, family: family).read(decoding: everything)
                    #expect(plain == plainViaLibiptc, "\(feature) \(table)")
                    // A partial sync's read: the built-in chains and those asked for that exist.
                    let only = Set(plain.chains.enumerated().filter { $0.offset % 2 == 1 }.map(\.element.name) + ["KUBE-SVC-ABSENT"])
                    let partial = try TableBlob(table, family: family).read(only: only, decoding: everything)
                    #expect(partial.chains == plain.chains.filter { $0.name.isBuiltin || only.contains($0.name) }, "\(feature) \(table)")
                    if table == .nat {
                        #expect(plain.chains.contains { $0.name == "DOCKER" } == (family == .ipv4))
                        #expect(viaBlob.chains.contains { $0.matchesDesired }, "\(feature): nothing compared in place")
                        #expect(plain.chains.contains { $0.rules?.contains(.foreign) == true } == (family == .ipv4))
                    }
                    compared += 1
                }
            }
        }
        #expect(compared >= 54)
    }

    /// Every kind of entry the walk must tell apart: an empty user chain, a rule without a
    /// target, a goto, RETURN, QUEUE and an extension target.
    @Test func readsEdgeEntriesAsLibiptcDoes() throws {
        let namespace = "natsync-blob-edge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(shell("ip", "netns", "add", namespace) == 0)
        defer { _ = shell("ip", "netns", "delete", namespace) }
        let rules = """
            *filter
            :INPUT DROP [0:0]
            :FORWARD ACCEPT [0:0]
            :OUTPUT ACCEPT [0:0]
            :A-EMPTY - [0:0]
            :B - [0:0]
            :C - [0:0]
            -A INPUT -s 10.0.0.0/8
            -A INPUT -j B
            -A INPUT -g C
            -A B -p tcp -m tcp --dport 22 -j ACCEPT
            -A B -j RETURN
            -A B -j QUEUE
            -A C -j LOG --log-prefix x
            -A C -j A-EMPTY
            -A OUTPUT -j C
            COMMIT

            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(namespace).rules").path
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(shell("ip", "netns", "exec", namespace, "iptables-legacy-restore", file) == 0)
        try NetworkNamespace.run(in: namespace) {
            let everything = { (_: ChainName) in true }
            let viaBlob = try TableBlob(.filter, family: .ipv4).read(decoding: everything)
            let viaLibiptc = try IPTablesHandle(.filter, family: .ipv4).read(decoding: everything)
            #expect(viaBlob == viaLibiptc)
            #expect(viaBlob.chains.map(\.name.rawValue) == ["INPUT", "FORWARD", "OUTPUT", "A-EMPTY", "B", "C"])
            #expect(viaBlob.chain("A-EMPTY")?.rules == [])
            #expect(viaBlob.chain("INPUT")?.rules?.count == 3)
            #expect(viaBlob.chain("B")?.rules?.last == .foreign)
        }
    }
}
