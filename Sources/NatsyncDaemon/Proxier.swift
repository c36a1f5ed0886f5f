import NatsyncConntrack
import NatsyncIPTables
import NatsyncKernel
import NatsyncModel
import NatsyncNet
import NatsyncReconcile
import NatsyncRules

/// The kernel side of a proxier, behind a protocol so the sync logic is tested without root.
public protocol RuleApplier: Sendable {
    /// Reconciles the tables (`scope` limits a partial sync to those chains) and cleans stale UDP
    /// flows: of what the commit touched after a partial sync, of every UDP service after a full one.
    func apply(_ tables: [TableContents], scope: Set<ChainName>?, servicePorts: [ServicePortEndpoints]) throws
        -> (SyncReport, ConntrackReport?)
    /// The fingerprint of the tables natsync writes, for drift checks.
    func fingerprints() throws -> [TableName: TableFingerprint]
}

/// The tables of a network namespace through a backend (libiptc or iptables-restore), with
/// conntrack cleanup: the one sync-then-clean path of both the daemon and `natsync sync`.
public struct TablesApplier: RuleApplier {
    public var tables: any TableBackend
    /// The family of the tables, and of the conntrack flows cleaned after them.
    public var family: IPFamily
    public var netns: String?
    public var conntrack: Bool

    public init(tables: any TableBackend, family: IPFamily, netns: String?, conntrack: Bool) {
        self.tables = tables
        self.family = family
        self.netns = netns
        self.conntrack = conntrack
    }

    public func apply(
        _ contents: [TableContents], scope: Set<ChainName>?, servicePorts: [ServicePortEndpoints]
    ) throws -> (SyncReport, ConntrackReport?) {
        try NetworkNamespace.run(in: netns) {
            let report = try tables.sync(contents, scope: scope)
            let full = scope == nil
            guard conntrack, full || !report.committed.isEmpty else { return (report, nil) }
            let selector = TouchedServices.frontends(plans: report.plans, servicePorts: servicePorts, everyPort: full)
            guard !selector.isEmpty else { return (report, nil) }
            // A cleanup failure must not fail the sync: it is reported, and the next full sync
            // finds the flows again.
            let cleaned: ConntrackReport
            do {
                cleaned = try Conntrack.deleteStaleFlows(selector, family: family)
            } catch {
                var failed = ConntrackReport()
                failed.failed = 1
                failed.error = "\(error)"
                cleaned = failed
            }
            return (report, cleaned)
        }
    }

    public func fingerprints() throws -> [TableName: TableFingerprint] {
        try NetworkNamespace.run(in: netns) { try tables.fingerprints([.filter, .nat]) }
    }
}

/// What one sync did.
public struct SyncOutcome: Sendable {
    public var full: Bool
    public var report: SyncReport
    public var conntrack: ConntrackReport?
    public var services: Int
    public var endpoints: Int
    /// Rules in the desired tables, per table.
    public var rules: [TableName: Int]
    /// Trigger times (seconds since 1970) of the EndpointSlice changes this sync made live.
    public var triggerTimes: [Double] = []
    /// The services with a health-check node port, and their ready endpoints on this node.
    public var healthChecks: [HealthCheck] = []
    /// Service ports with endpoints but none on this node for their `Local` internal and external
    /// traffic policies.
    public var noLocalEndpoints: (internal: Int, external: Int) = (0, 0)
    /// Where health-check node ports listen for this family: its node-port addresses, or nil for
    /// every address.
    public var healthCheckAddresses: [IPAddress]?
}

/// Changes taken since the last report: kube-proxy's `service_changes` and `endpoint_changes`
/// (`_pending`: services waiting for a sync; `_total`: every change taken).
public struct ChangeCounts: Sendable, Equatable {
    public var pendingServices = 0
    public var pendingEndpoints = 0
    public var newServiceChanges = 0
    public var newEndpointChanges = 0

    public init() {}
}

/// A service's health-check node port and how many ready endpoints it has on this node.
public struct HealthCheck: Hashable, Sendable {
    public var service: NamespacedName
    public var port: UInt16
    public var localEndpoints: Int
}

/// kube-proxy's proxier without its I/O: it keeps the cluster state, knows which services changed
/// since the last sync, regenerates only their rules, and syncs either fully or only their chains.
///
/// - Important: not thread-safe by itself; the sync runner owns it and serializes every access
///   behind its mutex, which is why it can be handed to the runner's tasks.
public final class Proxier: @unchecked Sendable {
    /// Its options change only with this node (its zone or pod CIDRs), which forces a full sync.
    public private(set) var generator: RuleGenerator
    let applier: any RuleApplier
    /// How long a partial sync may go on before a full one (kube-proxy's `FullSyncPeriod`).
    public var fullSyncPeriod: Duration = .seconds(3600)

