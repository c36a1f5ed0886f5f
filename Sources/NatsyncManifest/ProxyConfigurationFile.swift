import Foundation
import NatsyncModel
import NatsyncNet
import NatsyncWire
import Yams

/// The settings natsync takes from a `kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration`,
/// so that an existing kube-proxy config file carries over. Absent fields, and the zero values
/// kubeadm writes for "default" (`0s`, `null`, `""`), stay `nil`. As for kube-proxy, the file's
/// values win over the flags bound to the same settings.
public struct ProxyConfigurationFile: Sendable, Equatable {
    public var hostnameOverride: String?
    /// `bindAddress`: kube-proxy's idea of the node's primary IP (nil when unset or unspecified).
    public var bindAddress: IPAddress?
    public var healthzBindAddress: String?
    public var metricsBindAddress: String?
    /// `clientConnection.kubeconfig`.
    public var kubeconfig: String?
    /// `clientConnection.qps` and `burst`: the API client's request rate limit (0: default).
    public var apiQPS: Double?
    public var apiBurst: Int?
    /// `iptables.syncPeriod` and `iptables.minSyncPeriod`, in seconds.
    public var syncPeriod: Double?
    public var minSyncPeriod: Double?
    /// Fields natsync does not know (`conntrack.maxPerCor`, a later version's field): warnings,
    /// errors with `--strict`, never silently dropped.
    public var unknownFields: [String] = []
    public var clusterCIDRs: [CIDR]?
    public var masqueradeAll: Bool?
    public var masqueradeBit: Int?
    public var localhostNodePorts: Bool?
    public var nodePortAddresses: [CIDR]?
    /// `nodePortAddresses: [primary]`: NodePorts on the node's primary IP of each family only.
    public var nodePortAddressesPrimary = false
    /// natsync's `iptables.serviceDispatch`: `linear` or `tree` (see `--service-dispatch`).
    public var serviceDispatch: String?
    /// `conntrack.*`: durations in seconds.
    public var conntrackMaxPerCore: Int?
    public var conntrackMin: Int?
    public var conntrackTCPEstablishedTimeout: Int?
    public var conntrackTCPCloseWaitTimeout: Int?
    public var conntrackTCPBeLiberal: Bool?
    public var conntrackUDPTimeout: Int?
    public var conntrackUDPStreamTimeout: Int?
    /// `detectLocalMode` and `detectLocal`, as written (checked with the flags that share them).
    public var detectLocalMode: String?
    public var bridgeInterface: String?
    public var interfaceNamePrefix: String?
    /// `oomScoreAdj`: the daemon's `/proc/self/oom_score_adj`.
    public var oomScoreAdj: Int?
    /// `logging.verbosity` (klog's `-v`) and `logging.format` (`text` or `json`).
    public var loggingVerbosity: Int?
    public var loggingFormat: String?

    public init() {}

    /// A config file that could not be used, with the field at fault.
    public struct LoadError: Error, CustomStringConvertible {
        public var file: String
        public var field: String?
        public var message: String

        public var description: String {
            "\(file): " + (field.map { "\($0): " } ?? "") + message
        }
    }

    private struct Wire: Decodable {
        struct IPTables: Decodable {
            var masqueradeAll: Bool?
            var masqueradeBit: Int?
            var localhostNodePorts: Bool?
            var serviceDispatch: String?
            var syncPeriod: String?
            var minSyncPeriod: String?
        }
        struct ClientConnection: Decodable {
            var kubeconfig: String?
            var qps: Double?
            var burst: Int?
        }
        var apiVersion: String?
        var kind: String?
        var mode: String?
        var bindAddress: String?
        var healthzBindAddress: String?
        var metricsBindAddress: String?
        var clientConnection: ClientConnection?
        struct Conntrack: Decodable {
            var maxPerCore: Int?
            var min: Int?
            var tcpEstablishedTimeout: String?
            var tcpCloseWaitTimeout: String?
            var tcpBeLiberal: Bool?
            var udpTimeout: String?
            var udpStreamTimeout: String?
        }
        struct DetectLocal: Decodable {
            var bridgeInterface: String?
            var interfaceNamePrefix: String?
        }
        var hostnameOverride: String?
        var clusterCIDR: String?
        var iptables: IPTables?
        var nodePortAddresses: [String]?
        var detectLocalMode: String?
        var detectLocal: DetectLocal?
        var conntrack: Conntrack?
        struct Logging: Decodable {
            var verbosity: Int?
            var format: String?
        }
        var logging: Logging?
        var oomScoreAdj: Int?
    }

