import NatsyncIPTables
import NatsyncNet

/// One step of a packet's walk.
public struct Hop: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// The rule matched and its target applied.
        case matched
        /// A `statistic` rule: the branch where the random draw picked this rule.
        case branchTaken = "branch-taken"
        /// A `statistic` rule: the branch where it did not.
        case branchNotTaken = "branch-not-taken"
        /// The rule holds something natsync cannot evaluate; assumed not to match.
        case notEvaluated = "not-evaluated"
        /// The end of a built-in chain: its policy decided.
        case policy
        /// The routing decision between the hooks.
        case routing
    }

    public var kind: Kind
    public var table: TableName?
    public var chain: ChainName?
    /// 1-based, as `iptables -L --line-numbers` counts.
    public var ruleNumber: Int?
    /// The rule as iptables-restore arguments.
    public var rule: String?
    /// Why the rule matched, or what decided.
    public var note: String
    /// For a `statistic` rule, the probability the rule itself carries.
    public var probability: Double?

    public init(
        kind: Kind, table: TableName? = nil, chain: ChainName? = nil, ruleNumber: Int? = nil, rule: String? = nil,
        note: String, probability: Double? = nil
    ) {
        self.kind = kind
        self.table = table
        self.chain = chain
        self.ruleNumber = ruleNumber
        self.rule = rule
        self.note = note
        self.probability = probability
    }

    /// Where the hop is: `nat KUBE-SVC-… #2`.
    public var place: String {
        var text = [table?.rawValue, chain?.rawValue].compactMap { $0 }.joined(separator: " ")
        if let ruleNumber { text += " #\(ruleNumber)" }
        return text
    }
}

/// What became of the packet on one branch of the walk.
public struct Outcome: Hashable, Sendable {
    public enum Verdict: Hashable, Sendable, CustomStringConvertible {
        case accept
        case drop
        case reject(RejectType?)

        public var description: String {
            switch self {
            case .accept: "ACCEPT"
            case .drop: "DROP"
            case .reject: "REJECT"
            }
        }
    }

    public var verdict: Verdict
    /// The destination after the walk: the DNAT target when ``translated``.
    public var destination: IPAddress
    public var destinationPort: UInt16
    /// True when a DNAT rule rewrote the destination.
    public var translated: Bool
    /// True when POSTROUTING masqueraded the source.
    public var masqueraded: Bool
    /// True when the packet ends delivered to the node itself rather than forwarded.
    public var local: Bool
    /// The rule that decided (`nat KUBE-SEP-… #2` for a DNAT, the dropping rule or policy), if any.
    public var decidedBy: String?

    public init(
        verdict: Verdict, destination: IPAddress, destinationPort: UInt16, translated: Bool, masqueraded: Bool,
        local: Bool, decidedBy: String?
    ) {
        self.verdict = verdict
        self.destination = destination
        self.destinationPort = destinationPort
        self.translated = translated
        self.masqueraded = masqueraded
        self.local = local
        self.decidedBy = decidedBy
    }
}

/// One way the walk can end, with the chance the kernel takes it.
public struct Branch: Hashable, Sendable {
    public var probability: Double
    public var hops: [Hop]
    public var outcome: Outcome

    public init(probability: Double, hops: [Hop], outcome: Outcome) {
        self.probability = probability
        self.hops = hops
        self.outcome = outcome
    }
}

/// The whole walk of one packet: every branch a statistic match can open.
public struct Trace: Sendable {
    public var packet: Packet
    public var branches: [Branch]

    /// The chance of each distinct outcome, summed over branches, most likely first.
    public var outcomes: [(outcome: Outcome, probability: Double)] {
        var order: [Outcome] = []
        var sums: [Outcome: Double] = [:]
        for branch in branches {
            if sums[branch.outcome] == nil { order.append(branch.outcome) }
            sums[branch.outcome, default: 0] += branch.probability
        }
        return order.map { ($0, sums[$0]!) }
    }
}
