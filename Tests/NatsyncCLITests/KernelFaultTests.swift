import Foundation
import NatsyncTestSupport
import Testing

/// Why the fault tests cannot run here, or nil when they can: they need the fault seam, which only
/// debug builds have, and a namespace of their own, which needs user namespaces, not root.
private let faultsUnavailable: String? = {
    #if DEBUG
    return PrivateNamespace.unavailable
    #else
    return "the kernel fault seam (NATSYNC_KERNEL_FAULTS) is compiled into debug builds only"
    #endif
}()

/// What natsync does when the kernel refuses: each test makes one shim call fail on purpose
/// (`NATSYNC_KERNEL_FAULTS`) in a namespace of its own, and checks that nothing is lost, that the
/// tables are as before when the sync fails, and that the error says where. They need no root.
@Suite(.serialized, .enabled(if: faultsUnavailable == nil, Comment(rawValue: faultsUnavailable ?? "")))
struct KernelFaultTests {
    private static let legacy = ["--iptables-backend", "legacy"]

    private static func sync(_ fixture: String, in namespace: PrivateNamespace, faults: String? = nil, conntrack: Bool = false)
        throws -> CommandOutput
    {
        let directory = Repository.path("Fixtures/rules/\(fixture)")
        let arguments =
            (try? String(contentsOfFile: directory + "/args", encoding: .utf8))?.split(whereSeparator: \.isWhitespace)
            .map(String.init) ?? []
        return try namespace.run(
            [NatsyncRunner.executable, "sync", "-f", directory + "/input.yaml"] + legacy + arguments
                + (conntrack ? [] : ["--no-conntrack"]),
            environment: faults.map { ["NATSYNC_KERNEL_FAULTS": $0] } ?? [:])
    }

    /// Both tables as iptables-legacy-save prints them, without its dated comment lines. Each table
    /// is named: listing them reads `/proc/net/ip_tables_names`, which only the host's root may.
    private static func tables(_ namespace: PrivateNamespace) throws -> String {
        var text = ""
        for table in ["filter", "nat"] {
            let saved = try namespace.run(["iptables-legacy-save", "-t", table])
            #expect(saved.status == 0, "\(saved.standardError)")
            text += saved.standardOutput.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n") + "\n"
        }
        return text
    }

