import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncUtilities
import Testing

@testable import NatsyncRules

struct ChainNamesTests {
    static func port(_ text: String, _ proto: TransportProtocol = .tcp) -> ServicePortName {
        let parts = text.split(separator: "/", maxSplits: 1)
        let nameAndPort = parts[1].split(separator: ":", maxSplits: 1)
        return ServicePortName(
            service: NamespacedName(namespace: String(parts[0]), name: String(nameAndPort[0])),
            port: nameAndPort.count > 1 ? String(nameAndPort[1]) : "",
            protocol: proto)
    }

    /// The worked examples of the reference, section 1.3.
    @Test(arguments: [
        ("ns1/svc1:p80", TransportProtocol.tcp, "XPGD46QRK7WJZT7O"),
        ("ns2/svc2:p80", .tcp, "GNZBNJ2PO5MGZ6GT"),
        ("ns5/svc5:p80", .tcp, "NUKIZ6OKUXPJNT4C"),
        ("ns2/svc2:p8080", .tcp, "2VJB64SDSIJUP5T6"),
        ("ns1/svc1", .tcp, "AQI2S6QIMU7PVVRP"),
        ("ns1/svc1:p80", .udp, "OJWW7NSBVZTDHXNW"),
        ("default/kubernetes:https", .tcp, "NPX46M4PTMTKRN6Y"),
        ("kube-system/kube-dns:dns", .udp, "TCOU7JCQXEZGVUNU"),
        ("kube-system/kube-dns:dns-tcp", .tcp, "ERIFXISQEP7F7OF4"),
        ("kube-system/kube-dns:metrics", .tcp, "JD5MR3NA4I4DYORP"),
    ])
    func servicePortChainsShareTheReferenceHash(name: String, proto: TransportProtocol, hash: String) {
        let port = Self.port(name, proto)
        #expect(ChainNames.clusterPolicy(port).rawValue == "KUBE-SVC-\(hash)")
        #expect(ChainNames.localPolicy(port).rawValue == "KUBE-SVL-\(hash)")
        #expect(ChainNames.external(port).rawValue == "KUBE-EXT-\(hash)")
        #expect(ChainNames.firewall(port).rawValue == "KUBE-FW-\(hash)")
    }

    @Test(arguments: [
        ("ns1/svc1:p80", TransportProtocol.tcp, "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
        ("ns4/svc4:p80", .tcp, "10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
        ("ns5/svc5:p80", .tcp, "10.180.0.3:80", "KUBE-SEP-I77PXRDZVX7PMWMN"),
        ("ns1/svc1:p80", .tcp, "[fd00:10:180::1]:80", "KUBE-SEP-OGYCNMB4EMRUSJ6N"),
        ("ns1/svc1:p80", .tcp, "10.180.0.2:80", "KUBE-SEP-LXVODXWDISEETFEF"),
    ])
    func endpointChainsMatchTheReference(name: String, proto: TransportProtocol, endpoint: String, chain: String) {
        #expect(ChainNames.endpoint(Self.port(name, proto), endpoint: endpoint).rawValue == chain)
    }

    @Test func endpointStringsBracketIPv6AndUseTheCanonicalForm() {
        let v6 = EndpointInfo(
            address: IPAddress("fd00:0010:0180:0000:0000:0000:0000:0001")!, port: 80, ready: true, serving: true,
            terminating: false, isLocal: false)
        #expect(v6.endpointString == "[fd00:10:180::1]:80")
        let v4 = EndpointInfo(
            address: IPAddress("010.180.000.001")!, port: 80, ready: true, serving: true, terminating: false,
            isLocal: false)
        #expect(v4.endpointString == "10.180.0.1:80")
        #expect(ChainNames.endpoint(Self.port("ns1/svc1:p80"), endpoint: v4.endpointString).rawValue == "KUBE-SEP-SXIVWICOYRO3J4NJ")
    }

    @Test func base32MatchesTheFullReferenceEncoding() {
        // The reference gives the whole base32 of sha256("ns1/svc1:p80tcp").
        #expect(ChainNames.hash("ns1/svc1:p80tcp") == "XPGD46QRK7WJZT7O")
        #expect([UInt8]([0x66, 0x6F, 0x6F, 0x62, 0x61]).withUnsafeBytes { Base32.encode(prefixOf: $0, characters: 8) } == "MZXW6YTB")
        #expect([UInt8]([0x66]).withUnsafeBytes { Base32.encode(prefixOf: $0, characters: 2) } == "MY")
    }
}

/// How a port's endpoints are gathered from its slices: one per `ip:port`, in the string order
/// kube-proxy sorts them in, a copy on this node kept over the others.
struct EndpointGatheringTests {
    @Test func oneEndpointPerAddressInStringOrderTheLocalCopyWinning() {
        let port = ChainNamesTests.port("ns1/web:p80")
        let slices = [
            slice("ns1/web", suffix: "a", ["10.0.0.9@other", "10.0.0.10@other", "10.0.0.2@other"]),
            slice("ns1/web", suffix: "b", ["10.0.0.10@node-a", "10.0.0.2@other", "10.0.0.11@other"]),
            slice("ns1/web", suffix: "c", ["10.0.0.9@node-a", "10.0.0.9@other"]),
        ]
        let endpoints = EndpointInfo.endpoints(of: port, in: slices, family: .ipv4, nodeName: "node-a")
        #expect(endpoints.map(\.endpointString) == ["10.0.0.10:80", "10.0.0.11:80", "10.0.0.2:80", "10.0.0.9:80"])
        #expect(endpoints.map(\.isLocal) == [true, false, false, true])
    }

    /// Endpoints are ordered, told apart and hashed by their `ip:port` bytes, without the string.
    @Test func endpointKeysOrderAndNameAsTheirText() {
        let addresses: [IPAddress] =
            (0..<200).map { _ in .v4(UInt32.random(in: 0...UInt32.max)) }
            + (0..<100).map { index in IPAddress("fd00:\(String(index, radix: 16))::\(String(index * 7919 % 65536, radix: 16))")! }
            + [.v4(0), .v4(0xFFFF_FFFF), IPAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!, IPAddress("::")!]
        let ports: [UInt16] = [1, 9, 10, 80, 8080, 65535]
        var endpoints: [EndpointInfo] = []
        for (index, address) in addresses.enumerated() {
            endpoints.append(
                EndpointInfo(
                    address: address, port: ports[index % ports.count], ready: true, serving: true, terminating: false, isLocal: false))
        }
        let byText = endpoints.sorted { $0.endpointString.utf8.lexicographicallyPrecedes($1.endpointString.utf8) }
        let key = { (endpoint: EndpointInfo) in endpoint.address.withJoined(port: endpoint.port, ByteOrderKey.init) }
        let byKey = endpoints.sorted { key($0) < key($1) }
        #expect(byKey.map(\.endpointString) == byText.map(\.endpointString))
        for (a, b) in zip(endpoints, endpoints.shuffled()) {
            #expect((key(a) == key(b)) == (a.endpointString == b.endpointString))
        }
        let hasher = ChainNames.EndpointHasher(ChainNamesTests.port("ns1/web:p80"))
        for endpoint in endpoints {
            #expect(hasher.chain(endpoint: endpoint) == hasher.chain(endpoint: endpoint.endpointString))
        }
        #expect(IPAddress("fd00::1")!.joined(port: 80) == "[fd00::1]:80")
        #expect(IPAddress.v4(0x0A00_0001).joined(port: 65535) == "10.0.0.1:65535")
    }
}
