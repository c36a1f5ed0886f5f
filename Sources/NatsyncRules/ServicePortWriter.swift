import NatsyncIPTables
import NatsyncModel
import NatsyncNet

/// Writes the rules of one service port, in the order kube-proxy's `syncProxyRules` writes them.
struct ServicePortWriter {
    let options: ProxyOptions
    let port: ServicePortInfo
    let largeClusterMode: Bool

    // Computed once per port: each is a SHA-256 (or a string) the rules below use many times.
    private let name: String
    private let svc: ChainName
    private let svl: ChainName
    private let ext: ChainName
    private let fw: ChainName
    private let endpointChains: ChainNames.EndpointHasher
    private var proto: TransportProtocol { port.name.protocol }

    init(options: ProxyOptions, port: ServicePortInfo, largeClusterMode: Bool) {
        self.options = options
        self.port = port
        self.largeClusterMode = largeClusterMode
        name = port.name.description
        let chains = ChainNames.ServicePortChains(port.name)
        svc = chains.clusterPolicy
        svl = chains.localPolicy
        ext = chains.external
        fw = chains.firewall
        endpointChains = ChainNames.EndpointHasher(port.name)
    }

    /// A rule matching `protocol` to `destination:port`, as `-m p -p p -d ADDRESS --dport PORT`.
    private func toPort(
        _ comment: String, destination: IPAddress?, port: UInt16, _ target: Target, extra: [Match] = []
    ) -> Rule {
        Rule(
            destination: destination.map { AddressMatch($0) },
            protocol: ProtocolMatch(proto),
            matches: [.comment(comment)] + extra + [.ports(proto, .destination(port))],
            target: target)
    }

    /// The comment match, left out in large-cluster mode where kube-proxy saves their bytes.
    private func endpointComment(_ text: @autoclosure () -> String) -> [Match] {
        largeClusterMode ? [] : [.comment(text())]
    }

