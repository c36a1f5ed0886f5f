import Foundation

/// kubectl's YAML (`kubectl get ... -o yaml`: block mappings and sequences, plain and quoted
/// scalars) read without building a document tree: a `List`'s items are found by their lines,
/// and each is transcoded to JSON text on its own, over the cores, for the JSON wire reader.
///
/// libyaml's events for a 10,000-service list, built into Yams nodes and decoded through generic
/// values, took a hundred times as long as the same objects as JSON. This reader answers only
/// for text it reads exactly as Yams would: anything else (anchors, aliases, tags, flow
/// collections other than `{}` and `[]`, block and multi-line scalars, merge keys, scalars Yams
/// would resolve as anything but a string, a decimal integer, a bool or null, tabs, odd
/// indentation) makes it give up, and the caller decodes the file the general way.
enum KubectlYAML {
    /// A `List` document cut into its parts: the text around `items` as JSON, and each item's
    /// lines (a sequence entry, from its `-`).
    struct List {
        var kind: String
        var items: [Range<Int>]
        /// The column of the items' `-`.
        var itemColumn: Int
    }

    /// The parts of a YAML `List` (any `*List` kind with `items`), or nil when the text is not
    /// one this reader reads exactly.
    static func list(_ bytes: UnsafeBufferPointer<UInt8>) -> List? {
        var lines = Lines(bytes, in: 0..<bytes.count)
        // A first `---` (a manifest's habit) starts the one document; any other marker is not kubectl's.
        if lines.current != nil, lines.column == 0, lines.rest.elementsEqual("---".utf8) { lines.advance() }
        var kind: String?
        var items: [Range<Int>]?
        var itemColumn = 0
        var keys = Set<[UInt8]>()
        while lines.current != nil {
            guard lines.column == 0, let key = Transcoder.plainKey(lines.rest), keys.insert(Array(key.name)).inserted else { return nil }
            let name = key.name
            if name.elementsEqual("items".utf8) {
                guard key.value.allSatisfy({ $0 == UInt8(ascii: " ") }), let line = lines.current else { return nil }
                // The items are split by where their lines start alone; each item's transcoder
                // checks its bytes, comments before the first one included.
                let block = min(line.upperBound + 1, bytes.count)
                var scan = Lines(bytes, in: block..<bytes.count, checked: false)
                guard let found = itemEntries(&scan, from: block) else { return nil }
                items = found.entries
                itemColumn = found.column
                lines = Lines(bytes, in: (scan.current?.lowerBound ?? bytes.count)..<bytes.count)
                continue
            }
            // Every other member is transcoded, so the text is checked as Yams would check it.
            var transcoder = Transcoder(lines)
            guard transcoder.memberValue(column: 0) else { return nil }
            lines = transcoder.lines
            if name.elementsEqual("kind".utf8) {
                guard let text = try? JSONSerialization.jsonObject(with: Data(transcoder.out), options: .fragmentsAllowed) as? String
                else { return nil }
                kind = text
            }
        }
        guard !lines.refused, let kind, let items, kind == "List" || kind.hasSuffix("List") else { return nil }
        return List(kind: kind, items: items, itemColumn: itemColumn)
    }

    /// The entries of the block sequence that starts at `lines` (the value of `items:`), each from
    /// its `-` to the line before the next; leaves `lines` at the first line after the sequence.
    static func itemEntries(_ lines: inout Lines, from block: Int) -> (entries: [Range<Int>], column: Int)? {
        guard lines.current != nil, lines.isSequenceEntry else {
            // `items:` with nothing under it is null, not a list: the general path says so.
            return nil
        }
        let column = lines.column
        var entries: [Range<Int>] = []
        var start = block
        lines.advance()
        while let line = lines.current {
            if lines.column < column || (lines.column == column && !lines.isSequenceEntry) {
                guard lines.column == 0 else { return nil }
                break
            }
            if lines.column == column {
                entries.append(start..<line.lowerBound)
                start = line.lowerBound
            }
            lines.advance()
        }
        guard !lines.refused else { return nil }
        entries.append(start..<(lines.current?.lowerBound ?? lines.end))
        return (entries, column)
    }

