/// Where a JSON text stops being JSON (RFC 8259, with the trailing commas Foundation accepts), for the error message: Foundation's decoder
/// says only "The given data was not valid JSON." Iterative, so that no nesting depth can
/// exhaust the stack.
package enum JSONSyntax {
    package struct Failure: Equatable {
        /// 1-based, as YAML's marks are.
        package var line: Int
        package var column: Int
        package var problem: String
    }

    private enum Expect {
        case value, valueOrClose, keyOrClose, colon, commaOrClose, end
    }

    /// The first place `bytes` is not JSON, or nil when it is.
    package static func firstError(_ bytes: UnsafeBufferPointer<UInt8>) -> Failure? {
        var stack: [UInt8] = []
        var expect = Expect.value
        var index = 0
        func fail(_ problem: String) -> Failure? { locate(index, in: bytes, problem) }
        func afterValue() -> Expect { stack.isEmpty ? .end : .commaOrClose }

        while true {
            while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
            guard index < bytes.count else { return expect == .end ? nil : fail("unexpected end of file") }
            let byte = bytes[index]
            switch expect {
            case .value, .valueOrClose:
                if expect == .valueOrClose && byte == UInt8(ascii: "]") {
                    stack.removeLast()
                    index += 1
                } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    stack.append(byte)
                    index += 1
                    expect = byte == UInt8(ascii: "{") ? .keyOrClose : .valueOrClose
                    continue
                } else if byte == UInt8(ascii: "\"") {
                    if let problem = string(bytes, &index) { return fail(problem) }
                } else if byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                    if !number(bytes, &index) { return fail("invalid number") }
                } else if !literal(bytes, &index) {
                    return fail("unexpected \(describe(byte))")
                }
                expect = afterValue()
            case .keyOrClose:
                if byte == UInt8(ascii: "}") {
                    stack.removeLast()
                    index += 1
                    expect = afterValue()
                } else if byte == UInt8(ascii: "\"") {
                    if let problem = string(bytes, &index) { return fail(problem) }
                    expect = .colon
                } else {
                    return fail("expected a quoted key, found \(describe(byte))")
                }
            case .colon:
                guard byte == UInt8(ascii: ":") else { return fail("expected ':', found \(describe(byte))") }
                index += 1
                expect = .value
            case .commaOrClose:
                let close = stack.last == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if byte == UInt8(ascii: ",") {
                    index += 1
                    // A comma before the closing bracket, as Foundation's parser allows.
                    expect = stack.last == UInt8(ascii: "{") ? .keyOrClose : .valueOrClose
                } else if byte == close {
                    stack.removeLast()
                    index += 1
                    expect = afterValue()
                } else {
                    return fail("expected ',' or '\(Character(Unicode.Scalar(close)))', found \(describe(byte))")
                }
            case .end:
                return fail("unexpected \(describe(byte)) after the end of the document")
            }
        }
    }

    /// Skips a string at `index`; the problem if it is not one.
    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> String? {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return nil
            case UInt8(ascii: "\\"):
                guard index + 1 < bytes.count else { return "unexpected end of file in a string" }
                let escaped = bytes[index + 1]
                if escaped == UInt8(ascii: "u") {
                    let digits = bytes[min(index + 2, bytes.count)..<min(index + 6, bytes.count)]
                    guard digits.count == 4, digits.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }) else {
                        return "invalid \\u escape in a string"
                    }
                    index += 6
                } else {
                    guard Array("\"\\/bfnrt".utf8).contains(escaped) else { return "invalid escape \(describe(escaped)) in a string" }
                    index += 2
                }
            case 0..<0x20:
                return "control character (\(describe(bytes[index]))) in a string"
            default:
                index += 1
            }
        }
        return "unexpected end of file in a string"
    }

    /// Skips a number as RFC 8259 writes it at `index`; false if it is not one.
    static func number(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Bool {
        func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            return false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return false }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    /// Skips `true`, `false` or `null` at `index`; false if none is there.
    static func literal(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Bool {
        for word: StaticString in ["true", "false", "null"] {
            let count = word.utf8CodeUnitCount
            if index + count <= bytes.count, word.withUTF8Buffer({ $0.elementsEqual(bytes[index..<(index + count)]) }) {
                index += count
                return true
            }
        }
        return false
    }

    private static func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte)
            ? "character '\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    /// Line and column (in characters) of a byte offset.
    private static func locate(_ offset: Int, in bytes: UnsafeBufferPointer<UInt8>, _ problem: String) -> Failure {
        var line = 1
        var column = 1
        for byte in bytes[..<offset] {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return Failure(line: line, column: column, problem: problem)
    }
}
