import Foundation
import NatsyncConntrack
import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncNet
import NatsyncReconcile
import NatsyncRules
import Synchronization
import Testing

@testable import NatsyncDaemon

/// An in-memory kernel: applies plans to tables it keeps, records every call, and can fail.
final class FakeApplier: RuleApplier, @unchecked Sendable {
    struct Call {
        var scope: Set<ChainName>?
        var plans: [TablePlan]
    }

    let lock = NSLock()
    var live: [TableName: LiveTable] = [.filter: LiveTable(table: .filter, chains: []), .nat: LiveTable(table: .nat, chains: [])]
    var calls: [Call] = []
    var failNext = false
    var generation: UInt32 = 0

    func apply(_ tables: [TableContents], scope: Set<ChainName>?, servicePorts: [ServicePortEndpoints]) throws
        -> (SyncReport, ConntrackReport?)
    {
        lock.lock()
        defer { lock.unlock() }
        if failNext {
            failNext = false
            throw KernelError(errno: 11, operation: "iptc_commit", message: "injected")
        }
        var report = SyncReport()
        for contents in tables {
            let plan = Planner.plan(desired: contents, live: live[contents.table]!, scope: scope)
            report.plans.append(plan)
            guard !plan.isEmpty else { continue }
            var chains = Dictionary(uniqueKeysWithValues: live[contents.table]!.chains.map { ($0.name, $0) })
            for chain in plan.created { chains[chain.name] = .init(name: chain.name, rules: chain.rules.map(LiveRule.rule)) }
            for (chain, _) in plan.rewritten { chains[chain.name] = .init(name: chain.name, rules: chain.rules.map(LiveRule.rule)) }
            for (name, _) in plan.deleted { chains[name] = nil }
            live[contents.table] = LiveTable(table: contents.table, chains: chains.values.sorted { $0.name < $1.name })
            report.committed.append(contents.table)
            generation += 1
        }
        calls.append(Call(scope: scope, plans: report.plans))
        return (report, nil)
    }

    func fingerprints() throws -> [TableName: TableFingerprint] {
        lock.lock()
        defer { lock.unlock() }
        return [.nat: TableFingerprint(entries: generation, size: 0)]
    }

    /// Someone else writes: a chain of natsync's is flushed.
    func tamper(_ chain: ChainName) {
        lock.lock()
        defer { lock.unlock() }
        var table = live[.nat]!
        if let index = table.chains.firstIndex(where: { $0.name == chain }) { table.chains[index].rules = [] }
        live[.nat] = table
        generation += 1
    }
}

struct ProxierTests {
    let options = ProxyOptions(nodeName: "node-1", clusterCIDRs: [CIDR("10.0.0.0/16")!])

    func state(_ services: [String: [String]]) -> ClusterState {
        var all: [Service] = []
        var slices: [EndpointSlice] = []
        for (index, (name, endpoints)) in services.sorted(by: { $0.key < $1.key }).enumerated() {
            let serviceName = NamespacedName(namespace: "default", name: name)
            all.append(
                Service(
                    name: serviceName, clusterIPs: [IPAddress.v4(0x0A60_0000 + UInt32(index + 1))],
                    ports: [.init(name: "p", protocol: .tcp, port: 80)]))
            slices.append(
                EndpointSlice(
                    name: NamespacedName(namespace: "default", name: "\(name)-x"), service: serviceName, addressType: .ipv4,
                    ports: [.init(name: "p", protocol: .tcp, port: 8080)], endpoints: endpoints.map { .init(address: IPAddress($0)!) }))
        }
        return ClusterState(services: all, endpointSlices: slices)
    }

