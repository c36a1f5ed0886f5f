import ArgumentParser
import Logging
import NatsyncDaemon
import NatsyncKubernetes
import NatsyncManifest
import NatsyncRules

extension Natsync {
    /// The node daemon.
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Keep this node's rules in line with the manifests, as kube-proxy does with the cluster.",
            discussion: """
                Watches the manifests and syncs after every change (partial syncs: only the chains of changed \
                services), at most once per --iptables-min-sync-period; retries a failed sync after \
                --iptables-sync-period; checks every sync period that nobody changed the tables behind its back and \
                repairs them; runs a full sync every hour. Serves /healthz and /livez on --healthz-bind-address and \
                Prometheus /metrics on --metrics-bind-address, with kube-proxy's names. SIGTERM or SIGINT stops it \
                after the sync in progress, leaving the rules in place.
                """
        )

        @Option(name: [.customShort("f"), .customLong("filename")], help: "A manifest file or directory to watch (repeatable).")
        var paths: [String] = []

        @Option(help: "A kubeconfig to watch the cluster through (default without -f: the pod's service account; with --config, its clientConnection.kubeconfig).")
        var kubeconfig: String?

        @OptionGroup var proxy: ProxyFlags
        @OptionGroup var kernel: KernelFlags

        @Option(name: .customLong("iptables-min-sync-period"), help: "The least time between two syncs (default 1s).")
        var minSyncPeriod: GoDuration?

        @Option(name: .customLong("iptables-sync-period"), help: "Retry and drift-check period (default 30s).")
        var syncPeriod: GoDuration?

        @Option(name: .customLong("manifest-poll-interval"), help: "How often to look for manifest changes (default 1s).")
        var pollInterval: GoDuration = GoDuration(.seconds(1))

        @Option(name: .customLong("healthz-bind-address"), help: "host:port for /healthz and /livez; empty to disable.")
        var healthz: String?

        @Option(name: .customLong("metrics-bind-address"), help: "host:port for /metrics; empty to disable.")
        var metrics: String?

        @Flag(help: "Do not delete stale UDP conntrack flows after the rules change.")
        var noConntrack = false

        @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
        var logLevel: Logger.Level = .info

        func validate() throws {
            if !paths.isEmpty && kubeconfig != nil { throw ValidationError("give either -f PATH or --kubeconfig, not both") }
            for (flag, value) in [("--healthz-bind-address", healthz), ("--metrics-bind-address", metrics)] {
                guard let value, !value.isEmpty else { continue }
                guard Self.address(value) != nil else { throw ValidationError("\(flag): expected host:port, got \"\(value)\"") }
            }
        }

        static func address(_ text: String) -> (host: String, port: Int)? {
            guard !text.isEmpty, let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { return nil }
            let host = String(text[..<colon]).trimmingCharacters(in: ["[", "]"])
            return (host.isEmpty ? "0.0.0.0" : host, port)
        }

        func run() async throws {
            let level = logLevel
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "natsync")
            let families = try proxy.resolveFamilies(host: HostFacts())
            // With --config, kube-proxy reads the file in place of the flags bound to its fields.
            let file = try proxy.configuration()
            let fromFlags = proxy.configFile == nil
            var ignored = proxy.ignoredByConfig
            if !fromFlags {
                let given: [(String, Bool)] = [
                    ("--kubeconfig", kubeconfig != nil), ("--healthz-bind-address", healthz != nil),
                    ("--metrics-bind-address", metrics != nil), ("--iptables-sync-period", syncPeriod != nil),
                    ("--iptables-min-sync-period", minSyncPeriod != nil),
                ]
                ignored += given.filter(\.1).map(\.0)
            }
            for warning in try proxy.configurationWarnings() { logger.warning("\(warning)") }
            for flag in ignored { logger.notice("\(ProxyFlags.ignoredNote(flag))") }
            let kubeconfig = fromFlags ? self.kubeconfig : file.kubeconfig
            let healthz = (fromFlags ? self.healthz : file.healthzBindAddress) ?? "0.0.0.0:10256"
            let metrics = (fromFlags ? self.metrics : file.metricsBindAddress) ?? "127.0.0.1:10249"
            let proxiers = families.map { options in
                let (tables, reason) = kernel.tables(options.family)
                logger.info("\(options.family): iptables backend \(reason)")
                let applier = TablesApplier(tables: tables, family: options.family, netns: kernel.netns, conntrack: !noConntrack)
                return Proxier(generator: RuleGenerator(options: options), applier: applier)
            }
            var runner = SyncRunner.Configuration()
            runner.minInterval = (fromFlags ? minSyncPeriod?.duration : file.minSyncPeriod.map { .milliseconds(Int64($0 * 1000)) }) ?? .seconds(1)
            runner.syncPeriod = (fromFlags ? syncPeriod?.duration : file.syncPeriod.map { .milliseconds(Int64($0 * 1000)) }) ?? .seconds(30)
            let source: DesiredStateSource
            if !paths.isEmpty {
                source = .manifests(paths, interval: pollInterval.duration)
            } else {
                let connection: APIConnection
                do {
                    connection = try kubeconfig.map { try APIConnection.kubeconfig(path: $0) } ?? APIConnection.inCluster()
                } catch {
                    FileDescriptorOutput.standardError.write("natsync: \(error)\n")
                    throw ExitCode(2)
                }
                logger.info("watching the Kubernetes API", metadata: ["server": "\(connection)"])
                source = .kubernetes(try APIClient(connection: connection, version: Natsync.configuration.version))
            }
            // After the input is known to be usable: a bad kubeconfig fails before anything changes.
            try kernel.applyHostSettings(try proxy.hostSettings(families, hostNamespace: kernel.netns == nil)) { outcome in
                if case .failed = outcome.result {
                    logger.warning("kernel setting not made", metadata: ["setting": "\(outcome)"])
                } else {
                    logger.info("kernel setting made", metadata: ["setting": "\(outcome)"])
                }
            }
            let daemon = Daemon(
                proxier: proxiers.count == 1 ? proxiers[0] : MetaProxier(proxiers), runner: runner, source: source,
                healthAddress: Self.address(healthz), metricsAddress: Self.address(metrics),
                family: families[0].family, netns: kernel.netns, logger: logger)
            try await daemon.run()
        }
    }
}

/// A duration written as Go writes them (`1s`, `500ms`, `1m30s`, `1h`), as kube-proxy's flags take.
struct GoDuration: ExpressibleByArgument {
    var duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        guard let seconds = ProxyConfigurationFile.goDuration(argument) else { return nil }
        duration = .nanoseconds(Int64(seconds * 1e9))
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}


