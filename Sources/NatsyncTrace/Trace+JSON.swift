import Foundation
import NatsyncIPTables

extension Trace {
    /// The walk for tools: the packet, every branch with its hops and outcome, and the outcomes summed.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let document = Document(
            packet: PacketDocument(packet),
            branches: branches.map(BranchDocument.init),
            outcomes: outcomes.map { OutcomeDocument($0.outcome, probability: $0.probability) })
        // Encoding plain strings, numbers and booleans cannot fail.
        let data = try! encoder.encode(document)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private struct Document: Encodable {
        var packet: PacketDocument
        var branches: [BranchDocument]
        var outcomes: [OutcomeDocument]
    }

    private struct PacketDocument: Encodable {
        var source: String
        var sourcePort: UInt16
        var destination: String
        var destinationPort: UInt16
        var `protocol`: String
        var origin: String
        var inInterface: String?
        var outInterface: String?

        init(_ packet: Packet) {
            source = packet.source.description
            sourcePort = packet.sourcePort
            destination = packet.destination.description
            destinationPort = packet.destinationPort
            `protocol` = packet.transport.iptablesName
            origin = packet.origin.rawValue
            inInterface = packet.inInterface
            outInterface = packet.outInterface
        }
    }

    private struct BranchDocument: Encodable {
        var probability: Double
        var hops: [HopDocument]
        var outcome: OutcomeDocument

        init(_ branch: Branch) {
            probability = branch.probability
            hops = branch.hops.map(HopDocument.init)
            outcome = OutcomeDocument(branch.outcome, probability: nil)
        }
    }

    private struct HopDocument: Encodable {
        var kind: String
        var table: String?
        var chain: String?
        var rule: Int?
        var text: String?
        var note: String
        var probability: Double?

        init(_ hop: Hop) {
            kind = hop.kind.rawValue
            table = hop.table?.rawValue
            chain = hop.chain?.rawValue
            rule = hop.ruleNumber
            text = hop.rule
            note = hop.note
            probability = hop.probability
        }
    }

    private struct OutcomeDocument: Encodable {
        var verdict: String
        var rejectWith: String?
        var destination: String
        var destinationPort: UInt16
        var translated: Bool
        var masqueraded: Bool
        var local: Bool
        var decidedBy: String?
        var probability: Double?

        init(_ outcome: Outcome, probability: Double?) {
            verdict = outcome.verdict.description
            if case .reject(let type?) = outcome.verdict { rejectWith = type.rawValue }
            destination = outcome.destination.description
            destinationPort = outcome.destinationPort
            translated = outcome.translated
            masqueraded = outcome.masqueraded
            local = outcome.local
            decidedBy = outcome.decidedBy
            self.probability = probability
        }
    }
}
