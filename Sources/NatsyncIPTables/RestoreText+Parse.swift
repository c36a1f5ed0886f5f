import NatsyncNet

/// A line of iptables-restore text that could not be read.
public struct RestoreTextError: Error, Hashable, Sendable, CustomStringConvertible {
    /// 1-based line number, when parsing a whole document.
    public var line: Int?
    public var message: String

    public init(line: Int? = nil, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String {
        line.map { "line \($0): \(message)" } ?? message
    }
}

extension RestoreText {
    /// Parses an iptables-restore document (or `iptables-save` output) into tables.
    ///
    /// `:CHAIN` lines declare chains (built-in chain policies are accepted and ignored), `-A` and
    /// `-I CHAIN [N]` add rules, `-X` marks deletions, `#` lines and blank lines are skipped.
    /// Rules are read in either kube-proxy's or iptables-save's argument layout.
    public static func parse(_ text: String) throws(RestoreTextError) -> [TableContents] {
        var tables: [TableContents] = []
        var current: TableContents?
        var chainIndex: [ChainName: Int] = [:]
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.first == "#" { continue }
            do throws(RestoreTextError) {
                if line.first == "*" {
                    guard current == nil else { throw RestoreTextError("table started before COMMIT") }
                    guard let table = TableName(rawValue: String(line.dropFirst())) else {
                        throw RestoreTextError("unknown table \(line.dropFirst())")
                    }
                    current = TableContents(table: table)
                    chainIndex = [:]
                    continue
                }
                guard var table = current else { throw RestoreTextError("line outside a table") }
                if line == "COMMIT" {
                    tables.append(table)
                    current = nil
                    continue
                }
                if line.first == ":" {
                    let name = ChainName(String(line.dropFirst().prefix { $0 != " " }))
                    guard !name.rawValue.isEmpty else { throw RestoreTextError("empty chain name") }
                    if !name.isBuiltin && chainIndex[name] == nil {
                        chainIndex[name] = table.chains.count
                        table.chains.append(Chain(name))
                    }
                    current = table
                    continue
                }
                var words = try tokenize(line)
                guard words.count >= 2 else { throw RestoreTextError("incomplete command \(line)") }
                let command = words.removeFirst()
                let chain = ChainName(words.removeFirst())
                switch command {
                case "-A", "--append", "-I", "--insert":
                    var position: Int?
                    if command.hasPrefix("-I") || command == "--insert", let first = words.first, let number = Int(first) {
                        // iptables numbers rules from 1 ("Invalid rule number" otherwise).
                        guard number >= 1 else { throw RestoreTextError("invalid rule number \(number) in \(line)") }
                        position = number
                        words.removeFirst()
                    }
                    let rule = try parseRule(words)
                    if chain.isBuiltin {
                        let jump = BuiltinJump(chain: chain, rule: rule)
                        if let position {
                            let existing = table.builtinJumps.indices.filter { table.builtinJumps[$0].chain == chain }
                            let index = position - 1 < existing.count ? existing[position - 1] : table.builtinJumps.count
                            table.builtinJumps.insert(jump, at: index)
                        } else if command.hasPrefix("-I") || command == "--insert" {
                            let index = table.builtinJumps.firstIndex { $0.chain == chain } ?? table.builtinJumps.count
                            table.builtinJumps.insert(jump, at: index)
                        } else {
                            table.builtinJumps.append(jump)
                        }
                    } else {
                        guard let index = chainIndex[chain] else {
                            throw RestoreTextError("chain \(chain) is not declared")
                        }
                        if let position {
                            table.chains[index].rules.insert(rule, at: min(position - 1, table.chains[index].rules.count))
                        } else if command.hasPrefix("-I") || command == "--insert" {
                            table.chains[index].rules.insert(rule, at: 0)
                        } else {
                            table.chains[index].rules.append(rule)
                        }
                    }
                case "-X", "--delete-chain":
                    table.deletedChains.append(chain)
                    if let index = chainIndex.removeValue(forKey: chain) {
                        table.chains.remove(at: index)
                        chainIndex = Dictionary(uniqueKeysWithValues: table.chains.enumerated().map { ($1.name, $0) })
                    }
                default:
                    throw RestoreTextError("unsupported command \(command)")
                }
                current = table
            } catch {
                throw RestoreTextError(line: lineNumber, error.message)
            }
        }
        if current != nil { throw RestoreTextError(line: lineNumber, "missing COMMIT") }
        return tables
    }

    /// Parses the arguments of one rule (everything after `-A CHAIN `).
    public static func parseRule(_ arguments: some StringProtocol) throws(RestoreTextError) -> Rule {
        try parseRule(try tokenize(Substring(arguments)))
    }

