import NatsyncIPTables
import NatsyncModel
import NatsyncNet
import NatsyncRules
import Testing

/// The upstream fake proxier's settings (reference section 3.1), minus what natsync does not
/// create (nfacct counters) and with `HasRandomFully` off as in the upstream tests.
func fakeOptions(
    family: IPFamily = .ipv4, masqueradeAll: Bool = false, clusterCIDRs: [String] = ["10.0.0.0/8"],
    nodePortAddresses: [String] = [], localhostNodePorts: Bool = true
) -> ProxyOptions {
    ProxyOptions(
        family: family,
        nodeName: "test-node",
        nodeIP: family == .ipv4 ? IPAddress("192.168.0.2") : IPAddress("2001:db8::1"),
        nodeAddresses: ["192.168.0.2", "192.168.1.2", "192.168.99.11", "2001:db8::1", "2001:db8:1::2", "127.0.0.1", "::1"]
            .map { IPAddress($0)! },
        clusterCIDRs: clusterCIDRs.map { CIDR($0)! },
        masqueradeAll: masqueradeAll,
        nodePortAddresses: nodePortAddresses.map { CIDR($0)! },
        localhostNodePorts: localhostNodePorts,
        randomFully: false
    )
}

func name(_ text: String) -> NamespacedName {
    let parts = text.split(separator: "/")
    return NamespacedName(namespace: String(parts[0]), name: String(parts[1]))
}

func ip(_ text: String) -> IPAddress { IPAddress(text)! }

/// A slice for `service` with one port and endpoints given as `address` or `address@node`.
func slice(
    _ service: String, port: String = "p80", protocol proto: TransportProtocol = .tcp, number: UInt16 = 80,
    suffix: String = "abcde", _ endpoints: [String], conditions: EndpointSlice.Conditions = .init()
) -> EndpointSlice {
    let parsed = endpoints.map { text -> EndpointSlice.Endpoint in
        let parts = text.split(separator: "@")
        return EndpointSlice.Endpoint(
            address: ip(String(parts[0])), conditions: conditions, nodeName: parts.count > 1 ? String(parts[1]) : nil)
    }
    let family = parsed.first?.address.family ?? .ipv4
    return EndpointSlice(
        name: NamespacedName(namespace: name(service).namespace, name: "\(name(service).name)-\(suffix)"),
        service: name(service),
        addressType: family == .ipv4 ? .ipv4 : .ipv6,
        ports: [.init(name: port, protocol: proto, port: number)],
        endpoints: parsed)
}

/// The `-A CHAIN ...` lines of each chain, in order.
func chainLines(_ table: TableContents, family: IPFamily = .ipv4) -> [String: [String]] {
    var result: [String: [String]] = [:]
    for chain in table.chains {
        result[chain.name.rawValue] = chain.rules.map { "-A \(chain.name) " + RestoreText.arguments(of: $0, family: family) }
    }
    return result
}

/// Groups expected `-A CHAIN ...` lines by chain, keeping their order.
func group(_ lines: String) -> [String: [String]] {
    var result: [String: [String]] = [:]
    for line in lines.split(separator: "\n") where line.hasPrefix("-A ") {
        let chain = line.dropFirst(3).prefix { $0 != " " }
        result[String(chain), default: []].append(String(line))
    }
    return result
}

/// Expects every chain named in `expected` to hold exactly those lines.
func expectChains(
    _ table: TableContents, _ expected: String, family: IPFamily = .ipv4, sourceLocation: SourceLocation = #_sourceLocation
) {
    let actual = chainLines(table, family: family)
    for (chain, lines) in group(expected).sorted(by: { $0.key < $1.key }) {
        #expect(actual[chain] == lines, "chain \(chain)", sourceLocation: sourceLocation)
    }
}
