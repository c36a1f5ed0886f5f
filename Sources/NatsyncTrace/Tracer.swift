import NatsyncIPTables
import NatsyncNet

/// Follows the first packet of a connection through the nat and filter tables, hook by hook in the
/// kernel's order, the way netfilter would: every jump and goto, marks as they are set, and one
/// branch per outcome of each `statistic` match.
public struct Tracer: Sendable {
    public var ruleset: Ruleset
    /// The addresses of the node's (or the namespace's) interfaces: `addrtype LOCAL` and the
    /// routing decision between local delivery and forwarding.
    public var localAddresses: Set<IPAddress>

    public init(ruleset: Ruleset, localAddresses: Set<IPAddress>) {
        self.ruleset = ruleset
        self.localAddresses = localAddresses
    }

    /// Chains deeper than this are taken as a loop the kernel would have refused.
    static let maximumDepth = 64

    public func trace(_ packet: Packet) -> Trace {
        let start = Flow(packet: packet)
        var branches: [Branch] = []
        switch packet.origin {
        case .pod, .external:
            for flow in hook(.nat, .prerouting, [start], &branches) {
                var flow = flow
                if isLocal(flow.destination) {
                    flow.local = true
                    flow.hops.append(Hop(kind: .routing, note: "\(flow.destination) is local: delivered to the node (INPUT)"))
                    finish(hook(.filter, .input, [flow], &branches), &branches)
                } else {
                    flow.hops.append(Hop(kind: .routing, note: "\(flow.destination) is not local: forwarded (FORWARD)"))
                    let forwarded = hook(.filter, .forward, [flow], &branches)
                    finish(hook(.nat, .postrouting, forwarded, &branches), &branches)
                }
            }
        case .node:
            let sent = hook(.filter, .output, hook(.nat, .output, [start], &branches), &branches)
            for flow in hook(.nat, .postrouting, sent, &branches) {
                var flow = flow
                if isLocal(flow.destination) {
                    flow.local = true
                    flow.hops.append(Hop(kind: .routing, note: "\(flow.destination) is local: looped back to the node (INPUT)"))
                    finish(hook(.filter, .input, [flow], &branches), &branches)
                } else {
                    flow.hops.append(Hop(kind: .routing, note: "\(flow.destination) is not local: sent out"))
                    finish([flow], &branches)
                }
            }
        }
        return Trace(packet: packet, branches: branches)
    }

    private func finish(_ flows: [Flow], _ branches: inout [Branch]) {
        for flow in flows { branches.append(flow.branch(.accept)) }
    }

    /// Runs one built-in chain for every flow: accepted flows go on to the next hook, the others end.
    private func hook(_ table: TableName, _ chain: ChainName, _ flows: [Flow], _ branches: inout [Branch]) -> [Flow] {
        var accepted: [Flow] = []
        for flow in flows {
            guard ruleset.chain(chain, in: table) != nil else {
                accepted.append(flow)
                continue
            }
            for end in run(table, chain, from: 0, flow, depth: 0) {
                switch end {
                case .verdict(.accept, let flow), .returned(let flow):
                    accepted.append(flow)
                case .verdict(let verdict, let flow):
                    branches.append(flow.branch(verdict))
                }
            }
        }
        return accepted
    }

    enum End {
        case verdict(Outcome.Verdict, Flow)
        /// The chain ran out or hit RETURN: the caller continues after its jump.
        case returned(Flow)
    }

