import NatsyncNet
import Testing

@testable import NatsyncIPTables

struct RestoreTextTests {
    /// kube-proxy's layout and iptables-save's canonical layout of the same kernel entries.
    @Test(arguments: [
        (
            #"-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O"#,
            #"-d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O"#
        ),
        (
            #"-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ"#,
            #"! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ"#
        ),
        (
            #"-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ"#,
            #"-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-SXIVWICOYRO3J4NJ"#
        ),
        ("-j MARK --or-mark 0x4000", "-j MARK --set-xmark 0x4000/0x4000"),
        ("-j MARK --xor-mark 0x4000", "-j MARK --set-xmark 0x4000/0x0"),
        ("-m mark ! --mark 0x4000/0x4000 -j RETURN", "-m mark ! --mark 0x4000/0x4000 -j RETURN"),
        (
            "-m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ",
            #"-s 10.180.0.1/32 -m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ"#
        ),
        (
            "-m comment --comment ns1/dns:dns -m recent --name KUBE-SEP-VZKE3ZCFEDHLFKYZ --set -m udp -p udp -j DNAT --to-destination 10.180.0.1:53",
            #"-p udp -m comment --comment "ns1/dns:dns" -m recent --set --name KUBE-SEP-VZKE3ZCFEDHLFKYZ --mask 255.255.255.255 --rsource -m udp -j DNAT --to-destination 10.180.0.1:53"#
        ),
        (
            #"-m comment --comment "ns1/dns:dns -> 10.180.0.1:53" -m recent --name KUBE-SEP-VZKE3ZCFEDHLFKYZ --rcheck --seconds 10800 --reap -j KUBE-SEP-VZKE3ZCFEDHLFKYZ"#,
            #"-m comment --comment "ns1/dns:dns -> 10.180.0.1:53" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-VZKE3ZCFEDHLFKYZ --mask 255.255.255.255 --rsource -j KUBE-SEP-VZKE3ZCFEDHLFKYZ"#
        ),
        (
            #"-m comment --comment "ns1/svc1 has no endpoints" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j REJECT"#,
            #"-d 172.30.1.1/32 -p tcp -m comment --comment "ns1/svc1 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"#
        ),
        (
            #"-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"#,
            #"! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"#
        ),
        (
            #"-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully"#,
            #"-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully"#
        ),
    ])
    func bothLayoutsParseToTheSameRule(kubeProxy: String, saved: String) throws {
        let fromKubeProxy = try RestoreText.parseRule(kubeProxy)
        let fromSave = try RestoreText.parseRule(saved)
        #expect(fromKubeProxy == fromSave)
        #expect(RestoreText.arguments(of: fromKubeProxy) == kubeProxy)
    }

    @Test func hostAddressesEqualTheirSlash32Form() throws {
        #expect(try RestoreText.parseRule("-d 10.0.0.1 -j ACCEPT") == RestoreText.parseRule("-d 10.0.0.1/32 -j ACCEPT"))
        #expect(try RestoreText.parseRule("-d 10.0.0.1 -j ACCEPT") != RestoreText.parseRule("-d 10.0.0.1/31 -j ACCEPT"))
        #expect(try RestoreText.parseRule("-j REJECT") == RestoreText.parseRule("-j REJECT --reject-with icmp6-port-unreachable"))
    }

    @Test func ipv6DNATUsesBrackets() throws {
        let rule = Rule(protocol: ProtocolMatch(.tcp), matches: [.ports(.tcp, PortMatch())], target: .dnat(IPAddress("fd00::1")!, port: 80))
        let text = RestoreText.arguments(of: rule, family: .ipv6)
        #expect(text == "-m tcp -p tcp -j DNAT --to-destination [fd00::1]:80")
        #expect(try RestoreText.parseRule(text) == rule)
    }

