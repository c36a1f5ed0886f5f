import ArgumentParser
import NatsyncKernel
import NatsyncManifest
import NatsyncModel
import NatsyncNet
import NatsyncRules

#if canImport(Glibc)
import Glibc
#endif

/// kube-proxy's rule-shaping flags, under kube-proxy's names, plus `--config`.
extension ServiceDispatch: ExpressibleByArgument {}

struct ProxyFlags: ParsableArguments {
    @Option(name: .customLong("config"), help: "A KubeProxyConfiguration file; flags win over it.")
    var configFile: String?

    @Option(name: .customLong("hostname-override"), help: "This node's name (default: the host name).")
    var hostnameOverride: String?

    @Option(
        name: .customLong("cluster-cidr"),
        help: "Pod CIDRs, comma-separated; traffic from outside them to a cluster IP is masqueraded.")
    var clusterCIDR: String?

    @Flag(name: .customLong("masquerade-all"), help: "Masquerade all traffic sent to cluster IPs.")
    var masqueradeAll = false

    @Option(name: .customLong("iptables-masquerade-bit"), help: "The mark bit that requests masquerading (0-31, default 14).")
    var masqueradeBit: Int?

    @Option(
        name: .customLong("nodeport-addresses"),
        help:
            "CIDRs of the node addresses NodePorts answer on, comma-separated, or primary: the node's primary IP of each family (default: all)."
    )
    var nodePortAddresses: String?

    @Option(
        name: .customLong("iptables-localhost-nodeports"),
        help: "Whether NodePorts answer on 127.0.0.1 (IPv4 only; default true).")
    var localhostNodePorts: Bool?

    @Option(
        name: .customLong("ip-family"),
        help: """
            The families to program: ipv4, ipv6 or dual (default: the families of --node-ip, else those the node \
            has global addresses in, else ipv4).
            """)
    var ipFamily: FamilyArgument?

    @Option(
        name: .customLong("node-ip"),
        help: "The node's primary address, or one per family, comma-separated (default: the first global address of each family).")
    var nodeIP: String?

    @Option(
        name: .customLong("node-addresses"),
        help: "The node's addresses, comma-separated, for --nodeport-addresses (default: the host's interface addresses).")
    var nodeAddresses: String?

    @Option(
        name: .customLong("detect-local-mode"),
        help: """
            How traffic from this node's pods is told from the rest: ClusterCIDR (--cluster-cidr, the default),             NodeCIDR (the Node's spec.podCIDRs), BridgeInterface (--pod-bridge-interface) or InterfaceNamePrefix             (--pod-interface-name-prefix).
            """)
    var detectLocalMode: String?

    @Option(name: .customLong("pod-bridge-interface"), help: "The bridge pods are attached to, for --detect-local-mode BridgeInterface.")
    var podBridgeInterface: String?

    @Option(
        name: .customLong("pod-interface-name-prefix"),
        help: "The name prefix of pods' interfaces on the node, for --detect-local-mode InterfaceNamePrefix.")
    var podInterfaceNamePrefix: String?

    @Option(name: .customLong("conntrack-max-per-core"), help: "Conntrack entries per CPU (default 32768; 0 leaves the limit alone).")
    var conntrackMaxPerCore: Int?

    @Option(name: .customLong("conntrack-min"), help: "The least conntrack limit, whatever the CPUs (default 131072).")
    var conntrackMin: Int?

    @Option(name: .customLong("conntrack-tcp-timeout-established"), help: "Idle timeout of established TCP flows (default 24h).")
    var conntrackTCPEstablished: GoDuration?

    @Option(name: .customLong("conntrack-tcp-timeout-close-wait"), help: "Timeout of TCP flows in CLOSE_WAIT (default 1h).")
    var conntrackTCPCloseWait: GoDuration?

    @Flag(name: .customLong("conntrack-tcp-be-liberal"), help: "Mark only out-of-window RST as INVALID (and drop no INVALID packets).")
    var conntrackTCPBeLiberal = false

    @Option(name: .customLong("conntrack-udp-timeout"), help: "Timeout of unreplied UDP flows (default: the kernel's).")
    var conntrackUDPTimeout: GoDuration?

    @Option(name: .customLong("conntrack-udp-timeout-stream"), help: "Timeout of replied UDP flows (default: the kernel's).")
    var conntrackUDPStreamTimeout: GoDuration?

    @Option(
        name: .customLong("service-dispatch"),
        help: """
            How nat KUBE-SERVICES finds a service: linear (kube-proxy's layout, one rule per service address) or \
            tree (chains keyed on destination prefixes: first-packet cost flat in the number of services).
            """)
    var serviceDispatch: ServiceDispatch?

    enum FamilyArgument: String, ExpressibleByArgument, CaseIterable {
        case ipv4, ipv6, dual
        var families: [IPFamily] {
            switch self {
            case .ipv4: [.ipv4]
            case .ipv6: [.ipv6]
            case .dual: [.ipv4, .ipv6]
            }
        }
    }

