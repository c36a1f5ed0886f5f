import Foundation
import Testing

/// Every rule shape natsync writes is read back from the kernel as the same rule: after a sync of
/// each golden feature, a second sync finds nothing to change.
@Suite(.serialized, liveKernel)
struct RoundTripTests {
    static let features: [String] = {
        let folder = KernelTests.root + "/Fixtures/rules"
        let all = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return all.filter { name in
            let args = (try? String(contentsOfFile: "\(folder)/\(name)/args", encoding: .utf8)) ?? ""
            return !args.contains("--ip-family ipv6")
        }.sorted()
    }()

    @Test func everyGoldenFeatureReadsBackUnchanged() throws {
        let scene = try Scene()
        defer { scene.close() }
        #expect(Self.features.count >= 17)
        for feature in Self.features {
            let folder = "\(KernelTests.root)/Fixtures/rules/\(feature)"
            let args = try String(contentsOfFile: "\(folder)/args", encoding: .utf8)
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            let sync = ["sync", "--iptables-backend", "legacy", "-f", "\(folder)/input.yaml"] + args
            let first = try scene.natsync(sync)
            #expect(first.standardOutput.hasPrefix("natsync: committed"), "\(feature): \(first.standardOutput)")
            let second = try scene.natsync(sync)
            #expect(second.standardOutput.hasPrefix("natsync: no changes"), "\(feature): \(second.standardOutput)")
        }
    }
}