    @Test func commentsAreQuotedAndEscapedOnlyWhenNeeded() throws {
        #expect(RestoreText.quoted("ns1/svc1:p80") == "ns1/svc1:p80")
        #expect(RestoreText.quoted("a b") == "\"a b\"")
        #expect(RestoreText.quoted(#"say "hi" \ bye"#) == #""say \"hi\" \\ bye""#)
        let hostile = Rule(matches: [.comment(#"x" -j ACCEPT -m comment --comment "y"#)], target: .drop)
        let text = RestoreText.arguments(of: hostile)
        #expect(try RestoreText.parseRule(text) == hostile)
    }

    /// Found by libFuzzer: `-I CHAIN 0` indexed before the first jump. iptables numbers rules from
    /// 1, so 0 and negative numbers are errors; 1 and past-the-end numbers insert.
    @Test func insertPositionsBelowOneAreErrors() throws {
        for position in ["0", "-3"] {
            #expect(throws: RestoreTextError.self) {
                try RestoreText.parse("*nat\n-I PREROUTING \(position) -j KUBE-SERVICES\nCOMMIT\n")
            }
        }
        let tables = try RestoreText.parse("*nat\n-I PREROUTING 1 -j KUBE-SERVICES\n-I PREROUTING 9 -j KUBE-NODEPORTS\nCOMMIT\n")
        #expect(tables[0].builtinJumps.map(\.rule.target) == [.jump("KUBE-SERVICES"), .jump("KUBE-NODEPORTS")])
    }

    @Test func documentRoundTrip() throws {
        let text = """
            *filter
            # -I INPUT 1 -j KUBE-FIREWALL
            :KUBE-SERVICES - [0:0]
            :KUBE-FORWARD - [0:0]
            -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
            COMMIT
            *nat
            :PREROUTING ACCEPT [0:0]
            :KUBE-SERVICES - [0:0]
            :KUBE-SVC-OLD - [0:0]
            -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
            -A KUBE-SERVICES -m comment --comment "x cluster IP" -m udp -p udp -d 10.96.0.10 --dport 53 -j ACCEPT
            -X KUBE-SVC-OLD
            COMMIT

            """
        let tables = try RestoreText.parse(text)
        #expect(tables.map(\.table) == [.filter, .nat])
        #expect(tables[0].chains.map(\.name) == ["KUBE-SERVICES", "KUBE-FORWARD"])
        #expect(tables[0].chain("KUBE-FORWARD")?.rules.count == 1)
        #expect(tables[1].builtinJumps.map(\.chain) == [.prerouting])
        #expect(tables[1].deletedChains == ["KUBE-SVC-OLD"])
        #expect(tables[1].chains.map(\.name) == ["KUBE-SERVICES"])
        // Built-in jumps render as '# -I' comments, which a restore (and this parser) skips.
        let rendered = RestoreText.render(tables, family: .ipv4)
        #expect(rendered.contains("# -I PREROUTING 1 -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"))
        var withoutJumps = tables
        withoutJumps[1].builtinJumps = []
        #expect(try RestoreText.parse(rendered) == withoutJumps)
    }

    @Test(arguments: [
        ("-m tcp --dport 80 -j ACCEPT", "-m tcp needs -p tcp"),
        ("-m frob -j ACCEPT", "unsupported match frob"),
        ("-d 10.0.0.1/40 -j ACCEPT", "invalid address 10.0.0.1/40 for -d"),
        ("-m comment -j ACCEPT", "-m comment needs --comment"),
        ("-m statistic --mode nth --every 2 -j ACCEPT", "unsupported statistic mode nth"),
        ("-m comment --comment \"open -j ACCEPT", "unterminated quote"),
        ("-j DNAT", "DNAT needs --to-destination"),
        ("-j ACCEPT --bogus 1", "unknown option --bogus for target ACCEPT"),
        ("-p tcp -m tcp --dport 70000 -j ACCEPT", "invalid port 70000"),
    ])
    func badRulesSayWhatIsWrong(text: String, message: String) {
        #expect(throws: RestoreTextError(message)) { try RestoreText.parseRule(text) }
    }

    @Test func documentErrorsCarryTheLineNumber() {
        #expect(throws: RestoreTextError(line: 3, "chain KUBE-X is not declared")) {
            try RestoreText.parse("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-X -j ACCEPT\nCOMMIT\n")
        }
        #expect(throws: RestoreTextError(line: 2, "missing COMMIT")) { try RestoreText.parse("*nat\n:A - [0:0]") }
    }
}

/// No text inside a rule can add a match or a rule to the restore input.
struct RestoreTextInjectionTests {
    @Test(arguments: [
        "a\" -j ACCEPT", "x\n-A KUBE-SERVICES -j ACCEPT", "back\\slash\" -m mark --mark 1", "tab\there # not a comment",
        "cr\r\nCOMMIT", "del\u{7F}", "'single' \"double\"",
    ])
    func hostileCommentsStayOneWordOfOneRule(comment: String) throws {
        let rule = Rule(
            protocol: ProtocolMatch(.tcp), matches: [.comment(comment), .ports(.tcp, .destination(80))], target: .jump("KUBE-SVC-X"))
        let table = TableContents(table: .nat, chains: [Chain("KUBE-SVC-X"), Chain("KUBE-SERVICES", rules: [rule])])
        let text = RestoreText.render([table], family: .ipv4)
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("-A ") }.count == 1, "\(text)")
        let parsed = try RestoreText.parse(text)
        let rules = parsed.flatMap(\.chains).flatMap(\.rules)
        #expect(rules.count == 1)
        #expect(rules.first?.target == .jump("KUBE-SVC-X"))
        #expect(rules.first?.matches.count == 2)
        let expected = String(comment.map { $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? "?" : $0 })
        #expect(rules.first?.comment == expected)
    }
}