    /// The ways `chain` can end for `flow`, starting at rule `index` (0-based).
    private func run(_ table: TableName, _ name: ChainName, from index: Int, _ flow: Flow, depth: Int) -> [End] {
        var flow = flow
        guard depth < Self.maximumDepth else {
            flow.hops.append(
                Hop(kind: .policy, table: table, chain: name, note: "jumps nest deeper than \(Self.maximumDepth) chains: dropped"))
            return [.verdict(.drop, flow)]
        }
        guard let chain = ruleset.chain(name, in: table) else {
            flow.hops.append(Hop(kind: .notEvaluated, table: table, chain: name, note: "chain \(name) does not exist; taken as empty"))
            return [.returned(flow)]
        }
        var position = index
        while position < chain.entries.count {
            defer { position += 1 }
            let number = position + 1
            let rule: Rule
            switch chain.entries[position] {
            case .opaque(let description):
                flow.hops.append(
                    Hop(
                        kind: .notEvaluated, table: table, chain: name, ruleNumber: number, rule: description,
                        note: "holds a match or target natsync does not model; assumed not to match"))
                continue
            case .rule(let decoded):
                rule = decoded
            }
            let text = RestoreText.arguments(of: rule, family: ruleset.family)
            switch evaluate(rule, flow, table: table, chain: name) {
            case .noMatch:
                continue
            case .unknown(let why):
                flow.hops.append(
                    Hop(
                        kind: .notEvaluated, table: table, chain: name, ruleNumber: number, rule: text,
                        note: why + "; assumed not to match"))
            case .match(let reasons, nil):
                flow.hops.append(
                    Hop(
                        kind: .matched, table: table, chain: name, ruleNumber: number, rule: text,
                        note: reasons.joined(separator: "; ")))
                return apply(rule.target, table, name, chain, after: position, flow, depth: depth)
            case .match(let reasons, let probability?):
                var taken = flow
                taken.probability *= probability
                taken.hops.append(
                    Hop(
                        kind: .branchTaken, table: table, chain: name, ruleNumber: number, rule: text,
                        note: (reasons + ["random draw picks this rule"]).joined(separator: "; "), probability: probability))
                flow.probability *= 1 - probability
                flow.hops.append(
                    Hop(
                        kind: .branchNotTaken, table: table, chain: name, ruleNumber: number, rule: text,
                        note: "random draw passes this rule", probability: probability))
                var ends = apply(rule.target, table, name, chain, after: position, taken, depth: depth)
                if probability < 1 {
                    ends += run(table, name, from: position + 1, flow, depth: depth)
                }
                return ends
            }
        }
        return end(of: chain, table, name, flow)
    }

    /// Falling off the end of a chain, or RETURN: a built-in chain's policy decides.
    private func end(of chain: Ruleset.Chain, _ table: TableName, _ name: ChainName, _ flow: Flow) -> [End] {
        guard let policy = chain.policy else { return [.returned(flow)] }
        var flow = flow
        flow.hops.append(Hop(kind: .policy, table: table, chain: name, note: "end of \(name): policy \(policy.rawValue)"))
        return [.verdict(policy == .accept ? .accept : .drop, flow)]
    }

    private func apply(
        _ target: Target, _ table: TableName, _ name: ChainName, _ chain: Ruleset.Chain, after position: Int,
        _ flow: Flow, depth: Int
    ) -> [End] {
        var flow = flow
        switch target {
        case .none:
            return run(table, name, from: position + 1, flow, depth: depth)
        case .mark(let value, let mask):
            flow.mark = (flow.mark & ~mask) ^ value
            return run(table, name, from: position + 1, flow, depth: depth)
        case .jump(let callee):
            return run(table, callee, from: 0, flow, depth: depth + 1).flatMap { end -> [End] in
                guard case .returned(let back) = end else { return [end] }
                return run(table, name, from: position + 1, back, depth: depth)
            }
        case .goto(let callee):
            return run(table, callee, from: 0, flow, depth: depth + 1).flatMap { end -> [End] in
                guard case .returned(let back) = end else { return [end] }
                return self.end(of: chain, table, name, back)
            }
        case .return:
            return end(of: chain, table, name, flow)
        case .accept:
            return [.verdict(.accept, flow)]
        case .drop:
            return [.verdict(.drop, flow)]
        case .reject(let type):
            return [.verdict(.reject(type), flow)]
        case .dnat(let address, let port):
            flow.destination = address
            if let port { flow.destinationPort = port }
            flow.translated = true
            return [.verdict(.accept, flow)]
        case .masquerade:
            flow.masqueraded = true
            return [.verdict(.accept, flow)]
        }
    }

    enum Evaluation {
        case noMatch
        /// Every condition holds; `probability` is set for a statistic match, which branches.
        case match([String], probability: Double?)
        case unknown(String)
    }