    func write(_ endpoints: EndpointCategories) -> ServicePortRules {
        var out = ServicePortRules(name: port.name)
        let hasEndpoints = endpoints.hasAny
        let internalChain = port.internalPolicyLocal ? svl : svc
        let hasInternalEndpoints = hasEndpoints && !(port.internalPolicyLocal && endpoints.local.isEmpty)
        let externalPolicyChain = port.externalPolicyLocal ? svl : svc
        let hasExternalEndpoints = hasEndpoints && !(port.externalPolicyLocal && endpoints.local.isEmpty)
        out.noLocalInternalEndpoints = hasEndpoints && !hasInternalEndpoints
        out.noLocalExternalEndpoints = hasEndpoints && !hasExternalEndpoints
        let usesCluster = !endpoints.cluster.isEmpty && port.usesClusterEndpoints
        let usesLocal = !endpoints.local.isEmpty && port.usesLocalEndpoints
        let usesExternal = hasEndpoints && port.externallyAccessible
        let usesFirewall = hasEndpoints && !port.loadBalancerVIPs.isEmpty && !port.loadBalancerSourceRanges.isEmpty
        let loadBalancerChain = usesFirewall ? fw : ext

        let filterComment = hasEndpoints ? "\(name) has no local endpoints" : "\(name) has no endpoints"
        let filterTarget: Target = hasEndpoints ? .drop : .reject(.portUnreachable)

        // The cluster IP.
        if hasInternalEndpoints {
            out.natServices.append(
                toPort("\(name) cluster IP", destination: port.clusterIP, port: port.port, .jump(internalChain)))
        } else {
            out.filterServices.append(
                toPort(filterComment, destination: port.clusterIP, port: port.port, filterTarget))
        }
        // External IPs.
        for address in port.externalIPs {
            if hasEndpoints {
                out.natServices.append(toPort("\(name) external IP", destination: address, port: port.port, .jump(ext)))
            }
            if !hasExternalEndpoints {
                out.filterExternalServices.append(
                    toPort(filterComment, destination: address, port: port.port, filterTarget))
            }
        }
        // Load-balancer VIPs.
        for address in port.loadBalancerVIPs {
            if hasEndpoints {
                out.natServices.append(
                    toPort("\(name) loadbalancer IP", destination: address, port: port.port, .jump(loadBalancerChain)))
            }
            if usesFirewall {
                out.filterProxyFirewall.append(
                    toPort("\(name) traffic not accepted by \(fw)", destination: address, port: port.port, .drop))
            }
        }
        if !hasExternalEndpoints {
            for address in port.loadBalancerVIPs {
                out.filterExternalServices.append(
                    toPort(filterComment, destination: address, port: port.port, filterTarget))
            }
        }
        // The node port. kube-proxy's extra 127.0.0.0/8 rule only feeds an nfacct counter, which
        // natsync does not create; kube-proxy omits it too when the counter is unavailable.
        if let nodePort = port.nodePort {
            if hasEndpoints {
                out.natNodePorts.append(toPort(name, destination: nil, port: nodePort, .jump(ext)))
            }
            if !hasExternalEndpoints {
                out.filterExternalServices.append(
                    toPort(
                        filterComment, destination: nil, port: nodePort, filterTarget,
                        extra: [.addressType(AddressTypeMatch(destination: .local))]))
            }
        }
        // The health-check node port is always TCP, whatever the service's protocol.
        if let healthCheck = port.healthCheckNodePort {
            out.filterNodePorts.append(
                Rule(
                    protocol: ProtocolMatch(.tcp),
                    matches: [.comment("\(name) health check node port"), .ports(.tcp, .destination(healthCheck))],
                    target: .accept))
        }

        // Masquerade cluster-IP traffic that does not come from a pod.
        var internalChainRules: [Rule] = []
        if hasInternalEndpoints {
            let rule = toPort("\(name) cluster IP", destination: port.clusterIP, port: port.port, .jump(ChainNames.markMasquerade))
            if options.masqueradeAll {
                internalChainRules.append(rule)
            } else if let local = options.localTraffic {
                internalChainRules.append(local.restricting(rule, local: false))
            }
        }

        if usesExternal {
            out.natChains.append(Chain(ext, rules: externalChainRules(hasExternalEndpoints, externalPolicyChain)))
        }
        if usesFirewall {
            out.natChains.append(Chain(fw, rules: firewallChainRules()))
        }
        // Each endpoint chain is named once (a hash) for its chain and the jumps to it.
        let seps = endpoints.reachable.map { endpointChains.chain(endpoint: $0) }
        if usesCluster {
            let prefix = internalChain == svc ? internalChainRules : []
            out.natChains.append(
                Chain(svc, rules: dispatch(endpoints.cluster, names(of: endpoints.cluster, endpoints.reachable, seps), after: prefix)))
        }
        if usesLocal {
            let prefix = internalChain == svl ? internalChainRules : []
            out.natChains.append(
                Chain(svl, rules: dispatch(endpoints.local, names(of: endpoints.local, endpoints.reachable, seps), after: prefix)))
        }
        for (endpoint, sep) in zip(endpoints.reachable, seps) {
            out.natChains.append(endpointChain(endpoint, sep))
        }
        return out
    }

    private func externalChainRules(_ hasExternalEndpoints: Bool, _ policyChain: ChainName) -> [Rule] {
        var rules: [Rule] = []
        if !port.externalPolicyLocal {
            rules.append(
                Rule(
                    matches: [.comment("masquerade traffic for \(name) external destinations")],
                    target: .jump(ChainNames.markMasquerade)))
        } else {
            if let local = options.localTraffic {
                // Pods reaching an external destination skip the policy, as if they went out to a
                // load balancer and came back.
                rules.append(
                    local.restricting(
                        Rule(matches: [.comment("pod traffic for \(name) external destinations")], target: .jump(svc)), local: true))
            }
            let localSource = Match.addressType(AddressTypeMatch(source: .local))
            rules.append(
                Rule(
                    matches: [.comment("masquerade LOCAL traffic for \(name) external destinations"), localSource],
                    target: .jump(ChainNames.markMasquerade)))
            rules.append(
                Rule(
                    matches: [.comment("route LOCAL traffic for \(name) external destinations"), localSource],
                    target: .jump(svc)))
        }
        if hasExternalEndpoints {
            rules.append(Rule(target: .jump(policyChain)))
        }
        return rules
    }

    private func firewallChainRules() -> [Rule] {
        let comment = Match.comment("\(name) loadbalancer IP")
        var rules = port.loadBalancerSourceRanges.map {
            Rule(source: AddressMatch($0), matches: [comment], target: .jump(ext))
        }
        // A VIP the node owns makes the node's own requests arrive from the VIP.
        if let nodeIP = options.nodeIP, port.loadBalancerSourceRanges.contains(where: { $0.contains(nodeIP) }) {
            rules += port.loadBalancerVIPs.map {
                Rule(source: AddressMatch($0), matches: [comment], target: .jump(ext))
            }
        }
        rules.append(Rule(matches: [.comment("other traffic to \(name) will be dropped by KUBE-PROXY-FIREWALL")], target: .none))
        return rules
    }

