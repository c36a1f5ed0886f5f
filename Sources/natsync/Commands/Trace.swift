import ArgumentParser
import NatsyncIPTables
import NatsyncKernel
import NatsyncNet
import NatsyncTrace

extension Natsync {
    /// Follows one packet through the nat and filter tables.
    struct Trace: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a packet through the nat and filter tables, live or as a dry run would leave them.",
            discussion: """
                Walks the hooks in the kernel's order (nat PREROUTING or OUTPUT, the filter chains, nat POSTROUTING) \
                through every jump and goto, and prints each rule that matched and why. A statistic rule opens one \
                branch per outcome, each with its probability; every branch ends in its outcome: the DNAT target, \
                whether it is masqueraded, or ACCEPT, DROP or REJECT. A rule natsync cannot evaluate (an unknown \
                match, -i or -o without --in-interface/--out-interface, a recent --rcheck for a client with no \
                affinity entry yet) is shown and taken as not matching. \
                With --live, the tables are read from the kernel (of --netns), including other software's rules; \
                with -f, they are the ones `sync --dry-run` would write, on a node with no other rules.
                """
        )

        @Option(help: "The packet's source address, with an optional port (IP or IP:PORT, [IPv6]:PORT).")
        var src: String

        @Option(help: "The packet's destination: IP:PORT ([IPv6]:PORT).")
        var dst: String

        @Option(help: "The transport protocol: tcp, udp or sctp.")
        var proto: ProtocolArgument = .tcp

        @Option(
            help: """
                Where the packet comes from: pod (routed in from a pod), node (sent by the node itself), or \
                external (arriving from outside). Default: node when --src is a local address, pod when it is in \
                --cluster-cidr, external otherwise.
                """)
        var from: Packet.Origin?

        @Option(help: "The interface the packet arrives on, for rules with -i.")
        var inInterface: String?

        @Option(help: "The interface the packet leaves by, for rules with -o.")
        var outInterface: String?

        @Flag(help: "Trace the live tables of this node (or of --netns).")
        var live = false

        @OptionGroup var namespace: NamespaceFlags

        @OptionGroup var input: InputFlags

        @Option(help: "text or json.")
        var output: OutputFormat = .text

        @OptionGroup var proxy: ProxyFlags

        enum ProtocolArgument: String, ExpressibleByArgument, CaseIterable {
            case tcp, udp, sctp
            var transport: TransportProtocol { TransportProtocol(iptablesName: rawValue)! }
        }

        enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
            case text, json
        }

        func validate() throws {
            guard live != !input.paths.isEmpty else {
                throw ValidationError("give either --live or -f PATH: trace the live tables or the rules of manifests")
            }
            if namespace.netns != nil && !live { throw ValidationError("--netns needs --live") }
            let (from, to) = (try source().0, try destination().0)
            guard from.family == to.family else {
                throw ValidationError("--src \(from) and --dst \(to) are of different families")
            }
        }

        func source() throws -> (IPAddress, UInt16?) {
            if let address = IPAddress(src) { return (address, nil) }
            guard let (address, port) = Self.endpoint(src) else {
                throw ValidationError("--src: \"\(src)\" is not an IP address or IP:PORT")
            }
            return (address, port)
        }

        func destination() throws -> (IPAddress, UInt16) {
            guard let (address, port) = Self.endpoint(dst) else {
                throw ValidationError("--dst: \"\(dst)\" is not IP:PORT (write IPv6 as [ADDRESS]:PORT)")
            }
            return (address, port)
        }

        /// `IP:PORT` or `[IPv6]:PORT`.
        static func endpoint(_ text: String) -> (IPAddress, UInt16)? {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
                return nil
            }
            var host = text[..<colon]
            if host.hasPrefix("[") && host.hasSuffix("]") {
                host = host.dropFirst().dropLast()
            } else if host.contains(":") {
                return nil
            }
            return IPAddress(host).map { ($0, port) }
        }

        func run() throws {
            let (sourceAddress, sourcePort) = try source()
            let (destinationAddress, destinationPort) = try destination()
            let (ruleset, localAddresses, clusterCIDRs) = try tables(destinationAddress.family)
            let origin =
                from
                ?? (localAddresses.contains(sourceAddress) || sourceAddress.isLoopback
                    ? .node : clusterCIDRs.contains { $0.contains(sourceAddress) } ? .pod : .external)
            let packet = Packet(
                source: sourceAddress, sourcePort: sourcePort ?? 40000, destination: destinationAddress,
                destinationPort: destinationPort, transport: proto.transport, origin: origin, inInterface: inInterface,
                outInterface: outInterface)
            let trace = Tracer(ruleset: ruleset, localAddresses: localAddresses).trace(packet)
            FileDescriptorOutput.standardOutput.write(output == .json ? trace.json() : trace.text())
        }

        /// The rules of `family` to walk, the addresses that are local, and the pod ranges.
        func tables(_ family: IPFamily) throws -> (Ruleset, Set<IPAddress>, [CIDR]) {
            let clusterCIDRs = try proxy.resolveFamilies(host: HostFacts(netns: namespace.netns)).first?.clusterCIDRs ?? []
            guard live else {
                let all = try input.desired(proxy, host: HostFacts(netns: namespace.netns))
                guard let desired = all.first(where: { $0.options.family == family }) else {
                    throw ValidationError(
                        "--dst is \(family), but the rules are for \(all.map { "\($0.options.family)" }.joined(separator: " and ")) (--ip-family)"
                    )
                }
                return (
                    Ruleset(desired: desired.rules.tables, family: desired.options.family),
                    Set(desired.options.nodeAddresses), clusterCIDRs
                )
            }
            do {
                // The host's iptables backend, as `--iptables-backend auto` picks it.
                let nft = HostBackend.detect(netns: namespace.netns).mode == .nft
                let (dumps, addresses) = try NetworkNamespace.run(in: namespace.netns) {
                    (
                        try nft
                            ? RestoreTables.nft(family: family).dump([.filter, .nat]) : LegacyTables(family: family).dump([.filter, .nat]),
                        HostFacts().addresses()
                    )
                }
                return (Ruleset(dumps: dumps, family: family), Set(addresses), clusterCIDRs)
            } catch {
                FileDescriptorOutput.standardError.write("natsync: \(error)\n")
                throw ExitCode(1)
            }
        }
    }
}

extension Packet.Origin: ExpressibleByArgument {}

extension Ruleset {
    /// The live tables of one family.
    init(dumps: [TableDump], family: IPFamily) {
        var tables: [TableName: [ChainName: Chain]] = [:]
        for dump in dumps {
            var chains: [ChainName: Chain] = [:]
            for chain in dump.chains {
                let entries = chain.entries.map { entry -> Entry in
                    switch entry {
                    case .rule(let rule): .rule(rule)
                    case .foreign(let text): .opaque(text)
                    }
                }
                chains[chain.name] = Chain(entries: entries, policy: chain.policy.map { Policy(rawValue: $0) ?? .accept })
            }
            tables[dump.table] = chains
        }
        self.init(family: family, tables: tables)
    }
}
