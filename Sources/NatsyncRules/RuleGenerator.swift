import NatsyncIPTables
import NatsyncModel
import NatsyncUtilities

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
    public func rules(forPorts planned: [ServicePortEndpoints]) -> ProxyRules {
        let endpointCount = planned.reduce(0) { $0 + $1.1.count }
        let largeCluster = endpointCount > ProxyRules.largeClusterEndpointThreshold
        let perPort = planned.concurrentMap { rules(for: $0.0, endpoints: $0.1, largeClusterMode: largeCluster) }
        return assemble(consume perPort, endpointCount: endpointCount, largeClusterMode: largeCluster)
    }

    /// The rules of the ports of many services, in order; a large set is spread over the cores.
    public func rules(forEach services: [[ServicePortEndpoints]], largeClusterMode: Bool) -> [[ServicePortRules]] {
        services.concurrentMap(minimumCount: 256) { ports in
            ports.map { rules(for: $0.0, endpoints: $0.1, largeClusterMode: largeClusterMode) }
        }
    }

    /// Every service port this proxier programs, in order, with its endpoints.
    public func servicePorts(of state: ClusterState) -> [ServicePortEndpoints] {
        let slices = state.slicesByService()
        return Array(joining: state.services.concurrentMap { servicePorts(of: $0, slices: slices[$0.name] ?? []) })
    }

    /// The ports of one service this proxier programs, with their endpoints from `slices`.
    public func servicePorts(of service: Service, slices: [EndpointSlice]) -> [ServicePortEndpoints] {
        ServicePortInfo.ports(of: service, family: options.family).map { port in
            (port, EndpointInfo.endpoints(of: port.name, in: slices, family: options.family, nodeName: options.nodeName))
        }
    }

    /// The rules of one service port.
    public func rules(for port: ServicePortInfo, endpoints: [EndpointInfo], largeClusterMode: Bool) -> ServicePortRules {
        ServicePortWriter(options: options, port: port, largeClusterMode: largeClusterMode)
            .write(EndpointCategories(endpoints, for: port, topology: options.topology))
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
        _ ports: consuming [ServicePortRules], endpointCount: Int, largeClusterMode: Bool, keeping selection: ChainSelection? = nil
    ) -> ProxyRules {
        let fixed = FixedRules(options: options)
        let portCount = ports.count
        // Each port's rules and chains are moved into the tables, not copied (see Array(joining:)).
        var parts = TableParts(capacity: portCount)
        var omitted = 0
        ports.withUnsafeMutableBufferPointer { ports in
            for index in ports.indices {
                parts.filterServices.append(take(&ports[index].filterServices))
                parts.filterExternal.append(take(&ports[index].filterExternalServices))
                parts.filterNodePorts.append(take(&ports[index].filterNodePorts))
                parts.filterFirewall.append(take(&ports[index].filterProxyFirewall))
                parts.natServices.append(take(&ports[index].natServices))
                parts.natNodePorts.append(take(&ports[index].natNodePorts))
                if selection?.services.contains(ports[index].name.service) == false {
                    for chain in ports[index].natChains { omitted += chain.rules.count }
                } else {
                    parts.serviceChains.append(take(&ports[index].natChains))
                }
            }
        }
        let filterServices = Chain(ChainNames.services, rules: Array(joining: take(&parts.filterServices)))
        let filterExternal = Chain(ChainNames.externalServices, rules: Array(joining: take(&parts.filterExternal)))
        let filterNodePorts = Chain(ChainNames.nodePorts, rules: Array(joining: take(&parts.filterNodePorts)))
        let filterFirewall = Chain(ChainNames.proxyFirewall, rules: Array(joining: take(&parts.filterFirewall)))
        var natServices = Chain(ChainNames.services, rules: Array(joining: take(&parts.natServices)))
        let natNodePorts = Chain(ChainNames.nodePorts, rules: Array(joining: take(&parts.natNodePorts)))
        let serviceChains = Array(joining: take(&parts.serviceChains))
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
        let natChains = Array(joining: [
            [natServices, natNodePorts, fixed.postrouting, fixed.markMasquerade], dispatchChains, consume serviceChains,
        ])
        let jumps = fixed.builtinJumps
        return ProxyRules(
            filter: TableContents(table: .filter, chains: filterChains, builtinJumps: jumps.filter),
            nat: TableContents(table: .nat, chains: natChains, builtinJumps: jumps.nat),
            servicePortCount: portCount,
            endpointCount: endpointCount,
            largeClusterMode: largeClusterMode,
            omittedNatRules: omitted
        )
    }
}

/// The pieces of the tables, one per service port, before they are joined.
private struct TableParts {
    var filterServices: [[Rule]] = []
    var filterExternal: [[Rule]] = []
    var filterNodePorts: [[Rule]] = []
    var filterFirewall: [[Rule]] = []
    var natServices: [[Rule]] = []
    var natNodePorts: [[Rule]] = []
    var serviceChains: [[Chain]] = []

    init(capacity: Int) {
        for keyPath in [\Self.filterServices, \.filterExternal, \.filterNodePorts, \.filterFirewall, \.natServices, \.natNodePorts] {
            self[keyPath: keyPath].reserveCapacity(capacity)
        }
        serviceChains.reserveCapacity(capacity)
    }
}

/// The value, left empty in its place.
private func take<T>(_ array: inout [T]) -> [T] {
    var taken: [T] = []
    swap(&taken, &array)
    return taken
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
