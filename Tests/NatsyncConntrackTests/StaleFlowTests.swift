import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncReconcile
import NatsyncRules
import Testing

@testable import NatsyncConntrack

struct StaleFlowTests {
    func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    func flow(to destination: String, _ port: UInt16, replyFrom reply: String) -> ConntrackFlow {
        ConntrackFlow(
            originalSource: ip("10.0.3.2"), originalDestination: ip(destination), originalSourcePort: 40000,
            originalDestinationPort: port, replySource: ip(reply))
    }

    @Test func aFlowIsStaleWhenItsFrontendIsKnownAndItsReplyComesFromElsewhere() {
        var selector = StaleFlowSelector()
        selector.add(ip("10.96.0.10"), port: 53, serving: [ip("10.0.1.2")])
        selector.addNodePort(30053, serving: [ip("10.0.1.2")])
        #expect(!selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.1.2")))
        #expect(selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.2.2")))
        // Un-DNATed (the service had no endpoints): the reply comes from the VIP itself.
        #expect(selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.96.0.10")))
        #expect(!selector.isStale(flow(to: "10.96.0.11", 53, replyFrom: "10.0.2.2")))
        #expect(!selector.isStale(flow(to: "10.96.0.10", 54, replyFrom: "10.0.2.2")))
        #expect(selector.isStale(flow(to: "192.168.0.2", 30053, replyFrom: "10.0.2.2")))
        #expect(!selector.isStale(flow(to: "192.168.0.2", 30053, replyFrom: "10.0.1.2")))
    }

    // Plans from real rule generation: before and after, diffed by the planner.
    let options = ProxyOptions(nodeName: "node-1", clusterCIDRs: [CIDR("10.0.0.0/16")!])

    func state(_ services: [(String, TransportProtocol, [String])]) -> ClusterState {
        var all: [Service] = []
        var slices: [EndpointSlice] = []
        for (index, (name, proto, endpoints)) in services.enumerated() {
            let serviceName = NamespacedName(namespace: "default", name: name)
            all.append(
                Service(
                    name: serviceName, kind: .nodePort, clusterIPs: [ip("10.96.0.\(index + 10)")],
                    ports: [.init(name: "p", protocol: proto, port: 53, nodePort: UInt16(30050 + index))]))
            slices.append(
                EndpointSlice(
                    name: NamespacedName(namespace: "default", name: "\(name)-x"), service: serviceName, addressType: .ipv4,
                    ports: [.init(name: "p", protocol: proto, port: 8080)], endpoints: endpoints.map { .init(address: ip($0)) }))
        }
        return ClusterState(services: all, endpointSlices: slices)
    }

    /// The frontends a change from `before` to `after` touches (every UDP one with `everyPort`).
    func touched(_ before: ClusterState, _ after: ClusterState, everyPort: Bool = false) -> StaleFlowSelector {
        let generator = RuleGenerator(options: options)
        let old = generator.rules(for: before)
        let new = generator.rules(for: after)
        let plans = new.tables.map { table in
            let previous = table.table == .filter ? old.filter : old.nat
            let live = LiveTable(
                table: table.table, chains: previous.chains.map { .init(name: $0.name, rules: $0.rules.map(LiveRule.rule)) })
            return Planner.plan(desired: table, live: live)
        }
        return TouchedServices.frontends(plans: plans, servicePorts: generator.servicePorts(of: after), everyPort: everyPort)
    }

    @Test func removingAnEndpointTouchesOnlyThatUDPService() {
        let before = state([("dns", .udp, ["10.0.1.2", "10.0.2.2"]), ("other", .udp, ["10.0.2.2"]), ("web", .tcp, ["10.0.2.2"])])
        let after = state([("dns", .udp, ["10.0.1.2"]), ("other", .udp, ["10.0.2.2"]), ("web", .tcp, [])])
        let selector = touched(before, after)
        #expect(selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.2.2")))
        #expect(selector.isStale(flow(to: "192.168.0.2", 30050, replyFrom: "10.0.2.2")))
        #expect(!selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.1.2")))
        #expect(!selector.isStale(flow(to: "10.96.0.11", 53, replyFrom: "10.96.0.11")), "an unchanged service is not touched")
        #expect(selector.count == 2)
    }

    @Test func zeroToNAndNToZeroAndDeletionAreTouched() {
        let empty = state([("dns", .udp, [])])
        let one = state([("dns", .udp, ["10.0.1.2"])])
        let upward = touched(empty, one)
        #expect(upward.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.96.0.10")))
        let downward = touched(one, empty)
        #expect(downward.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.1.2")))
        let deleted = touched(one, ClusterState())
        #expect(deleted.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.1.2")))
        #expect(deleted.isStale(flow(to: "192.168.0.2", 30050, replyFrom: "10.0.1.2")))
        let deletedEmpty = touched(empty, ClusterState())
        #expect(deletedEmpty.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.96.0.10")))
    }

    @Test func nothingChangedTouchesNothing() {
        let same = state([("dns", .udp, ["10.0.1.2"])])
        #expect(touched(same, same).isEmpty)
    }

    /// A full sync reconciles: every UDP service's frontends, changed or not, and no TCP one.
    @Test func everyPortSelectsEveryUDPServiceChangedOrNot() {
        let same = state([("dns", .udp, ["10.0.1.2"]), ("other", .udp, []), ("web", .tcp, ["10.0.2.2"])])
        let selector = touched(same, same, everyPort: true)
        #expect(selector.count == 4, "cluster IP and node port of each UDP service")
        #expect(selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.9.9")))
        #expect(!selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.1.2")))
        #expect(selector.isStale(flow(to: "192.168.0.2", 30050, replyFrom: "10.0.9.9")))
        #expect(selector.isStale(flow(to: "10.96.0.11", 53, replyFrom: "10.96.0.11")), "a service without endpoints")
        #expect(!selector.isStale(flow(to: "10.96.0.12", 53, replyFrom: "10.0.9.9")), "TCP services are not cleaned")
    }

    @Test func servingTerminatingEndpointsKeepTheirFlows() {
        let service = Service(
            name: NamespacedName(namespace: "default", name: "dns"), clusterIPs: [ip("10.96.0.10")],
            ports: [.init(name: "p", protocol: .udp, port: 53)])
        let slice = EndpointSlice(
            name: NamespacedName(namespace: "default", name: "dns-x"), service: service.name, addressType: .ipv4,
            ports: [.init(name: "p", protocol: .udp, port: 8080)],
            endpoints: [
                .init(address: ip("10.0.1.2")),
                .init(address: ip("10.0.2.2"), conditions: .init(ready: false, serving: true, terminating: true)),
                .init(address: ip("10.0.4.2"), conditions: .init(ready: false, serving: false, terminating: true)),
            ])
        let selector = touched(ClusterState(services: [service]), ClusterState(services: [service], endpointSlices: [slice]))
        #expect(!selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.2.2")))
        #expect(selector.isStale(flow(to: "10.96.0.10", 53, replyFrom: "10.0.4.2")))
    }
}
