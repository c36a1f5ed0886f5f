import Foundation
import NatsyncTestSupport
import Testing

@testable import NatsyncManifest
@testable import NatsyncWire

/// The YAML fast path must load every List exactly as the general path (Yams' document tree,
/// decoded whole) does, or leave it to that path; and it must actually read what kubectl writes.
struct KubectlYAMLTests {
    /// A JSON value with its numbers as written and its members in order (duplicates kept).
    indirect enum Tree {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Tree])
        case object([(String, Tree)])

        /// Parses JSON text; nil for anything that is not (or holds a lone surrogate).
        static func parse(_ text: String) -> Tree? {
            var scanner = Substring(text).unicodeScalars[...]
            guard let tree = value(&scanner) else { return nil }
            skipSpace(&scanner)
            return scanner.isEmpty ? tree : nil
        }

        private static func skipSpace(_ s: inout Substring.UnicodeScalarView.SubSequence) {
            while let c = s.first, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeFirst() }
        }

        private static func value(_ s: inout Substring.UnicodeScalarView.SubSequence) -> Tree? {
            skipSpace(&s)
            guard let c = s.first else { return nil }
            switch c {
            case "{":
                s.removeFirst()
                var members: [(String, Tree)] = []
                skipSpace(&s)
                if s.first == "}" {
                    s.removeFirst()
                    return .object([])
                }
                while true {
                    skipSpace(&s)
                    guard case .string(let key)? = value(&s) else { return nil }
                    skipSpace(&s)
                    guard s.popFirst() == ":", let member = value(&s) else { return nil }
                    members.append((key, member))
                    skipSpace(&s)
                    let next = s.popFirst()
                    if next == "}" { return .object(members) }
                    guard next == "," else { return nil }
                }
            case "[":
                s.removeFirst()
                var elements: [Tree] = []
                skipSpace(&s)
                if s.first == "]" {
                    s.removeFirst()
                    return .array([])
                }
                while true {
                    guard let element = value(&s) else { return nil }
                    elements.append(element)
                    skipSpace(&s)
                    let next = s.popFirst()
                    if next == "]" { return .array(elements) }
                    guard next == "," else { return nil }
                }
            case "\"":
                s.removeFirst()
                var out = String.UnicodeScalarView()
                while let c = s.popFirst() {
                    if c == "\"" { return .string(String(out)) }
                    guard c == "\\" else {
                        out.append(c)
                        continue
                    }
                    guard let e = s.popFirst() else { return nil }
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    case "b": out.append("\u{8}")
                    case "f": out.append("\u{C}")
                    case "\"", "\\", "/": out.append(e)
                    case "u":
                        let hex = String(String.UnicodeScalarView(s.prefix(4)))
                        s = s.dropFirst(4)
                        guard var code = UInt32(hex, radix: 16) else { return nil }
                        if (0xD800..<0xDC00).contains(code) {
                            guard s.popFirst() == "\\", s.popFirst() == "u",
                                let low = UInt32(String(String.UnicodeScalarView(s.prefix(4))), radix: 16),
                                (0xDC00..<0xE000).contains(low)
                            else { return nil }
                            s = s.dropFirst(4)
                            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { return nil }
                        out.append(scalar)
                    default: return nil
                    }
                }
                return nil
            default:
                var word = String.UnicodeScalarView()
                while let c = s.first, !",]} \n".unicodeScalars.contains(c) {
                    word.append(c)
                    s.removeFirst()
                }
                switch String(word) {
                case "null": return .null
                case "true": return .bool(true)
                case "false": return .bool(false)
                case let number where Double(number) != nil: return .number(number)
                default: return nil
                }
            }
        }
    }

    static let samples: [Tree] = WireSamples.read.compactMap(Tree.parse)
    static let variations: [Tree] = WireSamples.variations.compactMap(Tree.parse)

    /// How scalars are written: as kubectl does (plain unless that would read as something
    /// else), every string double-quoted, or every string single-quoted.
    enum Style: CaseIterable {
        case kubectl, doubleQuoted, singleQuoted
    }

    /// A `List` of `items` in block style, its sequence at `indent` under `items:`.
    static func list(_ items: [Tree], style: Style, indent: Int = 0, header: String = "") -> String {
        var out = header + "apiVersion: v1\nitems:\n"
        for item in items { emit(item, indent: indent, entry: true, style: style, into: &out) }
        out += "kind: List\nmetadata:\n  resourceVersion: \"\"\n"
        return out
    }

    static func emit(_ value: Tree, indent: Int, entry: Bool, style: Style, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case .object(let members) where !members.isEmpty:
            var first = true
            for (key, child) in members {
                let prefix = entry && first ? "\(pad)- " : entry ? "\(pad)  " : pad
                first = false
                let inner = indent + (entry ? 2 : 0)
                if let inline = scalar(child, style: style) {
                    out += "\(prefix)\(text(key, .kubectl)): \(inline)\n"
                } else {
                    out += "\(prefix)\(text(key, .kubectl)):\n"
                    if case .array = child {
                        emit(child, indent: inner, entry: false, style: style, into: &out)
                    } else {
                        emit(child, indent: inner + 2, entry: false, style: style, into: &out)
                    }
                }
            }
        case .array(let elements) where !elements.isEmpty:
            for element in elements {
                if let inline = scalar(element, style: style) {
                    out += "\(pad)- \(inline)\n"
                } else {
                    emit(element, indent: indent, entry: true, style: style, into: &out)
                }
            }
        default:
            out += "\(pad)\(entry ? "- " : "")\(scalar(value, style: style) ?? "null")\n"
        }
    }

    static func scalar(_ value: Tree, style: Style) -> String? {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let text): return text
        case .object(let members) where members.isEmpty: return "{}"
        case .array(let elements) where elements.isEmpty: return "[]"
        case .string(let string): return text(string, style)
        default: return nil
        }
    }

    static func text(_ text: String, _ style: Style) -> String {
        switch style {
        case .doubleQuoted: return doubleQuoted(text)
        case .singleQuoted:
            return text.contains(where: { $0.isNewline || $0 == "\t" })
                ? doubleQuoted(text) : "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
        case .kubectl:
            var bytes = Array(text.utf8)
            let plain = bytes.withUnsafeMutableBufferPointer { buffer in
                Transcoder.resolve(UnsafeBufferPointer(buffer)[...]) == .string
            }
            let safe =
                plain && !text.hasPrefix(" ") && !text.hasSuffix(" ") && !text.contains(": ") && !text.contains(" #")
                && !text.hasSuffix(":") && !text.contains(where: { $0.isNewline || $0 == "\t" })
                && text.first.map { !"-?:,[]{}#&*!|>'\"%@`".contains($0) } ?? false
            return safe ? text : doubleQuoted(text)
        }
    }

    static func doubleQuoted(_ text: String) -> String {
        var out = "\""
        for character in text.unicodeScalars {
            switch character {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(character)
            }
        }
        return out + "\""
    }

    /// The general path's objects and positions, or nil when it cannot parse the text.
    static func general(_ text: String) -> [(DecodedObject, NameHint)]? {
        (try? ManifestLoader.decodeDocuments(text))?.flatMap(\.objects)
    }

    static func fast(_ text: String) -> [(DecodedObject, NameHint)]? {
        var text = text
        return text.withUTF8 { ManifestLoader.decodeYAMLListItems($0, minimumItems: 0) { $0 } }?.flatMap(\.objects)
    }

    static func expectSame(_ text: String, mustRead: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let fast = fast(text) else {
            #expect(!mustRead, "the fast path left this to the general path:\n\(text)", sourceLocation: sourceLocation)
            return
        }
        guard let general = general(text) else {
            Issue.record("the fast path read what Yams refuses:\n\(text)", sourceLocation: sourceLocation)
            return
        }
        #expect(fast.map(\.0) == general.map(\.0), "\(text)", sourceLocation: sourceLocation)
        #expect(fast.map(\.1) == general.map(\.1), "\(text)", sourceLocation: sourceLocation)
    }

    @Test(arguments: Style.allCases)
    func kubectlListsAreReadAsYamsReadsThem(style: Style) {
        Self.expectSame(Self.list(Self.samples, style: style), mustRead: true)
        Self.expectSame(Self.list(Self.samples, style: style, indent: 2), mustRead: true)
        Self.expectSame(Self.list(Self.samples, style: style, header: "---\n# kubectl get -o yaml\n"), mustRead: true)
    }

    /// Every variation of the JSON reader's samples, alone in a List and beside the others: read
    /// the same, item by item, or left whole to the general path.
    @Test(arguments: Style.allCases)
    func everyVariationIsReadTheSameOrLeftToYams(style: Style) {
        for item in Self.variations {
            Self.expectSame(Self.list([item], style: style), mustRead: false)
        }
        Self.expectSame(Self.list(Self.samples + Self.variations, style: style), mustRead: false)
    }

    /// Text in the layouts people and tools write: each either read exactly or left whole.
    @Test(arguments: [
        // Comments, blank lines, trailing spaces.
        "apiVersion: v1\nitems:\n# one\n- apiVersion: v1   # the version\n  kind: Service\n\n  metadata:\n    name: a  \nkind: List\n",
        // Quoted keys, flow collections, anchors, aliases, tags, block scalars, merge keys.
        "apiVersion: v1\nitems:\n- \"apiVersion\": v1\n  kind: Service\n  metadata: {name: a}\nkind: List\n",
        "apiVersion: v1\nitems:\n- &s\n  apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n- *s\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: !!str Service\n  metadata:\n    name: a\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n    annotations:\n      note: |\n        two\n        lines\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n    labels:\n      <<: {x: y}\nkind: List\n",
        // Multi-line plain scalars, odd indentation, tabs, carriage returns.
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n      b\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n     name: a\n    namespace: b\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n\tname: a\nkind: List\n",
        "apiVersion: v1\r\nitems:\r\n- apiVersion: v1\r\n  kind: Service\r\nkind: List\r\n",
        // Scalars Yams reads as something other than a string.
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  spec:\n    ports:\n    - port: 0x50\n    - port: 080\n    - port: 8_0\n    - port: 80.0\n    - port: +80\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: yes\n    namespace: 2026-11-27\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  addressType: IPv6\n  endpoints:\n  - addresses:\n    - 2001:db8::1\n    - fd00::5\n    - 2001::1\n    conditions:\n      ready: True\n  ports:\n  - port: 8080\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: ~\n    labels:\n      a:\n      b: null\n      c: \"\"\n      d: ''\nkind: List\n",
        // Strings that look like other things, quoted.
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  spec:\n    ports:\n    - port: \"80\"\n      targetPort: '8080'\n      nodePort: \"true\"\nkind: List\n",
        // Structure errors: a `: ` in a plain scalar, an unclosed quote, a bad escape, duplicate keys.
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a: b\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: \"a\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: \"a\\qb\"\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n    name: b\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\nitems:\n- apiVersion: v1\nkind: List\n",
        // Lists of lists, empty entries, a scalar item, nested Lists, other kinds.
        "apiVersion: v1\nitems:\n- - a\n  - b\n-\n- plain\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: Service\n    metadata:\n      name: inner\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\nkind: List\n",
        // Not a List: a single object, a ServiceList, items that are not a sequence.
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\nkind: ServiceList\n",
        "apiVersion: v1\nitems:\n  a: b\nkind: List\n",
        "apiVersion: v1\nitems:\nkind: List\n",
        // Unicode: printable, a byte order mark inside, a C1 control.
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: café 😀\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\u{FEFF}b\nkind: List\n",
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\u{85}b\u{9F}\nkind: List\n",
    ])
    func layoutsAreReadTheSameOrLeftToYams(_ text: String) {
        Self.expectSame(text, mustRead: false)
    }

    /// Some layouts must be read by the fast path (a reader that always gives up would pass
    /// the tests above): kubectl's own, comments and a leading `---`, IPv6 addresses, nulls.
    @Test func theFastPathReadsWhatKubectlAndPeopleWrite() {
        Self.expectSame(
            "---\napiVersion: v1\nitems:\n# one\n- apiVersion: v1   # the version\n  kind: Service\n\n  metadata:\n    name: a  \nkind: List\n",
            mustRead: true)
        Self.expectSame(
            "apiVersion: v1\nitems:\n- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  addressType: IPv6\n  endpoints:\n  - addresses:\n    - 2001:db8::1\n    - fd00::5\n    conditions:\n      ready: True\n  ports:\n  - port: 8080\nkind: List\n",
            mustRead: true)
        Self.expectSame(
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: ~\n    labels:\n      c: \"\"\n      d: ''\nkind: List\n",
            mustRead: true)
        // An item the wire reader leaves (another kind) goes to Yams alone; a comment with a dash
        // before it is not its entry's `-`.
        Self.expectSame(
            "apiVersion: v1\nitems:\n# a - dash\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\nkind: List\n",
            mustRead: true)
    }

    /// The fast path gives up where Yams reads differently from JSON (the cases above that a
    /// reader accepting everything would get wrong).
    @Test func theFastPathGivesUpOnWhatItDoesNotRead() {
        for text in [
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  spec:\n    ports:\n    - port: 080\nkind: List\n",
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: yes\nkind: List\n",
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\n      b\nkind: List\n",
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\u{FEFF}b\nkind: List\n",
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: a\u{2028}b\nkind: List\n",
            // Yams refuses duplicate keys anywhere, in members natsync never reads too.
            "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Service\n  spec:\n    ipFamilyPolicy: A\n    ipFamilyPolicy: B\nkind: List\n",
        ] {
            #expect(Self.fast(text) == nil, "\(text)")
        }
    }

    /// The bench's cluster as kubectl YAML: every item read by the transcoder and the wire reader.
    @Test func aLargeListIsReadItemByItem() throws {
        let items = (0..<300).compactMap { index in
            Tree.parse(WireSamples.slice.replacingOccurrences(of: "web-abcde", with: "web-\(index)"))
        }
        let text = Self.list(items, style: .kubectl)
        var bytes = Array(text.utf8)
        let list = try #require(bytes.withUnsafeBufferPointer { KubectlYAML.list($0) })
        #expect(list.items.count == 300)
        let read = bytes.withUnsafeBufferPointer { buffer in
            list.items.enumerated().filter { position, range in
                KubectlYAML.json(buffer, item: range, column: list.itemColumn).flatMap { json in
                    json.withUnsafeBufferPointer { WireReader.document($0, position: "items[\(position)]") }
                } != nil
            }.count
        }
        #expect(read == 300)
        Self.expectSame(text, mustRead: true)
    }
}
