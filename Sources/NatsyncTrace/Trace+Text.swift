import NatsyncIPTables
import NatsyncNet

extension Trace {
    /// The walk for a person: shared hops once, each statistic branch indented under the rule that
    /// opens it, every branch ending in its outcome, then the outcomes summed.
    public func text() -> String {
        var out =
            "trace \(packet.transport.iptablesName) \(Self.endpoint(packet.source, packet.sourcePort)) -> "
            + "\(Self.endpoint(packet.destination, packet.destinationPort)) from \(packet.origin.rawValue)"
        if let name = packet.inInterface { out += " in on \(name)" }
        if let name = packet.outInterface { out += " out by \(name)" }
        out += "\n"
        Self.render(branches[...], indent: "  ", into: &out)
        out += "outcomes:\n"
        for (outcome, probability) in outcomes {
            out += "  \(Self.percent(probability))  \(Self.describe(outcome))\n"
        }
        return out
    }

    private static func render(_ branches: ArraySlice<Branch>, indent: String, into out: inout String) {
        var branches = branches
        var depth = 0
        while true {
            guard let first = branches.first else { return }
            while depth < first.hops.count, branches.allSatisfy({ depth < $0.hops.count && $0.hops[depth] == first.hops[depth] }) {
                write(first.hops[depth], indent: indent, into: &out)
                depth += 1
            }
            guard branches.count > 1, depth < first.hops.count else {
                out += "\(indent)=> \(describe(first.outcome)) (\(percent(first.probability).drop { $0 == " " }))\n"
                return
            }
            let opening = first.hops[depth]
            let taken = branches.filter { $0.hops[depth].kind == .branchTaken }
            let passed = branches.filter { $0.hops[depth].kind != .branchTaken }
            let p = opening.probability ?? 0
            out += "\(indent)\(opening.place): \(opening.rule ?? "")\n"
            out += "\(indent)  +- picked with probability \(decimal(p)):\n"
            render(taken.map { $0.dropping(depth + 1) }[...], indent: indent + "  |  ", into: &out)
            out += "\(indent)  +- passed with probability \(decimal(1 - p)):\n"
            branches = passed.map { $0.dropping(depth + 1) }[...]
            depth = 0
        }
    }

    private static func write(_ hop: Hop, indent: String, into out: inout String) {
        switch hop.kind {
        case .routing:
            out += "\(indent)routing: \(hop.note)\n"
        case .policy:
            out += "\(indent)\(hop.place): \(hop.note)\n"
        case .matched, .branchTaken, .branchNotTaken:
            out += "\(indent)\(hop.place): \(hop.rule ?? "")\n\(indent)    matched: \(hop.note)\n"
        case .notEvaluated:
            out += "\(indent)\(hop.place): \(hop.rule ?? "")\n\(indent)    not evaluated: \(hop.note)\n"
        }
    }

    static func describe(_ outcome: Outcome) -> String {
        let target = endpoint(outcome.destination, outcome.destinationPort)
        switch outcome.verdict {
        case .accept:
            var text = outcome.translated ? "DNAT to \(target)" : "ACCEPT to \(target) (not translated)"
            text += outcome.local ? ", delivered locally" : ""
            text += outcome.masqueraded ? ", masqueraded" : ", not masqueraded"
            return text
        case .drop:
            return "DROP" + (outcome.decidedBy.map { " by \($0)" } ?? "")
        case .reject(let type):
            return "REJECT" + (type.map { " (\($0.rawValue))" } ?? "") + (outcome.decidedBy.map { " by \($0)" } ?? "")
        }
    }

    static func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    static func percent(_ probability: Double) -> String {
        let tenths = (probability * 1000).rounded()
        let text = "\(Int(tenths) / 10).\(Int(tenths) % 10)%"
        return String(repeating: " ", count: max(0, 6 - text.count)) + text
    }

    static func decimal(_ value: Double) -> String {
        let scaled = Int((value * 10000).rounded())
        let fraction = String(scaled % 10000)
        return "\(scaled / 10000)." + String(repeating: "0", count: 4 - fraction.count) + fraction
    }
}

extension Branch {
    fileprivate func dropping(_ count: Int) -> Branch {
        var copy = self
        copy.hops.removeFirst(count)
        return copy
    }
}