    func validate() throws {
        if let masqueradeBit, !(0...31).contains(masqueradeBit) {
            throw ValidationError("--iptables-masquerade-bit: \(masqueradeBit) is out of range (0-31)")
        }
        if let clusterCIDR { _ = try Self.cidrs(clusterCIDR, flag: "--cluster-cidr") }
        if let nodePortAddresses, nodePortAddresses != "primary" { _ = try Self.cidrs(nodePortAddresses, flag: "--nodeport-addresses") }
        if let nodeIP {
            let parsed = try Self.addresses(nodeIP, flag: "--node-ip")
            guard Set(parsed.map(\.family)).count == parsed.count else {
                throw ValidationError("--node-ip: give at most one address per family, got \"\(nodeIP)\"")
            }
        }
        if let nodeAddresses { _ = try Self.addresses(nodeAddresses, flag: "--node-addresses") }
        // The names a mode needs may come from the config file, read later.
        if let detectLocalMode, !Self.localDetectionModes.contains(detectLocalMode) { _ = try localDetection(ProxyConfigurationFile()) }
    }

    static let localDetectionModes = ["ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix"]

    /// The local detector from the flags, then the file (kube-proxy's names and checks).
    func localDetection(_ file: ProxyConfigurationFile) throws -> LocalDetection {
        let (podBridgeInterface, podInterfaceNamePrefix) = (flag(podBridgeInterface), flag(podInterfaceNamePrefix))
        let mode = flag(detectLocalMode) ?? file.detectLocalMode ?? "ClusterCIDR"
        switch mode {
        case "ClusterCIDR": return .clusterCIDR
        case "NodeCIDR": return .nodeCIDR
        case "BridgeInterface":
            guard let name = podBridgeInterface ?? file.bridgeInterface, !name.isEmpty else {
                throw ValidationError("--detect-local-mode BridgeInterface needs --pod-bridge-interface (or detectLocal.bridgeInterface)")
            }
            return .bridgeInterface(name)
        case "InterfaceNamePrefix":
            guard let prefix = podInterfaceNamePrefix ?? file.interfaceNamePrefix, !prefix.isEmpty else {
                throw ValidationError(
                    "--detect-local-mode InterfaceNamePrefix needs --pod-interface-name-prefix (or detectLocal.interfaceNamePrefix)")
            }
            return .interfaceNamePrefix(prefix)
        default:
            throw ValidationError(
                "--detect-local-mode: unknown mode \"\(mode)\" (must be ClusterCIDR, NodeCIDR, BridgeInterface or InterfaceNamePrefix)")
        }
    }

    /// The options in force for each family to program, IPv4 first: flags, then the config file,
    /// then kube-proxy's defaults and the host.
    func resolveFamilies(host: HostFacts) throws -> [ProxyOptions] {
        let file = try configuration()
        let addresses = try nodeAddresses.map { try Self.addresses($0, flag: "--node-addresses") } ?? host.addresses()
        let nodeIPs = try nodeIP.map { try Self.addresses($0, flag: "--node-ip") } ?? []
        let families: [IPFamily]
        if let ipFamily {
            families = ipFamily.families
        } else if !nodeIPs.isEmpty {
            families = IPFamily.allCases.filter { family in nodeIPs.contains { $0.family == family } }
        } else {
            let global = IPFamily.allCases.filter { family in addresses.contains { $0.family == family && $0.isGlobal } }
            families = global.isEmpty ? [.ipv4] : global
        }
        let clusterCIDRs = try flag(clusterCIDR).map { try Self.cidrs($0, flag: "--cluster-cidr") } ?? file.clusterCIDRs ?? []
        let primaryNodePorts = flag(nodePortAddresses).map { $0 == "primary" } ?? file.nodePortAddressesPrimary
        let nodePortCIDRs =
            try flag(nodePortAddresses).flatMap { $0 == "primary" ? nil : try Self.cidrs($0, flag: "--nodeport-addresses") }
            ?? file.nodePortAddresses ?? []
        let detection = try localDetection(file)
        return families.map { family in
            let nodeIP =
                nodeIPs.first { $0.family == family } ?? file.bindAddress.flatMap { $0.family == family ? $0 : nil }
                ?? addresses.first { $0.family == family && $0.isGlobal }
            var options = ProxyOptions(
                family: family,
                nodeName: hostnameOverride ?? file.hostnameOverride ?? host.hostname(),
                nodeIP: nodeIP,
                nodeAddresses: addresses,
                clusterCIDRs: clusterCIDRs,
                masqueradeAll: flag(masqueradeAll) ?? file.masqueradeAll ?? false,
                masqueradeBit: flag(masqueradeBit) ?? file.masqueradeBit ?? 14,
                // kube-proxy's `primary`: the node's primary IP of the family, nothing else.
                nodePortAddresses: primaryNodePorts ? nodeIP.map { [CIDR(host: $0)] } ?? [] : nodePortCIDRs,
                localhostNodePorts: flag(localhostNodePorts) ?? file.localhostNodePorts ?? true,
                serviceDispatch: serviceDispatch ?? file.serviceDispatch.flatMap(ServiceDispatch.init) ?? .linear
            )
            options.localDetection = detection
            options.conntrackTCPBeLiberal = flag(conntrackTCPBeLiberal) ?? file.conntrackTCPBeLiberal ?? false
            return options
        }
    }

