import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncUtilities
import Testing

@testable import NatsyncRules

/// Over 1000 endpoints in all, kube-proxy drops the comments of the per-endpoint rules only.
struct LargeClusterTests {
    func state(endpoints: Int) -> ClusterState {
        let service = Service(
            name: name("ns1/svc1"), clusterIPs: [ip("172.30.0.41")], ports: [.init(name: "p80", protocol: .tcp, port: 80)])
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
        #expect(
            lines[sep.rawValue] == [
                "-A \(sep) -s 10.0.0.0 -j KUBE-MARK-MASQ", "-A \(sep) -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80",
            ])
        let svc = try #require(lines["KUBE-SVC-XPGD46QRK7WJZT7O"])
        // The masquerade rule keeps its comment; the 1001 dispatch rules have none.
        #expect(svc.first?.contains(#"--comment "ns1/svc1:p80 cluster IP""#) == true)
        #expect(svc.dropFirst().allSatisfy { !$0.contains("--comment") })
        #expect(svc.count == 1002)
        #expect(lines["KUBE-SERVICES"]?.allSatisfy { $0.contains("--comment") } == true)
    }

    /// Above a thousand service ports generation runs in chunks over the cores: the tables are the
    /// ones a plain in-order map gives.
    @Test func concurrentGenerationGivesTheSameTablesInTheSameOrder() {
        let services = (0..<3_000).map { index in
            Service(
                name: name("ns\(index % 7)/svc\(index)"), clusterIPs: [.v4(0xAC1E_0000 + UInt32(index))],
                ports: [.init(name: "p80", protocol: .tcp, port: 80)])
        }
        let slices = (0..<3_000).map { index in
            slice("ns\(index % 7)/svc\(index)", (0..<(index % 4)).map { IPAddress.v4(0x0A00_0000 + UInt32(index * 4 + $0)).description })
        }
        let generator = RuleGenerator(options: ProxyOptions(nodeName: "node-1", clusterCIDRs: [CIDR("10.0.0.0/8")!]))
        let ports = generator.servicePorts(of: ClusterState(services: services, endpointSlices: slices))
        let sequential = ports.map { generator.rules(for: $0.0, endpoints: $0.1, largeClusterMode: true) }
        #expect(ports.concurrentMap { generator.rules(for: $0.0, endpoints: $0.1, largeClusterMode: true) } == sequential)
        #expect(
            generator.rules(forPorts: ports)
                == generator.assemble(sequential, endpointCount: ports.reduce(0) { $0 + $1.1.count }, largeClusterMode: true))
        #expect(Array(0..<5_000).concurrentMap { $0 * 2 } == (0..<5_000).map { $0 * 2 })
        #expect(Array(0..<10).concurrentMap { $0 + 1 } == Array(1...10))
        // Assembling moves the rules out of the ports it is given, but a caller's copy is its own.
        #expect(sequential == ports.map { generator.rules(for: $0.0, endpoints: $0.1, largeClusterMode: true) })
        let parts = [["a", "b"], [], ["c"]].map { $0.map { String(repeating: $0, count: 40) } }
        let copy = parts
        #expect(Array(joining: copy) == parts.flatMap { $0 })
        #expect(copy == parts && copy.map(\.count) == [2, 0, 1])
        #expect(Array(joining: [[1, 2], [], [3], []]) == [1, 2, 3])
        #expect(Array(joining: [[Int]]()) == [])
    }
}
