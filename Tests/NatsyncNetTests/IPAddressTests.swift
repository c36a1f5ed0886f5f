import Testing

@testable import NatsyncNet

struct IPAddressTests {
    @Test(arguments: [
        ("10.0.1.2", "10.0.1.2"),
        ("010.000.001.002", "10.0.1.2"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::FFFF:0a00:0001", "10.0.0.1"),
        ("fd00:0010:0180:0000:0000:0000:0000:0001", "fd00:10:180::1"),
        ("FD00::1", "fd00::1"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("::1.2.3.4", "::102:304"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ])
    func parsesLikeKubernetesAndPrintsCanonically(text: String, canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "999.1.1.1", "1.2.3.-1", "1..2.3", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d",
        "1.2.3.4/32", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "fe80::1%eth0", "::g", "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:1.2.3.4", ":1", "1:", "0x0a.0.0.1",
    ])
    func rejectsWhatIsNotAnAddress(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func familiesBytesAndOrdering() throws {
        let v4 = try #require(IPAddress("10.0.0.1"))
        let v6 = try #require(IPAddress("fd00::1"))
        #expect(v4.family == .ipv4 && v6.family == .ipv6)
        #expect(v4.bytes == [10, 0, 0, 1])
        #expect(IPAddress(bytes: v6.bytes) == v6)
        #expect(v4 < v6)
        #expect(IPAddress("127.1.2.3")!.isLoopback && IPAddress("::1")!.isLoopback && !v4.isLoopback)
        #expect(v6.joined(port: 53) == "[fd00::1]:53" && v4.joined(port: 53) == "10.0.0.1:53")
    }

    /// The digit-by-digit `ip:port` of IPv4 reads as the address's description and the port.
    @Test func ipv4HostPortsAreWrittenLikeTheirDescription() {
        var generator = SystemRandomNumberGenerator()
        let edges: [UInt32] = [0, 1, 9, 10, 99, 100, 255, 0x0A00_0001, 0xFFFF_FFFF, 0x0AF4_00BE]
        let values = edges + (0..<2_000).map { _ in UInt32.random(in: 0...UInt32.max, using: &generator) }
        for (index, value) in values.enumerated() {
            let port = [0, 1, 9, 10, 80, 8080, 65535][index % 7] as UInt16
            let address = IPAddress.v4(value)
            #expect(address.joined(port: port) == "\(address):\(port)")
        }
    }
}

struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("10.0.0.1/32", "10.0.0.1/32"),
        ("fd00:10::1/64", "fd00:10::/64"),
        ("::/0", "::/0"),
    ])
    func masksHostBits(text: String, canonical: String) throws {
        #expect(try #require(CIDR(text)).description == canonical)
    }

    @Test(arguments: ["1.2.3.4/40", "1.2.3.4/-1", "1.2.3.4/", "1.2.3.4", "fd00::/129", "999.1.1.1/8", "1.2.3.4/8/8", "::ffff:1.2.3.4/104"])
    func rejectsInvalidPrefixes(text: String) {
        #expect(CIDR(text) == nil)
    }

    @Test func bareAddressesAreHostPrefixesWhenAllowed() throws {
        let host = try #require(CIDR("10.0.0.1", allowBareAddress: true))
        #expect(host == CIDR("10.0.0.1/32"))
        #expect(host.isHost)
        #expect(CIDR("10.0.0.0/8")!.contains(IPAddress("10.255.0.1")!))
        #expect(!CIDR("10.0.0.0/8")!.contains(IPAddress("11.0.0.1")!))
        #expect(!CIDR("10.0.0.0/8")!.contains(IPAddress("fd00::1")!))
        #expect(CIDR("10.0.0.0/8")!.mask == IPAddress("255.0.0.0"))
    }
}
