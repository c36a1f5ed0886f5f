import Foundation
import NatsyncTestSupport
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
        #expect(Self.features.count >= 20)
        #expect(Self.features.contains("ipv6"))
        for feature in Self.features {
            let folder = "\(KernelTests.root)/Fixtures/rules/\(feature)"
            let args = try String(contentsOfFile: "\(folder)/args", encoding: .utf8)
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            let sync = ["sync", "-f", "\(folder)/input.yaml"] + scene.backendFlags + args
            // One summary line per family (dual-stack features have two).
            let first = try scene.natsync(sync).standardOutput.split(separator: "\n")
            #expect(!first.isEmpty && first.allSatisfy { $0.contains("natsync: committed") }, "\(feature): \(first)")
            let second = try scene.natsync(sync).standardOutput.split(separator: "\n")
            #expect(second.count == first.count && second.allSatisfy { $0.contains("natsync: no changes") }, "\(feature): \(second)")
        }
    }
}