    private var servicesByName: [NamespacedName: Service] = [:]
    /// The keys of `servicesByName` in order, the order the tables list services in: kept as
    /// services come and go (sorting ten thousand names on every partial sync cost more than
    /// the change).
    private var orderedServices: [NamespacedName] = []
    private var slicesByName: [NamespacedName: EndpointSlice] = [:]
    /// Each service's slices in name order, kept as changes come.
    private var slicesByService: [NamespacedName: [EndpointSlice]] = [:]
    private var ports: [NamespacedName: [ServicePortEndpoints]] = [:]
    private var portRules: [NamespacedName: [ServicePortRules]] = [:]
    private var largeClusterMode = false
    private var changed: Set<NamespacedName> = []
    /// The services whose Service, and whose endpoints, changed since the last sync.
    private var pendingServices: Set<NamespacedName> = []
    private var pendingEndpoints: Set<NamespacedName> = []
    private var unreported = ChangeCounts()
    private var pendingTriggers: [Double] = []
    private var needsFullSync = true
    private var lastFullSync: ContinuousClock.Instant?
    private var fingerprints: [TableName: TableFingerprint] = [:]
    /// No sync before the first complete state: syncing an empty state would wipe the rules of a
    /// node natsync takes over (kube-proxy waits for its informers the same way).
    private var initialized = false

    public init(generator: RuleGenerator, applier: any RuleApplier) {
        self.generator = generator
        self.applier = applier
    }

    /// Takes a new cluster state and notes which services changed (Service or EndpointSlices).
    /// Returns whether anything changed; the first state always does (syncs may start).
    @discardableResult
    public func update(_ newState: ClusterState) -> Bool {
        let services = Dictionary(newState.services.map { ($0.name, $0) }) { $1 }
        let slices = Dictionary(newState.endpointSlices.map { ($0.name, $0) }) { $1 }
        var changes: [ClusterChange] = []
        for name in Set(servicesByName.keys).union(services.keys) where servicesByName[name] != services[name] {
            changes.append(.service(name, services[name]))
        }
        for name in Set(slicesByName.keys).union(slices.keys) where slicesByName[name] != slices[name] {
            changes.append(.endpointSlice(name, slices[name]))
        }
        changes.append(.node(nodeName, newState.node(named: nodeName)))
        let first = !initialized
        initialized = true
        return apply(changes) || first
    }

    /// Takes changes of single objects (a watch's events) and notes which services they touch, at
    /// a cost of the objects changed. Returns whether anything changed.
    @discardableResult
    public func apply(_ changes: [ClusterChange]) -> Bool {
        var touched = false
        for change in changes {
            switch change {
            case .service(let name, let service):
                let previous = servicesByName[name]
                guard previous != service else { continue }
                servicesByName[name] = service
                let position = orderedServices.partitioningIndex { $0 >= name }
                if service == nil {
                    orderedServices.remove(at: position)
                } else if previous == nil {
                    orderedServices.insert(name, at: position)
                }
                changed.insert(name)
                pendingServices.insert(name)
                unreported.newServiceChanges += 1
            case .endpointSlice(let name, let slice):
                let old = slicesByName[name]
                guard old != slice else { continue }
                slicesByName[name] = slice
                unreported.newEndpointChanges += 1
                for service in [old?.service, slice?.service].compactMap({ $0 }) { pendingEndpoints.insert(service) }
                if let old {
                    slicesByService[old.service]?.removeAll { $0.name == name }
                    if slicesByService[old.service]?.isEmpty == true { slicesByService[old.service] = nil }
                    changed.insert(old.service)
                }
                if let slice {
                    slicesByService[slice.service, default: []].append(slice)
                    slicesByService[slice.service]?.sort { $0.name < $1.name }
                    changed.insert(slice.service)
                    if let trigger = slice.lastChangeTriggerTime, trigger != old?.lastChangeTriggerTime {
                        pendingTriggers.append(trigger)
                    }
                }
            case .node(let name, let node):
                // Only this node matters: its zone (topology hints) and pod CIDRs (NodeCIDR
                // detection) shape every service's rules.
                guard name == nodeName,
                    node?.zone != generator.options.nodeZone || (node?.podCIDRs ?? []) != generator.options.nodePodCIDRs
                else { continue }
                generator.options.nodeZone = node?.zone
                generator.options.nodePodCIDRs = node?.podCIDRs ?? []
                needsFullSync = true
            }
            touched = true
        }
        return touched
    }

    /// The changes taken since the last call, and what waits for a sync.
    public func takeChangeCounts() -> ChangeCounts {
        var counts = unreported
        counts.pendingServices = pendingServices.count
        counts.pendingEndpoints = pendingEndpoints.count
        unreported = ChangeCounts()
        return counts
    }

    /// The next sync must compare everything (after drift or a failure).
    public func requestFullSync() { needsFullSync = true }

    /// Takes options resolved again from the host (its addresses changed): the node's addresses,
    /// its primary IP and the node-port addresses `primary` stands for. What comes from the Node
    /// object (zone, pod CIDRs) stays. Returns whether the rules change; the next sync is then full.
    @discardableResult
    public func reconfigure(_ candidates: [ProxyOptions]) -> Bool {
        guard let resolved = candidates.first(where: { $0.family == generator.options.family }) else { return false }
        var options = generator.options
        options.nodeAddresses = resolved.nodeAddresses
        options.nodeIP = resolved.nodeIP
        options.nodePortAddresses = resolved.nodePortAddresses
        guard options != generator.options else { return false }
        generator.options = options
        needsFullSync = true
        return true
    }

