import Foundation
import Testing

/// Which families a command programs when --ip-family is not given.
struct FamilyCommandTests {
    static let base = ["sync", "--dry-run", "-f", "Fixtures/rules/dual-stack/input.yaml", "--hostname-override", "test-node"]

    @Test func theNodeIPsFamiliesDecide() throws {
        let dual = try NatsyncRunner.run(Self.base + ["--node-ip", "192.168.0.2,2001:db8::1"])
        #expect(dual.status == 0, "\(dual.standardError)")
        #expect(dual.standardOutput.contains("\n# IPv6 (ip6tables-restore)\n*filter\n"))
        #expect(
            dual.standardOutput.contains("--to-destination 10.180.0.1:8080")
                && dual.standardOutput.contains("--to-destination [fd00:10:180::1]:8080"))
        let six = try NatsyncRunner.run(Self.base + ["--node-ip", "2001:db8::1"])
        #expect(six.standardOutput.hasPrefix("*filter\n") && !six.standardOutput.contains("# IPv6"))
        #expect(six.standardOutput.contains("[fd00:10:180::1]:8080") && !six.standardOutput.contains("10.180.0.1:8080"))
        let four = try NatsyncRunner.run(Self.base + ["--node-ip", "192.168.0.2"])
        #expect(four.standardOutput.contains("10.180.0.1:8080") && !four.standardOutput.contains("fd00:10:180::1"))
        let forced = try NatsyncRunner.run(Self.base + ["--node-ip", "192.168.0.2", "--ip-family", "dual"])
        #expect(forced.standardOutput.contains("[fd00:10:180::1]:8080"))
    }
}
