import ArgumentParser
import NatsyncDaemon
import NatsyncIPTables
import NatsyncKernel
import NatsyncManifest
import NatsyncNet
import NatsyncRules

extension Natsync {
    /// Reconciles the node's rules with the manifests once.
    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Program the rules for the given Services and EndpointSlices once.",
            discussion: """
                Reads the live filter and nat tables, changes only the chains that differ, and commits each \
                changed table atomically (filter, then nat). With --dry-run, prints the iptables-restore input \
                instead (the jumps in built-in chains as '# -I' comment lines) and changes nothing.
                """
        )

        @OptionGroup var input: InputFlags
        @OptionGroup var proxy: ProxyFlags
        @OptionGroup var kernel: KernelFlags

        @Flag(help: "Print the rules as iptables-restore input instead of applying them.")
        var dryRun = false

        @OptionGroup var conntrack: ConntrackFlags

        func validate() throws { try input.requireManifests() }

        func run() throws {
            let families = try input.desired(proxy, host: HostFacts(netns: kernel.netns))
            if dryRun {
                for desired in families {
                    // Dual-stack: the IPv6 part is ip6tables-restore input of its own.
                    if families.count > 1 && desired.options.family == .ipv6 {
                        FileDescriptorOutput.standardOutput.write("# IPv6 (ip6tables-restore)\n")
                    }
                    FileDescriptorOutput.standardOutput.write(RestoreText.render(desired.rules.tables, family: desired.options.family))
                }
                return
            }
            try kernel.applyHostSettings(try proxy.hostSettings(families.map(\.options), hostNamespace: kernel.netns == nil)) { outcome in
                let failed = if case .failed = outcome.result { true } else { false }
                FileDescriptorOutput.standardError.write("natsync: \(failed ? "warning: " : "")sysctl \(outcome)\n")
            }
            for desired in families {
                try kernel.perform(family: desired.options.family) { tables in
                    // perform has entered the namespace already.
                    let applier = TablesApplier(
                        tables: tables, family: desired.options.family, netns: nil, conntrack: !conntrack.noConntrack)
                    let (report, cleaned) = try applier.apply(desired.rules.tables, scope: nil, servicePorts: desired.udpServicePorts)
                    var line = Summary.line(report)
                    if !conntrack.noConntrack { line += "; " + Self.conntrackSummary(cleaned) }
                    let prefix = families.count > 1 ? "\(desired.options.family): " : ""
                    FileDescriptorOutput.standardOutput.write(prefix + line + "\n")
                }
            }
        }

        /// What the cleanup after a full sync did: it checks every UDP service, whether or not this
        /// sync changed it, so flows an earlier run left pinned are found too. A failure is a
        /// warning; the rules stay as committed.
        static func conntrackSummary(_ cleaned: ConntrackReport?) -> String {
            guard let cleaned else { return "no UDP service" }
            if let error = cleaned.error {
                FileDescriptorOutput.standardError.write("natsync: warning: conntrack cleanup failed: \(error)\n")
                return "conntrack cleanup failed"
            }
            return "conntrack: \(cleaned.deleted) stale UDP flows deleted of \(cleaned.visited) (\(Summary.milliseconds(cleaned.elapsed)))"
                + (cleaned.failed > 0 ? ", \(cleaned.failed) could not be deleted" : "")
        }
    }
}