    /// kube-proxy's change counts: services and endpoints waiting for a sync, and every change.
    @Test func changesAreCountedAndNothingWaitsAfterASync() throws {
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: FakeApplier())
        proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1"]]))
        var counts = proxier.takeChangeCounts()
        #expect(counts.newServiceChanges == 2 && counts.newEndpointChanges == 2)
        #expect(counts.pendingServices == 2 && counts.pendingEndpoints == 2)
        _ = try proxier.sync()
        proxier.update(state(["a": ["10.0.1.1", "10.0.1.2"], "b": ["10.0.2.1"]]))
        counts = proxier.takeChangeCounts()
        #expect(
            counts
                == {
                    var expected = ChangeCounts()
                    expected.pendingEndpoints = 1
                    expected.newEndpointChanges = 1
                    return expected
                }())
        #expect(proxier.takeChangeCounts().newEndpointChanges == 0, "each change is reported once")
        _ = try proxier.sync()
        #expect(proxier.takeChangeCounts() == ChangeCounts())
    }

    /// A relist after `410 Gone` hands on the whole state again: what did not change is compared,
    /// not synced, and one changed object syncs only its service's chains.
    @Test func aRelistThatBringsNothingNewSyncsNothing() throws {
        let applier = FakeApplier()
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: applier)
        #expect(proxier.update(ClusterState()), "the first state, even an empty one, lets syncs start")
        #expect(proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1"]])))
        _ = try proxier.sync()
        _ = proxier.takeChangeCounts()
        #expect(!proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1"]])))
        #expect(!proxier.hasPendingWork)
        #expect(proxier.takeChangeCounts() == ChangeCounts())

        #expect(proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1", "10.0.2.2"]])))
        let outcome = try proxier.sync()
        #expect(!outcome.full)
        let scope = try #require(applier.calls.last?.scope)
        let b = ServicePortName(service: NamespacedName(namespace: "default", name: "b"), port: "p", protocol: .tcp)
        let a = ServicePortName(service: NamespacedName(namespace: "default", name: "a"), port: "p", protocol: .tcp)
        #expect(scope.contains(ChainNames.clusterPolicy(b)) && !scope.contains(ChainNames.clusterPolicy(a)))
    }

    @Test func nothingSyncsBeforeTheFirstState() {
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: FakeApplier())
        #expect(!proxier.hasPendingWork)
        proxier.update(ClusterState())
        #expect(proxier.hasPendingWork)
    }

    /// A watch's single-object changes (slices added, replaced, moved to another service, split in
    /// two, deleted; services deleted), synced partially now and then, leave the tables a fresh
    /// proxier writes for the resulting state; each new trigger time is reported once.
    @Test func singleObjectChangesConvergeLikeAFreshSync() throws {
        var generator = SystemRandomNumberGenerator()
        let byChange = FakeApplier()
        let incremental = Proxier(generator: RuleGenerator(options: options), applier: byChange)
        var services: [NamespacedName: Service] = [:]
        var slices: [NamespacedName: EndpointSlice] = [:]
        var node: Node?
        incremental.update(ClusterState())
        var triggers = 0
        for round in 0..<300 {
            let index = Int.random(in: 0..<12, using: &generator)
            let serviceName = NamespacedName(namespace: "default", name: "s\(index)")
            var change: ClusterChange
            switch Int.random(in: 0..<11, using: &generator) {
            case 10:
                // This node moves between zones: every service's endpoints follow its hints.
                change = .node(
                    options.nodeName, [nil, "a", "b"].randomElement(using: &generator)!.map { Node(name: options.nodeName, zone: $0) })
            case 0:
                change = .service(serviceName, nil)
            case 1, 2:
                change = .service(
                    serviceName,
                    Service(
                        name: serviceName, clusterIPs: [.v4(0x0A60_0000 + UInt32(index))],
                        ports: [.init(name: "p", protocol: .tcp, port: 80)]))
            case 3:
                change = .endpointSlice(
                    NamespacedName(namespace: "default", name: "slice\(Int.random(in: 0..<20, using: &generator))"), nil)
            default:
                // Twenty slice names over twelve services: a slice may move to another service.
                let name = NamespacedName(namespace: "default", name: "slice\(Int.random(in: 0..<20, using: &generator))")
                let trigger = Bool.random(using: &generator) ? Double(round) : nil
                if trigger != nil { triggers += 1 }
                change = .endpointSlice(
                    name,
                    EndpointSlice(
                        name: name, service: serviceName, addressType: .ipv4, ports: [.init(name: "p", protocol: .tcp, port: 8080)],
                        endpoints: (0..<Int.random(in: 0...3, using: &generator)).map {
                            .init(
                                address: .v4(0x0A00_0100 + UInt32(round * 4 + $0)),
                                zoneHints: [["a"], ["b"]].randomElement(using: &generator)!)
                        },
                        lastChangeTriggerTime: trigger))
            }
            switch change {
            case .service(let name, let service): services[name] = service
            case .endpointSlice(let name, let slice): slices[name] = slice
            case .node(_, let new): node = new
            }
            incremental.apply([change])
            if Int.random(in: 0..<4, using: &generator) == 0 || round == 299 {
                let reported = try incremental.sync().triggerTimes
                let fresh = FakeApplier()
                let reference = Proxier(generator: RuleGenerator(options: options), applier: fresh)
                reference.update(
                    ClusterState(services: Array(services.values), endpointSlices: Array(slices.values), nodes: node.map { [$0] } ?? []))
                _ = try reference.sync()
                #expect(byChange.live == fresh.live, "round \(round)")
                #expect(Set(reported).count == reported.count)
                triggers -= reported.count
            }
        }
        #expect(triggers == 0, "every trigger time reported once")
        #expect(!incremental.apply([]))
    }

    @Test func aChangeToOneServiceSyncsOnlyItsChainsAndTheFixedOnes() throws {
        let fake = FakeApplier()
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: fake)
        proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1", "10.0.2.2"], "c": ["10.0.3.1"]]))
        let first = try proxier.sync()
        #expect(first.full && fake.calls.last?.scope == nil)
        #expect(!proxier.hasPendingWork)

        proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1"], "c": ["10.0.3.1"]]))
        let second = try proxier.sync()
        #expect(!second.full)
        let scope = try #require(fake.calls.last?.scope)
        let b = ServicePortName(service: NamespacedName(namespace: "default", name: "b"), port: "p", protocol: .tcp)
        let a = ServicePortName(service: NamespacedName(namespace: "default", name: "a"), port: "p", protocol: .tcp)
        #expect(scope.contains(ChainNames.clusterPolicy(b)))
        #expect(
            scope.contains(ChainNames.endpoint(b, endpoint: "10.0.2.2:8080")), "the removed endpoint's chain is in scope, to be deleted")
        #expect(!scope.contains(ChainNames.clusterPolicy(a)), "unchanged services are not compared")
        #expect(scope.contains(ChainNames.services))
        let deleted = second.report.plans.flatMap { $0.deleted.map(\.name) }
        #expect(deleted == [ChainNames.endpoint(b, endpoint: "10.0.2.2:8080")])

        // The chains now equal what a full generation of the same state gives (the fake keeps
        // chains, not built-in jumps).
        let expected = RuleGenerator(options: options).rules(for: state(["a": ["10.0.1.1"], "b": ["10.0.2.1"], "c": ["10.0.3.1"]]))
        for table in expected.tables {
            let plan = Planner.plan(desired: table, live: fake.live[table.table]!)
            #expect(plan.created.isEmpty && plan.rewritten.isEmpty && plan.deleted.isEmpty)
        }
    }

    @Test func aDeletedServiceLosesItsChainsInAPartialSync() throws {
        let fake = FakeApplier()
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: fake)
        proxier.update(state(["a": ["10.0.1.1"], "b": ["10.0.2.1"]]))
        _ = try proxier.sync()
        proxier.update(state(["a": ["10.0.1.1"]]))
        let outcome = try proxier.sync()
        #expect(!outcome.full)
        let b = ServicePortName(service: NamespacedName(namespace: "default", name: "b"), port: "p", protocol: .tcp)
        #expect(
            Set(outcome.report.plans.flatMap { $0.deleted.map(\.name) }) == [
                ChainNames.clusterPolicy(b), ChainNames.endpoint(b, endpoint: "10.0.2.1:8080"),
            ])
    }

    @Test func aFailureMakesTheNextSyncFull() throws {
        let fake = FakeApplier()
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: fake)
        proxier.update(state(["a": ["10.0.1.1"]]))
        _ = try proxier.sync()
        proxier.update(state(["a": ["10.0.1.2"]]))
        fake.failNext = true
        #expect(throws: KernelError.self) { try proxier.sync() }
        #expect(proxier.hasPendingWork)
        let retry = try proxier.sync()
        #expect(retry.full)
    }

    @Test func driftIsNoticedAndRepairedByAFullSync() throws {
        let fake = FakeApplier()
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: fake)
        proxier.update(state(["a": ["10.0.1.1"]]))
        _ = try proxier.sync()
        #expect(!proxier.checkDrift())
        fake.tamper(ChainNames.services)
        #expect(proxier.checkDrift())
        let repair = try proxier.sync()
        #expect(repair.full && repair.report.chainsRewritten == 1)
        #expect(!proxier.checkDrift())
    }

    @Test func healthTurnsUnhealthyOnlyWhenAnUpdateWaitsTooLong() {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let health = HealthState(families: [.ipv4], timeout: .seconds(60)) { clock.withLock { $0 } }
        #expect(health.response(includeNodeEligibility: true).status == 200)
        health.queued(.ipv4)
        clock.withLock { $0 += 59 }
        #expect(health.response(includeNodeEligibility: true).status == 200)
        clock.withLock { $0 += 2 }
        let unhealthy = health.response(includeNodeEligibility: true)
        #expect(unhealthy.status == 503)
        #expect(
            unhealthy.body
                == #"{"lastUpdated":"0001-01-01T00:00:00Z","currentTime":"2027-01-15T08:01:01Z","nodeEligible":true,"healthy":false}"#)
        health.updated(.ipv4)
        clock.withLock { $0 += 0.25 }
        let healthy = health.response(includeNodeEligibility: false)
        #expect(healthy.status == 200)
        #expect(
            healthy.body
                == #"{"lastUpdated":"2027-01-15T08:01:01.25Z","currentTime":"2027-01-15T08:01:01.25Z","healthy":true,"status":{"IPv4":{"lastUpdated":"2027-01-15T08:01:01Z","healthy":true}}}"#
        )
    }

    /// As kube-proxy 1.33+: each family is judged on its own and `/healthz` fails when either is
    /// stale, naming which in `status`.
    @Test func dualStackHealthFailsWhenEitherFamilyIsStale() {
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let health = HealthState(families: [.ipv4, .ipv6], timeout: .seconds(60)) { clock.withLock { $0 } }
        health.updated(.ipv4)
        health.updated(.ipv6)
        health.queued(.ipv4)
        health.queued(.ipv6)
        clock.withLock { $0 += 30 }
        health.updated(.ipv4)
        clock.withLock { $0 += 31 }
        let response = health.response(includeNodeEligibility: true)
        #expect(response.status == 503)
        #expect(!health.proxyHealthy)
        #expect(
            response.body.contains(
                #""status":{"IPv4":{"lastUpdated":"2027-01-15T08:00:30Z","healthy":true},"IPv6":{"lastUpdated":"2027-01-15T08:00:00Z","healthy":false}}"#
            ))
        #expect(response.body.hasPrefix(#"{"lastUpdated":"2027-01-15T08:00:30Z""#), "the latest sync of any family")
        #expect(health.response(includeNodeEligibility: false).status == 503, "livez fails too")
        health.updated(.ipv6)
        #expect(health.response(includeNodeEligibility: true).status == 200)
        health.waitingForInput(true)
        let waiting = health.response(includeNodeEligibility: true)
        #expect(waiting.status == 503 && waiting.body.hasSuffix(#","waitingForInput":true}"#))
        #expect(health.response(includeNodeEligibility: false).status == 200)
    }
}