    /// One item's text (an entry of `list`) as JSON, or nil when this reader cannot read it exactly.
    static func json(_ bytes: UnsafeBufferPointer<UInt8>, item: Range<Int>, column: Int) -> [UInt8]? {
        var transcoder = Transcoder(Lines(bytes, in: item))
        guard transcoder.lines.column == column, transcoder.sequenceEntry(column: column), transcoder.lines.atEnd,
            !transcoder.lines.refused
        else {
            return nil
        }
        return transcoder.out
    }

    /// One item's text as a document of its own, for Yams: the entry's `-` made a space, so its
    /// mapping stands at the same column.
    static func document(_ bytes: UnsafeBufferPointer<UInt8>, item: Range<Int>, column: Int) -> String {
        var text = Array(bytes[item])
        let entry = Lines(bytes, in: item)
        if entry.isSequenceEntry { text[entry.contentStart - item.lowerBound] = UInt8(ascii: " ") }
        return String(decoding: text, as: UTF8.self)
    }
}

/// The significant lines of a range of text: blank lines and comment lines are passed over (their
/// bytes still checked), and a line's content may start after a sequence entry's `- `.
struct Lines {
    let bytes: UnsafeBufferPointer<UInt8>
    let end: Int
    /// The current line (without its newline), or nil at the end.
    private(set) var current: Range<Int>?
    /// Where the current line starts, and where its content starts and at which column.
    private(set) var lineStart = 0
    var contentStart = 0
    var column = 0
    /// Set when a line has a character Yams would refuse or this reader does not read (a tab, a
    /// carriage return, a control character, a byte order mark, a non-printable character).
    private(set) var refused = false

    /// Whether every byte is checked; the items' splitter only looks at where lines start (each
    /// item's transcoder checks its bytes).
    private let checked: Bool

    init(_ bytes: UnsafeBufferPointer<UInt8>, in range: Range<Int>, checked: Bool = true) {
        self.bytes = bytes
        self.checked = checked
        end = range.upperBound
        var next = range.lowerBound
        load(from: &next)
        self.next = next
    }

    private var next = 0

    /// The bytes from the content start to the end of the line.
    var rest: UnsafeBufferPointer<UInt8>.SubSequence {
        bytes[contentStart..<(current?.upperBound ?? contentStart)]
    }

    /// Whether the content is a sequence entry: `-` then a space or the end of the line.
    var isSequenceEntry: Bool {
        guard let line = current, contentStart < line.upperBound, bytes[contentStart] == UInt8(ascii: "-") else { return false }
        return contentStart + 1 == line.upperBound || bytes[contentStart + 1] == UInt8(ascii: " ")
    }

    mutating func advance() {
        var position = next
        load(from: &position)
        next = position
    }

    /// Finds the next significant line from `position`.
    private mutating func load(from position: inout Int) {
        while position < end {
            let start = position
            var content = start
            while content < end, bytes[content] == UInt8(ascii: " ") { content += 1 }
            var stop = content
            if checked {
                while stop < end, bytes[stop] != UInt8(ascii: "\n") {
                    if bytes[stop] != UInt8(ascii: " ") && !Self.printable(bytes, at: stop, end: end) { refused = true }
                    stop += 1
                }
            } else if stop < end {
                let base = bytes.baseAddress!
                stop = memchr(base + stop, 0x0A, end - stop).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base } ?? end
            }
            position = stop < end ? stop + 1 : stop
            if refused {
                current = nil
                return
            }
            if content == stop || bytes[content] == UInt8(ascii: "#") { continue }
            current = start..<stop
            lineStart = start
            contentStart = content
            column = content - start
            return
        }
        current = nil
    }

    /// Whether the character at `index` is one Yams reads in this reader's subset: printable
    /// ASCII, or a UTF-8 sequence other than C1 controls, the line and paragraph separators, byte
    /// order marks and U+FFFE/U+FFFF.
    /// Tabs and carriage returns are refused (they change how YAML reads indentation and lines).
    static func printable(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, end: Int) -> Bool {
        let byte = bytes[index]
        if byte < 0x80 { return byte >= 0x20 && byte != 0x7F }
        if byte == 0xC2, index + 1 < end { return bytes[index + 1] >= 0xA0 }
        // U+2028 and U+2029 are line breaks to libyaml.
        if byte == 0xE2, index + 2 < end, bytes[index + 1] == 0x80, bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9 { return false }
        if byte == 0xEF, index + 2 < end {
            let second = bytes[index + 1]
            let third = bytes[index + 2]
            if second == 0xBB && third == 0xBF { return false }
            if second == 0xBF && (third == 0xBE || third == 0xBF) { return false }
        }
        return true
    }

    var atEnd: Bool { current == nil }
}