    /// A flag bound to a config field: its value without `--config`, ignored with it (kube-proxy
    /// reads the file in place of such flags).
    private func flag<T>(_ value: T?) -> T? { configFile == nil ? value : nil }

    /// The flags given that `--config` overrides: kube-proxy reads the file in place of every
    /// flag bound to the same setting (`--hostname-override` aside), so natsync does too, and says
    /// which it ignored.
    var ignoredByConfig: [String] {
        guard configFile != nil else { return [] }
        let given: [(String, Bool)] = [
            ("--cluster-cidr", clusterCIDR != nil), ("--masquerade-all", masqueradeAll),
            ("--iptables-masquerade-bit", masqueradeBit != nil),
            ("--nodeport-addresses", nodePortAddresses != nil), ("--iptables-localhost-nodeports", localhostNodePorts != nil),
            ("--detect-local-mode", detectLocalMode != nil), ("--pod-bridge-interface", podBridgeInterface != nil),
            ("--pod-interface-name-prefix", podInterfaceNamePrefix != nil), ("--conntrack-max-per-core", conntrackMaxPerCore != nil),
            ("--conntrack-min", conntrackMin != nil), ("--conntrack-tcp-timeout-established", conntrackTCPEstablished != nil),
            ("--conntrack-tcp-timeout-close-wait", conntrackTCPCloseWait != nil), ("--conntrack-tcp-be-liberal", conntrackTCPBeLiberal),
            ("--conntrack-udp-timeout", conntrackUDPTimeout != nil), ("--conntrack-udp-timeout-stream", conntrackUDPStreamTimeout != nil),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// `warning: FILE: FIELD: ...` for each field of the config file natsync does not know.
    func configurationWarnings() throws -> [String] {
        guard let configFile else { return [] }
        return try configuration().unknownFields.map { "warning: \(configFile): \($0): unknown field; ignored" }
    }

    static func ignoredNote(_ flag: String) -> String {
        "note: \(flag) ignored: --config is given, and kube-proxy reads the file in place of that flag"
    }

    /// The config file's settings (empty without `--config`).
    func configuration() throws -> ProxyConfigurationFile {
        guard let configFile else { return ProxyConfigurationFile() }
        do {
            return try ProxyConfigurationFile.load(path: configFile)
        } catch {
            throw ValidationError("--config: \(error)")
        }
    }

    /// The kernel settings kube-proxy makes at start, with kube-proxy's defaults, for `families`.
    func hostSettings(_ families: [ProxyOptions], hostNamespace: Bool) throws -> HostSettings {
        let file = try configuration()
        let (conntrackMaxPerCore, conntrackMin) = (flag(conntrackMaxPerCore), flag(conntrackMin))
        let (conntrackTCPEstablished, conntrackTCPCloseWait) = (flag(conntrackTCPEstablished), flag(conntrackTCPCloseWait))
        let (conntrackUDPTimeout, conntrackUDPStreamTimeout) = (flag(conntrackUDPTimeout), flag(conntrackUDPStreamTimeout))
        var settings = HostSettings()
        // The conntrack limit and its hash table are the host's (read-only in another namespace).
        if hostNamespace {
            settings.conntrackMax = HostSettings.conntrackMax(
                perCore: conntrackMaxPerCore ?? file.conntrackMaxPerCore ?? 32768, minimum: conntrackMin ?? file.conntrackMin ?? 131072,
                cpus: max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1))
        }
        func seconds(_ flag: GoDuration?) -> Int? { flag.map { Int($0.duration.components.seconds) } }
        settings.tcpEstablishedTimeout = seconds(conntrackTCPEstablished) ?? file.conntrackTCPEstablishedTimeout ?? 86400
        settings.tcpCloseWaitTimeout = seconds(conntrackTCPCloseWait) ?? file.conntrackTCPCloseWaitTimeout ?? 3600
        settings.tcpBeLiberal = families.contains { $0.conntrackTCPBeLiberal }
        settings.udpTimeout = seconds(conntrackUDPTimeout) ?? file.conntrackUDPTimeout
        settings.udpStreamTimeout = seconds(conntrackUDPStreamTimeout) ?? file.conntrackUDPStreamTimeout
        settings.routeLocalnet = families.contains { $0.effectiveLocalhostNodePorts }
        settings.raiseHashsize = hostNamespace
        return settings
    }

    static func addresses(_ text: String, flag: String) throws -> [IPAddress] {
        try text.split(separator: ",").map { part in
            guard let address = IPAddress(part.filter { $0 != " " }) else {
                throw ValidationError("\(flag): invalid IP address \"\(part)\"")
            }
            return address
        }
    }

    static func cidrs(_ text: String, flag: String) throws -> [CIDR] {
        try text.split(separator: ",").map { part in
            guard let cidr = CIDR(part.filter { $0 != " " }) else {
                throw ValidationError("\(flag): invalid CIDR \"\(part)\"")
            }
            return cidr
        }
    }
}