    /// Splits a line into words as iptables-restore does: blanks separate words, `"..."` groups
    /// them, and `\` escapes the next character inside quotes.
    static func tokenize(_ line: Substring) throws(RestoreTextError) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quoted = false
        var escaped = false
        for character in line {
            if escaped {
                word.append(character)
                escaped = false
            } else if quoted {
                if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    quoted = false
                } else {
                    word.append(character)
                }
            } else if character == "\"" {
                quoted = true
                inWord = true
            } else if character == " " || character == "\t" || character == "\r" {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        guard !quoted && !escaped else { throw RestoreTextError("unterminated quote") }
        if inWord { words.append(word) }
        return words
    }

    private static func parseRule(_ words: [String]) throws(RestoreTextError) -> Rule {
        var parser = RuleParser(words: words)
        return try parser.parse()
    }
}

/// Reads one rule's words. Options after `-m NAME` belong to the most recent match that takes
/// them, so kube-proxy's `-m tcp -p tcp -d IP --dport 80` and iptables-save's
/// `-d IP/32 -p tcp -m tcp --dport 80` read the same.
private struct RuleParser {
    var words: [String]
    var index = 0
    var rule = Rule(target: .none)
    var matches: [PartialMatch] = []
    var targetName: String?
    var targetOptions: [(String, String?)] = []

    enum PartialMatch {
        case comment(String?)
        case ports(TransportProtocol, PortMatch)
        case statistic(mode: String?, probability: Probability?)
        case mark(MarkMatch?)
        case addressType(AddressTypeMatch)
        case recent(name: String?, action: RecentMatch.Action?, seconds: UInt32?, reap: Bool)
        case conntrack(ConntrackMatch?)
    }

    init(words: [String]) { self.words = words }

    mutating func next(_ option: String) throws(RestoreTextError) -> String {
        guard index < words.count else { throw RestoreTextError("\(option) needs a value") }
        defer { index += 1 }
        return words[index]
    }

    mutating func parse() throws(RestoreTextError) -> Rule {
        var inverted = false
        while index < words.count {
            let word = words[index]
            index += 1
            if word == "!" {
                inverted = true
                continue
            }
            defer { inverted = false }
            switch word {
            case "-s", "--source", "-d", "--destination":
                let value = try next(word)
                guard let cidr = CIDR(value, allowBareAddress: true) else {
                    throw RestoreTextError("invalid address \(value) for \(word)")
                }
                if word.hasPrefix("-s") || word == "--source" {
                    rule.source = AddressMatch(cidr, inverted: inverted)
                } else {
                    rule.destination = AddressMatch(cidr, inverted: inverted)
                }
            case "-p", "--protocol":
                let value = try next(word)
                guard let proto = TransportProtocol(iptablesName: value) else {
                    throw RestoreTextError("unsupported protocol \(value)")
                }
                rule.protocol = ProtocolMatch(proto, inverted: inverted)
            case "-i", "--in-interface":
                rule.inInterface = InterfaceMatch(try next(word), inverted: inverted)
            case "-o", "--out-interface":
                rule.outInterface = InterfaceMatch(try next(word), inverted: inverted)
            case "-m", "--match":
                let name = try next(word)
                switch name {
                case "comment": matches.append(.comment(nil))
                case "statistic": matches.append(.statistic(mode: nil, probability: nil))
                case "mark": matches.append(.mark(nil))
                case "addrtype": matches.append(.addressType(AddressTypeMatch()))
                case "recent": matches.append(.recent(name: nil, action: nil, seconds: nil, reap: false))
                case "conntrack": matches.append(.conntrack(nil))
                default:
                    guard let proto = TransportProtocol(iptablesName: name) else {
                        throw RestoreTextError("unsupported match \(name)")
                    }
                    matches.append(.ports(proto, PortMatch()))
                }
            case "-j", "--jump", "-g", "--goto":
                let name = try next(word)
                if word == "-g" || word == "--goto" {
                    rule.target = .goto(ChainName(name))
                } else {
                    targetName = name
                }
            default:
                guard word.hasPrefix("--") else { throw RestoreTextError("unexpected word \(word)") }
                if targetName != nil {
                    try targetOption(word)
                } else {
                    try matchOption(word, inverted: inverted)
                }
            }
        }
        for match in matches {
            rule.matches.append(try finish(match))
        }
        if let targetName {
            rule.target = try target(named: targetName)
        }
        return rule
    }