/// Partial syncs with the KUBE-SERVICES dispatch tree: only the changed services' leaves and the
/// tree chains on their way are compared, and the result equals a full generation.
struct DispatchTreeProxierTests {
    let options = ProxyOptions(nodeName: "node-1", clusterCIDRs: [CIDR("10.0.0.0/16")!], serviceDispatch: .tree)

    /// Services by name with their cluster IP and endpoints.
    func state(_ services: [String: (String, [String])]) -> ClusterState {
        var all: [Service] = []
        var slices: [EndpointSlice] = []
        for (name, (clusterIP, endpoints)) in services.sorted(by: { $0.key < $1.key }) {
            let serviceName = NamespacedName(namespace: "default", name: name)
            all.append(Service(name: serviceName, clusterIPs: [IPAddress(clusterIP)!], ports: [.init(name: "p", protocol: .tcp, port: 80)]))
            slices.append(
                EndpointSlice(
                    name: NamespacedName(namespace: "default", name: "\(name)-x"), service: serviceName, addressType: .ipv4,
                    ports: [.init(name: "p", protocol: .tcp, port: 8080)], endpoints: endpoints.map { .init(address: IPAddress($0)!) }))
        }
        return ClusterState(services: all, endpointSlices: slices)
    }

    func expectConverged(_ fake: FakeApplier, _ state: ClusterState, sourceLocation: SourceLocation = #_sourceLocation) {
        for table in RuleGenerator(options: options).rules(for: state).tables {
            let plan = Planner.plan(desired: table, live: fake.live[table.table]!)
            #expect(
                plan.created.isEmpty && plan.rewritten.isEmpty && plan.deleted.isEmpty,
                "\(plan.created.map(\.name)) \(plan.rewritten.map(\.0.name)) \(plan.deleted.map(\.name))", sourceLocation: sourceLocation)
        }
    }

    @Test func changesTouchOnlyTheirPathAndConverge() throws {
        let fake = FakeApplier()
        let proxier = Proxier(generator: RuleGenerator(options: options), applier: fake)
        var services = ["a": ("10.96.0.1", ["10.0.1.1"]), "b": ("10.96.1.1", ["10.0.2.1", "10.0.2.2"]), "c": ("10.97.0.1", ["10.0.3.1"])]
        proxier.update(state(services))
        _ = try proxier.sync()

        // An endpoint of b leaves: b's leaf and the chains above it are compared, a's leaf is not.
        services["b"] = ("10.96.1.1", ["10.0.2.1"])
        proxier.update(state(services))
        _ = try proxier.sync()
        let scope = try #require(fake.calls.last?.scope)
        #expect(scope.isSuperset(of: DispatchTree.path(to: IPAddress("10.96.1.1")!)))
        #expect(!scope.contains(DispatchTree.chainName(CIDR("10.96.0.0/24")!)))
        #expect(!scope.contains(DispatchTree.chainName(CIDR("10.97.0.0/16")!)))
        #expect(fake.calls.last?.plans.flatMap { $0.rewritten.map(\.0.name) }.contains { $0.rawValue.hasPrefix("NATSYNC-DSP-") } == false)
        expectConverged(fake, state(services))

        // c was alone in 10.97.0.0/16: its branch of the tree goes, the /8 chain loses a jump.
        services["c"] = nil
        proxier.update(state(services))
        let deletion = try proxier.sync()
        #expect(!deletion.full)
        let deleted = Set(deletion.report.plans.flatMap { $0.deleted.map(\.name) })
        #expect(deleted.isSuperset(of: [DispatchTree.chainName(CIDR("10.97.0.0/16")!), DispatchTree.chainName(CIDR("10.97.0.0/24")!)]))
        #expect(deletion.report.plans.flatMap { $0.rewritten.map(\.0.name) }.contains(DispatchTree.chainName(CIDR("10.0.0.0/8")!)))
        expectConverged(fake, state(services))

        // b moves to another /16 and a new service arrives in a's /24.
        services["b"] = ("10.98.5.5", ["10.0.2.1"])
        services["d"] = ("10.96.0.77", ["10.0.4.1"])
        proxier.update(state(services))
        #expect(try !proxier.sync().full)
        expectConverged(fake, state(services))
    }
}

