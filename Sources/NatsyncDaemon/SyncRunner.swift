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
    private let pending = Atomic<Bool>(false)
    private let logger: Logger
    private let observer: SyncObserver

    public init(proxier: any ProxyProvider, configuration: Configuration, observer: SyncObserver, logger: Logger) {
        self.proxier = Mutex(proxier)
        self.configuration = configuration
        self.observer = observer
        self.logger = logger
    }

    /// Asks for a sync; several calls before it runs make one sync.
    public func trigger() {
        pending.store(true, ordering: .releasing)
    }

    /// Hands the proxier a new cluster state and triggers a sync if anything changed.
    public func update(_ state: ClusterState) {
        let changed = proxier.withLock { $0!.update(state) }
        if changed {
            observer.queued()
            trigger()
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
        do {
            while !Task.isCancelled {
                let now = clock.now
                var run = false
                if now >= lastEnd + self.configuration.minInterval {
                    if self.pending.load(ordering: .acquiring) {
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
                self.pending.store(false, ordering: .releasing)
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
    /// A change is waiting for a sync.
    func queued()
    func synced(_ outcome: SyncOutcome, elapsed: Duration)
    func failed(_ error: any Error, elapsed: Duration)
    func driftDetected()
}

import NatsyncModel
