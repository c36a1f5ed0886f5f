import Logging
import NatsyncModel
import NatsyncNet
import NatsyncRules
import ServiceLifecycle
import Synchronization

/// kube-proxy's bounded-frequency runner around a ``ProxyProvider``: a sync runs when a change
/// comes in, but no sooner than `Configuration.minInterval` after the previous one ended; after a
/// failure it retries after `Configuration.syncPeriod`; every sync period it checks the tables for
/// drift; changes that come in together are taken together.
public final class SyncRunner: ServiceLifecycle.Service, Sendable {
    public struct Configuration: Sendable {
        /// `--iptables-min-sync-period`.
        public var minInterval: Duration = .seconds(1)
        /// `--iptables-sync-period`: retry after a failure, and the drift check period.
        public var syncPeriod: Duration = .seconds(30)
        /// How often the runner looks at its triggers and timers.
        public var tick: Duration = .milliseconds(20)

        public init() {}
    }

    private let configuration: Configuration
    private let proxier: Mutex<(any ProxyProvider)?>
    /// What the sources handed over since the runner last looked, in order.
    private let inbox = Mutex<[Input]>([])
    private enum Input {
        case state(ClusterState)
        case change(ClusterChange)
        case options([ProxyOptions])
    }
    private let logger: Logger
    private let observer: SyncObserver

    public init(proxier: any ProxyProvider, configuration: Configuration, observer: SyncObserver, logger: Logger) {
        self.proxier = Mutex(proxier)
        self.configuration = configuration
        self.observer = observer
        self.logger = logger
    }

    /// Hands the proxier a new cluster state (it supersedes whatever is still waiting).
    public func update(_ state: ClusterState) {
        inbox.withLock { $0 = [.state(state)] }
    }

    /// Hands the proxier one object's change. Costs the object's size, whatever the cluster's, and
    /// never waits for a sync in progress: the runner takes waiting changes between syncs.
    public func apply(_ change: ClusterChange) {
        inbox.withLock { $0.append(.change(change)) }
    }

    /// Hands the proxier options resolved again from the host (its addresses changed).
    public func reconfigure(_ options: [ProxyOptions]) {
        inbox.withLock { $0.append(.options(options)) }
    }

    /// Gives the proxier what came in since the last look; true if anything changed.
    private func takeInbox() -> Bool {
        let inputs = inbox.withLock { inputs in
            defer { inputs = [] }
            return inputs
        }
        guard !inputs.isEmpty else { return false }
        return proxier.withLock { proxier in
            var changed = false
            var changes: [ClusterChange] = []
            for input in inputs {
                switch input {
                case .state(let state):
                    guard proxier!.update(state) else {
                        // A relist or a re-read file that brought nothing new: compared, nothing to sync.
                        logger.info("cluster state unchanged", metadata: ["services": "\(state.services.count)"])
                        continue
                    }
                    changed = true
                case .change(let change): changes.append(change)
                case .options(let options): changed = proxier!.reconfigure(options) || changed
                }
            }
            return proxier!.apply(changes) || changed
        }
    }

    public func run() async throws {
        // Graceful shutdown cancels the sleeps; a sync in progress finishes first (it is synchronous).
        try? await cancelWhenGracefulShutdown { try await self.loop() }
    }

    private func loop() async throws {
        let clock = ContinuousClock()
        var lastEnd = clock.now - configuration.minInterval
        var retryAt: ContinuousClock.Instant?
        var lastDriftCheck = clock.now
        var pending = false
        do {
            while !Task.isCancelled {
                if self.takeInbox() {
                    let (counts, families) = self.proxier.withLock { ($0!.takeChangeCounts(), $0!.pendingFamilies) }
                    self.observer.queued(counts, families: families)
                    pending = true
                }
                let now = clock.now
                var run = false
                if now >= lastEnd + self.configuration.minInterval {
                    if pending {
                        run = self.proxier.withLock { !$0!.pendingFamilies.isEmpty }
                    } else if let retry = retryAt, now >= retry {
                        run = true
                    } else if self.proxier.withLock({ !$0!.pendingFamilies.isEmpty }) && retryAt == nil {
                        run = true
                    }
                }
                if !run && now >= lastDriftCheck + self.configuration.syncPeriod {
                    lastDriftCheck = now
                    if self.proxier.withLock({ $0!.checkDrift() }) {
                        self.observer.driftDetected()
                        self.logger.warning("tables changed behind natsync's back; running a full sync")
                        run = true
                    }
                }
                guard run else {
                    try await Task.sleep(for: self.configuration.tick)
                    continue
                }
                pending = false
                let synced = self.proxier.withLock { $0!.syncFamilies() }
                retryAt = nil
                for part in synced {
                    switch part.result {
                    case .success(let outcome):
                        self.observer.synced(outcome, family: part.family, elapsed: part.elapsed)
                    case .failure(let error):
                        retryAt = clock.now + self.configuration.syncPeriod
                        self.observer.failed(error, family: part.family, elapsed: part.elapsed)
                    }
                }
                lastEnd = clock.now
            }
        }
    }
}

/// What the runner reports to health, metrics and logs.
public protocol SyncObserver: Sendable {
    /// A change is waiting for a sync of `families`; `changes` counts what came in.
    func queued(_ changes: ChangeCounts, families: [IPFamily])
    func synced(_ outcome: SyncOutcome, family: IPFamily, elapsed: Duration)
    func failed(_ error: any Error, family: IPFamily, elapsed: Duration)
    func driftDetected()
}
