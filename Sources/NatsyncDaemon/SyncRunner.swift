import Logging
import ServiceLifecycle
import Synchronization

/// kube-proxy's bounded-frequency runner around a ``ProxyProvider``: a sync runs when triggered, but no
/// sooner than `minInterval` after the previous one ended; after a failure it retries after
/// `retryInterval`; every `checkInterval` it checks the tables for drift; triggers coalesce.
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
                case .state(let state): changed = proxier!.update(state) || changed
                case .change(let change): changes.append(change)
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
                    self.observer.queued(self.proxier.withLock { $0!.takeChangeCounts() })
                    pending = true
                }
                let now = clock.now
                var run = false
                if now >= lastEnd + self.configuration.minInterval {
                    if pending {
                        run = self.proxier.withLock { $0!.hasPendingWork }
                    } else if let retry = retryAt, now >= retry {
                        run = true
                    } else if self.proxier.withLock({ $0!.hasPendingWork }) && retryAt == nil {
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
                let start = clock.now
                do {
                    let outcome = try self.proxier.withLock { try $0!.sync() }
                    retryAt = nil
                    self.observer.synced(outcome, elapsed: clock.now - start)
                } catch {
                    retryAt = clock.now + self.configuration.syncPeriod
                    self.observer.failed(error, elapsed: clock.now - start)
                }
                lastEnd = clock.now
            }
        }
    }
}

/// What the runner reports to health, metrics and logs.
public protocol SyncObserver: Sendable {
    /// A change is waiting for a sync; `changes` counts what came in.
    func queued(_ changes: ChangeCounts)
    func synced(_ outcome: SyncOutcome, elapsed: Duration)
    func failed(_ error: any Error, elapsed: Duration)
    func driftDetected()
}

import NatsyncModel
