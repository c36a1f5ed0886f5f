import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NatsyncKernel
import NatsyncModel

#if canImport(Glibc)
import Glibc
import NatsyncNet
#endif

/// The health-check node ports of LoadBalancer services with `externalTrafficPolicy: Local`:
/// each answers 200 while the service has a ready endpoint on this node and the proxy is healthy,
/// 503 otherwise, with kube-proxy's JSON body, so load balancers send traffic only to nodes that
/// can serve it. Listeners open and close as services come and go, on the node-port addresses of
/// every family (every address of both families when node ports answer everywhere).
public final class HealthCheckServers: @unchecked Sendable {
    private let lock = NSLock()
    private var listeners: [UInt16: [any Channel]] = [:]
    private var checks: [UInt16: HealthCheck] = [:]
    /// Where the open listeners are bound; nil for every address.
    private var addresses: [IPAddress]?
    let netns: String?
    let proxyHealthy: @Sendable () -> Bool
    let logger: Logger

    public init(netns: String?, logger: Logger, proxyHealthy: @escaping @Sendable () -> Bool) {
        self.netns = netns
        self.logger = logger
        self.proxyHealthy = proxyHealthy
    }

    /// Makes the listeners match `wanted`, on `addresses` (nil: every address). A change of
    /// addresses reopens every listener on the new ones.
    public func update(_ wanted: [HealthCheck], addresses wantedAddresses: [IPAddress]?) {
        let byPort = Dictionary(wanted.map { ($0.port, $0) }) { first, _ in first }
        let (stale, missing) = lock.withLock { () -> ([any Channel], [UInt16]) in
            checks = byPort
            let moved = wantedAddresses != addresses
            addresses = wantedAddresses
            let stale = listeners.filter { moved || byPort[$0.key] == nil }
            for port in stale.keys { listeners[port] = nil }
            return (stale.values.flatMap { $0 }, byPort.keys.filter { listeners[$0] == nil })
        }
        for channel in stale { try? channel.close().wait() }
        for port in missing.sorted() {
            var channels: [any Channel] = []
            for address in wantedAddresses.map({ $0.map(Optional.some) }) ?? [nil] {
                do {
                    channels.append(try listen(on: port, address: address))
                } catch {
                    logger.warning(
                        "cannot serve a health-check node port",
                        metadata: ["port": "\(port)", "address": "\(address.map { "\($0)" } ?? "*")", "error": "\(error)"])
                }
            }
            lock.withLock { listeners[port] = channels }
        }
    }

    public func stopAll() {
        let open = lock.withLock { () -> [any Channel] in
            let channels = listeners.values.flatMap { $0 }
            listeners = [:]
            return channels
        }
        for channel in open { try? channel.close().wait() }
    }

    /// The status and body for the service on `port`.
    func response(port: UInt16) -> (HTTPResponseStatus, String) {
        guard let check = lock.withLock({ checks[port] }) else { return (.notFound, "") }
        let healthy = proxyHealthy()
        let body =
            "{\"service\": {\"namespace\": \"\(check.service.namespace)\", \"name\": \"\(check.service.name)\"}, "
            + "\"localEndpoints\": \(check.localEndpoints), \"serviceProxyHealthy\": \(healthy)}"
        return (check.localEndpoints > 0 && healthy ? .ok : .serviceUnavailable, body)
    }

    /// A listener on `port` of `address`, or of every address of both families (IPv4 alone where
    /// the kernel has no IPv6), opened in the proxied namespace (a socket belongs to the namespace
    /// of the thread that creates it) and then served by NIO.
    private func listen(on port: UInt16, address: IPAddress?) throws -> any Channel {
        let descriptor = try NetworkNamespace.run(in: netns) { () throws -> Int32 in
            try Self.boundSocket(port: port, address: address)
        }
        return try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Responder(servers: self, port: port))
                }
            }
            .withBoundSocket(descriptor)
            .wait()
    }

    private static func boundSocket(port: UInt16, address: IPAddress?) throws -> Int32 {
        let wantSix = address.map { $0.family == .ipv6 } ?? true
        var fd = socket(wantSix ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var six = wantSix
        if fd < 0 && address == nil && errno == EAFNOSUPPORT {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            six = false
        }
        guard fd >= 0 else { throw KernelError(errno: errno, operation: "socket", message: "cannot open a socket") }
        var one: Int32 = 1
        var zero: Int32 = 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        if six {
            // The wildcard takes IPv4 too, as Go's listener on ":port" does.
            if address == nil { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size)) }
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = port.bigEndian
            if let address { withUnsafeMutableBytes(of: &socketAddress.sin6_addr) { $0.copyBytes(from: address.bytes) } }
            bound = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = port.bigEndian
            if let address { withUnsafeMutableBytes(of: &socketAddress.sin_addr) { $0.copyBytes(from: address.bytes) } }
            bound = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            throw KernelError(errno: code, operation: "bind", message: "cannot listen on port \(port)")
        }
        return fd
    }

    private final class Responder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let servers: HealthCheckServers
        let port: UInt16

        init(servers: HealthCheckServers, port: UInt16) {
            self.servers = servers
            self.port = port
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let (status, body) = servers.response(port: port)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "X-Content-Type-Options", value: "nosniff")
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
