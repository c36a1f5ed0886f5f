import Foundation
import NatsyncTestSupport

/// Runs the built `natsync` executable, as a user would.
struct NatsyncRunner {
    struct Output {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// The executable next to the test bundle in the build folder.
    static let executable: String = {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = testBinary.deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("natsync").path),
            folder.path != "/"
        {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("natsync").path
    }()

    static func run(_ arguments: [String], in directory: String = Repository.root) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            standardOutput: String(decoding: outData, as: UTF8.self),
            standardError: String(decoding: errData, as: UTF8.self))
    }

}

/// Compares `actual` with the snapshot file at `path`. A missing snapshot, or any snapshot when
/// RECORD_SNAPSHOTS is set, is written and reported as a failure, so a recording never passes.
func snapshotMismatch(_ actual: String, path: String) -> String? {
    let record = ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] != nil
    if !record, let expected = FileManager.default.contents(atPath: path) {
        let text = String(decoding: expected, as: UTF8.self)
        if text == actual { return nil }
        return "output differs from \(path):\n" + lineDiff(expected: text, actual: actual)
    }
    FileManager.default.createFile(atPath: path, contents: Data(actual.utf8))
    return "recorded \(path); check it and run again"
}

private func lineDiff(expected: String, actual: String) -> String {
    let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let b = actual.split(separator: "\n", omittingEmptySubsequences: false)
    var out: [String] = []
    for index in 0..<max(a.count, b.count) where index >= a.count || index >= b.count || a[index] != b[index] {
        if index < a.count { out.append("- \(a[index])") }
        if index < b.count { out.append("+ \(b[index])") }
        if out.count > 20 { break }
    }
    return out.joined(separator: "\n")
}
