import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Kubernetes API server emulator speaking the real list and watch wire protocol over HTTP, for
/// Services and EndpointSlices: resource versions, chunked watch streams, bookmarks, `410 Gone`
/// for versions it no longer holds, label selectors applied server-side (an object that stops
/// matching is DELETED for that watch, one that starts matching ADDED), and controls to drop
/// watches or go down.
final class APIEmulator: @unchecked Sendable {
    static let paths = [
        "/api/v1/services": "Service", "/apis/discovery.k8s.io/v1/endpointslices": "EndpointSlice", "/api/v1/nodes": "Node",
    ]

    private let lock = NSLock()
    private var objects: [String: [String: [String: Any]]] = [:]
    private var history: [(version: Int, path: String, type: String, object: [String: Any])] = []
    private var version = 100
    private var oldestKept = 0
    private var watchers: [(channel: any Channel, path: String, selector: String?)] = []
    private var server: (any Channel)?
    private(set) var port = 0
    private(set) var requests: [String] = []
    /// The User-Agent of each request, in order.
    private(set) var userAgents: [String] = []
    /// When each request came, in order.
    private(set) var requestTimes: [(uri: String, at: ContinuousClock.Instant)] = []
    /// Watches answered and ended at once, with no event: a server in trouble.
    var closeWatchesAtOnce: Bool {
        get { lock.withLock { closesWatches } }
        set { lock.withLock { closesWatches = newValue } }
    }
    private var closesWatches = false
    /// The next this many lists are answered `429 Too Many Requests` with `Retry-After`.
    private var throttledLists = 0
    private var retryAfterSeconds = 0

    func throttleLists(_ count: Int, retryAfter seconds: Int) {
        lock.withLock {
            throttledLists = count
            retryAfterSeconds = seconds
        }
    }

    init() throws { try start() }

