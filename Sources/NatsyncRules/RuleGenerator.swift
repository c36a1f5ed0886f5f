import NatsyncIPTables
import NatsyncModel

/// Turns a cluster state into kube-proxy's iptables-mode tables (`syncProxyRules`, without I/O).
///
/// The output is deterministic: services in name order, each service's ports in spec order,
/// endpoints in `ip:port` order. Where kube-proxy's order depends on Go map iteration, natsync's
/// does not. Generation is linear in services plus endpoints.
public struct RuleGenerator: Sendable {
    public var options: ProxyOptions

    public init(options: ProxyOptions) {
        self.options = options
    }

    /// The complete tables for `state`.
    public func rules(for state: ClusterState) -> ProxyRules {
        rules(forPorts: servicePorts(of: state))
    }

    /// The complete tables for service ports already paired with their endpoints (from
    /// ``servicePorts(of:)``), for callers that need those too.
    public func rules(forPorts planned: [(ServicePortInfo, [EndpointInfo])]) -> ProxyRules {
        let endpointCount = planned.reduce(0) { $0 + $1.1.count }
        let largeCluster = endpointCount > ProxyRules.largeClusterEndpointThreshold
        let perPort = planned.concurrentMap { rules(for: $0.0, endpoints: $0.1, largeClusterMode: largeCluster) }
        return assemble(perPort, endpointCount: endpointCount, largeClusterMode: largeCluster)
    }

    /// The rules of the ports of many services, in order; a large set is spread over the cores.
    public func rules(forEach services: [[(ServicePortInfo, [EndpointInfo])]], largeClusterMode: Bool) -> [[ServicePortRules]] {
        services.concurrentMap(minimumCount: 256) { ports in
            ports.map { rules(for: $0.0, endpoints: $0.1, largeClusterMode: largeClusterMode) }
        }
    }

    /// Every service port this proxier programs, in order, with its endpoints.
    public func servicePorts(of state: ClusterState) -> [(ServicePortInfo, [EndpointInfo])] {
        let slices = state.slicesByService()
        return state.services.concurrentMap { servicePorts(of: $0, slices: slices[$0.name] ?? []) }.flatMap { $0 }
    }

    /// The ports of one service this proxier programs, with their endpoints from `slices`.
    public func servicePorts(of service: Service, slices: [EndpointSlice]) -> [(ServicePortInfo, [EndpointInfo])] {
        ServicePortInfo.ports(of: service, family: options.family).map { port in
            (port, EndpointInfo.endpoints(of: port.name, in: slices, family: options.family, nodeName: options.nodeName))
        }
    }

    /// The rules of one service port.
    public func rules(for port: ServicePortInfo, endpoints: [EndpointInfo], largeClusterMode: Bool) -> ServicePortRules {
        ServicePortWriter(options: options, port: port, largeClusterMode: largeClusterMode)
            .write(EndpointCategories(endpoints, for: port))
    }

    /// Every jump kube-proxy keeps in the built-in chains (not kubelet's KUBE-FIREWALL ones): what
    /// cleanup removes, as `kube-proxy --cleanup` does.
    public static func proxyJumps() -> (filter: [BuiltinJump], nat: [BuiltinJump]) {
        FixedRules(options: ProxyOptions(nodeName: "", localhostNodePorts: false)).builtinJumps
    }

    /// The complete tables from the rules of every service port, in order.
    ///
    /// `keeping` selects the per-service and dispatch chains to include (all by default); a
    /// partial sync keeps only the chains it compares, so it costs the change, not the table. The
    /// shared chains (KUBE-SERVICES and the like) are always whole.
    public func assemble(
        _ ports: [ServicePortRules], endpointCount: Int, largeClusterMode: Bool, keeping selection: ChainSelection? = nil
    ) -> ProxyRules {
        let fixed = FixedRules(options: options)
        var filterServices = Chain(ChainNames.services)
        var filterExternal = Chain(ChainNames.externalServices)
        var filterNodePorts = Chain(ChainNames.nodePorts)
        var filterFirewall = Chain(ChainNames.proxyFirewall)
        var natServices = Chain(ChainNames.services)
        var natNodePorts = Chain(ChainNames.nodePorts)
        var serviceChains: [Chain] = []
        var omitted = 0
        for port in ports {
            filterServices.rules += port.filterServices
            filterExternal.rules += port.filterExternalServices
            filterNodePorts.rules += port.filterNodePorts
            filterFirewall.rules += port.filterProxyFirewall
            natServices.rules += port.natServices
            natNodePorts.rules += port.natNodePorts
            if selection?.services.contains(port.name.service) == false {
                for chain in port.natChains { omitted += chain.rules.count }
            } else {
                serviceChains += port.natChains
            }
        }
        var dispatchChains: [Chain] = []
        if options.serviceDispatch == .tree {
            (natServices.rules, dispatchChains) = DispatchTree.build(natServices.rules, family: options.family)
            if let selection {
                omitted += dispatchChains.filter { !selection.dispatchChains.contains($0.name) }.reduce(0) { $0 + $1.rules.count }
                dispatchChains = dispatchChains.filter { selection.dispatchChains.contains($0.name) }
            }
        }
        natServices.rules += fixed.nodePortsTail

        var filterChains = [filterServices, filterExternal, fixed.forward, filterNodePorts, filterFirewall]
        if let firewall = fixed.kubeletFirewall { filterChains.append(firewall) }
        let natChains = [natServices, natNodePorts, fixed.postrouting, fixed.markMasquerade] + dispatchChains + serviceChains
        let jumps = fixed.builtinJumps
        return ProxyRules(
            filter: TableContents(table: .filter, chains: filterChains, builtinJumps: jumps.filter),
            nat: TableContents(table: .nat, chains: natChains, builtinJumps: jumps.nat),
            servicePortCount: ports.count,
            endpointCount: endpointCount,
            largeClusterMode: largeClusterMode,
            omittedNatRules: omitted
        )
    }
}

/// The per-service and dispatch chains a partial sync assembles.
public struct ChainSelection: Sendable {
    /// Services whose ports' chains are kept: a port's chains are named from its service, so
    /// they are kept or left out together (checked once per port, not once per chain).
    public var services: Set<NamespacedName>
    /// Dispatch-tree chains to keep, by name.
    public var dispatchChains: Set<ChainName>

    public init(services: Set<NamespacedName>, dispatchChains: Set<ChainName>) {
        self.services = services
        self.dispatchChains = dispatchChains
    }
}
