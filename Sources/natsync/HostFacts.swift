import NatsyncKernel
import NatsyncModel

#if canImport(Glibc)
import Glibc
import NatsyncNet
#endif

/// What natsync reads from the host it runs on: its name and its addresses.
struct HostFacts {
    /// The network namespace whose interfaces are the node's (`--netns`), or nil for natsync's own.
    var netns: String?

    /// The host name, as kube-proxy's default node name.
    func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
    }

    /// Every address on the node's interfaces, loopback included, in interface order; none if
    /// the namespace cannot be entered (the sync that follows reports why).
    func addresses() -> [IPAddress] {
        (try? NetworkNamespace.run(in: netns) { Self.interfaceAddresses() }) ?? []
    }

    private static func interfaceAddresses() -> [IPAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var result: [IPAddress] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    let bytes = withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    if let ip = IPAddress(bytes: bytes) { result.append(ip) }
                }
            case AF_INET6:
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    let bytes = withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    if let ip = IPAddress(bytes: bytes) { result.append(ip) }
                }
            default:
                continue
            }
        }
        return result
    }
}
