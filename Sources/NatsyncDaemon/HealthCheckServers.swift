import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NatsyncKernel
import NatsyncModel

#if canImport(Glibc)
import Glibc
#endif

/// The health-check node ports of LoadBalancer services with `externalTrafficPolicy: Local`:
/// each answers 200 while the service has a ready endpoint on this node and the proxy is healthy,
/// 503 otherwise, with kube-proxy's JSON body, so load balancers send traffic only to nodes that
/// can serve it. Listeners open and close as services come and go.
public final class HealthCheckServers: @unchecked Sendable {
    private let lock = NSLock()
    private var listeners: [UInt16: any Channel] = [:]
    private var checks: [UInt16: HealthCheck] = [:]
    let netns: String?
    let proxyHealthy: @Sendable () -> Bool
    let logger: Logger

    public init(netns: String?, logger: Logger, proxyHealthy: @escaping @Sendable () -> Bool) {
        self.netns = netns
        self.logger = logger
        self.proxyHealthy = proxyHealthy
    }

    /// Makes the listeners match `wanted`.
    public func update(_ wanted: [HealthCheck]) {
        let byPort = Dictionary(wanted.map { ($0.port, $0) }) { first, _ in first }
        let (stale, missing) = lock.withLock { () -> ([any Channel], [UInt16]) in
            checks = byPort
            let stale = listeners.filter { byPort[$0.key] == nil }
            for port in stale.keys { listeners[port] = nil }
            return (Array(stale.values), byPort.keys.filter { listeners[$0] == nil })
        }
        for channel in stale { channel.close(promise: nil) }
        for port in missing.sorted() {
            do {
                let channel = try listen(on: port)
                lock.withLock { listeners[port] = channel }
            } catch {
                logger.warning("cannot serve a health-check node port", metadata: ["port": "\(port)", "error": "\(error)"])
            }
        }
    }

    public func stopAll() {
        let open = lock.withLock { () -> [any Channel] in
            let channels = Array(listeners.values)
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

    /// A listener on `port` of every address, opened in the proxied namespace (a socket belongs to
    /// the namespace of the thread that creates it) and then served by NIO.
    private func listen(on port: UInt16) throws -> any Channel {
        let descriptor = try NetworkNamespace.run(in: netns) { () throws -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw KernelError(errno: errno, operation: "socket", message: "cannot open a socket") }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, Glibc.listen(fd, 128) == 0 else {
                let code = errno
                close(fd)
                throw KernelError(errno: code, operation: "bind", message: "cannot listen on port \(port)")
            }
            return fd
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
