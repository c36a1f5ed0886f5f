import CNatsyncShim
import Foundation
import NatsyncIPTables
import NatsyncNet
import NatsyncTestSupport
import Testing

@testable import NatsyncKernel

/// The in-place compare a sync uses on tables that are as they should be must give the same
/// answer as decoding the entry and comparing rules, for every rule shape natsync writes.
struct RuleCodecTests {
    static let root = Repository.root

    /// Every distinct rule of every golden feature (both families), plus shapes the features do
    /// not write but the codec knows (inverted matches, goto, REJECT, recent, interfaces).
    static let corpus: [(Rule, IPFamily)] = {
        var rules: [(Rule, IPFamily)] = []
        let folder = root + "/Fixtures/rules"
        for feature in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
            guard let text = try? String(contentsOfFile: "\(folder)/\(feature)/expected.rules", encoding: .utf8),
                let tables = try? RestoreText.parse(text)
            else { continue }
            let family: IPFamily = text.contains("-s 10.") || !text.contains("::") ? .ipv4 : .ipv6
            for table in tables {
                for rule in table.chains.flatMap(\.rules) + table.builtinJumps.map(\.rule) {
                    rules.append((rule, rule.family ?? family))
                }
            }
        }
        let extra = [
            "-i eth0 ! -o lo+ -p udp -m udp ! --dport 53 -j RETURN",
            "! -s 10.0.0.0/8 -d 10.96.0.1/32 -p tcp -m tcp ! --sport 1000:2000 -g KUBE-MARK-MASQ",
            "-m conntrack ! --ctstate INVALID -j DROP",
            "-m addrtype ! --src-type LOCAL --dst-type LOCAL -j ACCEPT",
            "-m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-m recent --name KUBE-SEP-ABC --set -j DNAT --to-destination 10.0.0.1:80",
            "-m recent --name KUBE-SEP-ABC --rcheck --seconds 10800 --reap -j KUBE-SEP-ABC",
            "-m recent --name KUBE-SEP-ABC --rcheck -j KUBE-SEP-ABC",
            "-p tcp -m comment --comment \"a/b:http\" -j REJECT --reject-with icmp-port-unreachable",
            "-p sctp -m sctp --dport 9 -j REJECT --reject-with icmp-host-unreachable",
            "-j MARK --xor-mark 0x4000",
            "-j MASQUERADE --random-fully",
            "-j DNAT --to-destination 10.0.0.1",
        ]
        for arguments in extra { rules.append((try! RestoreText.parseRule(arguments), .ipv4)) }
        return rules
    }()

    @Test func everyRuleHoldsItself() throws {
        #expect(Self.corpus.count > 300)
        for (rule, family) in Self.corpus {
            var raw = try RuleCodec.encode(rule, family: family)
            #expect(RuleCodec.decode(&raw, foreign: false, family: family) == .rule(rule), "\(rule)")
            #expect(RuleCodec.holds(&raw, rule, family: family), "\(RestoreText.arguments(of: rule, family: family))")
        }
    }

    @Test func theInPlaceCompareAgreesWithDecodingForEveryPair() throws {
        let distinct = Array(Set(Self.corpus.map { RuleKey(rule: $0.0, family: $0.1) }))
        var disagreements: [String] = []
        var equalPairs = 0
        for live in distinct {
            var raw = try RuleCodec.encode(live.rule, family: live.family)
            let decoded = RuleCodec.decode(&raw, foreign: false, family: live.family)
            for desired in distinct {
                let expected = decoded == .rule(desired.rule)
                if expected { equalPairs += 1 }
                if RuleCodec.holds(&raw, desired.rule, family: live.family) != expected {
                    disagreements.append(
                        "\(RestoreText.arguments(of: live.rule, family: live.family)) vs \(RestoreText.arguments(of: desired.rule, family: live.family))"
                    )
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        #expect(equalPairs >= distinct.count)
    }

    /// A single field changed in an entry makes it differ, whichever field it is.
    @Test func everyFieldTakesPart() throws {
        let rule = try RestoreText.parseRule(
            "-s 10.0.0.0/8 -d 10.96.0.1/32 -i eth0 -o eth1 -p tcp -m comment --comment \"x\" -m tcp --dport 80 -m statistic --mode random --probability 0.5 -m mark --mark 0x1/0x1 -j DNAT --to-destination 10.0.0.1:8080"
        )
        let original = try RuleCodec.encode(rule, family: .ipv4)
        let edits: [(String, (inout natsync_rule) -> Void)] = [
            ("source", { $0.source.3 = 1 }),
            ("source mask", { $0.source_mask.0 = 0xFE }),
            ("destination", { $0.dest.3 ^= 1 }),
            ("in interface", { $0.in_iface.0 = 0x66 }),
            ("out interface invert", { $0.flags |= UInt32(NATSYNC_RF_INVERT_OUT.rawValue) }),
            ("protocol", { $0.protocol = 17 }),
            ("match count", { $0.match_count -= 1 }),
            ("comment", { $0.matches.0.text.0 = 0x79 }),
            ("port", { $0.matches.1.dest_ports.0 = 81 }),
            ("probability", { $0.matches.2.value += 1 }),
            ("mark mask", { $0.matches.3.mask = 3 }),
            ("target", { $0.target = UInt32(NATSYNC_TARGET_ACCEPT.rawValue) }),
            ("DNAT address", { $0.to_address.3 = 2 }),
            ("DNAT port", { $0.to_port = 8081 }),
        ]
        var unchanged = original
        #expect(RuleCodec.holds(&unchanged, rule, family: .ipv4))
        for (field, edit) in edits {
            var raw = original
            edit(&raw)
            #expect(!RuleCodec.holds(&raw, rule, family: .ipv4), "\(field)")
        }
    }
}

struct RuleKey: Hashable {
    var rule: Rule
    var family: IPFamily
}

extension Rule {
    /// The family an address of the rule names, if any.
    fileprivate var family: IPFamily? {
        if let cidr = source?.cidr ?? destination?.cidr { return cidr.family }
        if case .dnat(let address, _) = target { return address.family }
        return nil
    }
}
