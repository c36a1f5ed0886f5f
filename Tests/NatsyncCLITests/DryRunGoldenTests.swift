import Foundation
import NatsyncTestSupport
import Testing

/// One golden dry run per feature: `Fixtures/rules/<feature>/input.yaml`, run with the flags in
/// `args`, must print `expected.rules` exactly.
struct DryRunGoldenTests {
    static let features: [String] = {
        let folder = Repository.root + "/Fixtures/rules"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }()

    @Test(arguments: features)
    func dryRunMatchesTheGoldenRules(feature: String) throws {
        let folder = "Fixtures/rules/\(feature)"
        let args = try String(contentsOfFile: "\(Repository.root)/\(folder)/args", encoding: .utf8)
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        let output = try NatsyncRunner.run(["sync", "--dry-run", "--strict", "-f", "\(folder)/input.yaml"] + args)
        #expect(output.status == 0, "\(output.standardError)")
        if let mismatch = snapshotMismatch(output.standardOutput, path: "\(Repository.root)/\(folder)/expected.rules") {
            Issue.record(Comment(rawValue: mismatch))
        }
    }

    @Test func everyFeatureHasAGolden() {
        #expect(Self.features.count >= 18)
    }
}
