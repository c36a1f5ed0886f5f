import Foundation
import Testing

/// Every rule shape natsync writes is read back from the kernel as the same rule: after a sync of
/// each golden feature (IPv4 and IPv6, libiptc and iptables-nft-restore), a second sync finds
/// nothing to change.
@Suite(.serialized, liveKernel)
struct RoundTripTests {
    static let features: [String] = {
        let folder = KernelTests.root + "/Fixtures/rules"
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }()

    @Test(arguments: ["legacy", "nft"])
    func everyGoldenFeatureReadsBackUnchanged(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        #expect(Self.features.count >= 19)
        #expect(Self.features.contains("ipv6"))
        for feature in Self.features {
            let folder = "\(KernelTests.root)/Fixtures/rules/\(feature)"
            let args = try String(contentsOfFile: "\(folder)/args", encoding: .utf8)
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            let sync = ["sync", "-f", "\(folder)/input.yaml"] + scene.backendFlags + args
            let first = try scene.natsync(sync)
            #expect(first.standardOutput.hasPrefix("natsync: committed"), "\(feature): \(first.standardOutput)")
            let second = try scene.natsync(sync)
            #expect(second.standardOutput.hasPrefix("natsync: no changes"), "\(feature): \(second.standardOutput)")
        }
    }
}
