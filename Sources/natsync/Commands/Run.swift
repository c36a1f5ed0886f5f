import ArgumentParser
import Logging
import NatsyncDaemon
import NatsyncKernel
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

        @Option(
            help:
                "A kubeconfig to watch the cluster through (default without -f: the pod's service account; with --config, its clientConnection.kubeconfig)."
        )
        var kubeconfig: String?

        @Option(help: "The API server's address (overrides the kubeconfig's; without one, with the pod's service account credentials).")
        var master: String?

        @OptionGroup var proxy: ProxyFlags
        @OptionGroup var kernel: KernelFlags

        @Option(name: .customLong("iptables-min-sync-period"), help: "The least time between two syncs (default 1s).")
        var minSyncPeriod: GoDuration?

        @Option(name: .customLong("iptables-sync-period"), help: "Retry and drift-check period (default 30s).")
        var syncPeriod: GoDuration?

        @Option(name: .customLong("kube-api-qps"), help: "Requests per second to the API server, at most (default 5, as kube-proxy).")
        var apiQPS: Double?

        @Option(name: .customLong("kube-api-burst"), help: "Requests to the API server allowed in a burst (default 10, as kube-proxy).")
        var apiBurst: Int?

        @Option(name: .customLong("kube-api-content-type"), help: "Accepted for kube-proxy's command lines; natsync asks for JSON.")
        var apiContentType: String?

        @Option(
            name: .customLong("watch-idle-timeout"),
            help:
                "How long a watch may stay silent before it is taken for a dead connection and resumed (default 70s; the API server sends a bookmark every minute)."
        )
        var watchIdleTimeout: GoDuration = GoDuration(APIClient.defaultIdleTimeout)

        @Option(name: .customLong("manifest-poll-interval"), help: "How often to look for manifest changes (default 1s).")
        var pollInterval: GoDuration = GoDuration(.seconds(1))

        @Option(name: .customLong("healthz-bind-address"), help: "host:port for /healthz and /livez; empty to disable.")
        var healthz: String?

        @Option(name: .customLong("metrics-bind-address"), help: "host:port for /metrics; empty to disable.")
        var metrics: String?

        @OptionGroup var conntrack: ConntrackFlags

        @Option(
            name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default: from -v, else info).")
        var logLevel: Logger.Level?

        @Option(
            name: [.customShort("v"), .customLong("v")],
            help: "kube-proxy's log verbosity: 0-3 info, 4-5 debug, 6 and above trace (config logging.verbosity).")
        var verbosity: Int?

        @Option(
            name: .customLong("logging-format"),
            help: "text or json, as kube-proxy's --logging-format (config logging.format; default text).")
        var loggingFormat: LoggingFormat?

        @Option(name: .customLong("oom-score-adj"), help: "The daemon's oom_score_adj, in [-1000, 1000] (default -999, as kube-proxy).")
        var oomScoreAdj: Int?

        enum LoggingFormat: String, ExpressibleByArgument {
            case text, json
        }

        func validate() throws {
            if !paths.isEmpty && (kubeconfig != nil || master != nil) {
                throw ValidationError("give either -f PATH or --kubeconfig/--master, not both")
            }
            if let master, !(master.hasPrefix("https://") || master.hasPrefix("http://")) {
                throw ValidationError("--master: expected an http or https URL, got \"\(master)\"")
            }
            if let oomScoreAdj, !(-1000...1000).contains(oomScoreAdj) {
                throw ValidationError("--oom-score-adj: \(oomScoreAdj) is out of range (-1000-1000)")
            }
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

        /// The log level: `--log-level`, else kube-proxy's verbosity mapped onto swift-log's.
        static func level(explicit: Logger.Level?, verbosity: Int?) -> Logger.Level {
            if let explicit { return explicit }
            switch verbosity ?? 0 {
            case ..<4: return .info
            case 4...5: return .debug
            default: return .trace
            }
        }

        func run() async throws {
            // With --config, kube-proxy reads the file in place of the flags bound to its fields,
            // but its logging flags still win over the file's `logging`.
            let file = try proxy.configuration()
            let fromFlags = proxy.configFile == nil
            let level = Self.level(explicit: logLevel, verbosity: verbosity ?? file.loggingVerbosity)
            let json = (loggingFormat?.rawValue ?? file.loggingFormat) == "json"
            LoggingSystem.bootstrap { label in
                if json { return JSONLogHandler(logLevel: level, output: .standardError) }
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "natsync")
            let families = try proxy.resolveFamilies(host: HostFacts(netns: kernel.netns))
            var ignored = proxy.ignoredByConfig
            if !fromFlags {
                let given: [(String, Bool)] = [
                    ("--kubeconfig", kubeconfig != nil), ("--healthz-bind-address", healthz != nil),
                    ("--metrics-bind-address", metrics != nil), ("--iptables-sync-period", syncPeriod != nil),
                    ("--iptables-min-sync-period", minSyncPeriod != nil), ("--oom-score-adj", oomScoreAdj != nil),
                    ("--kube-api-qps", apiQPS != nil), ("--kube-api-burst", apiBurst != nil),
                    ("--kube-api-content-type", apiContentType != nil),
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
                let applier = TablesApplier(tables: tables, family: options.family, netns: kernel.netns, conntrack: !conntrack.noConntrack)
                return Proxier(generator: RuleGenerator(options: options), applier: applier)
            }
            var runner = SyncRunner.Configuration()
            runner.minInterval =
                (fromFlags ? minSyncPeriod?.duration : file.minSyncPeriod.map { .milliseconds(Int64($0 * 1000)) }) ?? .seconds(1)
            runner.syncPeriod = (fromFlags ? syncPeriod?.duration : file.syncPeriod.map { .milliseconds(Int64($0 * 1000)) }) ?? .seconds(30)
            let source: DesiredStateSource
            if !paths.isEmpty {
                source = .manifests(paths, interval: pollInterval.duration)
            } else {
                var connection: APIConnection
                let client: APIClient
                do {
                    if let kubeconfig {
                        connection = try APIConnection.kubeconfig(path: kubeconfig)
                    } else if let master {
                        connection = APIConnection.serviceAccount(server: master)
                    } else {
                        connection = try APIConnection.inCluster()
                    }
                    if let master { connection.server = master.hasSuffix("/") ? String(master.dropLast()) : master }
                    client = try APIClient(
                        connection: connection, version: Natsync.configuration.version, idleTimeout: watchIdleTimeout.duration,
                        qps: (fromFlags ? apiQPS : file.apiQPS) ?? 5, burst: (fromFlags ? apiBurst : file.apiBurst) ?? 10)
                } catch {
                    FileDescriptorOutput.standardError.write("natsync: \(error)\n")
                    throw ExitCode(2)
                }
                logger.info("watching the Kubernetes API", metadata: ["server": "\(connection)"])
                source = .kubernetes(client)
            }
            // After the input is known to be usable: a bad kubeconfig fails before anything changes.
            var settings = try proxy.hostSettings(families, hostNamespace: kernel.netns == nil)
            settings.oomScoreAdj = (fromFlags ? oomScoreAdj : file.oomScoreAdj) ?? -999
            try kernel.applyHostSettings(settings) { outcome in
                if case .failed = outcome.result {
                    // kube-proxy logs a refused oom_score_adj at V(2) and goes on: lowering it takes
                    // CAP_SYS_RESOURCE, which a container may lack, and the rules do not depend on it.
                    let level: Logger.Level = outcome.name == HostSettings.oomScoreAdjName ? .notice : .warning
                    logger.log(level: level, "kernel setting not made", metadata: ["setting": "\(outcome)"])
                } else {
                    logger.info("kernel setting made", metadata: ["setting": "\(outcome)"])
                }
            }
            var daemon = Daemon(
                proxier: proxiers.count == 1 ? proxiers[0] : MetaProxier(proxiers), runner: runner, source: source,
                healthAddress: Self.address(healthz), metricsAddress: Self.address(metrics),
                netns: kernel.netns, logger: logger)
            let (proxy, host) = (proxy, HostFacts(netns: kernel.netns))
            daemon.resolveOptions = { try proxy.resolveFamilies(host: host) }
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
