import NatsyncIPTables
import NatsyncNet
import NatsyncTrace
import Testing

/// How the walk treats netfilter's control flow and the matches it cannot see, on hand-written tables.
struct TracerTests {
    static let pod = Packet(source: IPAddress("10.0.1.2")!, destination: IPAddress("10.96.0.1")!, destinationPort: 80, origin: .pod)

    func tracer(_ text: String) throws -> Tracer {
        Tracer(
            ruleset: Ruleset(desired: try RestoreText.parse(text), family: .ipv4), localAddresses: [IPAddress("192.168.0.2")!])
    }

    @Test func gotoReturnsToTheCallerOfTheChainThatWent() throws {
        let tracer = try tracer(
            """
            *nat
            :A - [0:0]
            :B - [0:0]
            -A PREROUTING -j A
            -A PREROUTING -j DNAT --to-destination 10.0.9.9:80
            -A A -g B
            -A A -j DNAT --to-destination 10.0.8.8:80
            -A B -j RETURN
            COMMIT
            """)
        let trace = tracer.trace(Self.pod)
        // B returns past the rest of A (the goto does not come back), so PREROUTING's second rule decides.
        #expect(trace.branches.map(\.outcome.destination) == [IPAddress("10.0.9.9")!])
    }

    @Test func marksAreSetAndMatchedAsTheKernelDoes() throws {
        let tracer = try tracer(
            """
            *nat
            -A PREROUTING -j MARK --or-mark 0x4000
            -A PREROUTING -m mark ! --mark 0x4000/0x4000 -j DNAT --to-destination 10.0.9.9:80
            -A POSTROUTING -j MARK --xor-mark 0x4000
            -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
            -A POSTROUTING -m mark --mark 0x0/0x4000 -j ACCEPT
            -A POSTROUTING -j MASQUERADE
            COMMIT
            """)
        let outcome = tracer.trace(Self.pod).branches[0].outcome
        #expect(!outcome.translated)
        #expect(!outcome.masqueraded)
    }

    @Test func whatCannotBeEvaluatedIsShownAndSkipped() throws {
        let tracer = try tracer(
            """
            *nat
            -A PREROUTING -i eth0 -j DNAT --to-destination 10.0.9.9:80
            -A PREROUTING -m recent --rcheck --seconds 10 --reap --name X -j DNAT --to-destination 10.0.8.8:80
            -A PREROUTING -m recent --set --name X -j DNAT --to-destination 10.0.7.7:80
            COMMIT
            """)
        let branch = tracer.trace(Self.pod).branches[0]
        #expect(branch.outcome.destination == IPAddress("10.0.7.7")!)
        #expect(branch.hops[0].kind == .notEvaluated && branch.hops[0].note.contains("--in-interface"))
        var known = Self.pod
        known.inInterface = "eth0"
        #expect(tracer.trace(known).branches[0].outcome.destination == IPAddress("10.0.9.9")!)
        known.inInterface = "veth1"
        #expect(tracer.trace(known).branches[0].outcome.destination == IPAddress("10.0.7.7")!)
    }

    @Test func opaqueRulesAreShownAndTakenAsNotMatching() {
        let ruleset = Ruleset(
            family: .ipv4,
            tables: [
                .nat: [.prerouting: .init(entries: [.opaque("-m set --match-set blocked src -j DROP")], policy: .accept)],
                .filter: [.forward: .init(entries: [], policy: .drop)],
            ])
        let branch = Tracer(ruleset: ruleset, localAddresses: []).trace(Self.pod).branches[0]
        #expect(branch.hops.first?.rule == "-m set --match-set blocked src -j DROP")
        #expect(branch.hops.first?.kind == .notEvaluated)
        #expect(branch.outcome.verdict == .drop)
        #expect(branch.outcome.decidedBy == "filter FORWARD")
    }

    @Test func aLocalDestinationGoesToInputAndTheNodesOwnPacketsThroughOutput() throws {
        let tracer = try tracer(
            """
            *filter
            -A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset
            -A OUTPUT -d 10.96.0.1 -j DROP
            COMMIT
            """)
        let toNode = Packet(source: IPAddress("10.0.1.2")!, destination: IPAddress("192.168.0.2")!, destinationPort: 22, origin: .external)
        #expect(tracer.trace(toNode).branches[0].outcome.verdict == .reject(.tcpReset))
        var fromNode = Self.pod
        fromNode.origin = .node
        #expect(tracer.trace(fromNode).branches[0].outcome.verdict == .drop)
        #expect(tracer.trace(Self.pod).branches[0].outcome.verdict == .accept)
    }

    @Test func statisticBranchesMultiplyAlongThePath() throws {
        let tracer = try tracer(
            """
            *nat
            :S - [0:0]
            -A PREROUTING -j S
            -A S -m statistic --mode random --probability 0.25 -j DNAT --to-destination 10.0.1.1:80
            -A S -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.0.1.2:80
            -A S -j DNAT --to-destination 10.0.1.3:80
            COMMIT
            """)
        let trace = tracer.trace(Self.pod)
        let split = trace.outcomes.map { ($0.outcome.destination.description, ($0.probability * 1000).rounded() / 1000) }
        #expect(split.map(\.0) == ["10.0.1.1", "10.0.1.2", "10.0.1.3"])
        #expect(split.map(\.1) == [0.25, 0.375, 0.375])
        let text = trace.text()
        #expect(text.contains("  +- picked with probability 0.2500:\n"), "\(text)")
        #expect(text.contains("  +- passed with probability 0.5000:\n"), "\(text)")
        #expect(
            text.hasSuffix(
                "outcomes:\n   25.0%  DNAT to 10.0.1.1:80, not masqueraded\n   37.5%  DNAT to 10.0.1.2:80, not masqueraded\n   37.5%  DNAT to 10.0.1.3:80, not masqueraded\n"
            ))
    }

    @Test func aJumpLoopEndsInsteadOfRecursingForever() throws {
        let tracer = try tracer(
            """
            *nat
            :L - [0:0]
            -A PREROUTING -j L
            -A L -j L
            COMMIT
            """)
        #expect(tracer.trace(Self.pod).branches[0].outcome.verdict == .drop)
    }
}