    /// Whether a sync has work: pending changes or a full sync due.
    public var hasPendingWork: Bool { initialized && (!changed.isEmpty || needsFullSync || fullSyncDue) }

    private var fullSyncDue: Bool {
        lastFullSync.map { ContinuousClock.now - $0 > fullSyncPeriod } ?? true
    }

    /// Brings the kernel in line with the state. On failure the next sync is full.
    public func sync() throws -> SyncOutcome {
        let full = needsFullSync || fullSyncDue
        let refresh = full ? Set(servicesByName.keys).union(ports.keys) : changed
        var previousChains = Set<ChainName>()
        for name in refresh {
            previousChains.formUnion(ownChains(name))
            if let service = servicesByName[name] {
                ports[name] = generator.servicePorts(of: service, slices: slicesByService[name] ?? [])
            } else {
                ports[name] = nil
                portRules[name] = nil
            }
        }
        let endpointCount = ports.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.1.count } }
        let large = endpointCount > ProxyRules.largeClusterEndpointThreshold
        let regenerate = large != largeClusterMode ? Set(ports.keys) : refresh
        largeClusterMode = large
        let generating = regenerate.filter { ports[$0] != nil }
        let generated = generator.rules(forEach: generating.map { ports[$0]! }, largeClusterMode: large)
        for (name, rules) in zip(generating, generated) { portRules[name] = rules }
        let ordered = orderedServices
        var scope: Set<ChainName>?
        if !full {
            var chains = previousChains
            for name in regenerate { chains.formUnion(ownChains(name)) }
            scope = chains
        }
        let rules = generator.assemble(
            ordered.flatMap { portRules[$0] ?? [] }, endpointCount: endpointCount, largeClusterMode: large,
            keeping: scope.map { ChainSelection(services: regenerate, dispatchChains: $0) })
        if var chains = scope {
            // The shared chains are always compared whole.
            for table in rules.tables {
                for chain in table.chains where !Ownership.isServiceChain(chain.name) { chains.insert(chain.name) }
            }
            scope = chains
        }
        let allPorts = ordered.flatMap { ports[$0] ?? [] }
        do {
            let (report, conntrack) = try applier.apply(rules.tables, scope: scope, servicePorts: allPorts)
            changed = []
            pendingServices = []
            pendingEndpoints = []
            needsFullSync = false
            if full { lastFullSync = .now }
            fingerprints = (try? applier.fingerprints()) ?? [:]
            var healthChecks: [NamespacedName: HealthCheck] = [:]
            for (port, endpoints) in allPorts {
                guard let healthCheck = port.healthCheckNodePort else { continue }
                let local = Set(endpoints.filter { $0.isLocal && $0.ready }.map(\.address)).count
                healthChecks[port.name.service] = HealthCheck(service: port.name.service, port: healthCheck, localEndpoints: local)
            }
            defer { pendingTriggers = [] }
            var noLocal = (internal: 0, external: 0)
            for rules in portRules.values.joined() {
                if rules.noLocalInternalEndpoints { noLocal.internal += 1 }
                if rules.noLocalExternalEndpoints { noLocal.external += 1 }
            }
            return SyncOutcome(
                full: full, report: report, conntrack: conntrack, services: servicesByName.count, endpoints: endpointCount,
                rules: [.filter: rules.filter.ruleCount, .nat: rules.nat.ruleCount + rules.omittedNatRules], triggerTimes: pendingTriggers,
                healthChecks: healthChecks.values.sorted { $0.service < $1.service }, noLocalEndpoints: noLocal,
                healthCheckAddresses: generator.options.nodePortIPs)
        } catch {
            needsFullSync = true
            throw error
        }
    }

    /// The chains a service's rules live in: its own nat chains and, with the dispatch tree, the
    /// tree chains on the way to each of its addresses.
    private func ownChains(_ name: NamespacedName) -> Set<ChainName> {
        var chains = Set<ChainName>()
        for rules in portRules[name] ?? [] {
            chains.formUnion(rules.natChains.map(\.name))
            guard generator.options.serviceDispatch == .tree else { continue }
            for rule in rules.natServices {
                if let destination = rule.destination { chains.formUnion(DispatchTree.path(to: destination.cidr.address)) }
            }
        }
        return chains
    }

    /// True when the tables changed since natsync last wrote them (someone else wrote); the next
    /// sync is then full.
    public func checkDrift() -> Bool {
        guard initialized, !fingerprints.isEmpty, let now = try? applier.fingerprints() else { return false }
        guard now != fingerprints else { return false }
        fingerprints = now
        needsFullSync = true
        return true
    }
}

extension Array {
    /// The first index whose element satisfies `belongs`, for a predicate that is false then
    /// true along the array (binary search).
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
