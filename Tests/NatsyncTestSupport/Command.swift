import Foundation

/// A program that exited with a status other than 0.
public struct CommandFailure: Error, CustomStringConvertible {
    public var command: [String]
    public var status: Int32
    public var output: String
    public var description: String { "\(command.joined(separator: " ")) exited \(status): \(output)" }

    public init(command: [String], status: Int32, output: String) {
        (self.command, self.status, self.output) = (command, status, output)
    }
}

/// What a program printed, and how it ended.
public struct CommandOutput: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String
}

/// Runs a program (found on PATH) to its end, with `environment` added to the test's own and
/// `input` on its stdin. With `check`, a status other than 0 throws ``CommandFailure``.
@discardableResult
public func run(_ command: [String], check: Bool = true, environment: [String: String] = [:], input: String? = nil) throws
    -> CommandOutput
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = command
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    // Drain stderr on another thread: a program that fills one pipe while we wait on the other
    // would never finish.
    let errors = ErrorBuffer()
    let reader = Thread { errors.finish(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = errors.wait()
    process.waitUntilExit()
    let output = CommandOutput(
        status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
        standardError: String(decoding: errData, as: UTF8.self))
    if check && output.status != 0 {
        throw CommandFailure(command: command, status: output.status, output: output.standardError + output.standardOutput)
    }
    return output
}

/// Data read to its end on another thread, waited for.
public final class ErrorBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var data: Data?

    public init() {}

    public func finish(_ data: Data) {
        condition.lock()
        self.data = data
        condition.signal()
        condition.unlock()
    }

    public func wait() -> Data {
        condition.lock()
        defer { condition.unlock() }
        while data == nil { condition.wait() }
        return data!
    }
}

/// The exit status of a program run to its end (its output discarded), or -1 when it cannot start.
public func shell(_ arguments: String...) -> Int32 {
    (try? run(arguments, check: false))?.status ?? -1
}
