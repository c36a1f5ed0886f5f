import Foundation
import NatsyncModel
import NatsyncUtilities

/// The items of a kubectl-style JSON `List` (`{"kind": "List", "items": [...]}`), found without
/// parsing them, so each can be decoded on its own: in parallel, and without one document-sized
/// parse tree in memory (Foundation's JSONDecoder maps the whole input before decoding).
///
/// The members around `items` are checked as JSON here; the items only for their structure
/// (strings, nesting, separators): each item is checked as it is decoded, and one that is not
/// valid JSON fails its decode, so the caller then decodes the whole document the ordinary way
/// and every error reads as before.
package struct JSONList {
    /// The `kind` member, when it is a string without escapes.
    package var kind: String?
    /// The byte range of each element of the top-level `items` array.
    package var items: [Range<Int>]

    /// Nil when `bytes` is not one JSON object with an `items` array (and only whitespace after it).
    package init?(_ bytes: UnsafeBufferPointer<UInt8>) {
        var scanner = JSONScanner(bytes)
        guard scanner.consume(UInt8(ascii: "{")) else { return nil }
        var kind: String?
        var items: [Range<Int>]?
        if !scanner.consume(UInt8(ascii: "}")) {
            repeat {
                guard let key = scanner.string(), scanner.consume(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "items":
                    guard items == nil, let ranges = Self.array(&scanner) else { return nil }
                    items = ranges
                case "kind":
                    guard kind == nil else { return nil }
                    scanner.skipWhitespace()
                    let start = scanner.index
                    guard scanner.skipValidValue() else { return nil }
                    let raw = bytes[start..<scanner.index]
                    if raw.count >= 2, raw.first == UInt8(ascii: "\""), !raw.contains(UInt8(ascii: "\\")) {
                        kind = String(decoding: raw.dropFirst().dropLast(), as: UTF8.self)
                    }
                default:
                    guard scanner.skipValidValue() else { return nil }
                }
            } while scanner.consume(UInt8(ascii: ","))
            guard scanner.consume(UInt8(ascii: "}")) else { return nil }
        }
        scanner.skipWhitespace()
        guard scanner.index == bytes.count, let items else { return nil }
        self.kind = kind
        self.items = items
    }

    /// The byte ranges of the elements of the array the scanner is at, the scanner moved past it;
    /// nil when no array is next or its elements do not scan.
    package static func array(_ scanner: inout JSONScanner) -> [Range<Int>]? {
        guard scanner.consume(UInt8(ascii: "[")) else { return nil }
        if scanner.consume(UInt8(ascii: "]")) { return [] }
        scanner.skipWhitespace()
        guard let (ranges, end) = items(scanner.bytes, from: scanner.index) else { return nil }
        scanner.index = end
        return ranges
    }

    /// The ranges of the items of an array whose first item starts at `start`, and where the
    /// array ends (after its `]`); nil when the items do not scan.
    ///
    /// A large array is cut into pieces scanned at once, one per core, each from a guessed item
    /// start: a line holding only `{` at the first item's column, after a line ending in `,` (how
    /// kubectl and every pretty-printer lay a list out). A guess is taken only when the piece
    /// before it, scanned from a true start, ends exactly there, so the ranges are those of one
    /// scan from the start; when a guess is not confirmed, or none is found, the array is scanned
    /// from the start in one piece. (A line break inside a JSON string is always escaped, so a
    /// raw one is always between values.)
    package static func items(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> (ranges: [Range<Int>], end: Int)? {
        let pieces = min(max(ProcessInfo.processInfo.activeProcessorCount, 2), 16)
        var starts = [start]
        if bytes.count - start >= 1 << 20, let column = column(of: start, in: bytes) {
            for piece in 1..<pieces {
                let from = start + (bytes.count - start) / pieces * piece
                guard from > starts.last!, let guess = itemStart(after: from, column: column, in: bytes) else { continue }
                if guess > starts.last! { starts.append(guess) }
            }
        }
        guard starts.count > 1 else { return scan(bytes, from: start, until: nil) }
        let buffer = SharedBuffer(bytes: bytes)
        let pieceStarts = starts
        let scanned = pieceStarts.indices.concurrentMap(minimumCount: 0) { piece in
            scan(buffer.bytes, from: pieceStarts[piece], until: piece + 1 < pieceStarts.count ? pieceStarts[piece + 1] : nil)
        }
        guard let last = scanned.last, let end = last?.end, scanned.allSatisfy({ $0 != nil }) else {
            return scan(bytes, from: start, until: nil)
        }
        return (Array(joining: scanned.map { $0!.ranges }), end)
    }

    /// Scans items from `start` until the next item would start at `until` (returning that
    /// position), or, without `until`, through the array's `]`. Nil when the items do not scan
    /// or `until` is not where an item starts.
    package static func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, until: Int?) -> (ranges: [Range<Int>], end: Int)? {
        var scanner = JSONScanner(bytes, from: start)
        var ranges: [Range<Int>] = []
        while true {
            let itemStart = scanner.index
            guard scanner.skipValue() else { return nil }
            ranges.append(itemStart..<scanner.index)
            guard scanner.consume(UInt8(ascii: ",")) else { break }
            scanner.skipWhitespace()
            if let until, scanner.index >= until { return scanner.index == until ? (ranges, until) : nil }
        }
        guard until == nil, scanner.consume(UInt8(ascii: "]")) else { return nil }
        return (ranges, scanner.index)
    }

    /// The column of `position`: the bytes since the line break before it, when only spaces and
    /// tabs are among them.
    private static func column(of position: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var lineStart = position
        while lineStart > 0, bytes[lineStart - 1] == 0x20 || bytes[lineStart - 1] == 0x09 { lineStart -= 1 }
        guard lineStart > 0, bytes[lineStart - 1] == 0x0A else { return nil }
        return position - lineStart
    }

    /// The first `{` after `from` alone at `column` after a line ending in `,`: a guessed item start.
    private static func itemStart(after from: Int, column itemColumn: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let base = bytes.baseAddress!
        var position = from
        while position < bytes.count, let found = memchr(base + position, 0x0A, bytes.count - position) {
            let lineBreak = UnsafeRawPointer(base).distance(to: found)
            position = lineBreak + 1
            let candidate = lineBreak + 1 + itemColumn
            guard candidate < bytes.count, bytes[candidate] == UInt8(ascii: "{"),
                column(of: candidate, in: bytes) == itemColumn
            else { continue }
            var before = lineBreak
            while before > 0, bytes[before - 1] == 0x20 || bytes[before - 1] == 0x09 || bytes[before - 1] == 0x0D { before -= 1 }
            if before > 0, bytes[before - 1] == UInt8(ascii: ",") { return candidate }
        }
        return nil
    }
}

/// The bytes of the document, read (never written) by the pieces' scans.
private struct SharedBuffer: @unchecked Sendable {
    package let bytes: UnsafeBufferPointer<UInt8>
}