    @Test func aCommitRefusedBecauseTheTableChangedIsRetriedFromAFreshRead() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        let synced = try Self.sync("cluster-ip", in: namespace, faults: "natsync_writer_commit=EAGAINx1")
        #expect(synced.status == 0, "\(synced.standardError)")
        #expect(synced.standardOutput.contains("committed filter, nat"), "\(synced.standardOutput)")
        #expect(synced.standardOutput.contains("2 attempts"), "\(synced.standardOutput)")
        let again = try Self.sync("cluster-ip", in: namespace)
        #expect(again.standardOutput.contains("no changes; nothing committed"), "the retry left work undone: \(again.standardOutput)")
    }

    @Test func aTableThatKeepsChangingFailsTheSyncAndFilterIsPutBack() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        #expect(try Self.sync("cluster-ip", in: namespace).status == 0)
        let before = try Self.tables(namespace)
        // The first commit (filter) goes through; every commit of nat is refused.
        let failed = try Self.sync("no-endpoints", in: namespace, faults: "natsync_writer_commit=EAGAIN@1")
        #expect(failed.status != 0)
        #expect(failed.standardError.contains("(table nat)"), "\(failed.standardError)")
        #expect(failed.standardError.contains("during each of 5 attempts"), "\(failed.standardError)")
        #expect(try Self.tables(namespace) == before)
    }

    @Test func natFailingAfterFilterCommittedPutsFilterBack() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        #expect(try Self.sync("cluster-ip", in: namespace).status == 0)
        let before = try Self.tables(namespace)
        let failed = try Self.sync("no-endpoints", in: namespace, faults: "natsync_writer_commit=EIOx1@1")
        #expect(failed.status != 0)
        #expect(failed.standardError.contains("IPT_SO_SET_REPLACE (table nat)"), "\(failed.standardError)")
        #expect(failed.standardError.contains("[EIO, errno 5]"), "\(failed.standardError)")
        #expect(!failed.standardError.contains("not put back"), "\(failed.standardError)")
        #expect(try Self.tables(namespace) == before)
        // The same sync without the fault then makes the whole change.
        #expect(try Self.sync("no-endpoints", in: namespace).standardOutput.contains("committed filter, nat"))
    }

    @Test func aFailedReadNamesTheTableAndLeavesBothAsTheyWere() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        #expect(try Self.sync("cluster-ip", in: namespace).status == 0)
        let before = try Self.tables(namespace)
        for (fault, table) in [("natsync_blob_read=EIOx1", "filter"), ("natsync_blob_read=EIOx1@1", "nat")] {
            let failed = try Self.sync("no-endpoints", in: namespace, faults: fault)
            #expect(failed.status != 0)
            #expect(failed.standardError.contains("IPT_SO_GET_ENTRIES (table \(table))"), "\(failed.standardError)")
            #expect(try Self.tables(namespace) == before, "\(fault)")
        }
    }

    @Test func aTableThatCannotBePutBackIsNamedInTheError() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        #expect(try Self.sync("cluster-ip", in: namespace).status == 0)
        let failed = try Self.sync(
            "no-endpoints", in: namespace, faults: "natsync_blob_read=EIOx1@1,natsync_table_commit=EIO")
        #expect(failed.status != 0)
        #expect(failed.standardError.contains("IPT_SO_GET_ENTRIES (table nat)"), "\(failed.standardError)")
        #expect(failed.standardError.contains("not put back: filter (iptc_commit (table filter)"), "\(failed.standardError)")
    }

    @Test func aChainAForeignRuleStillJumpsToIsNamedAndKept() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        #expect(try Self.sync("cluster-ip", in: namespace).status == 0)
        let nat = try namespace.run(["iptables-legacy", "-t", "nat", "-S"]).standardOutput
        let chain = try #require(
            nat.split(separator: "\n").compactMap { $0.split(separator: " ").last(where: { $0.hasPrefix("KUBE-SVC-") }) }.first)
        for command in [["-t", "nat", "-N", "OPERATOR"], ["-t", "nat", "-A", "OPERATOR", "-j", String(chain)]] {
            #expect(try namespace.run(["iptables-legacy"] + command).status == 0)
        }
        let before = try Self.tables(namespace)
        let failed = try Self.sync("no-endpoints", in: namespace)
        if failed.status == 0 {
            Issue.record("the sync deleted no chain the operator's rule references; pick a fixture without \(chain)")
            return
        }
        #expect(failed.standardError.contains("chain \(chain) cannot be deleted"), "\(failed.standardError)")
        #expect(failed.standardError.contains("[EMLINK, errno 31]"), "\(failed.standardError)")
        #expect(try Self.tables(namespace) == before)
    }

    @Test func aConntrackDumpFailingHalfwayKeepsTheRulesAndTheNextSyncCleans() throws {
        let namespace = try PrivateNamespace()
        defer { namespace.close() }
        #expect(try Self.sync("udp-and-tcp-same-port", in: namespace, conntrack: true).status == 0)
        // A flow to the DNS service answered by an endpoint the service no longer has.
        let inserted = try namespace.run([
            "conntrack", "-I", "-p", "udp", "-s", "10.0.0.5", "-d", "172.30.0.10", "--sport", "40000", "--dport", "53", "-t", "300",
            "--reply-src", "10.180.0.99", "--reply-dst", "10.0.0.5", "--reply-port-src", "53", "--reply-port-dst", "40000",
        ])
        try #require(inserted.status == 0, "\(inserted.standardError)")
        func flows() throws -> String { try namespace.run(["conntrack", "-L", "-p", "udp"]).standardOutput }

        let failed = try Self.sync(
            "udp-and-tcp-same-port", in: namespace, faults: "natsync_conntrack_delete_udp_frontends=ENOBUFS", conntrack: true)
        #expect(failed.status == 0, "a cleanup failure fails no sync: \(failed.standardError)")
        #expect(failed.standardError.contains("conntrack cleanup failed: conntrack dump"), "\(failed.standardError)")
        #expect(failed.standardError.contains("[ENOBUFS, errno 105]"), "\(failed.standardError)")
        #expect(try flows().contains("src=10.180.0.99"), "a dump that failed halfway deleted a flow")

        let cleaned = try Self.sync("udp-and-tcp-same-port", in: namespace, conntrack: true)
        #expect(cleaned.standardOutput.contains("conntrack: 1 stale UDP flows deleted"), "\(cleaned.standardOutput)")
        #expect(try !flows().contains("src=10.180.0.99"))
    }
}