    /// The endpoint chains of `endpoints`, taken from `names` (those of `reachable`) where they are
    /// there: both lists are in `ip:port` order, so one walk finds them; others are hashed anew.
    private func names(of endpoints: [EndpointInfo], _ reachable: [EndpointInfo], _ names: [ChainName]) -> [ChainName] {
        var position = 0
        return endpoints.map { endpoint in
            var probe = position
            while probe < reachable.count && reachable[probe] != endpoint { probe += 1 }
            guard probe < reachable.count else { return endpointChains.chain(endpoint: endpoint) }
            position = probe + 1
            return names[probe]
        }
    }

    /// The rules that spread traffic evenly over `endpoints`: affinity checks first, then one
    /// statistic jump per endpoint with probability 1/(remaining), the last unconditional. They
    /// follow `prefix` in the one array: joining two arrays afterwards copied every rule (and
    /// retained what each holds) once more.
    private func dispatch(_ endpoints: [EndpointInfo], _ chains: [ChainName], after prefix: [Rule]) -> [Rule] {
        var rules = prefix
        rules.reserveCapacity(prefix.count + endpoints.count * (port.sessionAffinityTimeout == nil ? 1 : 2))
        if let timeout = port.sessionAffinityTimeout {
            for (endpoint, sep) in zip(endpoints, chains) {
                let check = RecentMatch(name: sep.rawValue, action: .check(seconds: UInt32(timeout), reap: true))
                rules.append(
                    Rule(
                        matches: endpointComment("\(name) -> \(endpoint.endpointString)") + [.recent(check)],
                        target: .jump(sep)))
            }
        }
        for (index, (endpoint, sep)) in zip(endpoints, chains).enumerated() {
            let remaining = endpoints.count - index
            var matches: [Match]
            if largeClusterMode {
                matches = remaining > 1 ? SharedMatches.statistic(oneIn: remaining) : []
            } else {
                matches = endpointComment("\(name) -> \(endpoint.endpointString)")
                if remaining > 1 { matches.append(.statistic(Probability(oneIn: remaining))) }
            }
            rules.append(Rule(matches: matches, target: .jump(sep)))
        }
        return rules
    }

    private func endpointChain(_ endpoint: EndpointInfo, _ sep: ChainName) -> Chain {
        let comment = endpointComment(name)
        var dnatMatches: [Match]
        if comment.isEmpty && port.sessionAffinityTimeout == nil {
            dnatMatches = SharedMatches.protocolOnly(proto)
        } else {
            dnatMatches = comment
            if port.sessionAffinityTimeout != nil {
                dnatMatches.append(.recent(RecentMatch(name: sep.rawValue, action: .set)))
            }
            dnatMatches.append(.ports(proto, PortMatch()))
        }
        return Chain(
            sep,
            rules: [
                // Hairpin: a pod reaching itself through its service must be masqueraded.
                Rule(source: AddressMatch(endpoint.address), matches: comment, target: .jump(ChainNames.markMasquerade)),
                Rule(protocol: ProtocolMatch(proto), matches: dnatMatches, target: .dnat(endpoint.address, port: endpoint.port)),
            ])
    }
}

/// Match lists that most rules of a large cluster repeat word for word, built once and shared:
/// arrays are copy-on-write, so every rule holding one of these holds the same storage (a large
/// cluster's rules are most of natsync's memory, and these are two rules of every endpoint).
private enum SharedMatches {
    /// `-m statistic --mode random --probability 1/n` alone, for n below 256.
    private static let statistics: [[Match]] = (0..<256).map { [.statistic(Probability(oneIn: max($0, 1)))] }
    private static let protocols: [TransportProtocol: [Match]] = Dictionary(
        uniqueKeysWithValues: TransportProtocol.allCases.map { ($0, [.ports($0, PortMatch())]) })

    static func statistic(oneIn n: Int) -> [Match] {
        n < statistics.count ? statistics[n] : [.statistic(Probability(oneIn: n))]
    }

    /// `-m tcp` (or udp, sctp) without ports, as DNAT rules carry it.
    static func protocolOnly(_ proto: TransportProtocol) -> [Match] { protocols[proto] ?? [.ports(proto, PortMatch())] }
}
