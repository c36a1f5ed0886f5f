import ArgumentParser
import NatsyncIPTables
import NatsyncKernel
import NatsyncNet
import NatsyncReconcile

extension Natsync {
    /// Shows what `sync` would change.
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, chain by chain, what sync would change in the live tables.",
            discussion: "Exit status: 0 when the live tables already match, 1 when they differ, 2 on bad usage."
        )

        @OptionGroup var input: InputFlags
        @OptionGroup var proxy: ProxyFlags
        @OptionGroup var kernel: KernelFlags

        func validate() throws { try input.requireManifests() }

        func run() throws {
            var differs = false
            for desired in try input.desired(proxy, host: HostFacts(netns: kernel.netns)) {
                try kernel.perform(family: desired.options.family) { tables in
                    let plans = try tables.plan(desired.rules.tables)
                    differs = differs || plans.contains { !$0.isEmpty }
                    FileDescriptorOutput.standardOutput.write(DiffText.render(plans, family: desired.options.family))
                }
            }
            if differs { throw ExitCode(1) }
        }
    }
}

/// A readable per-chain diff of plans: `+` lines are added, `-` lines removed.
enum DiffText {
    static func render(_ plans: [TablePlan], family: IPFamily) -> String {
        var out = ""
        for plan in plans where !plan.isEmpty {
            out += "*\(plan.table)\n"
            for jump in plan.jumpDeletions {
                out += "- -A \(jump.chain) \(RestoreText.arguments(of: jump.rule, family: family))\n"
            }
            for jump in plan.jumpInsertions {
                out += "+ -I \(jump.chain) 1 \(RestoreText.arguments(of: jump.rule, family: family))\n"
            }
            for chain in plan.created {
                out += "+ :\(chain.name) (new chain)\n"
                for rule in chain.rules { out += "+ -A \(chain.name) \(RestoreText.arguments(of: rule, family: family))\n" }
            }
            for (chain, old) in plan.rewritten {
                out += "~ :\(chain.name) (rewritten)\n"
                let new = chain.rules.map(LiveRule.rule)
                // Sets: KUBE-SERVICES holds a rule per service, and a nested scan would be quadratic.
                let (oldSet, newSet) = (Set(old), Set(new))
                for rule in old where !newSet.contains(rule) { out += "- -A \(chain.name) \(text(rule, family))\n" }
                for rule in chain.rules where !oldSet.contains(.rule(rule)) {
                    out += "+ -A \(chain.name) \(RestoreText.arguments(of: rule, family: family))\n"
                }
                if old.filter({ newSet.contains($0) }) != new.filter({ oldSet.contains($0) }) {
                    out += "  (rules reordered)\n"
                }
            }
            for (name, old) in plan.deleted {
                out += "- :\(name) (deleted chain)\n"
                for rule in old { out += "- -A \(name) \(text(rule, family))\n" }
            }
        }
        return out
    }

    static func text(_ rule: LiveRule, _ family: IPFamily) -> String {
        rule.rule.map { RestoreText.arguments(of: $0, family: family) } ?? "(a rule natsync did not write)"
    }
}
