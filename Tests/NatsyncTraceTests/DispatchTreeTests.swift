import Foundation
import NatsyncIPTables
import NatsyncManifest
import NatsyncModel
import NatsyncNet
import NatsyncRules
import NatsyncTestSupport
import NatsyncTrace
import Testing

/// The dispatch tree sends every packet where kube-proxy's linear KUBE-SERVICES sends it.
struct DispatchTreeTests {
    /// The realistic cluster plus the tree's golden input (external IPs, a load balancer, several prefixes).
    static let realistic: ClusterState = {
        ManifestLoader.load(
            paths: ["Fixtures/realistic/cluster.yaml", "Fixtures/rules/service-dispatch-tree/input.yaml"].map(Repository.path)
        ).state
    }()

    func tables(_ dispatch: ServiceDispatch, _ state: ClusterState) -> (Tracer, ProxyRules) {
        var node = TestNode()
        node.localAddresses += ["192.168.99.11"]
        var options = node.options
        options.serviceDispatch = dispatch
        let rules = RuleGenerator(options: options).rules(for: state)
        return (Tracer(ruleset: Ruleset(desired: rules.tables, family: .ipv4), localAddresses: Set(options.nodeAddresses)), rules)
    }

    @Test func everyServiceAddressTracesTheSameInBothLayouts() throws {
        let state = Self.realistic
        let (linear, linearRules) = tables(.linear, state)
        let (tree, treeRules) = tables(.tree, state)
        let destinations = linearRules.nat.chain(ChainNames.services)!.rules.compactMap { rule -> (IPAddress, UInt16, TransportProtocol)? in
            guard let address = rule.destination?.cidr.address, let proto = rule.protocol?.protocol else { return nil }
            for case .ports(_, let ports) in rule.matches { return (address, ports.destination?.lower ?? 0, proto) }
            return nil
        }
        #expect(destinations.count >= 14)
        for (address, port, proto) in destinations {
            for (origin, source) in [(Packet.Origin.pod, "10.0.0.2"), (.external, "203.0.113.2"), (.node, "192.168.0.2")] {
                let packet = Packet(
                    source: IPAddress(source)!, destination: address, destinationPort: port, transport: proto, origin: origin)
                let expected = linear.trace(packet).outcomes.map {
                    "\($0.outcome.verdict) \($0.outcome.destination):\($0.outcome.destinationPort) \($0.outcome.masqueraded) \($0.probability)"
                }
                let actual = tree.trace(packet).outcomes.map {
                    "\($0.outcome.verdict) \($0.outcome.destination):\($0.outcome.destinationPort) \($0.outcome.masqueraded) \($0.probability)"
                }
                #expect(actual == expected, "\(origin) to \(address):\(port)/\(proto)")
            }
        }
        // Only KUBE-SERVICES changes shape: every other chain is kube-proxy's, byte for byte.
        let linearChains = Dictionary(uniqueKeysWithValues: linearRules.nat.chains.map { ($0.name, $0) })
        for chain in treeRules.nat.chains
        where chain.name != ChainNames.services && !chain.name.rawValue.hasPrefix(DispatchTree.chainPrefix) {
            #expect(linearChains[chain.name] == chain, "\(chain.name)")
        }
        #expect(treeRules.filter == linearRules.filter)
    }

    @Test func aPacketMeetsAFewHundredRulesAtMostAmong100000Services() {
        var rules: [Rule] = []
        for index in 0..<100_000 {
            let address = IPAddress.v4(0x0A60_0000 + UInt32(index))
            rules.append(
                Rule(
                    destination: AddressMatch(address), protocol: ProtocolMatch(.tcp), matches: [.ports(.tcp, .destination(80))],
                    target: .jump("KUBE-SVC-X")))
        }
        let (top, chains) = DispatchTree.build(rules, family: .ipv4)
        #expect(top.count == 1)
        let byName = Dictionary(uniqueKeysWithValues: chains.map { ($0.name, $0) })
        // The worst case: every rule of every chain on the way to the last address.
        let last = IPAddress.v4(0x0A60_0000 + 99_999)
        let path = DispatchTree.path(to: last)
        let evaluated = top.count + path.reduce(0) { $0 + (byName[$1]?.rules.count ?? 0) }
        #expect(evaluated <= 1 + 2 * 256 + 256, "\(evaluated) rules on the way to \(last)")
        #expect(byName[path.last!]?.rules.last?.destination?.cidr.address == last)
        #expect(chains.allSatisfy { $0.name.rawValue.count <= ChainName.maximumLength })
    }

    @Test func theNodePortsRuleStaysLast() {
        let (_, rules) = tables(.tree, Self.realistic)
        let services = rules.nat.chain(ChainNames.services)!.rules
        #expect(services.last?.target == .jump(ChainNames.nodePorts))
        #expect(services.dropLast().allSatisfy { $0.target.chain?.rawValue.hasPrefix(DispatchTree.chainPrefix) == true })
    }
}
