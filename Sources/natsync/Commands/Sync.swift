import ArgumentParser
import NatsyncIPTables
import NatsyncKernel
import NatsyncManifest
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

        func run() throws {
            let (rules, options) = try input.desiredRules(proxy)
            if dryRun {
                FileDescriptorOutput.standardOutput.write(RestoreText.render(rules.tables, family: options.family))
                return
            }
            try kernel.perform { tables in
                let report = try tables.sync(rules.tables)
                FileDescriptorOutput.standardOutput.write(Summary.line(report) + "\n")
            }
        }
    }
}

/// The manifests and `--strict`, shared by the commands that compute desired rules.
struct InputFlags: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filename")], help: "A manifest file or directory (repeatable).")
    var paths: [String] = []

    @Flag(help: "Treat every warning about the input as an error: exit 2 and apply nothing.")
    var strict = false

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
    }

    /// Loads the manifests, reports what was wrong, and generates the rules.
    func desiredRules(_ proxy: ProxyFlags) throws -> (ProxyRules, ProxyOptions) {
        let options = try proxy.resolve(host: HostFacts())
        let loaded = ManifestLoader.load(paths: paths)
        for diagnostic in loaded.diagnostics {
            FileDescriptorOutput.standardError.write("\(diagnostic)\n")
        }
        if strict && !loaded.warnings.isEmpty {
            FileDescriptorOutput.standardError.write(
                "natsync: \(loaded.warnings.count) warning(s) with --strict; nothing applied\n")
            throw ExitCode(2)
        }
        return (RuleGenerator(options: options).rules(for: loaded.state), options)
    }
}

extension KernelFlags {
    /// Checks the backend, then runs `body` in the chosen namespace; kernel failures exit 1.
    func perform(_ body: (LegacyTables) throws -> Void) throws {
        do {
            try checkBackend()
            let tables = self.tables
            try NetworkNamespace.run(in: netns) { try body(tables) }
        } catch let error as KernelError {
            FileDescriptorOutput.standardError.write("natsync: \(error)\n")
            throw ExitCode(1)
        } catch let error as KernelCommandError {
            FileDescriptorOutput.standardError.write("natsync: \(error.message)\n")
            throw ExitCode(error.status)
        }
    }
}

/// One-line summaries of kernel transactions.
enum Summary {
    static func line(_ report: SyncReport) -> String {
        let time = milliseconds(report.elapsed)
        guard !report.committed.isEmpty else { return "natsync: no changes; nothing committed (\(time))" }
        let tables = report.committed.map(\.rawValue).joined(separator: ", ")
        return "natsync: committed \(tables): \(report.chainsCreated) chains created, \(report.chainsRewritten) rewritten, "
            + "\(report.chainsDeleted) deleted, \(report.rulesWritten) rules written (\(time))"
    }

    static func milliseconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        return "\((value * 10).rounded() / 10) ms"
    }
}