    /// Whether `rule` matches `flow`, condition by condition, in the kernel's order.
    func evaluate(_ rule: Rule, _ flow: Flow, table: TableName, chain: ChainName) -> Evaluation {
        var reasons: [String] = []
        var probability: Double?
        if let match = rule.source {
            guard match.cidr.contains(flow.source) != match.inverted else { return .noMatch }
            reasons.append("source \(flow.source) \(match.inverted ? "not in" : "in") \(match.cidr)")
        }
        if let match = rule.destination {
            guard match.cidr.contains(flow.destination) != match.inverted else { return .noMatch }
            reasons.append("destination \(flow.destination) \(match.inverted ? "not in" : "in") \(match.cidr)")
        }
        if let match = rule.protocol {
            guard (match.protocol == flow.transport) != match.inverted else { return .noMatch }
            reasons.append("protocol \(flow.transport.iptablesName)")
        }
        if let match = rule.inInterface {
            guard let name = flow.inInterface else {
                return .unknown("-i \(match.name): the arriving interface is unknown (--in-interface)")
            }
            guard Self.interface(name, matches: match.name) != match.inverted else { return .noMatch }
            reasons.append("arrived on \(name)")
        }
        if let match = rule.outInterface {
            guard let name = flow.outInterface else {
                return .unknown("-o \(match.name): the leaving interface is unknown (--out-interface)")
            }
            guard Self.interface(name, matches: match.name) != match.inverted else { return .noMatch }
            reasons.append("leaves by \(name)")
        }
        for match in rule.matches {
            switch match {
            case .comment:
                continue
            case .ports(let transport, let ports):
                guard transport == flow.transport else { return .noMatch }
                if let range = ports.source {
                    guard range.contains(flow.sourcePort) != ports.invertSource else { return .noMatch }
                    reasons.append("source port \(flow.sourcePort)")
                }
                if let range = ports.destination {
                    guard range.contains(flow.destinationPort) != ports.invertDestination else { return .noMatch }
                    reasons.append("destination port \(flow.destinationPort)")
                }
            case .statistic(let value):
                probability = Double(value.kernelValue) / 2_147_483_648.0
            case .mark(let mark):
                guard (flow.mark & mark.mask == mark.value) != mark.inverted else { return .noMatch }
                reasons.append("mark \(RestoreText.hex(flow.mark))")
            case .addressType(let types):
                if let type = types.source {
                    let actual = addressType(of: flow.source)
                    guard (actual == type) != types.invertSource else { return .noMatch }
                    reasons.append("source type \(actual.rawValue)")
                }
                if let type = types.destination {
                    let actual = addressType(of: flow.destination)
                    guard (actual == type) != types.invertDestination else { return .noMatch }
                    reasons.append("destination type \(actual.rawValue)")
                }
            case .recent(let recent):
                switch recent.action {
                case .set:
                    reasons.append("records the source in recent list \(recent.name)")
                case .check:
                    return .noMatch
                }
            case .conntrack(let match):
                let states = flow.conntrackStates
                guard states.isDisjoint(with: match.states) == match.inverted else { return .noMatch }
                reasons.append("connection state \(states.names.joined(separator: ","))")
            }
        }
        if reasons.isEmpty { reasons.append("no conditions") }
        return .match(reasons, probability: probability)
    }

    static func interface(_ name: String, matches pattern: String) -> Bool {
        pattern.hasSuffix("+") ? name.hasPrefix(pattern.dropLast()) : name == pattern
    }

    func isLocal(_ address: IPAddress) -> Bool {
        localAddresses.contains(address) || address.isLoopback
    }

    /// The routing type `addrtype` sees: only the kinds a service packet can have are told apart.
    func addressType(of address: IPAddress) -> AddressType {
        if isLocal(address) { return .local }
        switch address {
        case .v4(let value):
            if value == .max { return .broadcast }
            if value >> 28 == 0xE { return .multicast }
        case .v6(let bits):
            if bits.value >> 120 == 0xFF { return .multicast }
        }
        return .unicast
    }
}

/// One possible history of the packet: where it is going now and what happened to it.
struct Flow {
    var source: IPAddress
    var sourcePort: UInt16
    var destination: IPAddress
    var destinationPort: UInt16
    var transport: TransportProtocol
    var inInterface: String?
    var outInterface: String?
    var mark: UInt32 = 0
    var probability = 1.0
    var translated = false
    var masqueraded = false
    var local = false
    var hops: [Hop] = []

    init(packet: Packet) {
        source = packet.source
        sourcePort = packet.sourcePort
        destination = packet.destination
        destinationPort = packet.destinationPort
        transport = packet.transport
        inInterface = packet.inInterface
        outInterface = packet.outInterface
    }

    /// The first packet of a connection is NEW; NAT shows in the state as soon as it is decided.
    var conntrackStates: ConntrackStates {
        var states: ConntrackStates = .new
        if translated { states.insert(.dnat) }
        if masqueraded { states.insert(.snat) }
        return states
    }

    func branch(_ verdict: Outcome.Verdict) -> Branch {
        Branch(
            probability: probability, hops: hops,
            outcome: Outcome(
                verdict: verdict, destination: destination, destinationPort: destinationPort, translated: translated,
                masqueraded: masqueraded, local: local, decidedBy: decider(of: verdict)?.place))
    }

    /// The DNAT rule for a translated packet let through; otherwise the hop that ended the walk.
    private func decider(of verdict: Outcome.Verdict) -> Hop? {
        let deciding: Set<Hop.Kind> = [.matched, .branchTaken, .policy]
        if case .accept = verdict {
            guard translated else { return nil }
            return hops.last { $0.kind != .policy && $0.rule?.contains("-j DNAT") == true }
        }
        return hops.last { deciding.contains($0.kind) }
    }
}

extension PortRange {
    func contains(_ port: UInt16) -> Bool { lower <= port && port <= upper }
}
