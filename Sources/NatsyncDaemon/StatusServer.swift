import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A small HTTP/1.1 server for health and metrics: every GET goes to `respond`, which returns
/// the status, content type and body.
public final class StatusServer: ServiceLifecycle.Service, Sendable {
    public typealias Responder = @Sendable (_ path: String) -> (status: Int, contentType: String, body: [UInt8])

    let host: String
    let port: Int
    let name: String
    let logger: Logger
    let respond: Responder

    public init(name: String, host: String, port: Int, logger: Logger, respond: @escaping Responder) {
        self.name = name
        self.host = host
        self.port = port
        self.logger = logger
        self.respond = respond
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        // Tests bind port 0 and read the port from this line.
        logger.info("\(name) server listening", metadata: ["address": "\(server.channel.localAddress.map { "\($0)" } ?? "?")"])
        try? await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var path = "/"
            var keepAlive = false
            for try await part in inbound {
                switch part {
                case .head(let head):
                    path = String(head.uri.prefix { $0 != "?" })
                    keepAlive = head.isKeepAlive
                case .body:
                    break
                case .end:
                    let (status, contentType, body) = respond(path)
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: contentType)
                    headers.add(name: "X-Content-Type-Options", value: "nosniff")
                    headers.add(name: "Content-Length", value: "\(body.count)")
                    headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
                    let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
                    try await outbound.write(.head(head))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
                    try await outbound.write(.end(nil))
                    if !keepAlive { return }
                }
            }
        }
    }
}
