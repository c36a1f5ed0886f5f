import NatsyncIPTables
import NatsyncModel
import Testing

@testable import NatsyncRules

/// The worked examples of the reference (section 2.6), written from kube-proxy's algorithm.
struct ReferenceExampleTests {
    let svc1 = Service(
        name: name("ns1/svc1"), clusterIPs: [ip("172.30.0.41")],
        ports: [.init(name: "p80", protocol: .tcp, port: 80)])

    @Test func oneEndpointGivesTheWholeNatTable() {
        let state = ClusterState(services: [svc1], endpointSlices: [slice("ns1/svc1", ["10.180.0.1"])])
        let rules = RuleGenerator(options: fakeOptions()).rules(for: state)
        let expected = """
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
            -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
            -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
            -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
            -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
            -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
            -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
            """
        expectChains(rules.nat, expected)
        #expect(
            rules.nat.chains.map(\.name.rawValue).sorted()
                == [
                    "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-SEP-SXIVWICOYRO3J4NJ", "KUBE-SERVICES",
                    "KUBE-SVC-XPGD46QRK7WJZT7O",
                ])
        #expect(rules.nat.chain("KUBE-NODEPORTS")?.rules == [])
    }

    @Test func threeEndpointsSplitEvenlyInIPPortOrder() {
        // Given out of order, in two slices: the SVC chain still lists them by ip:port.
        let state = ClusterState(
            services: [svc1],
            endpointSlices: [
                slice("ns1/svc1", suffix: "b", ["10.180.0.3", "10.180.0.1"]), slice("ns1/svc1", suffix: "a", ["10.180.0.2"]),
            ])
        let rules = RuleGenerator(options: fakeOptions()).rules(for: state)
        let expected = """
            -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
            -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
            -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
            -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
            """
        expectChains(rules.filter, expected)
        #expect(
            rules.filter.chains.map(\.name.rawValue)
                == ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"])
        let nat = """
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-LXVODXWDISEETFEF
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -j KUBE-SEP-ICDUIKC33SFI6ZPR
            -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
            -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
            -A KUBE-SEP-LXVODXWDISEETFEF -m comment --comment ns1/svc1:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-LXVODXWDISEETFEF -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
            -A KUBE-SEP-ICDUIKC33SFI6ZPR -m comment --comment ns1/svc1:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
            -A KUBE-SEP-ICDUIKC33SFI6ZPR -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
            """
        expectChains(rules.nat, nat)
        // Chain declarations: the fixed four, then SVC, then SEPs in endpoint order.
        #expect(
            rules.nat.chains.map(\.name.rawValue)
                == [
                    "KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-SVC-XPGD46QRK7WJZT7O",
                    "KUBE-SEP-SXIVWICOYRO3J4NJ", "KUBE-SEP-LXVODXWDISEETFEF", "KUBE-SEP-ICDUIKC33SFI6ZPR",
                ])
    }

    @Test func endpointsSortAsIPPortStringsNotAsNumbers() {
        let service = Service(
            name: name("ns1/svc1"), clusterIPs: [ip("172.30.0.41")], ports: [.init(name: "p11", protocol: .tcp, port: 11)])
        let state = ClusterState(
            services: [service], endpointSlices: [slice("ns1/svc1", port: "p11", number: 11, ["10.1.1.1", "10.1.1.11", "10.1.1.2"])])
        let svc = RuleGenerator(options: fakeOptions()).rules(for: state).nat.chains.first { $0.name.rawValue.hasPrefix("KUBE-SVC-") }!
        let order = svc.rules.compactMap { $0.target.chain }.map(\.rawValue)
        let expected = ["10.1.1.11:11", "10.1.1.1:11", "10.1.1.2:11"].map {
            ChainNames.endpoint(ChainNamesTests.port("ns1/svc1:p11"), endpoint: $0).rawValue
        }
        #expect(Array(order.dropFirst()) == expected)
    }

    @Test func udpWithClientIPAffinity() {
        let dns = Service(
            name: name("ns1/dns"), clusterIPs: [ip("172.30.0.10")], ports: [.init(name: "dns", protocol: .udp, port: 53)],
            sessionAffinity: .clientIP(timeoutSeconds: 10800))
        let state = ClusterState(
            services: [dns], endpointSlices: [slice("ns1/dns", port: "dns", protocol: .udp, number: 53, ["10.180.0.1", "10.180.0.2"])])
        let rules = RuleGenerator(options: fakeOptions()).rules(for: state)
        expectChains(
            rules.nat,
            """
            -A KUBE-SEP-VZKE3ZCFEDHLFKYZ -m comment --comment ns1/dns:dns -s 10.180.0.1 -j KUBE-MARK-MASQ
            -A KUBE-SEP-VZKE3ZCFEDHLFKYZ -m comment --comment ns1/dns:dns -m recent --name KUBE-SEP-VZKE3ZCFEDHLFKYZ --set -m udp -p udp -j DNAT --to-destination 10.180.0.1:53
            -A KUBE-SEP-XX7NV6NKEVRUPB6D -m comment --comment ns1/dns:dns -s 10.180.0.2 -j KUBE-MARK-MASQ
            -A KUBE-SEP-XX7NV6NKEVRUPB6D -m comment --comment ns1/dns:dns -m recent --name KUBE-SEP-XX7NV6NKEVRUPB6D --set -m udp -p udp -j DNAT --to-destination 10.180.0.2:53
            -A KUBE-SVC-WBMILL6O5AC5GY22 -m comment --comment "ns1/dns:dns cluster IP" -m udp -p udp -d 172.30.0.10 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-WBMILL6O5AC5GY22 -m comment --comment "ns1/dns:dns -> 10.180.0.1:53" -m recent --name KUBE-SEP-VZKE3ZCFEDHLFKYZ --rcheck --seconds 10800 --reap -j KUBE-SEP-VZKE3ZCFEDHLFKYZ
            -A KUBE-SVC-WBMILL6O5AC5GY22 -m comment --comment "ns1/dns:dns -> 10.180.0.2:53" -m recent --name KUBE-SEP-XX7NV6NKEVRUPB6D --rcheck --seconds 10800 --reap -j KUBE-SEP-XX7NV6NKEVRUPB6D
            -A KUBE-SVC-WBMILL6O5AC5GY22 -m comment --comment "ns1/dns:dns -> 10.180.0.1:53" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-VZKE3ZCFEDHLFKYZ
            -A KUBE-SVC-WBMILL6O5AC5GY22 -m comment --comment "ns1/dns:dns -> 10.180.0.2:53" -j KUBE-SEP-XX7NV6NKEVRUPB6D
            """)
        #expect(
            rules.nat.chain(ChainNames.services)?.rules.first.map { RestoreText.arguments(of: $0) }
                == #"-m comment --comment "ns1/dns:dns cluster IP" -m udp -p udp -d 172.30.0.10 --dport 53 -j KUBE-SVC-WBMILL6O5AC5GY22"#)
    }

    @Test func externalPolicyLocalLoadBalancerWithOneLocalEndpoint() {
        let service = Service(
            name: name("ns1/svc1"), kind: .loadBalancer, clusterIPs: [ip("172.30.0.41")],
            ports: [.init(name: "p80", protocol: .tcp, port: 80, nodePort: 3001)],
            externalIPs: [ip("192.168.99.11")], loadBalancerIngress: [.init(ip: ip("1.2.3.4"))],
            externalTrafficPolicy: .local, healthCheckNodePort: 30000)
        let state = ClusterState(services: [service], endpointSlices: [slice("ns1/svc1", ["10.180.0.1", "10.180.2.1@test-node"])])
        let rules = RuleGenerator(options: fakeOptions()).rules(for: state)
        expectChains(
            rules.filter,
            """
            -A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
            """)
        #expect(rules.filter.chain(ChainNames.externalServices)?.rules == [])
        #expect(rules.filter.chain(ChainNames.services)?.rules == [])
        expectChains(
            rules.nat,
            """
            -A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 external IP" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
            -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
            -A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
            -A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
            """)
    }

    @Test func internalPolicyLocal() {
        let service = Service(
            name: name("ns1/svc1"), clusterIPs: [ip("172.30.1.1")], ports: [.init(name: "", protocol: .tcp, port: 80)],
            internalTrafficPolicy: .local)
        let generator = RuleGenerator(options: fakeOptions())

        let local = generator.rules(
            for: ClusterState(services: [service], endpointSlices: [slice("ns1/svc1", port: "", ["10.0.1.1@test-node", "10.0.1.2@other"])]))
        expectChains(
            local.nat,
            """
            -A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVL-AQI2S6QIMU7PVVRP
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
            -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
            -A KUBE-SVL-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -j KUBE-SEP-3JOIVZTXZZRGORX4
            """)
        #expect(!local.nat.chains.contains { $0.name.rawValue.hasPrefix("KUBE-SVC-") })

        let remoteOnly = generator.rules(
            for: ClusterState(services: [service], endpointSlices: [slice("ns1/svc1", port: "", ["10.0.1.2@other"])]))
        expectChains(
            remoteOnly.filter,
            """
            -A KUBE-SERVICES -m comment --comment "ns1/svc1 has no local endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j DROP
            """)
        #expect(remoteOnly.nat.chains.count == 4)

        let none = generator.rules(for: ClusterState(services: [service]))
        expectChains(
            none.filter,
            """
            -A KUBE-SERVICES -m comment --comment "ns1/svc1 has no endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j REJECT
            """)
    }

    @Test func onlyTerminatingEndpointsFallBack() {
        let service = Service(
            name: name("ns1/svc1"), kind: .loadBalancer, clusterIPs: [ip("172.30.1.1")],
            ports: [.init(name: "", protocol: .tcp, port: 80, nodePort: 30001)],
            loadBalancerIngress: [.init(ip: ip("1.2.3.4"))], externalTrafficPolicy: .local, healthCheckNodePort: 30000)
        let terminating = EndpointSlice.Conditions(ready: false, serving: true, terminating: true)
        let notServing = EndpointSlice.Conditions(ready: false, serving: false, terminating: true)
        let state = ClusterState(
            services: [service],
            endpointSlices: [
                slice("ns1/svc1", port: "", suffix: "a", ["10.0.1.2@test-node", "10.0.1.3@test-node"], conditions: terminating),
                slice("ns1/svc1", port: "", suffix: "b", ["10.0.1.4@test-node"], conditions: notServing),
                slice("ns1/svc1", port: "", suffix: "c", ["10.0.1.5@other"]),
            ])
        let nat = RuleGenerator(options: fakeOptions()).rules(for: state).nat
        let svc = nat.chains.first { $0.name.rawValue.hasPrefix("KUBE-SVC-") }!
        let svl = nat.chains.first { $0.name.rawValue.hasPrefix("KUBE-SVL-") }!
        let port = ChainNamesTests.port("ns1/svc1")
        func sep(_ endpoint: String) -> ChainName { ChainNames.endpoint(port, endpoint: endpoint) }
        #expect(svc.rules.compactMap(\.target.chain) == [ChainNames.markMasquerade, sep("10.0.1.5:80")])
        #expect(svl.rules.compactMap(\.target.chain) == [sep("10.0.1.2:80"), sep("10.0.1.3:80")])
        #expect(svl.rules.first?.matches.contains(.statistic(Probability(oneIn: 2))) == true)
        let seps = nat.chains.filter { $0.name.rawValue.hasPrefix("KUBE-SEP-") }.map(\.name)
        #expect(Set(seps) == [sep("10.0.1.2:80"), sep("10.0.1.3:80"), sep("10.0.1.5:80")])

        // Only a remote terminating endpoint: external traffic is dropped, the cluster IP still works.
        let remoteTerminating = ClusterState(
            services: [service], endpointSlices: [slice("ns1/svc1", port: "", ["10.0.1.5@other"], conditions: terminating)])
        let rules = RuleGenerator(options: fakeOptions()).rules(for: remoteTerminating)
        #expect(rules.filter.chain(ChainNames.externalServices)?.rules.allSatisfy { $0.target == .drop } == true)
        #expect(rules.filter.chain(ChainNames.externalServices)?.rules.count == 2)
        #expect(rules.nat.chain(ChainNames.services)?.rules.first?.target == .jump(ChainNames.clusterPolicy(port)))
    }

    @Test func ipv6UsesBracketsNoFirewallChainAndTheLoopbackTail() {
        let service = Service(
            name: name("ns1/svc1"), kind: .nodePort, clusterIPs: [ip("fd00:172:30::41")],
            ports: [.init(name: "p80", protocol: .tcp, port: 80, nodePort: 3001)])
        let state = ClusterState(services: [service], endpointSlices: [slice("ns1/svc1", ["fd00:10:180::1"])])
        let rules = RuleGenerator(options: fakeOptions(family: .ipv6, clusterCIDRs: ["fd00:10::/64"])).rules(for: state)
        #expect(rules.filter.chain(ChainNames.kubeletFirewall) == nil)
        #expect(!rules.filter.builtinJumps.contains { $0.rule.target == .jump(ChainNames.kubeletFirewall) })
        expectChains(
            rules.nat,
            """
            -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d fd00:172:30::41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
            -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS
            -A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d fd00:172:30::41 --dport 80 ! -s fd00:10::/64 -j KUBE-MARK-MASQ
            -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> [fd00:10:180::1]:80" -j KUBE-SEP-OGYCNMB4EMRUSJ6N
            -A KUBE-SEP-OGYCNMB4EMRUSJ6N -m comment --comment ns1/svc1:p80 -s fd00:10:180::1 -j KUBE-MARK-MASQ
            -A KUBE-SEP-OGYCNMB4EMRUSJ6N -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [fd00:10:180::1]:80
            """, family: .ipv6)
    }

    @Test func masqueradeAllMarksEveryClusterIPPacket() {
        let state = ClusterState(services: [svc1], endpointSlices: [slice("ns1/svc1", ["10.180.0.1"])])
        let rules = RuleGenerator(options: fakeOptions(masqueradeAll: true)).rules(for: state)
        #expect(
            chainLines(rules.nat)["KUBE-SVC-XPGD46QRK7WJZT7O"]?.first
                == #"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ"#
        )
    }

    @Test func withoutAClusterCIDRNothingIsMasqueradedAndPodsSkipNoShortCircuit() {
        let service = Service(
            name: name("ns1/svc1"), kind: .nodePort, clusterIPs: [ip("172.30.0.41")],
            ports: [.init(name: "p80", protocol: .tcp, port: 80, nodePort: 3001)], externalTrafficPolicy: .local)
        let state = ClusterState(services: [service], endpointSlices: [slice("ns1/svc1", ["10.180.0.1@test-node"])])
        let rules = RuleGenerator(options: fakeOptions(clusterCIDRs: [])).rules(for: state)
        let lines = chainLines(rules.nat)
        #expect(
            lines["KUBE-SVC-XPGD46QRK7WJZT7O"] == [
                #"-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ"#
            ])
        #expect(lines["KUBE-EXT-XPGD46QRK7WJZT7O"]?.contains { $0.contains("pod traffic") } == false)
        #expect(lines["KUBE-EXT-XPGD46QRK7WJZT7O"]?.count == 3)
    }
}
