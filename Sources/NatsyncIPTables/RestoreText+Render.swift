import NatsyncNet

/// The iptables-restore text format: rendering structured tables and rules to it, and parsing it back.
///
/// Rendering uses kube-proxy's argument layout (the order its `syncProxyRules` writes arguments in,
/// which is what the upstream tests compare against): matches in rule order, with `-p` and the
/// address and interface matches placed where kube-proxy places them. The layout is a function of
/// the rule's structure, so rendering needs no memory of how a rule was written.
public enum RestoreText {
    /// Renders tables as one iptables-restore input: for each table `*name`, its built-in jumps as
    /// `# -I CHAIN N ...` comment lines (in their final top-down positions), the `:CHAIN - [0:0]`
    /// lines, the rules chain by chain, the `-X` lines, and `COMMIT`.
    public static func render(_ tables: [TableContents], family: IPFamily) -> String {
        var out = ""
        out.reserveCapacity(tables.reduce(0) { $0 + $1.ruleCount } * 160)
        for table in tables {
            out += "*\(table.table)\n"
            var positions: [ChainName: Int] = [:]
            for jump in table.builtinJumps {
                let position = positions[jump.chain, default: 0] + 1
                positions[jump.chain] = position
                out += "# -I \(jump.chain) \(position) "
                appendArguments(of: jump.rule, family: family, to: &out)
                out += "\n"
            }
            for chain in table.chains {
                out += ":\(chain.name) - [0:0]\n"
            }
            for chain in table.deletedChains {
                out += ":\(chain) - [0:0]\n"
            }
            for chain in table.chains {
                for rule in chain.rules {
                    out += "-A \(chain.name) "
                    appendArguments(of: rule, family: family, to: &out)
                    out += "\n"
                }
            }
            for chain in table.deletedChains {
                out += "-X \(chain)\n"
            }
            out += "COMMIT\n"
        }
        return out
    }

    /// The arguments of one rule (everything after `-A CHAIN `), in kube-proxy's layout.
    public static func arguments(of rule: Rule, family: IPFamily = .ipv4) -> String {
        var out = ""
        appendArguments(of: rule, family: family, to: &out)
        return out
    }

    static func appendArguments(of rule: Rule, family: IPFamily, to out: inout String) {
        var words = Words(out: out)
        out = ""
        let hasPortMatch = rule.matches.contains { if case .ports = $0 { true } else { false } }
        var headerWritten = false
        for match in rule.matches {
            switch match {
            case .comment(let text):
                words.append("-m comment --comment")
                words.append(quoted(text))
            case .addressType(let info):
                words.append("-m addrtype")
                if let type = info.source {
                    words.append(info.invertSource ? "! --src-type \(type.rawValue)" : "--src-type \(type.rawValue)")
                }
                if let type = info.destination {
                    words.append(
                        info.invertDestination ? "! --dst-type \(type.rawValue)" : "--dst-type \(type.rawValue)")
                }
            case .ports(let proto, let ports):
                words.append("-m \(proto.iptablesName)")
                if !headerWritten {
                    // kube-proxy writes "-m tcp -p tcp -d IP --dport PORT", then any source match.
                    appendProtocol(rule, to: &words)
                    appendAddress("-d", rule.destination, to: &words)
                }
                if let range = ports.source {
                    words.append(ports.invertSource ? "! --sport \(range)" : "--sport \(range)")
                }
                if let range = ports.destination {
                    words.append(ports.invertDestination ? "! --dport \(range)" : "--dport \(range)")
                }
                if !headerWritten {
                    appendAddress("-s", rule.source, to: &words)
                    appendInterfaces(rule, to: &words)
                    headerWritten = true
                }
            default:
                if !headerWritten && !hasPortMatch {
                    appendHeader(rule, to: &words)
                    headerWritten = true
                }
                appendOther(match, to: &words)
            }
        }
        if !headerWritten {
            appendHeader(rule, to: &words)
        }
        appendTarget(rule.target, family: family, to: &words)
        out = words.out
    }

    private static func appendHeader(_ rule: Rule, to words: inout Words) {
        appendProtocol(rule, to: &words)
        appendAddress("-d", rule.destination, to: &words)
        appendAddress("-s", rule.source, to: &words)
        appendInterfaces(rule, to: &words)
    }

