import NatsyncIPTables
import NatsyncModel
import NatsyncNet

/// The chains and rules every proxier writes whatever the services (kube-proxy's fixed chains).
struct FixedRules {
    let options: ProxyOptions

    var mark: UInt32 { options.masqueradeMark }

    /// `KUBE-FORWARD`: drop INVALID (unless TCP conntrack is liberal), accept marked and established.
    var forward: Chain {
        var rules: [Rule] = []
        if !options.conntrackTCPBeLiberal {
            rules.append(Rule(matches: [.conntrack(ConntrackMatch(states: .invalid))], target: .drop))
        }
        rules.append(
            Rule(
                matches: [.comment("kubernetes forwarding rules"), .mark(MarkMatch(value: mark, mask: mark))],
                target: .accept))
        rules.append(
            Rule(
                matches: [
                    .comment("kubernetes forwarding conntrack rule"),
                    .conntrack(ConntrackMatch(states: [.related, .established])),
                ],
                target: .accept))
        return Chain(ChainNames.forward, rules: rules)
    }

    /// `KUBE-FIREWALL`: the anti-martian rule that makes localhost NodePorts safe.
    var kubeletFirewall: Chain? {
        guard options.effectiveLocalhostNodePorts else { return nil }
        let loopback = CIDR(address: .v4(0x7F00_0000), prefixLength: 8)!
        return Chain(
            ChainNames.kubeletFirewall,
            rules: [
                Rule(
                    source: AddressMatch(loopback, inverted: true),
                    destination: AddressMatch(loopback),
                    matches: [
                        .comment("block incoming localnet connections"),
                        .conntrack(ConntrackMatch(states: [.related, .established, .dnat], inverted: true)),
                    ],
                    target: .drop)
            ])
    }

    /// `KUBE-POSTROUTING`: masquerade what carries the mark, clearing the mark first.
    var postrouting: Chain {
        Chain(
            ChainNames.postrouting,
            rules: [
                Rule(matches: [.mark(MarkMatch(value: mark, mask: mark, inverted: true))], target: .return),
                Rule(target: .xorMark(mark)),
                Rule(
                    matches: [.comment("kubernetes service traffic requiring SNAT")],
                    target: .masquerade(randomFully: options.randomFully)),
            ])
    }

    /// `KUBE-MARK-MASQ`: request masquerading.
    var markMasquerade: Chain {
        Chain(ChainNames.markMasquerade, rules: [Rule(target: .orMark(mark))])
    }

    /// The last rules of nat `KUBE-SERVICES`: hand local destinations to `KUBE-NODEPORTS`.
    var nodePortsTail: [Rule] {
        let comment = Match.comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
        if let nodePortIPs = options.nodePortIPs {
            let addresses = nodePortIPs.filter { !$0.isLoopback || options.effectiveLocalhostNodePorts }
            return addresses.map {
                Rule(destination: AddressMatch($0), matches: [comment], target: .jump(ChainNames.nodePorts))
            }
        }
        let localDestination = Match.addressType(AddressTypeMatch(destination: .local))
        var rule = Rule(matches: [comment, localDestination], target: .jump(ChainNames.nodePorts))
        switch options.family {
        case .ipv4 where !options.effectiveLocalhostNodePorts:
            rule.destination = AddressMatch(CIDR(address: .v4(0x7F00_0000), prefixLength: 8)!, inverted: true)
        case .ipv6:
            rule.destination = AddressMatch(.v6(1), inverted: true)
        case .ipv4:
            break
        }
        return [rule]
    }

    /// The jumps from the built-in chains, in their final top-down order per table.
    ///
    /// kube-proxy inserts each at position 1 in a fixed list order, so the final order is that
    /// list reversed; natsync writes the final order directly.
    var builtinJumps: (filter: [BuiltinJump], nat: [BuiltinJump]) {
        let new = Match.conntrack(ConntrackMatch(states: .new))
        func jump(_ chain: ChainName, _ to: ChainName, _ matches: [Match]) -> BuiltinJump {
            BuiltinJump(chain: chain, rule: Rule(matches: matches, target: .jump(to)))
        }
        let portals = Match.comment("kubernetes service portals")
        let external = Match.comment("kubernetes externally-visible service portals")
        let firewall = Match.comment("kubernetes load balancer firewall")
        var filterList: [BuiltinJump] = [
            jump(.input, ChainNames.externalServices, [new, external]),
            jump(.forward, ChainNames.externalServices, [new, external]),
            jump(.input, ChainNames.nodePorts, [.comment("kubernetes health check service ports")]),
            jump(.forward, ChainNames.services, [new, portals]),
            jump(.output, ChainNames.services, [new, portals]),
            jump(.forward, ChainNames.forward, [.comment("kubernetes forwarding rules")]),
            jump(.input, ChainNames.proxyFirewall, [new, firewall]),
            jump(.output, ChainNames.proxyFirewall, [new, firewall]),
            jump(.forward, ChainNames.proxyFirewall, [new, firewall]),
        ]
        if options.effectiveLocalhostNodePorts {
            filterList.append(jump(.input, ChainNames.kubeletFirewall, []))
            filterList.append(jump(.output, ChainNames.kubeletFirewall, []))
        }
        let natList: [BuiltinJump] = [
            jump(.output, ChainNames.services, [portals]),
            jump(.prerouting, ChainNames.services, [portals]),
            jump(.postrouting, ChainNames.postrouting, [.comment("kubernetes postrouting rules")]),
        ]
        return (Self.finalOrder(filterList), Self.finalOrder(natList))
    }

    /// The order a list of position-1 inserts ends in, grouped by built-in chain.
    static func finalOrder(_ inserts: [BuiltinJump]) -> [BuiltinJump] {
        let order: [ChainName] = [.prerouting, .input, .forward, .output, .postrouting]
        let reversed = Array(inserts.reversed())
        return order.flatMap { chain in reversed.filter { $0.chain == chain } }
    }
}