/// A dual-stack node: one proxier per family under a MetaProxier.
struct MetaProxierTests {
    func dualState(endpoints: Int) -> ClusterState {
        let name = NamespacedName(namespace: "default", name: "web")
        let service = Service(
            name: name, clusterIPs: [IPAddress("10.96.0.1")!, IPAddress("fd00:96::1")!], ports: [.init(name: "p", protocol: .tcp, port: 80)]
        )
        let slices = [(EndpointSlice.AddressType.ipv4, "10.0.1."), (.ipv6, "fd00:10::")].map { type, prefix in
            EndpointSlice(
                name: NamespacedName(namespace: "default", name: "web-\(type)"), service: name, addressType: type,
                ports: [.init(name: "p", protocol: .tcp, port: 8080)],
                endpoints: (1...endpoints).map { .init(address: IPAddress("\(prefix)\($0)")!) })
        }
        return ClusterState(services: [service], endpointSlices: slices)
    }

    @Test func eachFamilyGetsItsOwnRulesAndAFailureHoldsOnlyItsFamilyBack() throws {
        let (four, six) = (FakeApplier(), FakeApplier())
        let proxiers = [(IPFamily.ipv4, four, "10.0.0.0/16"), (.ipv6, six, "fd00:10::/48")].map { family, applier, cidr in
            Proxier(
                generator: RuleGenerator(options: ProxyOptions(family: family, nodeName: "node-1", clusterCIDRs: [CIDR(cidr)!])),
                applier: applier)
        }
        let meta = MetaProxier(proxiers)
        #expect(meta.update(dualState(endpoints: 2)))
        #expect(meta.pendingFamilies == [.ipv4, .ipv6])
        let first = meta.syncFamilies()
        #expect(first.map(\.family) == [.ipv4, .ipv6])
        for part in first {
            let outcome = try part.result.get()
            #expect(outcome.full && outcome.services == 1 && outcome.endpoints == 2)
            #expect(outcome.report.committed == [.filter, .nat])
        }
        let v6Rules = six.live[.nat]!.chains.flatMap { $0.rules ?? [] }.compactMap(\.rule)
        #expect(v6Rules.contains { $0.destination?.cidr == CIDR("fd00:96::1/128") })
        #expect(!four.live[.nat]!.chains.flatMap { $0.rules ?? [] }.compactMap(\.rule).contains { $0.destination?.cidr.family == .ipv6 })

        // IPv6 fails once: IPv4 still lands, and IPv6's next sync is full.
        six.failNext = true
        meta.update(dualState(endpoints: 1))
        let failing = meta.syncFamilies()
        #expect(failing.count == 2)
        #expect((try? failing[0].result.get()) != nil, "IPv4 lands")
        #expect(throws: KernelError.self) { try failing[1].result.get() }
        #expect(meta.pendingFamilies == [.ipv6])
        let retry = meta.syncFamilies()
        #expect(retry.map(\.family) == [.ipv6], "only the failed family syncs again")
        let outcome = try retry[0].result.get()
        #expect(outcome.full, "the failed family resyncs fully")
        #expect(outcome.report.committed.contains(.nat))
        #expect(meta.pendingFamilies.isEmpty)
    }
}