/// Block YAML to JSON text, for the subset ``KubectlYAML`` reads.
struct Transcoder {
    var lines: Lines
    var out: [UInt8] = []
    /// The keys of the mappings being written, innermost last.
    private var keys: [Range<Int>] = []

    init(_ lines: Lines) {
        self.lines = lines
        out.reserveCapacity(4096)
    }

    /// A mapping key and the rest of its line after the `:`.
    struct Key {
        var name: UnsafeBufferPointer<UInt8>.SubSequence
        var value: UnsafeBufferPointer<UInt8>.SubSequence
    }

    /// A plain key (`name:` then a space or the end of the line) that Yams reads as the same string.
    static func plainKey(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> Key? {
        guard let first = text.first, !Self.indicators.contains(first) else { return nil }
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: ":") {
                let after = index + 1
                if after == text.endIndex || text[after] == UInt8(ascii: " ") {
                    let name = text[text.startIndex..<index]
                    // Trailing spaces before the colon belong to no key Yams would give the same.
                    guard name.last != UInt8(ascii: " "), name.count < 1000, !Self.resolvesSpecially(name, asKey: true) else { return nil }
                    return Key(name: name, value: text[min(after, text.endIndex)..<text.endIndex])
                }
            } else if byte == UInt8(ascii: "#"), index > text.startIndex, text[index - 1] == UInt8(ascii: " ") {
                return nil
            }
            index += 1
        }
        return nil
    }

    /// Characters that start something other than a plain scalar.
    static let indicators: Set<UInt8> = Set("-?:,[]{}#&*!|>'\"%@`".utf8)

    // MARK: Nodes

    /// Writes the value of the mapping member on the current line (its key at `column`); leaves
    /// the lines after it.
    mutating func memberValue(column: Int) -> Bool {
        guard let key = Self.plainKey(lines.rest) else { return false }
        return value(after: key.value, column: column)
    }

    /// A member's value: a scalar on its line, or the block under it (more indented, or a
    /// sequence at the key's own column), or null.
    private mutating func value(after rest: UnsafeBufferPointer<UInt8>.SubSequence, column: Int) -> Bool {
        let inline = rest.drop { $0 == UInt8(ascii: " ") }
        if inline.isEmpty || inline.first == UInt8(ascii: "#") {
            lines.advance()
            if !lines.atEnd && lines.column > column { return block(column: lines.column) }
            if !lines.atEnd && lines.column == column && lines.isSequenceEntry { return sequence(column: column) }
            out.append(contentsOf: "null".utf8)
            return true
        }
        guard scalar(inline) else { return false }
        lines.advance()
        // A more indented line after a scalar continues it (a multi-line scalar) or is an error.
        return lines.atEnd || lines.column <= column
    }

    /// A block node whose first line is the current one, at `column`.
    private mutating func block(column: Int) -> Bool {
        lines.isSequenceEntry ? sequence(column: column) : mapping(column: column)
    }

    private mutating func mapping(column: Int) -> Bool {
        out.append(UInt8(ascii: "{"))
        var first = true
        // Yams refuses a document with a duplicate key anywhere, also in members natsync never
        // reads: this mapping's keys so far, on a stack shared by the nested mappings.
        let frame = keys.count
        defer { keys.removeSubrange(frame...) }
        while !lines.atEnd && lines.column == column {
            guard !lines.isSequenceEntry, let key = Self.plainKey(lines.rest) else { return false }
            guard !keys[frame...].contains(where: { lines.bytes[$0].elementsEqual(key.name) }) else { return false }
            keys.append(key.name.startIndex..<key.name.endIndex)
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            guard appendString(key.name) else { return false }
            out.append(UInt8(ascii: ":"))
            guard value(after: key.value, column: column) else { return false }
        }
        out.append(UInt8(ascii: "}"))
        return lines.atEnd || lines.column < column
    }

    private mutating func sequence(column: Int) -> Bool {
        out.append(UInt8(ascii: "["))
        var first = true
        while !lines.atEnd && lines.column == column && lines.isSequenceEntry {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            guard sequenceEntry(column: column) else { return false }
        }
        out.append(UInt8(ascii: "]"))
        // A line at the same column ends it: the next key of the mapping this sequence is a value of.
        return lines.atEnd || lines.column <= column
    }

    /// One `- ` entry at `column`: a scalar, a mapping or sequence starting on its line, or the
    /// block under it.
    mutating func sequenceEntry(column: Int) -> Bool {
        guard lines.isSequenceEntry, let line = lines.current else { return false }
        var start = lines.contentStart + 1
        while start < line.upperBound && lines.bytes[start] == UInt8(ascii: " ") { start += 1 }
        let rest = lines.bytes[start..<line.upperBound]
        if rest.isEmpty || rest.first == UInt8(ascii: "#") {
            lines.advance()
            if !lines.atEnd && lines.column > column { return block(column: lines.column) }
            out.append(contentsOf: "null".utf8)
            return true
        }
        // The entry's content is a line of its own at its column.
        lines.contentStart = start
        lines.column = start - lines.lineStart
        if lines.isSequenceEntry || Self.plainKey(rest) != nil {
            return block(column: lines.column) && (lines.atEnd || lines.column <= column)
        }
        guard scalar(rest) else { return false }
        lines.advance()
        return lines.atEnd || lines.column <= column
    }

    // MARK: Scalars

    /// Writes a scalar that makes up the rest of a line (a trailing comment allowed) as JSON.
    private mutating func scalar(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        guard let first = text.first else { return false }
        if first == UInt8(ascii: "\"") || first == UInt8(ascii: "'") { return quoted(text, double: first == UInt8(ascii: "\"")) }
        if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            let close = first == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            guard text.count >= 2, text[text.startIndex + 1] == close, Self.onlyComment(text.dropFirst(2)) else { return false }
            out.append(first)
            out.append(close)
            return true
        }
        // `-` starts a plain scalar (`-1`) unless a space follows (a sequence entry, out of place here).
        if Self.indicators.contains(first) {
            guard first == UInt8(ascii: "-"), text.count > 1, text[text.startIndex + 1] != UInt8(ascii: " ") else { return false }
        }
        // A plain scalar ends at ` #`; a `: ` inside it is an error Yams reports.
        var stop = text.startIndex
        while stop < text.endIndex {
            let byte = text[stop]
            if byte == UInt8(ascii: "#") && text[stop - 1] == UInt8(ascii: " ") { break }
            if byte == UInt8(ascii: ":") && (stop + 1 == text.endIndex || text[stop + 1] == UInt8(ascii: " ")) { return false }
            stop += 1
        }
        var plain = text[text.startIndex..<stop]
        while plain.last == UInt8(ascii: " ") { plain = plain.dropLast() }
        switch Self.resolve(plain) {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer: out.append(contentsOf: plain)
        case .string: return appendString(plain)
        case .other: return false
        }
        return true
    }

    private static func onlyComment(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        let rest = text.drop { $0 == UInt8(ascii: " ") }
        return rest.isEmpty || (rest.first == UInt8(ascii: "#") && rest.count < text.count)
    }

    /// A single- or double-quoted scalar closed on its line, as a JSON string.
    private mutating func quoted(_ text: UnsafeBufferPointer<UInt8>.SubSequence, double: Bool) -> Bool {
        var value: [UInt8] = []
        var index = text.startIndex + 1
        let quote = double ? UInt8(ascii: "\"") : UInt8(ascii: "'")
        while true {
            guard index < text.endIndex else { return false }
            let byte = text[index]
            if byte == quote {
                if !double && index + 1 < text.endIndex && text[index + 1] == quote {
                    value.append(quote)
                    index += 2
                    continue
                }
                break
            }
            if double && byte == UInt8(ascii: "\\") {
                guard index + 1 < text.endIndex else { return false }
                let escaped = text[index + 1]
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): value.append(escaped)
                case UInt8(ascii: "n"): value.append(0x0A)
                case UInt8(ascii: "t"): value.append(0x09)
                case UInt8(ascii: "r"): value.append(0x0D)
                case UInt8(ascii: "b"): value.append(0x08)
                case UInt8(ascii: "f"): value.append(0x0C)
                default: return false
                }
                index += 2
                continue
            }
            value.append(byte)
            index += 1
        }
        return Self.onlyComment(text[(index + 1)...]) && appendString(value[...])
    }

    /// Writes `text` as a JSON string.
    @discardableResult
    private mutating func appendString<S: Collection>(_ text: S) -> Bool where S.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        for byte in text {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case ..<0x20: return false
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return true
    }

    enum Resolved: Equatable {
        case null
        case bool(Bool)
        case integer
        case string
        /// Something Yams reads as a number, time or special key that JSON would not say the same way.
        case other
    }

    /// How Yams' default resolver reads a plain scalar, as far as this reader needs: null, a
    /// bool spelled `true`/`false`, a decimal integer JSON writes the same, a string, or other.
    static func resolve(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> Resolved {
        guard let first = text.first else { return .null }
        switch first {
        case UInt8(ascii: "~"), UInt8(ascii: "n"), UInt8(ascii: "N"):
            if Self.is(text, oneOf: ["~", "null", "Null", "NULL"]) { return .null }
        case UInt8(ascii: "t"), UInt8(ascii: "T"):
            if Self.is(text, oneOf: ["true", "True", "TRUE"]) { return .bool(true) }
        case UInt8(ascii: "f"), UInt8(ascii: "F"):
            if Self.is(text, oneOf: ["false", "False", "FALSE"]) { return .bool(false) }
        default:
            break
        }
        if isDecimal(text) { return .integer }
        return resolvesSpecially(text, asKey: false) ? .other : .string
    }

    private static func `is`(_ text: UnsafeBufferPointer<UInt8>.SubSequence, oneOf words: [StaticString]) -> Bool {
        words.contains { word in
            word.utf8CodeUnitCount == text.count
                && word.withUTF8Buffer { buffer in buffer.elementsEqual(text) }
        }
    }

    /// `-?(0|[1-9][0-9]*)`, at most 18 digits, not `-0`.
    static func isDecimal(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        var digits = text[...]
        if digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        guard let first = digits.first, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        if first == UInt8(ascii: "0") { return digits.count == 1 && digits.count == text.count }
        return true
    }

    /// Whether Yams' default resolver could read the plain scalar as something other than a
    /// string (a bool spelled yes/no/on/off, an int in any base or with `_` or `:`, a float, a
    /// timestamp, a merge or value key); errs on the side of yes, which only costs the fast path.
    static func resolvesSpecially(_ text: UnsafeBufferPointer<UInt8>.SubSequence, asKey: Bool) -> Bool {
        guard let first = text.first else { return asKey }
        switch first {
        case UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "o"), UInt8(ascii: "O"),
            UInt8(ascii: "<"), UInt8(ascii: "="):
            if Self.is(text, oneOf: ["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "<<", "="]) {
                return true
            }
        default:
            break
        }
        if asKey {
            return Self.is(text, oneOf: ["~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE"])
        }
        var body = text[...]
        if let sign = body.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { body = body.dropFirst() }
        guard let first = body.first else { return false }
        let isDigit = { (byte: UInt8) in byte >= 0x30 && byte <= 0x39 }
        if first == UInt8(ascii: ".") {
            // .inf, .nan, .5
            return body.count > 1
                && (isDigit(body[body.startIndex + 1]) || Self.is(body.dropFirst(), oneOf: ["inf", "Inf", "INF", "nan", "NaN", "NAN"]))
        }
        guard isDigit(first) else { return false }
        // Ints and floats: digits, `_`, at most one `.`, an exponent.
        var dots = 0
        var index = body.startIndex
        while index < body.endIndex, isDigit(body[index]) || body[index] == UInt8(ascii: "_") || body[index] == UInt8(ascii: ".") {
            if body[index] == UInt8(ascii: ".") { dots += 1 }
            index += 1
        }
        if index == body.endIndex && dots <= 1 { return true }
        if dots <= 1, index < body.endIndex, body[index] == UInt8(ascii: "e") || body[index] == UInt8(ascii: "E") { return true }
        // 0x.., 0o.., 0b..
        if first == UInt8(ascii: "0"), body.count > 1, "xob".utf8.contains(body[body.startIndex + 1]) { return true }
        // Sexagesimal: digits then `:NN` groups (Yams' int and float rules).
        if body.contains(UInt8(ascii: ":")) && body.allSatisfy({ isDigit($0) || ":_.".utf8.contains($0) }) { return true }
        // Timestamps start with a four-digit year and a dash.
        if body.count >= 5, body.prefix(4).allSatisfy(isDigit), body[body.startIndex + 4] == UInt8(ascii: "-") { return true }
        return false
    }
}
