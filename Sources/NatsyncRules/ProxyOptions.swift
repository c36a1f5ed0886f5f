import NatsyncIPTables
import NatsyncModel
import NatsyncNet

/// The settings that shape the rules, named after kube-proxy's flags.
public struct ProxyOptions: Hashable, Sendable {
    /// `--ip-family`: the family this proxier serves.
    public var family: IPFamily
    /// `--hostname-override`: endpoints on this node are local.
    public var nodeName: String
    /// The node's primary address: a load-balancer source range containing it lets the node reach
    /// the VIP (kube-proxy's `nodeIP`).
    public var nodeIP: IPAddress?
    /// Every address of the node, loopback included, for `--nodeport-addresses`.
    public var nodeAddresses: [IPAddress]
    /// `--cluster-cidr`: the first CIDR of ``family`` tells pod traffic from the rest.
    public var clusterCIDRs: [CIDR]
    /// `--masquerade-all`: masquerade every packet sent to a cluster IP.
    public var masqueradeAll: Bool
    /// `--iptables-masquerade-bit`: the packet-mark bit that requests masquerading.
    public var masqueradeBit: Int
    /// `--nodeport-addresses`: the node addresses NodePorts answer on; empty means all.
    public var nodePortAddresses: [CIDR]
    /// `--iptables-localhost-nodeports`: NodePorts on 127.0.0.1 (IPv4 only).
    public var localhostNodePorts: Bool
    /// MASQUERADE with `--random-fully` (kube-proxy uses it whenever iptables is 1.6.2 or newer).
    public var randomFully: Bool
    /// `net.netfilter.nf_conntrack_tcp_be_liberal` is set: kube-proxy then omits the INVALID drop.
    public var conntrackTCPBeLiberal: Bool
    /// `--service-dispatch`: kube-proxy's linear KUBE-SERVICES, or natsync's prefix tree.
    public var serviceDispatch: ServiceDispatch
    /// The node's `topology.kubernetes.io/zone` label, for topology hints (nil: no label).
    public var nodeZone: String?
    /// `--detect-local-mode`: how traffic from this node's pods is told from the rest.
    public var localDetection: LocalDetection = .clusterCIDR
    /// The node's `spec.podCIDRs`, for `--detect-local-mode NodeCIDR`.
    public var nodePodCIDRs: [CIDR] = []

    public init(
        family: IPFamily = .ipv4,
        nodeName: String,
        nodeIP: IPAddress? = nil,
        nodeAddresses: [IPAddress] = [],
        clusterCIDRs: [CIDR] = [],
        masqueradeAll: Bool = false,
        masqueradeBit: Int = 14,
        nodePortAddresses: [CIDR] = [],
        localhostNodePorts: Bool = true,
        randomFully: Bool = true,
        conntrackTCPBeLiberal: Bool = false,
        serviceDispatch: ServiceDispatch = .linear,
        nodeZone: String? = nil
    ) {
        self.family = family
        self.nodeName = nodeName
        self.nodeIP = nodeIP
        self.nodeAddresses = nodeAddresses
        self.clusterCIDRs = clusterCIDRs
        self.masqueradeAll = masqueradeAll
        self.masqueradeBit = masqueradeBit
        self.nodePortAddresses = nodePortAddresses
        self.localhostNodePorts = localhostNodePorts
        self.randomFully = randomFully
        self.conntrackTCPBeLiberal = conntrackTCPBeLiberal
        self.serviceDispatch = serviceDispatch
        self.nodeZone = nodeZone
    }

    /// This node as topology hints see it.
    public var topology: NodeTopology { NodeTopology(nodeName: nodeName, zone: nodeZone) }

    /// The masquerade mark, `1 << masqueradeBit`.
    public var masqueradeMark: UInt32 { 1 << UInt32(masqueradeBit) }

    /// What tells pod traffic from the rest (kube-proxy's local detector), or nil when the mode
    /// has nothing for this family (no cluster CIDR, a Node without podCIDRs): the rules that
    /// need it are then not written.
    public var localTraffic: LocalTrafficMatch? {
        switch localDetection {
        case .clusterCIDR: clusterCIDRs.first { $0.family == family }.map(LocalTrafficMatch.source)
        case .nodeCIDR: nodePodCIDRs.first { $0.family == family }.map(LocalTrafficMatch.source)
        case .bridgeInterface(let name): .interface(name)
        case .interfaceNamePrefix(let prefix): .interface(prefix + "+")
        }
    }

    /// The NodePort address prefixes of this family.
    var familyNodePortAddresses: [CIDR] { nodePortAddresses.filter { $0.family == family } }

    /// The node's addresses of this family that NodePorts and health-check node ports answer on,
    /// or nil for every address (no `--nodeport-addresses` of this family), as kube-proxy's
    /// `GetNodeIPs`.
    public var nodePortIPs: [IPAddress]? {
        let prefixes = familyNodePortAddresses
        guard !prefixes.isEmpty else { return nil }
        return Set(nodeAddresses.filter { address in address.family == family && prefixes.contains { $0.contains(address) } }).sorted()
    }

    /// Whether NodePorts answer on 127.0.0.1: IPv4 only, and off when `--nodeport-addresses`
    /// excludes 127.0.0.1 (as kube-proxy forces it).
    public var effectiveLocalhostNodePorts: Bool {
        guard family == .ipv4, localhostNodePorts else { return false }
        let prefixes = familyNodePortAddresses
        return prefixes.isEmpty || prefixes.contains { $0.contains(.v4(0x7F00_0001)) }
    }
}

/// kube-proxy's `--detect-local-mode` (`pkg/proxy/util/localdetector.go`).
public enum LocalDetection: Hashable, Sendable {
    /// The first `--cluster-cidr` of the family (the default).
    case clusterCIDR
    /// The first of the Node's `spec.podCIDRs` of the family.
    case nodeCIDR
    /// Traffic in through this bridge (`--pod-bridge-interface`), both families.
    case bridgeInterface(String)
    /// Traffic in through interfaces named with this prefix (`--pod-interface-name-prefix`).
    case interfaceNamePrefix(String)
}

/// The match that tells pod traffic: `-s CIDR` / `! -s CIDR`, or `-i NAME` / `! -i NAME`.
public enum LocalTrafficMatch: Hashable, Sendable {
    case source(CIDR)
    case interface(String)

    /// `rule` restricted to pod traffic (`local`) or to everything else.
    func restricting(_ rule: Rule, local: Bool) -> Rule {
        var rule = rule
        switch self {
        case .source(let cidr): rule.source = AddressMatch(cidr, inverted: !local)
        case .interface(let name): rule.inInterface = InterfaceMatch(name, inverted: !local)
        }
        return rule
    }
}
