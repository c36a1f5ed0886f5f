import NatsyncKernel
import Testing

@testable import natsync

struct GoDurationTests {
    @Test(arguments: [
        ("1s", Duration.seconds(1)), ("500ms", .milliseconds(500)), ("1m30s", .seconds(90)), ("1h", .seconds(3600)),
        ("1.5s", .milliseconds(1500)), ("250us", .microseconds(250)),
    ])
    func readsGoDurations(text: String, expected: Duration) throws {
        #expect(try #require(GoDuration(argument: text)).duration == expected)
    }

    @Test(arguments: ["", "5", "1x", "s", "1s2"])
    func rejectsWhatGoWouldReject(text: String) {
        #expect(GoDuration(argument: text) == nil)
    }

    @Test func bindAddressesNeedHostAndPort() {
        #expect(Natsync.Run.address("127.0.0.1:10249")! == ("127.0.0.1", 10249))
        #expect(Natsync.Run.address(":10256")! == ("0.0.0.0", 10256))
        #expect(Natsync.Run.address("[::1]:80")! == ("::1", 80))
        #expect(Natsync.Run.address("localhost") == nil)
        #expect(Natsync.Run.address("host:99999") == nil)
    }
}

/// kube-proxy's conntrack limit: per-core times the CPUs, never below the minimum; 0 leaves it.
struct ConntrackLimitTests {
    @Test func theLimitScalesWithTheCPUsAboveTheFloor() {
        #expect(HostSettings.conntrackMax(perCore: 32768, minimum: 131072, cpus: 2) == 131072)
        #expect(HostSettings.conntrackMax(perCore: 32768, minimum: 131072, cpus: 8) == 262144)
        #expect(HostSettings.conntrackMax(perCore: 0, minimum: 131072, cpus: 8) == nil)
    }
}
