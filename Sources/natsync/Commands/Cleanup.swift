import ArgumentParser
import NatsyncIPTables
import NatsyncKernel
import NatsyncNet
import NatsyncRules

extension Natsync {
    /// Removes what kube-proxy or natsync owns.
    struct Cleanup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every chain and jump kube-proxy or natsync owns, IPv4 and IPv6, as 'kube-proxy --cleanup' does.",
            discussion: "Chains and rules of other programs are left as they are, and so is KUBE-FIREWALL, shared with kubelet."
        )

        @OptionGroup var kernel: KernelFlags

        func run() throws {
            let jumps = RuleGenerator.proxyJumps()
            for family in IPFamily.allCases {
                try kernel.perform(family: family) { tables in
                    let report = try tables.sync(
                        [TableContents(table: .filter), TableContents(table: .nat)], deleteStaleFixedChains: true,
                        removedJumps: [.filter: jumps.filter, .nat: jumps.nat], scope: nil)
                    FileDescriptorOutput.standardOutput.write("\(family): " + Summary.line(report) + "\n")
                }
            }
        }
    }
}
