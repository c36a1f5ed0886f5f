import Foundation
import NatsyncTestSupport
import Testing

/// `natsync trace --live` on tables natsync programmed in a namespace, checked against real traffic.
@Suite(.serialized, liveKernel)
struct TraceTests {
    /// The outcomes of a live trace from the node namespace: (verdict, destination, masqueraded, probability).
    func outcomes(_ scene: Scene, _ arguments: [String]) throws -> (outcomes: [[String: Any]], branches: [[String: Any]]) {
        let output = try scene.natsync(["trace", "--live", "--output", "json", "--cluster-cidr", "10.0.0.0/16"] + arguments)
        let document = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any] ?? [:]
        return (document["outcomes"] as? [[String: Any]] ?? [], document["branches"] as? [[String: Any]] ?? [])
    }

    /// The seed: pods 10.0.1.2 and 10.0.2.2 behind service-test, a client pod at 10.0.3.2, and
    /// another program's rules in the same tables; on a legacy node and on an nft one (where the
    /// tables are read as iptables-nft-save prints them).
    @Test(arguments: ["legacy", "nft"])
    func theSeedsWalkOnTheLiveTablesIncludesForeignRules(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        try scene.addPod("service-test-6c7f9d5b8-kq2xw")
        try scene.addPod("service-test-6c7f9d5b8-r8m4t")
        try scene.addPod("client")
        try scene.sync(["\(KernelTests.root)/Fixtures/seed/service-test.yaml"])
        let operatorRules = [
            ["-N", "OPERATOR"], ["-A", "OPERATOR", "-p", "tcp", "-j", "RETURN"],
            ["-I", "FORWARD", "1", "-s", "10.0.3.2", "-j", "OPERATOR"],
            ["-A", "FORWARD", "-p", "tcp", "-m", "multiport", "--dports", "8080", "-j", "ACCEPT"],
        ]
        for rule in operatorRules { try run(["ip", "netns", "exec", scene.node, "iptables-\(backend)"] + rule) }

        let (outcomes, branches) = try outcomes(scene, ["--src", "10.0.3.2", "--dst", "10.3.241.152:80"])
        let summary = outcomes.map {
            "\($0["destination"] ?? ""):\($0["destinationPort"] ?? "") \($0["probability"] ?? "") masq=\($0["masqueraded"] as? Bool ?? true)"
        }
        #expect(summary == ["10.0.1.2:8080 0.5 masq=false", "10.0.2.2:8080 0.5 masq=false"], "\(summary)")
        let hops = branches.first?["hops"] as? [[String: Any]] ?? []
        let operatorJump = hops.first { $0["chain"] as? String == "FORWARD" && $0["rule"] as? Int == 1 }
        #expect(operatorJump?["kind"] as? String == "matched" && (operatorJump?["text"] as? String)?.hasSuffix("-j OPERATOR") == true)
        #expect(hops.contains { $0["chain"] as? String == "OPERATOR" && $0["kind"] as? String == "matched" })
        let unknown = hops.first { $0["kind"] as? String == "not-evaluated" }
        // libiptc names a foreign rule's extensions; iptables-nft-save prints them whole.
        let foreign = backend == "legacy" ? "-p tcp -m multiport -j ACCEPT" : "-p tcp -m multiport --dports 8080 -j ACCEPT"
        #expect(unknown?["text"] as? String == foreign, "\(String(describing: unknown))")

        // The walk is the traffic's: both pods answer, and they see the client's own address.
        let answers = try scene.get(from: scene.podNamespaces["client"]!, "10.3.241.152:80", count: 40)
        #expect(Set(answers.map(podName)) == ["service-test-6c7f9d5b8-kq2xw", "service-test-6c7f9d5b8-r8m4t"], "\(answers)")
        #expect(answers.allSatisfy { $0.hasSuffix("you are 10.0.3.2") }, "\(answers)")
    }

    @Test func traceProbabilitiesAgreeWithTheSplitOf600Requests() throws {
        let scene = try Scene()
        defer { scene.close() }
        let client = try scene.addPod("client")
        let pods = try ["pod-a", "pod-b", "pod-c"].map { try scene.addPod($0) }
        try scene.sync([try scene.manifest("three.yaml", Objects.service("web", clusterIP: "10.96.0.80") + Objects.slice("web", pods))])
        let (outcomes, _) = try outcomes(scene, ["--src", client, "--dst", "10.96.0.80:80"])
        var predicted: [String: Double] = [:]
        for outcome in outcomes {
            predicted["\(outcome["destination"] ?? "")", default: 0] += outcome["probability"] as? Double ?? 0
        }
        #expect(Set(predicted.keys) == Set(pods), "\(predicted)")

        let answers = try scene.get(from: scene.podNamespaces["client"]!, "10.96.0.80:80", count: 600)
        let byPod = tally(answers)
        let names = Dictionary(uniqueKeysWithValues: zip(pods, ["pod-a", "pod-b", "pod-c"]))
        // Pearson's goodness of fit of the measured split against the trace's probabilities.
        var statistic = 0.0
        for (address, probability) in predicted {
            let expected = 600 * probability
            statistic += pow(Double(byPod[names[address]!, default: 0]) - expected, 2) / expected
        }
        #expect(byPod.values.reduce(0, +) == 600, "\(byPod)")
        #expect(statistic < chiSquareCritical[2]!, "measured \(byPod), trace \(predicted), chi-square \(statistic)")
        print(
            "trace vs 600 requests: trace \(predicted.sorted { $0.key < $1.key }), measured \(byPod.sorted { $0.key < $1.key }), chi-square \(statistic)"
        )
    }
}