    /// Starts serving (again, on the same port once it has one).
    func start() throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(emulator: self))
                }
            }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
        port = channel.localAddress?.port ?? 0
        lock.withLock { server = channel }
    }

    /// Stops serving and closes every connection: the API server is down.
    func stop() {
        let (channel, open) = lock.withLock { () -> ((any Channel)?, [any Channel]) in
            let result = (server, watchers.map(\.channel))
            server = nil
            watchers = []
            return result
        }
        for connection in open { try? connection.close().wait() }
        try? channel?.close().wait()
    }

    /// Ends every open watch stream, as a dropped connection does.
    func dropWatches() {
        let open = lock.withLock { () -> [any Channel] in
            let channels = watchers.map(\.channel)
            watchers = []
            return channels
        }
        for channel in open { try? channel.close().wait() }
    }

    /// Forgets the history: watches from any version seen so far get `410 Gone`.
    func expireHistory() {
        // A list after this returns the new version, from which watches are valid again.
        lock.withLock {
            version += 1
            oldestKept = version
            history = []
        }
        dropWatches()
    }

    /// Creates or replaces an object (`kind` is "Service" or "EndpointSlice").
    func put(_ object: [String: Any]) {
        record(object, deleted: false)
    }

    func delete(_ object: [String: Any]) {
        record(object, deleted: true)
    }

    /// The objects as a `List` manifest, to compare the node's rules with (`natsync diff`).
    func listManifest() -> Data {
        let items = lock.withLock { objects.values.flatMap { $0.values } }
        return try! JSONSerialization.data(withJSONObject: ["apiVersion": "v1", "kind": "List", "items": items])
    }

    private func record(_ input: [String: Any], deleted: Bool) {
        let kind = input["kind"] as! String
        let path = Self.paths.first { $0.value == kind }!.key
        var object = input
        var metadata = object["metadata"] as! [String: Any]
        let key = "\(metadata["namespace"] as? String ?? "")/\(metadata["name"] as! String)"
        let pending = lock.withLock { () -> [(any Channel, String)] in
            version += 1
            metadata["resourceVersion"] = "\(version)"
            object["metadata"] = metadata
            let old = objects[path]?[key]
            if deleted { objects[path]?[key] = nil } else { objects[path, default: [:]][key] = object }
            let type = deleted ? "DELETED" : old != nil ? "MODIFIED" : "ADDED"
            history.append((version, path, type, object))
            return watchers.filter { $0.path == path }.compactMap { watcher in
                let was = old.map { Self.matches($0, watcher.selector) } ?? false
                let now = !deleted && Self.matches(object, watcher.selector)
                switch (was, now) {
                case (false, false): return nil
                case (false, true): return (watcher.channel, Self.line("ADDED", object))
                case (true, false): return (watcher.channel, Self.line("DELETED", object))
                case (true, true): return (watcher.channel, Self.line(type, object))
                }
            }
        }
        for (channel, line) in pending { write(line, to: channel) }
    }

    /// Whether `object`'s labels satisfy a label selector: requirements `key`, `!key`, `key=value`
    /// and `key!=value`, comma-separated (the forms clients send).
    static func matches(_ object: [String: Any], _ selector: String?) -> Bool {
        guard let selector, !selector.isEmpty else { return true }
        let labels = ((object["metadata"] as? [String: Any])?["labels"] as? [String: String]) ?? [:]
        return selector.split(separator: ",").allSatisfy { requirement in
            if let range = requirement.range(of: "!=") {
                return labels[String(requirement[..<range.lowerBound])] != String(requirement[range.upperBound...])
            }
            if let range = requirement.range(of: "=") {
                return labels[String(requirement[..<range.lowerBound])] == String(requirement[range.upperBound...])
            }
            if requirement.hasPrefix("!") { return labels[String(requirement.dropFirst())] == nil }
            return labels[String(requirement)] != nil
        }
    }

    static func line(_ type: String, _ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: ["type": type, "object": object]), as: UTF8.self) + "\n"
    }

    private func write(_ text: String, to channel: any Channel) {
        channel.eventLoop.execute {
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: text))), promise: nil)
        }
    }

    /// Answers one request: a list, or a watch that stays open.
    fileprivate func respond(_ head: HTTPRequestHead, on channel: any Channel) {
        let components = URLComponents(string: head.uri)!
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { $1 }
        let (throttle, closeAtOnce) = lock.withLock { () -> (Int?, Bool) in
            requests.append(head.uri)
            userAgents.append(head.headers.first(name: "User-Agent") ?? "")
            requestTimes.append((head.uri, .now))
            let isList = !head.uri.contains("watch=1")
            guard isList, throttledLists > 0 else { return (nil, closesWatches) }
            throttledLists -= 1
            return (retryAfterSeconds, closesWatches)
        }
        if let throttle {
            reply(channel, status: .tooManyRequests, body: #"{"kind":"Status","code":429,"message":"too many requests"}"#,
                  extra: [("Retry-After", "\(throttle)")])
            return
        }
        guard let path = Optional(components.path), Self.paths[path] != nil else {
            reply(channel, status: .notFound, body: #"{"kind":"Status","code":404,"message":"not found"}"#)
            return
        }
        guard query["watch"] == "1" || query["watch"] == "true" else {
            let (all, current) = lock.withLock { (Array((objects[path] ?? [:]).values), version) }
            let items = all.filter { Self.matches($0, query["labelSelector"]) }
            // List items carry no kind, as the real API's do not.
            let stripped = items.map { item -> [String: Any] in
                var copy = item
                copy["kind"] = nil
                copy["apiVersion"] = nil
                return copy
            }
            let list: [String: Any] = ["kind": "List", "apiVersion": "v1", "metadata": ["resourceVersion": "\(current)"], "items": stripped]
            reply(channel, status: .ok, body: String(decoding: try! JSONSerialization.data(withJSONObject: list), as: UTF8.self))
            return
        }
        if closeAtOnce {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        let from = Int(query["resourceVersion"] ?? "") ?? 0
        let (gone, backlog) = lock.withLock { () -> (Bool, [String]) in
            if from < oldestKept { return (true, []) }
            let lines = history.filter { $0.path == path && $0.version > from && Self.matches($0.object, query["labelSelector"]) }
                .map { Self.line($0.type, $0.object) }
            watchers.append((channel, path, query["labelSelector"]))
            return (false, lines)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
        if gone {
            let status: [String: Any] = ["kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                                         "message": "too old resource version: \(from)"]
            channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: Self.line("ERROR", status)))), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        let bookmark = Self.line("BOOKMARK", ["kind": Self.paths[path]!, "metadata": ["resourceVersion": "\(lock.withLock { version })"]])
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: backlog.joined() + bookmark))), promise: nil)
    }

    private func reply(_ channel: any Channel, status: HTTPResponseStatus, body: String, extra: [(String, String)] = []) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in extra { headers.add(name: name, value: value) }
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        let emulator: APIEmulator
        var head: HTTPRequestHead?

        init(emulator: APIEmulator) { self.emulator = emulator }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end: if let head { emulator.respond(head, on: context.channel) }
            }
        }
    }
}

/// Kubernetes objects as the API serves them.
enum APIObjects {
    static func service(_ name: String, clusterIP: String, port: Int = 80, proto: String = "TCP") -> [String: Any] {
        [
            "apiVersion": "v1", "kind": "Service", "metadata": ["name": name, "namespace": "default"],
            "spec": ["type": "ClusterIP", "clusterIP": clusterIP, "ports": [["name": "p", "port": port, "protocol": proto]]],
        ]
    }

    static func slice(_ service: String, _ endpoints: [String], port: Int = 8080, proto: String = "TCP") -> [String: Any] {
        [
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": ["name": "\(service)-abc", "namespace": "default", "labels": ["kubernetes.io/service-name": service]],
            "addressType": "IPv4", "ports": [["name": "p", "port": port, "protocol": proto]],
            "endpoints": endpoints.map { ["addresses": [$0], "conditions": ["ready": true], "nodeName": "node-2"] },
        ]
    }
}