    mutating func matchOption(_ option: String, inverted: Bool) throws(RestoreTextError) {
        for position in matches.indices.reversed() {
            var match = matches[position]
            if try apply(option, inverted: inverted, to: &match) {
                matches[position] = match
                return
            }
        }
        throw RestoreTextError("unknown option \(option)")
    }

    /// Applies `option` to `match` if the match takes it.
    mutating func apply(_ option: String, inverted: Bool, to match: inout PartialMatch) throws(RestoreTextError) -> Bool {
        switch (match, option) {
        case (.comment(nil), "--comment"):
            match = .comment(try next(option))
        case (.ports(let proto, var ports), "--dport"), (.ports(let proto, var ports), "--destination-port"):
            ports.destination = try portRange(try next(option))
            ports.invertDestination = inverted
            match = .ports(proto, ports)
        case (.ports(let proto, var ports), "--sport"), (.ports(let proto, var ports), "--source-port"):
            ports.source = try portRange(try next(option))
            ports.invertSource = inverted
            match = .ports(proto, ports)
        case (.statistic(_, let probability), "--mode"):
            let mode = try next(option)
            guard mode == "random" else { throw RestoreTextError("unsupported statistic mode \(mode)") }
            match = .statistic(mode: mode, probability: probability)
        case (.statistic(let mode, _), "--probability"):
            let text = try next(option)
            guard let probability = Probability(text: text) else {
                throw RestoreTextError("invalid probability \(text)")
            }
            match = .statistic(mode: mode, probability: probability)
        case (.mark(nil), "--mark"):
            let (value, mask) = try valueAndMask(try next(option))
            match = .mark(MarkMatch(value: value, mask: mask ?? .max, inverted: inverted))
        case (.addressType(var info), "--src-type"), (.addressType(var info), "--dst-type"):
            let text = try next(option)
            guard let type = AddressType(rawValue: text) else {
                throw RestoreTextError("unsupported address type \(text)")
            }
            if option == "--src-type" {
                info.source = type
                info.invertSource = inverted
            } else {
                info.destination = type
                info.invertDestination = inverted
            }
            match = .addressType(info)
        case (.recent(_, let action, let seconds, let reap), "--name"):
            match = .recent(name: try next(option), action: action, seconds: seconds, reap: reap)
        case (.recent(let name, _, let seconds, let reap), "--set"):
            match = .recent(name: name, action: .set, seconds: seconds, reap: reap)
        case (.recent(let name, _, let seconds, let reap), "--rcheck"):
            match = .recent(name: name, action: .check(seconds: nil, reap: false), seconds: seconds, reap: reap)
        case (.recent(let name, let action, _, let reap), "--seconds"):
            let text = try next(option)
            guard let seconds = UInt32(text) else { throw RestoreTextError("invalid --seconds \(text)") }
            match = .recent(name: name, action: action, seconds: seconds, reap: reap)
        case (.recent(let name, let action, let seconds, _), "--reap"):
            match = .recent(name: name, action: action, seconds: seconds, reap: true)
        case (.recent, "--rsource"):
            break
        case (.recent, "--mask"):
            let text = try next(option)
            guard text == "255.255.255.255" || text == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" else {
                throw RestoreTextError("unsupported recent --mask \(text)")
            }
        case (.conntrack(nil), "--ctstate"):
            var states = ConntrackStates()
            for name in try next(option).split(separator: ",") {
                guard let state = ConntrackStates.names.first(where: { $0.1 == name })?.0 else {
                    throw RestoreTextError("unknown conntrack state \(name)")
                }
                states.insert(state)
            }
            match = .conntrack(ConntrackMatch(states: states, inverted: inverted))
        default:
            return false
        }
        return true
    }

    func finish(_ match: PartialMatch) throws(RestoreTextError) -> Match {
        switch match {
        case .comment(let text?):
            return .comment(text)
        case .ports(let proto, let ports):
            guard rule.protocol?.protocol == proto, rule.protocol?.inverted == false else {
                throw RestoreTextError("-m \(proto.iptablesName) needs -p \(proto.iptablesName)")
            }
            return .ports(proto, ports)
        case .statistic("random", let probability?):
            return .statistic(probability)
        case .mark(let mark?):
            return .mark(mark)
        case .addressType(let info) where info.source != nil || info.destination != nil:
            return .addressType(info)
        case .recent(let name?, .set, nil, false):
            return .recent(RecentMatch(name: name, action: .set))
        case .recent(let name?, .check, let seconds, let reap):
            return .recent(RecentMatch(name: name, action: .check(seconds: seconds, reap: reap)))
        case .conntrack(let conntrack?):
            return .conntrack(conntrack)
        case .comment: throw RestoreTextError("-m comment needs --comment")
        case .statistic: throw RestoreTextError("-m statistic needs --mode random --probability P")
        case .mark: throw RestoreTextError("-m mark needs --mark")
        case .addressType: throw RestoreTextError("-m addrtype needs --src-type or --dst-type")
        case .recent: throw RestoreTextError("-m recent needs --name and one of --set, --rcheck")
        case .conntrack: throw RestoreTextError("-m conntrack needs --ctstate")
        }
    }

    mutating func targetOption(_ option: String) throws(RestoreTextError) {
        switch option {
        case "--random-fully":
            targetOptions.append((option, nil))
        default:
            targetOptions.append((option, try next(option)))
        }
    }

    func target(named name: String) throws(RestoreTextError) -> Target {
        var options = targetOptions
        func take(_ option: String) -> String?? {
            guard let index = options.firstIndex(where: { $0.0 == option }) else { return nil }
            return .some(options.remove(at: index).1)
        }
        let target: Target
        switch name {
        case "ACCEPT": target = .accept
        case "DROP": target = .drop
        case "RETURN": target = .return
        case "REJECT":
            if let spelling = take("--reject-with") {
                guard let spelling, let type = RejectType(spelling: spelling) else {
                    throw RestoreTextError("unsupported --reject-with \(spelling ?? "")")
                }
                target = .reject(type)
            } else {
                target = .reject(.portUnreachable)
            }
        case "DNAT":
            guard let destination = take("--to-destination") ?? nil else {
                throw RestoreTextError("DNAT needs --to-destination")
            }
            target = try dnat(destination)
        case "MASQUERADE":
            target = .masquerade(randomFully: take("--random-fully") != nil)
        case "MARK":
            if let value = take("--or-mark") ?? nil {
                target = .orMark(try number(value))
            } else if let value = take("--xor-mark") ?? nil {
                target = .xorMark(try number(value))
            } else if let value = take("--set-xmark") ?? nil {
                let (mark, mask) = try valueAndMask(value)
                target = .mark(value: mark, mask: mask ?? .max)
            } else if let value = take("--set-mark") ?? nil {
                let (mark, mask) = try valueAndMask(value)
                target = .mark(value: mark, mask: mark | (mask ?? .max))
            } else {
                throw RestoreTextError("MARK needs --or-mark, --xor-mark, --set-xmark or --set-mark")
            }
        default:
            guard name.utf8.count <= ChainName.maximumLength, !name.hasPrefix("-") else {
                throw RestoreTextError("invalid target \(name)")
            }
            target = .jump(ChainName(name))
        }
        if let leftover = options.first {
            throw RestoreTextError("unknown option \(leftover.0) for target \(name)")
        }
        return target
    }

    func dnat(_ text: String) throws(RestoreTextError) -> Target {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), let address = IPAddress(text[text.index(after: text.startIndex)..<close])
            else { throw RestoreTextError("invalid DNAT destination \(text)") }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return .dnat(address, port: nil) }
            guard rest.first == ":", let port = UInt16(rest.dropFirst()) else {
                throw RestoreTextError("invalid DNAT destination \(text)")
            }
            return .dnat(address, port: port)
        }
        if let address = IPAddress(text) { return .dnat(address, port: nil) }
        guard let colon = text.lastIndex(of: ":"), let address = IPAddress(text[..<colon]),
            let port = UInt16(text[text.index(after: colon)...])
        else { throw RestoreTextError("invalid DNAT destination \(text)") }
        return .dnat(address, port: port)
    }

    func portRange(_ text: String) throws(RestoreTextError) -> PortRange {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let lower = UInt16(parts[0]) else { throw RestoreTextError("invalid port \(text)") }
        guard parts.count == 2 else { return PortRange(lower) }
        guard let upper = UInt16(parts[1]), upper >= lower else { throw RestoreTextError("invalid port range \(text)") }
        return PortRange(lower, upper)
    }

    func number(_ text: String) throws(RestoreTextError) -> UInt32 {
        let value = text.hasPrefix("0x") || text.hasPrefix("0X") ? UInt32(text.dropFirst(2), radix: 16) : UInt32(text)
        guard let value else { throw RestoreTextError("invalid number \(text)") }
        return value
    }

    func valueAndMask(_ text: String) throws(RestoreTextError) -> (UInt32, UInt32?) {
        guard let slash = text.firstIndex(of: "/") else { return (try number(text), nil) }
        return (try number(String(text[..<slash])), try number(String(text[text.index(after: slash)...])))
    }
}