    /// Reads and checks a config file.
    public static func load(path: String) throws(LoadError) -> ProxyConfigurationFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError(file: path, message: "cannot read file")
        }
        let bytes = [UInt8](data)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LoadError(file: path, message: "not valid UTF-8")
        }
        let wire: Wire
        do {
            wire = try YAMLDecoder().decode(Wire.self, from: text)
        } catch let error as DecodingError {
            let (field, message) = ManifestDocument.describe(error, below: 0)
            throw LoadError(file: path, field: field, message: message)
        } catch {
            throw LoadError(file: path, message: "cannot parse: \(ManifestLoader.describeParseError(error, in: bytes))")
        }
        guard wire.kind == "KubeProxyConfiguration" else {
            throw LoadError(
                file: path, field: "kind", message: "expected KubeProxyConfiguration, found \(wire.kind.map(quote) ?? "nothing")")
        }
        if let version = wire.apiVersion, version != "kubeproxy.config.k8s.io/v1alpha1" {
            throw LoadError(file: path, field: "apiVersion", message: "unsupported version \(quote(version))")
        }
        if let mode = wire.mode, !mode.isEmpty, mode != "iptables" {
            throw LoadError(file: path, field: "mode", message: "natsync is an iptables-mode proxy; found \(quote(mode))")
        }
        var config = ProxyConfigurationFile()
        config.unknownFields = ((try? Yams.load(yaml: text)).map { Self.unknown($0, Self.schema, "") }) ?? []
        config.hostnameOverride = wire.hostnameOverride.flatMap { $0.isEmpty ? nil : $0 }
        if let text = wire.bindAddress, !text.isEmpty {
            guard let address = IPAddress(text) else {
                throw LoadError(file: path, field: "bindAddress", message: "invalid IP address \(quote(text))")
            }
            // 0.0.0.0 and :: (kubeadm's default) say nothing about the node.
            config.bindAddress = address == IPAddress("0.0.0.0") || address == IPAddress("::") ? nil : address
        }
        config.healthzBindAddress = wire.healthzBindAddress.flatMap { $0.isEmpty ? nil : $0 }
        config.metricsBindAddress = wire.metricsBindAddress.flatMap { $0.isEmpty ? nil : $0 }
        config.kubeconfig = wire.clientConnection?.kubeconfig.flatMap { $0.isEmpty ? nil : $0 }
        // kubeadm writes 0 for "default", as kube-proxy's defaulting reads it.
        config.apiQPS = wire.clientConnection?.qps.flatMap { $0 == 0 ? nil : $0 }
        config.apiBurst = wire.clientConnection?.burst.flatMap { $0 == 0 ? nil : $0 }
        // kube-proxy's defaulting takes 0 (kubeadm writes 0s) as unset.
        config.syncPeriod = try seconds(wire.iptables?.syncPeriod, path, "iptables.syncPeriod").flatMap { $0 > 0 ? $0 : nil }
        config.minSyncPeriod = try seconds(wire.iptables?.minSyncPeriod, path, "iptables.minSyncPeriod").flatMap { $0 > 0 ? $0 : nil }
        if let text = wire.clusterCIDR, !text.isEmpty {
            config.clusterCIDRs = try cidrs(text.split(separator: ",").map(String.init), path, "clusterCIDR")
        }
        config.masqueradeAll = wire.iptables?.masqueradeAll
        if let bit = wire.iptables?.masqueradeBit {
            guard (0...31).contains(bit) else {
                throw LoadError(file: path, field: "iptables.masqueradeBit", message: "\(bit) is out of range (0-31)")
            }
            config.masqueradeBit = bit
        }
        config.localhostNodePorts = wire.iptables?.localhostNodePorts
        if let dispatch = wire.iptables?.serviceDispatch {
            guard ["linear", "tree"].contains(dispatch) else {
                throw LoadError(file: path, field: "iptables.serviceDispatch", message: "expected linear or tree, found \(quote(dispatch))")
            }
            config.serviceDispatch = dispatch
        }
        if wire.nodePortAddresses == ["primary"] {
            config.nodePortAddressesPrimary = true
        } else if let addresses = wire.nodePortAddresses {
            config.nodePortAddresses = try cidrs(addresses, path, "nodePortAddresses")
        }
        if let conntrack = wire.conntrack {
            config.conntrackMaxPerCore = conntrack.maxPerCore
            config.conntrackMin = conntrack.min
            config.conntrackTCPBeLiberal = conntrack.tcpBeLiberal
            config.conntrackTCPEstablishedTimeout = try seconds(conntrack.tcpEstablishedTimeout, path, "conntrack.tcpEstablishedTimeout")
                .map { Int($0) }
            config.conntrackTCPCloseWaitTimeout = try seconds(conntrack.tcpCloseWaitTimeout, path, "conntrack.tcpCloseWaitTimeout").map {
                Int($0)
            }
            config.conntrackUDPTimeout = try seconds(conntrack.udpTimeout, path, "conntrack.udpTimeout").map { Int($0) }
            config.conntrackUDPStreamTimeout = try seconds(conntrack.udpStreamTimeout, path, "conntrack.udpStreamTimeout").map { Int($0) }
        }
        config.detectLocalMode = wire.detectLocalMode.flatMap { $0.isEmpty ? nil : $0 }
        config.bridgeInterface = wire.detectLocal?.bridgeInterface.flatMap { $0.isEmpty ? nil : $0 }
        config.interfaceNamePrefix = wire.detectLocal?.interfaceNamePrefix.flatMap { $0.isEmpty ? nil : $0 }
        if let score = wire.oomScoreAdj {
            guard (-1000...1000).contains(score) else {
                throw LoadError(file: path, field: "oomScoreAdj", message: "\(score) is out of range (-1000-1000)")
            }
            config.oomScoreAdj = score
        }
        config.loggingVerbosity = wire.logging?.verbosity
        if let format = wire.logging?.format, !format.isEmpty {
            guard ["text", "json"].contains(format) else {
                throw LoadError(file: path, field: "logging.format", message: "expected text or json, found \(quote(format))")
            }
            config.loggingFormat = format
        }
        return config
    }

    /// What a field may hold: anything (maps such as `featureGates`, `logging`'s options), or an
    /// object with these fields.
    indirect enum Schema {
        case any
        case object([String: Schema])
    }

    /// Every field of v1alpha1 (kube-proxy 1.31-1.35), whether natsync uses it or not, plus
    /// natsync's `iptables.serviceDispatch`.
    static let schema = Schema.object([
        "apiVersion": .any, "kind": .any, "featureGates": .any, "logging": .any,
        "clientConnection": .object(["kubeconfig": .any, "acceptContentTypes": .any, "contentType": .any, "qps": .any, "burst": .any]),
        "hostnameOverride": .any, "bindAddress": .any, "healthzBindAddress": .any, "metricsBindAddress": .any,
        "bindAddressHardFail": .any, "enableProfiling": .any, "showHiddenMetricsForVersion": .any, "mode": .any,
        "iptables": .object([
            "masqueradeAll": .any, "masqueradeBit": .any, "localhostNodePorts": .any, "syncPeriod": .any, "minSyncPeriod": .any,
            "serviceDispatch": .any,
        ]),
        "ipvs": .object([
            "scheduler": .any, "excludeCIDRs": .any, "strictARP": .any, "tcpTimeout": .any, "tcpFinTimeout": .any, "udpTimeout": .any,
            "syncPeriod": .any, "minSyncPeriod": .any,
        ]),
        "nftables": .object(["masqueradeAll": .any, "masqueradeBit": .any, "syncPeriod": .any, "minSyncPeriod": .any]),
        "winkernel": .object([
            "networkName": .any, "sourceVip": .any, "enableDSR": .any, "rootHnsEndpointName": .any, "forwardHealthCheckVip": .any,
        ]),
        "detectLocalMode": .any, "detectLocal": .object(["bridgeInterface": .any, "interfaceNamePrefix": .any]),
        "clusterCIDR": .any, "nodePortAddresses": .any, "oomScoreAdj": .any,
        "conntrack": .object([
            "maxPerCore": .any, "min": .any, "tcpEstablishedTimeout": .any, "tcpCloseWaitTimeout": .any, "tcpBeLiberal": .any,
            "udpTimeout": .any, "udpStreamTimeout": .any,
        ]),
        "configSyncPeriod": .any, "portRange": .any, "windowsRunAsService": .any,
    ])

    /// The paths of the fields of `value` that `schema` does not know.
    static func unknown(_ value: Any, _ schema: Schema, _ path: String) -> [String] {
        guard case .object(let fields) = schema, let mapping = value as? [String: Any] else { return [] }
        return mapping.keys.sorted().flatMap { key -> [String] in
            let field = path.isEmpty ? key : "\(path).\(key)"
            guard let inner = fields[key] else { return [field] }
            return unknown(mapping[key] as Any, inner, field)
        }
    }

    /// A Go duration field (`24h0m0s`, `1h`, `200ms`) in seconds.
    private static func seconds(_ text: String?, _ path: String, _ field: String) throws(LoadError) -> Double? {
        guard let text else { return nil }
        guard let value = goDuration(text) else { throw LoadError(file: path, field: field, message: "invalid duration \(quote(text))") }
        return value
    }

    /// Go's `time.ParseDuration` for the units a config file uses (h, m, s, ms, us, ns).
    public static func goDuration(_ text: String) -> Double? {
        var total = 0.0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            rest = rest.dropFirst(unit.count)
            guard let value = Double(number) else { return nil }
            switch unit {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            case "ms": total += value * 1e-3
            case "us", "µs": total += value * 1e-6
            case "ns": total += value * 1e-9
            default: return nil
            }
        }
        return total
    }

    private static func cidrs(_ texts: [String], _ path: String, _ field: String) throws(LoadError) -> [CIDR] {
        var result: [CIDR] = []
        for (index, text) in texts.enumerated() {
            guard let cidr = CIDR(text.trimmingASCIIWhitespace()) else {
                throw LoadError(file: path, field: "\(field)[\(index)]", message: "invalid CIDR \(quote(text))")
            }
            result.append(cidr)
        }
        return result
    }
}
