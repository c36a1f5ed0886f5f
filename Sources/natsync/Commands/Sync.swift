import ArgumentParser
import NatsyncIPTables
import NatsyncManifest
import NatsyncRules

extension Natsync {
    /// Reconciles the node's rules with the manifests once.
    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Program the rules for the given Services and EndpointSlices once.",
            discussion: """
                With --dry-run, print the iptables-restore input natsync would apply (filter, then nat; \
                the jumps it ensures in built-in chains as '# -I' comment lines) and change nothing.
                """
        )

        @Option(name: [.customShort("f"), .customLong("filename")], help: "A manifest file or directory (repeatable).")
        var paths: [String] = []

        @OptionGroup var proxy: ProxyFlags

        @Flag(help: "Print the rules as iptables-restore input instead of applying them.")
        var dryRun = false

        @Flag(help: "Treat every warning about the input as an error: exit 2 and apply nothing.")
        var strict = false

        func validate() throws {
            if paths.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
        }

        func run() throws {
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
            guard dryRun else {
                FileDescriptorOutput.standardError.write(
                    "natsync: applying rules to the kernel is not available in this build; use --dry-run\n")
                throw ExitCode(2)
            }
            let rules = RuleGenerator(options: options).rules(for: loaded.state)
            FileDescriptorOutput.standardOutput.write(RestoreText.render(rules.tables, family: options.family))
        }
    }
}
