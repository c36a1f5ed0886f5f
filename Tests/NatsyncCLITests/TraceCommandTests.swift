import Foundation
import NatsyncTestSupport
import Testing

struct TraceCommandTests {
    /// The seed's walk: a client pod (inside the cluster CIDR) to service-test's cluster IP.
    static let seedTrace = [
        "trace", "-f", "Fixtures/seed/service-test.yaml", "--hostname-override", "node-1", "--cluster-cidr", "10.0.0.0/16",
        "--node-ip", "192.168.0.2", "--node-addresses", "192.168.0.2", "--src", "10.0.3.2", "--dst", "10.3.241.152:80",
    ]

    @Test func seedTraceMatchesItsSnapshotAndTheReadme() throws {
        let output = try NatsyncRunner.run(Self.seedTrace)
        #expect(output.status == 0, "\(output.standardError)")
        if let mismatch = snapshotMismatch(output.standardOutput, path: "\(Repository.root)/Fixtures/seed/trace.txt") {
            Issue.record(Comment(rawValue: mismatch))
        }
        let readme = try String(contentsOfFile: "\(Repository.root)/README.md", encoding: .utf8)
        #expect(readme.contains(output.standardOutput), "README.md must show the seed's trace as it is now")
    }

    /// A node in zone-a (its Node object in the input) reaches only the zone-a endpoints of a
    /// service whose endpoints carry zone hints; the other node's object does not count.
    @Test func theTraceFollowsTopologyHints() throws {
        let output = try NatsyncRunner.run([
            "trace", "-f", "Fixtures/rules/topology/input.yaml", "--hostname-override", "test-node", "--cluster-cidr", "10.0.0.0/8",
            "--node-ip", "192.168.0.2", "--src", "10.0.3.2", "--dst", "172.30.0.41:80", "--output", "json",
        ])
        #expect(output.status == 0, "\(output.standardError)")
        let document = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        let outcomes = (document?["outcomes"] as? [[String: Any]] ?? []).map { "\($0["destination"] ?? "") p=\($0["probability"] ?? "")" }
        #expect(outcomes.sorted() == ["10.180.0.1 p=0.5", "10.180.0.3 p=0.5"], "\(output.standardOutput)")
        let elsewhere = try NatsyncRunner.run([
            "trace", "-f", "Fixtures/rules/topology/input.yaml", "--hostname-override", "node-2", "--cluster-cidr", "10.0.0.0/8",
            "--node-ip", "192.168.0.2", "--src", "10.0.3.2", "--dst", "172.30.0.41:80", "--output", "json",
        ])
        let other = try JSONSerialization.jsonObject(with: Data(elsewhere.standardOutput.utf8)) as? [String: Any]
        let destinations = (other?["outcomes"] as? [[String: Any]] ?? []).map { "\($0["destination"] ?? "")" }
        #expect(destinations == ["10.180.0.2"], "node-2 is in zone-b: its zone-b endpoint only")
    }

    @Test func jsonGivesEachOutcomeWithItsProbability() throws {
        let output = try NatsyncRunner.run(Self.seedTrace + ["--output", "json"])
        #expect(output.status == 0, "\(output.standardError)")
        let document = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        let packet = document?["packet"] as? [String: Any]
        #expect(packet?["origin"] as? String == "pod")
        let outcomes = document?["outcomes"] as? [[String: Any]] ?? []
        let summary = outcomes.map {
            "\($0["verdict"] ?? "") \($0["destination"] ?? ""):\($0["destinationPort"] ?? "") masq=\($0["masqueraded"] as? Bool ?? true) p=\($0["probability"] ?? "")"
        }
        #expect(summary == ["ACCEPT 10.0.1.2:8080 masq=false p=0.5", "ACCEPT 10.0.2.2:8080 masq=false p=0.5"])
        let branches = document?["branches"] as? [[String: Any]] ?? []
        let firstHops = branches.first?["hops"] as? [[String: Any]] ?? []
        #expect(firstHops.first?["chain"] as? String == "PREROUTING")
        #expect(firstHops.contains { $0["kind"] as? String == "branch-taken" && $0["probability"] as? Double == 0.5 })
    }

    @Test func theNodeIsMasqueradedAndAnOutsideClientToo() throws {
        let fromNode = try NatsyncRunner.run(Self.seedTrace.map { $0 == "10.0.3.2" ? "192.168.0.2" : $0 })
        #expect(fromNode.standardOutput.contains("from node\n"))
        #expect(fromNode.standardOutput.contains("50.0%  DNAT to 10.0.1.2:8080, masqueraded\n"), "\(fromNode.standardOutput)")
        let fromOutside = try NatsyncRunner.run(Self.seedTrace.map { $0 == "10.0.3.2" ? "203.0.113.7" : $0 })
        #expect(fromOutside.standardOutput.contains("from external\n"))
        #expect(fromOutside.standardOutput.contains("50.0%  DNAT to 10.0.2.2:8080, masqueraded\n"), "\(fromOutside.standardOutput)")
    }

    @Test func aServiceWithoutEndpointsIsRejectedByItsFilterRule() throws {
        let output = try NatsyncRunner.run(
            ["trace", "-f", "Fixtures/rules/no-endpoints/input.yaml", "--hostname-override", "node-1", "--node-addresses", "192.168.0.2"]
                + ["--src", "10.0.3.2", "--dst", "172.30.0.41:80", "--from", "pod"])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(
            output.standardOutput.contains("100.0%  REJECT (port-unreachable) by filter KUBE-SERVICES #1\n"), "\(output.standardOutput)")
    }

    @Test(arguments: [
        (["trace", "--src", "10.0.0.1", "--dst", "10.0.0.2:80"], "give either --live or -f PATH"),
        (["trace", "--live", "-f", "x", "--src", "10.0.0.1", "--dst", "10.0.0.2:80"], "give either --live or -f PATH"),
        (["trace", "--live", "--src", "10.0.0.1", "--dst", "10.0.0.2"], #"--dst: "10.0.0.2" is not IP:PORT"#),
        (["trace", "--live", "--src", "10.0.0.999", "--dst", "10.0.0.2:80"], #"--src: "10.0.0.999" is not an IP address"#),
        (["trace", "--live", "--src", "10.0.0.1", "--dst", "10.0.0.2:80", "--proto", "icmp"], "--proto"),
        (["trace", "-f", "x", "--netns", "n", "--src", "10.0.0.1", "--dst", "10.0.0.2:80"], "--netns needs --live"),
    ])
    func badUsageExits2(arguments: [String], message: String) throws {
        let output = try NatsyncRunner.run(arguments)
        #expect(output.status == 2)
        #expect(output.standardError.contains(message), "\(output.standardError)")
    }
}
