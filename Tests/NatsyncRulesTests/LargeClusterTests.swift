import NatsyncIPTables
import NatsyncModel
import Testing

@testable import NatsyncRules

/// Over 1000 endpoints in all, kube-proxy drops the comments of the per-endpoint rules only.
struct LargeClusterTests {
    func state(endpoints: Int) -> ClusterState {
        let service = Service(name: name("ns1/svc1"), clusterIPs: [ip("172.30.0.41")], ports: [.init(name: "p80", protocol: .tcp, port: 80)])
        let addresses = (0..<endpoints).map { IPAddress.v4(0x0A00_0000 + UInt32($0)).description }
        return ClusterState(services: [service], endpointSlices: [slice("ns1/svc1", addresses)])
    }

    @Test func belowTheThresholdEveryRuleHasItsComment() {
        let rules = RuleGenerator(options: fakeOptions()).rules(for: state(endpoints: 1000))
        #expect(!rules.largeClusterMode)
        let sep = ChainNames.endpoint(ChainNamesTests.port("ns1/svc1:p80"), endpoint: "10.0.0.0:80")
        #expect(
            chainLines(rules.nat)[sep.rawValue]?.last
                == "-A \(sep) -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80")
    }

    @Test func aboveTheThresholdEndpointRulesLoseTheirComments() throws {
        let rules = RuleGenerator(options: fakeOptions()).rules(for: state(endpoints: 1001))
        #expect(rules.largeClusterMode)
        #expect(rules.endpointCount == 1001)
        let sep = ChainNames.endpoint(ChainNamesTests.port("ns1/svc1:p80"), endpoint: "10.0.0.0:80")
        let lines = chainLines(rules.nat)
        #expect(lines[sep.rawValue] == ["-A \(sep) -s 10.0.0.0 -j KUBE-MARK-MASQ", "-A \(sep) -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80"])
        let svc = try #require(lines["KUBE-SVC-XPGD46QRK7WJZT7O"])
        // The masquerade rule keeps its comment; the 1001 dispatch rules have none.
        #expect(svc.first?.contains(#"--comment "ns1/svc1:p80 cluster IP""#) == true)
        #expect(svc.dropFirst().allSatisfy { !$0.contains("--comment") })
        #expect(svc.count == 1002)
        #expect(lines["KUBE-SERVICES"]?.allSatisfy { $0.contains("--comment") } == true)
    }
}