/// The manifests and `--strict`, shared by the commands that compute desired rules.
struct InputFlags: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filename")], help: "A manifest file or directory (repeatable).")
    var paths: [String] = []

    @Flag(help: "Treat every warning about the input as an error: exit 2 and apply nothing.")
    var strict = false

    /// For commands that cannot do without manifests (`trace` can, with `--live`).
    func requireManifests() throws {
        if paths.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
    }

    /// Loads the manifests, reports what was wrong, and generates the rules of each family.
    func desired(_ proxy: ProxyFlags, host: HostFacts) throws -> [Desired] {
        let families = try proxy.resolveFamilies(host: host)
        let configWarnings = try proxy.configurationWarnings()
        for line in configWarnings + proxy.ignoredByConfig.map(ProxyFlags.ignoredNote) {
            FileDescriptorOutput.standardError.write(line + "\n")
        }
        let loaded = ManifestLoader.load(paths: paths)
        for diagnostic in loaded.diagnostics {
            FileDescriptorOutput.standardError.write("\(diagnostic)\n")
        }
        // Whether or not --strict: what an unreadable input wanted is unknown, and applying the
        // rest would delete its services' rules.
        if !loaded.errors.isEmpty {
            FileDescriptorOutput.standardError.write(
                "natsync: \(loaded.errors.count) input error(s): a path or file could not be read; nothing applied\n")
            throw ExitCode(2)
        }
        if strict && !(loaded.warnings.isEmpty && configWarnings.isEmpty) {
            FileDescriptorOutput.standardError.write(
                "natsync: \(loaded.warnings.count + configWarnings.count) warning(s) with --strict; nothing applied\n")
            throw ExitCode(2)
        }
        let planned = families.map { options in
            var options = options
            // The proxy's own Node in the input gives its zone (topology hints) and pod CIDRs.
            let node = loaded.state.node(named: options.nodeName)
            options.nodeZone = node?.zone
            options.nodePodCIDRs = node?.podCIDRs ?? []
            let generator = RuleGenerator(options: options)
            return (generator, generator.servicePorts(of: loaded.state))
        }
        // The manifests and the cluster state are freed before the rules are made: the rules then
        // fill the state's place instead of growing the heap around it, where the state's holes
        // would pin pages through the sync (10 MB of its peak when the state was freed after).
        _ = consume loaded
        let desired = planned.map { generator, ports in
            // Only UDP ports have conntrack flows to clean; the rest would be held through the sync for nothing.
            Desired(
                rules: generator.rules(forPorts: ports), options: generator.options,
                udpServicePorts: ports.filter { $0.0.name.protocol == .udp })
        }
        _ = consume planned
        return desired
    }
}

/// The desired state of a node: its rules, the options they were made with, and its UDP service ports.
struct Desired {
    var rules: ProxyRules
    var options: ProxyOptions
    /// The UDP service ports and their endpoints, for the conntrack cleanup after a commit.
    var udpServicePorts: [ServicePortEndpoints]
}

extension KernelFlags {
    /// Makes kube-proxy's kernel settings in the chosen namespace; `report` hears of each one set
    /// or refused (one left as it was is not news).
    func applyHostSettings(_ settings: HostSettings, report: (HostSettings.Outcome) -> Void) throws {
        do {
            let outcomes = try settings.applyToProcess() + NetworkNamespace.run(in: netns) { settings.apply() }
            for outcome in outcomes where outcome.result != .unchanged { report(outcome) }
        } catch let error as KernelError {
            FileDescriptorOutput.standardError.write("natsync: \(error)\n")
            throw ExitCode(1)
        }
    }

    /// Chooses the backend (saying which on stderr when it was detected), then runs `body` in the
    /// chosen namespace; kernel failures exit 1.
    func perform(family: IPFamily, _ body: (any TableBackend) throws -> Void) throws {
        do {
            let (tables, reason) = self.tables(family)
            if backend == .auto { FileDescriptorOutput.standardError.write("natsync: iptables backend \(reason)\n") }
            try NetworkNamespace.run(in: netns) { try body(tables) }
        } catch let error as KernelError {
            FileDescriptorOutput.standardError.write("natsync: \(error)\n")
            throw ExitCode(1)
        }
    }
}

/// One-line summaries of kernel transactions.
enum Summary {
    static func line(_ report: SyncReport) -> String {
        // More than one attempt: someone changed a table without the lock while it was written.
        let time =
            milliseconds(report.elapsed) + (report.passedOver > 0 ? ", \(report.passedOver) others' commits passed over" : "")
            + (report.attempts > 1 ? ", \(report.attempts) attempts" : "")
        guard !report.committed.isEmpty else { return "natsync: no changes; nothing committed (\(time))" }
        let tables = report.committed.map(\.rawValue).joined(separator: ", ")
        return "natsync: committed \(tables): \(report.chainsCreated) chains created, \(report.chainsRewritten) rewritten, "
            + "\(report.chainsDeleted) deleted, \(report.rulesWritten) rules written (\(time))"
    }

    static func milliseconds(_ duration: Duration) -> String {
        let value = duration / .milliseconds(1)
        return "\((value * 10).rounded() / 10) ms"
    }
}
