import NatsyncConntrack
import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncReconcile

/// Which UDP services a committed change touched, and so which frontends to clean.
public enum TouchedServices {
    /// The frontends to clean after `plans` were committed.
    ///
    /// A desired UDP service port is touched when any of its chains was created, rewritten or
    /// deleted (endpoints changed, the service was added or changed, scaled to or from zero), or
    /// when a rule capturing one of its frontends changed. A UDP service that was deleted is found
    /// in the old rules of the changed fixed chains; its frontends are cleaned with no serving
    /// endpoint.
    ///
    /// With `everyPort` (full syncs), every desired UDP service port is cleaned, touched or not,
    /// as kube-proxy's conntrack reconciler does since 1.31: flows left pinned to a gone endpoint by
    /// an earlier run (`--no-conntrack`, a failed cleanup, a restart between commit and cleanup)
    /// are found although no chain changes now.
    public static func frontends(
        plans: [TablePlan], servicePorts: [ServicePortEndpoints], everyPort: Bool = false
    ) -> StaleFlowSelector {
        var changedChains = Set<ChainName>()
        var changedRules: [ChainName: (old: [Rule], new: [Rule])] = [:]
        for plan in plans {
            for chain in plan.created { changedChains.insert(chain.name) }
            for (chain, old) in plan.rewritten {
                changedChains.insert(chain.name)
                changedRules[chain.name, default: ([], [])].old += old.compactMap(\.rule)
                changedRules[chain.name, default: ([], [])].new += chain.rules
            }
            for (name, old) in plan.deleted {
                changedChains.insert(name)
                changedRules[name, default: ([], [])].old += old.compactMap(\.rule)
            }
        }
        // The frontends whose capturing rules were added or removed, found once for all ports.
        var changedFrontends = Set<CapturedFrontend>()
        for change in changedRules.values {
            for rule in Set(change.old).symmetricDifference(change.new) {
                if let frontend = frontend(of: rule) { changedFrontends.insert(frontend) }
            }
        }
        var selector = StaleFlowSelector()
        var covered = Set<ChainName>()
        for (port, endpoints) in servicePorts where port.name.protocol == .udp {
            let own = [
                ChainNames.clusterPolicy(port.name), ChainNames.localPolicy(port.name), ChainNames.external(port.name),
                ChainNames.firewall(port.name),
            ]
            covered.formUnion(own)
            let endpointChains = endpoints.map { ChainNames.endpoint(port.name, endpoint: $0.endpointString) }
            let captureChanged = !changedFrontends.isDisjoint(with: capturedFrontends(port))
            guard
                everyPort || own.contains(where: changedChains.contains) || endpointChains.contains(where: changedChains.contains)
                    || captureChanged
            else { continue }
            let serving = Set(endpoints.filter(\.serving).map(\.address))
            for address in [port.clusterIP] + port.externalIPs + port.loadBalancerVIPs {
                selector.add(address, port: port.port, serving: serving)
            }
            if let nodePort = port.nodePort { selector.addNodePort(nodePort, serving: serving) }
        }
        // Deleted services: UDP rules that captured traffic before and are gone now.
        for (chain, change) in changedRules where [ChainNames.services, ChainNames.nodePorts, ChainNames.externalServices].contains(chain) {
            let kept = Set(change.new)
            for rule in change.old where !kept.contains(rule) && rule.protocol?.protocol == .udp {
                if let target = rule.target.chain, covered.contains(target) { continue }
                guard let dport = destinationPort(of: rule) else { continue }
                if let address = rule.destination?.cidr, address.isHost, !(rule.destination?.inverted ?? false) {
                    selector.add(address.address, port: dport, serving: [])
                } else if rule.destination == nil {
                    selector.addNodePort(dport, serving: [])
                }
            }
        }
        return selector
    }

    private struct CapturedFrontend: Hashable {
        var address: IPAddress?
        var port: UInt16
    }

    private static func capturedFrontends(_ port: ServicePortInfo) -> [CapturedFrontend] {
        ([port.clusterIP] + port.externalIPs + port.loadBalancerVIPs).map { CapturedFrontend(address: $0, port: port.port) }
            + (port.nodePort.map { [CapturedFrontend(address: nil, port: $0)] } ?? [])
    }

    private static func frontend(of rule: Rule) -> CapturedFrontend? {
        guard rule.protocol?.protocol == .udp, let port = destinationPort(of: rule) else { return nil }
        return CapturedFrontend(address: rule.destination.flatMap { $0.cidr.isHost ? $0.cidr.address : nil }, port: port)
    }

    private static func destinationPort(of rule: Rule) -> UInt16? {
        for case .ports(.udp, let ports) in rule.matches {
            if let range = ports.destination, range.lower == range.upper, !ports.invertDestination { return range.lower }
        }
        return nil
    }
}
