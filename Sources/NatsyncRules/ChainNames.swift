import Crypto
import NatsyncIPTables
import NatsyncModel
import NatsyncReconcile

/// kube-proxy's chain names: the fixed chains and the hashed per-service and per-endpoint chains.
///
/// A service port's chains share one suffix: the first 16 characters of the RFC 4648 base32 of
/// SHA-256(`ServicePortName` + lower-case protocol). An endpoint chain hashes that input plus the
/// endpoint's `ip:port` (IPv6 in brackets). Identical names are what let natsync take over a node
/// from kube-proxy without renaming a chain.
public enum ChainNames {
    public static let services = Ownership.services
    public static let externalServices = Ownership.externalServices
    public static let nodePorts = Ownership.nodePorts
    public static let postrouting = Ownership.postrouting
    public static let markMasquerade = Ownership.markMasquerade
    public static let forward = Ownership.forward
    public static let proxyFirewall = Ownership.proxyFirewall
    /// Shared with kubelet, so it is written but never deleted.
    public static let kubeletFirewall = Ownership.kubeletFirewall
    public static let proxyCanary = Ownership.proxyCanary

    /// The cluster-policy chain of a service port (`KUBE-SVC-…`).
    public static func clusterPolicy(_ port: ServicePortName) -> ChainName { ServicePortChains(port).clusterPolicy }
    /// The local-policy chain of a service port (`KUBE-SVL-…`).
    public static func localPolicy(_ port: ServicePortName) -> ChainName { ServicePortChains(port).localPolicy }
    /// The external-destinations chain of a service port (`KUBE-EXT-…`).
    public static func external(_ port: ServicePortName) -> ChainName { ServicePortChains(port).external }
    /// The load-balancer source-range chain of a service port (`KUBE-FW-…`).
    public static func firewall(_ port: ServicePortName) -> ChainName { ServicePortChains(port).firewall }

    /// The chain of one endpoint of a service port (`KUBE-SEP-…`); `endpoint` is `ip:port`.
    public static func endpoint(_ port: ServicePortName, endpoint: String) -> ChainName {
        EndpointHasher(port).chain(endpoint: endpoint)
    }

    /// The 16-character suffix shared by a service port's chains.
    public static func hash(of port: ServicePortName) -> String {
        hash(port.description + port.protocol.iptablesName)
    }

    static func hash(_ input: String) -> String {
        let digest = SHA256.hash(data: Array(input.utf8))
        return Base32.encode(prefixOf: digest, characters: 16)
    }

    /// The chains of one service port, each named from the one hash they share.
    public struct ServicePortChains: Sendable {
        public let clusterPolicy: ChainName
        public let localPolicy: ChainName
        public let external: ChainName
        public let firewall: ChainName

        public init(_ port: ServicePortName) {
            let suffix = ChainNames.hash(of: port)
            clusterPolicy = ChainName(Ownership.Prefix.clusterPolicy + suffix)
            localPolicy = ChainName(Ownership.Prefix.localPolicy + suffix)
            external = ChainName(Ownership.Prefix.external + suffix)
            firewall = ChainName(Ownership.Prefix.firewall + suffix)
        }
    }

    /// Names the endpoint chains of one service port: the port's part of the hash input is
    /// hashed once, and each endpoint only adds its `ip:port` (a hundred thousand endpoints in a
    /// large cluster, each named twice per sync).
    public struct EndpointHasher: Sendable {
        private let prefix: SHA256

        public init(_ port: ServicePortName) {
            var prefix = SHA256()
            prefix.update(data: Array((port.description + port.protocol.iptablesName).utf8))
            self.prefix = prefix
        }

        public func chain(endpoint: String) -> ChainName {
            var endpoint = endpoint
            return endpoint.withUTF8(chain(text:))
        }

        /// The chain of `endpoint`, its `ip:port` hashed without making the string.
        public func chain(endpoint: EndpointInfo) -> ChainName {
            endpoint.address.withJoined(port: endpoint.port, chain(text:))
        }

        private func chain(text: UnsafeBufferPointer<UInt8>) -> ChainName {
            var hasher = prefix
            hasher.update(bufferPointer: UnsafeRawBufferPointer(text))
            return ChainName(Base32.encode(prefixOf: hasher.finalize(), characters: 16, after: Ownership.Prefix.endpoint))
        }
    }
}

/// RFC 4648 base32 with the standard alphabet, as Go's `base32.StdEncoding`.
enum Base32 {
    static func encode(prefixOf digest: SHA256Digest, characters: Int, after prefix: StaticString = "") -> String {
        digest.withUnsafeBytes { encode(prefixOf: $0, characters: characters, after: prefix) }
    }

    /// `prefix` followed by the first `characters` characters of the encoding of `bytes` (no
    /// padding is reached when `characters * 5 <= bytes * 8`), written straight into the string:
    /// a large cluster names a hundred thousand endpoint chains this way.
    static func encode(prefixOf bytes: UnsafeRawBufferPointer, characters: Int, after prefix: StaticString = "") -> String {
        String(unsafeUninitializedCapacity: prefix.utf8CodeUnitCount + characters) { output in
            var count = 0
            prefix.withUTF8Buffer { prefix in
                for byte in prefix {
                    output[count] = byte
                    count += 1
                }
            }
            let end = count + characters
            var buffer: UInt32 = 0
            var bits = 0
            for byte in bytes where count < end {
                buffer = buffer << 8 | UInt32(byte)
                bits += 8
                while bits >= 5 && count < end {
                    bits -= 5
                    output[count] = letter(buffer >> UInt32(bits) & 0x1F)
                    count += 1
                }
                buffer &= (1 << UInt32(bits)) - 1
            }
            if bits > 0 && count < end {
                output[count] = letter(buffer << UInt32(5 - bits) & 0x1F)
                count += 1
            }
            return count
        }
    }

    /// RFC 4648's alphabet, A-Z then 2-7, computed rather than looked up in a shared array (whose
    /// reference count every thread naming chains would take in turn).
    private static func letter(_ value: UInt32) -> UInt8 {
        value < 26 ? UInt8(ascii: "A") + UInt8(value) : UInt8(ascii: "2") + UInt8(value - 26)
    }
}
