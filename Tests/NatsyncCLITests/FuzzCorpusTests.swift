import Foundation
import NatsyncTestSupport
import Testing

/// The fuzzing corpus (`Fuzz/corpus`: every fixture, and whatever libFuzzer found worth keeping)
/// replays without a crash through the manifest loader and the restore-text parser.
struct FuzzCorpusTests {
    @Test func theCorpusReplaysWithoutACrash() throws {
        let binary = URL(fileURLWithPath: NatsyncRunner.executable).deletingLastPathComponent().appendingPathComponent("natsync-fuzz").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["\(Repository.root)/Fuzz/corpus"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let count = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        #expect(count >= 60, "\(text)")
    }
}
