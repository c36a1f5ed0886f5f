import Foundation
import Testing

struct ServiceDispatchCommandTests {
    static let seed = ["sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--hostname-override", "node-1"]

    @Test func theConfigFileChoosesTheTreeAndTheFlagWins() throws {
        let fromFile = try NatsyncRunner.run(Self.seed + ["--config", "Fixtures/config/tree-dispatch.yaml"])
        #expect(fromFile.status == 0, "\(fromFile.standardError)")
        #expect(fromFile.standardOutput.contains("-A KUBE-SERVICES -d 10.0.0.0/8 -j NATSYNC-DSP-0A000000-8\n"))
        #expect(fromFile.standardOutput.contains("-A NATSYNC-DSP-0A03F100-24 -m comment --comment \"default/service-test cluster IP\""))
        let overridden = try NatsyncRunner.run(
            Self.seed + ["--config", "Fixtures/config/tree-dispatch.yaml", "--service-dispatch", "linear"])
        #expect(!overridden.standardOutput.contains("NATSYNC-DSP"))
        #expect(overridden.standardOutput == (try NatsyncRunner.run(Self.seed)).standardOutput)
    }

    @Test func aBadValueIsRefusedWithItsField() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-dispatch-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("bad.yaml").path
        try "kind: KubeProxyConfiguration\niptables: {serviceDispatch: btree}\n".write(toFile: config, atomically: true, encoding: .utf8)
        let output = try NatsyncRunner.run(Self.seed + ["--config", config])
        #expect(output.status == 2)
        #expect(
            output.standardError.contains(#"iptables.serviceDispatch: expected linear or tree, found "btree""#), "\(output.standardError)")
        let flag = try NatsyncRunner.run(Self.seed + ["--service-dispatch", "btree"])
        #expect(flag.status == 2)
        #expect(flag.standardError.contains("--service-dispatch"))
    }
}
