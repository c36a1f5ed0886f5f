import Logging
import NatsyncRules
import ServiceLifecycle

/// Resolves the options again from the host every `interval` and hands them to the runner when
/// they changed: an address added to or removed from the node reaches the NodePort rules and the
/// health-check listeners without a restart. kube-proxy reads the node's addresses at every sync;
/// natsync looks once per sync period, the longest kube-proxy would go without a sync.
public struct NodeAddressWatcher: ServiceLifecycle.Service {
    let interval: Duration
    let resolve: @Sendable () throws -> [ProxyOptions]
    let runner: SyncRunner
    let logger: Logger

    public init(interval: Duration, runner: SyncRunner, logger: Logger, resolve: @escaping @Sendable () throws -> [ProxyOptions]) {
        self.interval = interval
        self.resolve = resolve
        self.runner = runner
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.loop() }
    }

    private func loop() async throws {
        var last = try? resolve()
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            guard let options = try? resolve(), options != last else { continue }
            let addresses = Set(options.flatMap(\.nodeAddresses)).sorted().map { "\($0)" }.joined(separator: ",")
            logger.notice("node addresses changed; resyncing", metadata: ["addresses": "\(addresses)"])
            last = options
            runner.reconfigure(options)
        }
    }
}