    private static func appendProtocol(_ rule: Rule, to words: inout Words) {
        if let proto = rule.protocol {
            words.append(proto.inverted ? "! -p \(proto.protocol.iptablesName)" : "-p \(proto.protocol.iptablesName)")
        }
    }

    private static func appendAddress(_ flag: String, _ match: AddressMatch?, to words: inout Words) {
        guard let match else { return }
        // kube-proxy writes single addresses bare (`-d 172.30.0.41`), prefixes and its one inverted
        // host match (`! -d ::1/128`) in full.
        let text = match.cidr.isHost && !match.inverted ? match.cidr.address.description : match.cidr.description
        words.append(match.inverted ? "! \(flag) \(text)" : "\(flag) \(text)")
    }

    private static func appendInterfaces(_ rule: Rule, to words: inout Words) {
        if let match = rule.inInterface {
            words.append(match.inverted ? "! -i \(match.name)" : "-i \(match.name)")
        }
        if let match = rule.outInterface {
            words.append(match.inverted ? "! -o \(match.name)" : "-o \(match.name)")
        }
    }

    private static func appendOther(_ match: Match, to words: inout Words) {
        switch match {
        case .statistic(let probability):
            words.append("-m statistic --mode random --probability \(probability.text)")
        case .mark(let mark):
            words.append("-m mark")
            words.append(
                (mark.inverted ? "! --mark " : "--mark ") + hex(mark.value)
                    + (mark.mask == .max ? "" : "/" + hex(mark.mask)))
        case .recent(let recent):
            words.append("-m recent --name \(recent.name)")
            switch recent.action {
            case .set:
                words.append("--set")
            case .check(let seconds, let reap):
                words.append("--rcheck")
                if let seconds { words.append("--seconds \(seconds)") }
                if reap { words.append("--reap") }
            }
        case .conntrack(let conntrack):
            words.append("-m conntrack")
            let states = conntrack.states.names.joined(separator: ",")
            words.append(conntrack.inverted ? "! --ctstate \(states)" : "--ctstate \(states)")
        case .comment, .addressType, .ports:
            preconditionFailure("handled by the caller")
        }
    }

    private static func appendTarget(_ target: Target, family: IPFamily, to words: inout Words) {
        switch target {
        case .none:
            break
        case .jump(let chain):
            words.append("-j \(chain)")
        case .goto(let chain):
            words.append("-g \(chain)")
        case .accept:
            words.append("-j ACCEPT")
        case .drop:
            words.append("-j DROP")
        case .return:
            words.append("-j RETURN")
        case .reject(let type):
            words.append(type == .portUnreachable ? "-j REJECT" : "-j REJECT --reject-with \(type.spelling(for: family))")
        case .dnat(let address, let port):
            let destination = port.map { address.joined(port: $0) } ?? address.description
            words.append("-j DNAT --to-destination \(destination)")
        case .masquerade(let randomFully):
            words.append(randomFully ? "-j MASQUERADE --random-fully" : "-j MASQUERADE")
        case .mark(let value, let mask):
            if value == mask {
                words.append("-j MARK --or-mark \(hex(value))")
            } else if mask == 0 {
                words.append("-j MARK --xor-mark \(hex(value))")
            } else {
                words.append("-j MARK --set-xmark \(hex(value))/\(hex(mask))")
            }
        }
    }

    public static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }

    /// Quotes a word for iptables-restore when it holds anything its tokenizer would split or
    /// interpret; `"` and `\` inside quotes are escaped with `\`.
    public static func quoted(_ text: String) -> String {
        let plain =
            !text.isEmpty
            && text.utf8.allSatisfy { byte in
                byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "'")
                    && byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "#")
            }
        if plain { return text }
        var out = "\""
        for character in text {
            // iptables-restore reads one line per rule and has no escape for control characters:
            // they are written as '?', so no text can end a rule early or start another.
            if character.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                out.append("?")
                continue
            }
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        out.append("\"")
        return out
    }

    /// Appends space-separated words.
    struct Words {
        var out: String
        var first = true

        init(out: String) { self.out = out }

        mutating func append(_ word: String) {
            if !first { out += " " }
            first = false
            out += word
        }
    }
}
