import NatsyncIPTables
import NatsyncRules
import Testing

@testable import NatsyncReconcile

struct PlannerTests {
    let jumpToServices = Rule(matches: [.comment("kubernetes service portals")], target: .jump("KUBE-SERVICES"))
    let accept = Rule(target: .accept)
    let drop = Rule(target: .drop)

    func live(_ chains: [(ChainName, [LiveRule]?)]) -> LiveTable {
        LiveTable(table: .nat, chains: chains.map { LiveTable.LiveChain(name: $0.0, rules: $0.1) })
    }

    @Test func createsMissingChainsAndLeavesEqualOnesAlone() {
        let desired = TableContents(table: .nat, chains: [Chain("KUBE-SERVICES", rules: [accept]), Chain("KUBE-SVC-A", rules: [drop])])
        let plan = Planner.plan(desired: desired, live: live([("KUBE-SERVICES", [.rule(accept)])]))
        #expect(plan.created == [Chain("KUBE-SVC-A", rules: [drop])])
        #expect(plan.rewritten.isEmpty && plan.deleted.isEmpty)
        #expect(!plan.isEmpty)
        let nothing = Planner.plan(desired: desired, live: live([("KUBE-SERVICES", [.rule(accept)]), ("KUBE-SVC-A", [.rule(drop)])]))
        #expect(nothing.isEmpty)
    }

    @Test func rewritesChainsThatDifferOrHoldForeignRules() {
        let desired = TableContents(table: .nat, chains: [Chain("KUBE-SERVICES", rules: [accept, drop])])
        let reordered = Planner.plan(desired: desired, live: live([("KUBE-SERVICES", [.rule(drop), .rule(accept)])]))
        #expect(reordered.rewritten.map(\.chain) == desired.chains)
        let foreign = Planner.plan(desired: desired, live: live([("KUBE-SERVICES", [.rule(accept), .rule(drop), .foreign])]))
        #expect(foreign.rewritten.map(\.old) == [[.rule(accept), .rule(drop), .foreign]])
    }

    @Test func deletesStaleServiceChainsButNeverForeignOnes() {
        let desired = TableContents(table: .nat, chains: [Chain("KUBE-SERVICES")])
        let plan = Planner.plan(
            desired: desired,
            live: live([
                ("KUBE-SERVICES", []), ("KUBE-SEP-OLD", [.rule(accept)]), ("DOCKER", nil), ("KUBE-MARK-DROP", nil),
                ("KUBE-POSTROUTING", []),
            ]))
        #expect(plan.deleted.map(\.name) == ["KUBE-SEP-OLD"])
        let cleanup = Planner.plan(
            desired: TableContents(table: .nat),
            live: live([("KUBE-SERVICES", []), ("KUBE-SEP-OLD", []), ("DOCKER", nil), ("KUBE-MARK-DROP", nil)]),
            deleteStaleFixedChains: true)
        #expect(cleanup.deleted.map(\.name) == ["KUBE-SERVICES", "KUBE-SEP-OLD"])
    }

    @Test func kubeletsFirewallChainIsNeverDeleted() {
        let plan = Planner.plan(
            desired: TableContents(table: .filter),
            live: LiveTable(table: .filter, chains: [.init(name: "KUBE-FIREWALL", rules: []), .init(name: "KUBE-FORWARD", rules: [])]),
            deleteStaleFixedChains: true)
        #expect(plan.deleted.map(\.name) == ["KUBE-FORWARD"])
    }

    @Test func missingJumpsGoOnTopInKubeProxyOrderAndDuplicatesGo() {
        let jumps = RuleGenerator.proxyJumps().filter
        let desired = TableContents(table: .filter, builtinJumps: jumps)
        let input = jumps.filter { $0.chain == .input }.map(\.rule)
        // A fresh node: every jump inserted at position 0, last-listed first, ending in kube-proxy's order.
        let fresh = Planner.plan(desired: desired, live: LiveTable(table: .filter, chains: []))
        var simulated: [Rule] = []
        for jump in fresh.jumpInsertions where jump.chain == .input { simulated.insert(jump.rule, at: 0) }
        #expect(simulated == input)

        // Present once, below a foreign rule: left where it is. Present twice: the second copy goes.
        let existing: [LiveRule] = [.foreign] + input.map(LiveRule.rule) + [.rule(input[0])]
        let plan = Planner.plan(
            desired: TableContents(table: .filter, builtinJumps: jumps.filter { $0.chain == .input }),
            live: LiveTable(table: .filter, chains: [.init(name: .input, rules: existing)]))
        #expect(plan.jumpInsertions.isEmpty)
        #expect(plan.jumpDeletions.map(\.index) == [existing.count - 1])
    }

    @Test func removedJumpsAreDeletedWhereverTheyAreHighestIndexFirst() {
        let jump = BuiltinJump(chain: .prerouting, rule: jumpToServices)
        let plan = Planner.plan(
            desired: TableContents(table: .nat),
            live: live([(.prerouting, [.rule(jumpToServices), .foreign, .rule(jumpToServices)])]),
            removedJumps: [jump])
        #expect(plan.jumpDeletions.map(\.index) == [2, 0])
    }
}
