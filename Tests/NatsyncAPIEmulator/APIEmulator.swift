import Foundation
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL
import NatsyncTestSupport

/// A Kubernetes API server emulator speaking the real list and watch wire protocol over HTTP, for
/// Services and EndpointSlices: resource versions, chunked watch streams, bookmarks, `410 Gone`
/// for versions it no longer holds, label and field selectors applied server-side (an object that stops
/// matching is DELETED for that watch, one that starts matching ADDED), periodic bookmarks for
/// watches that ask for them (as the real server's watch cache sends one a minute), and controls
/// to drop watches, silence them (the connection stays open and nothing more arrives: a lost
/// load balancer), close every connection on accept (a load balancer with no server behind it) or
/// go down.
package final class APIEmulator: @unchecked Sendable {
    package static let paths = [
        "/api/v1/services": "Service", "/apis/discovery.k8s.io/v1/endpointslices": "EndpointSlice", "/api/v1/nodes": "Node",
    ]

    private let lock = NSLock()
    private var objects: [String: [String: [String: Any]]] = [:]
    /// Each object as a list item (no `kind`, as the real API's list items), encoded once when it
    /// is stored: a list then costs its pages, not an encoding of every object per page.
    private var listItems: [String: [String: Data]] = [:]
    /// Each path's keys in order, made again only after an object came or went.
    private var orderedKeys: [String: [String]] = [:]
    private var history: [(version: Int, path: String, type: String, object: [String: Any])] = []
    private var version = 100
    private var oldestKept = 0
    private var watchers: [(channel: any Channel, path: String, selector: String?, fields: String?, bookmarks: Bool)] = []
    /// Watches that went silent: open, never written to again.
    private var silenced: [any Channel] = []
    private var bookmarkTask: RepeatedTask?
    /// False between stop() and start(): a request that raced the stop gets its connection
    /// closed, never a watch that outlives the "outage".
    private var serving = false
    /// Kept across a restart: the server sends bookmarks again once it is back.
    private var bookmarkInterval: TimeAmount?
    private var server: (any Channel)?
    package private(set) var port = 0
    package private(set) var requests: [String] = []
    /// The User-Agent of each request, in order.
    package private(set) var userAgents: [String] = []
    /// When each request came, in order.
    package private(set) var requestTimes: [(uri: String, at: ContinuousClock.Instant)] = []
    /// Watches answered and ended at once, with no event: a server in trouble.
    package var closeWatchesAtOnce: Bool {
        get { lock.withLock { closesWatches } }
        set { lock.withLock { closesWatches = newValue } }
    }
    private var closesWatches = false
    /// Connections accepted and closed at once, before TLS or HTTP: a load balancer with no
    /// server behind it.
    package var closeConnectionsAtOnce: Bool {
        get { lock.withLock { closesConnections } }
        set { lock.withLock { closesConnections = newValue } }
    }
    private var closesConnections = false
    /// Connections closed at once so far (``closeConnectionsAtOnce``).
    package var closedConnections: Int { lock.withLock { closed } }
    private var closed = 0
    /// The next this many lists are answered with this status (`429` or `5xx`), with `Retry-After`.
    private var failedLists = 0
    private var failure: (status: HTTPResponseStatus, retryAfter: Int?) = (.tooManyRequests, nil)

    package func failLists(_ count: Int, status: HTTPResponseStatus, retryAfter seconds: Int? = nil) {
        lock.withLock {
            failedLists = count
            failure = (status, seconds)
        }
    }

    /// Pages hold at most this many items, whatever `limit` asks for (the real server may send
    /// fewer than asked), with a `continue` token for the rest.
    package var maxPageSize: Int? {
        get { lock.withLock { pageCap } }
        set { lock.withLock { pageCap = newValue } }
    }
    private var pageCap: Int?
    /// The continue tokens handed out so far expire: the next page asked for gets `410`.
    package func expireContinueTokens() { lock.withLock { continueExpired = true } }
    private var continueExpired = false
    /// Pages refused with `410` because their token had expired.
    package private(set) var expiredContinues = 0
    /// Each watch ends after its `timeoutSeconds` times this (the real server ends it after
    /// `timeoutSeconds`; tests cannot wait minutes).
    package var watchTimeoutScale: Double? {
        get { lock.withLock { timeoutScale } }
        set { lock.withLock { timeoutScale = newValue } }
    }
    private var timeoutScale: Double?
    /// Every watch event is written in two pieces, split inside the line, flushed apart.
    package var splitEvents: Bool {
        get { lock.withLock { splits } }
        set { lock.withLock { splits = newValue } }
    }
    private var splits = false

    /// HTTPS with this certificate and key; with `clientCA`, every client must show a
    /// certificate it signed (as an API server started with `--client-ca-file` asks for one).
    package struct TLS {
        package var certificate: String
        package var key: String
        package var clientCA: String?
    }
    private let tls: NIOSSLContext?
    /// Bearer tokens the server accepts (nil: no token needed); a request without one of them
    /// gets `401`, one with a token in `forbiddenTokens` gets `403`.
    package var acceptedTokens: Set<String>? {
        get { lock.withLock { tokens } }
        set { lock.withLock { tokens = newValue } }
    }
    private var tokens: Set<String>?
    package var forbiddenTokens: Set<String> {
        get { lock.withLock { forbidden } }
        set { lock.withLock { forbidden = newValue } }
    }
    private var forbidden: Set<String> = []
    /// The common name of each request's client certificate, in order ("" without one).
    package private(set) var clientNames: [String] = []
    /// Requests answered 401 or 403.
    package private(set) var refusals = 0
    /// Responses sent gzip-compressed.
    package private(set) var compressed = 0

    /// The CA that signed the serving certificate, for kubeconfigs (nil over plain HTTP).
    package private(set) var certificateAuthority: String?

    /// An emulator serving HTTPS with a certificate from a CA made in `folder`; with
    /// `clientCertificates`, clients must show a certificate from that CA.
    package static func https(in folder: URL, clientCertificates: Bool = false) throws -> (APIEmulator, TestPKI) {
        let pki = try TestPKI(in: folder)
        let server = try pki.issue("apiserver", client: false)
        let api = try APIEmulator(
            tls: .init(certificate: server.certificate, key: server.key, clientCA: clientCertificates ? pki.caCertificate : nil))
        api.certificateAuthority = pki.caCertificate
        return (api, pki)
    }

    /// Writes a kubeconfig for this emulator into `folder`, its user's fields given as YAML flow;
    /// returns its path.
    package func kubeconfig(in folder: URL, user: String) throws -> String {
        let cluster =
            certificateAuthority.map { "{server: \"https://127.0.0.1:\(port)\", certificate-authority: \"\($0)\"}" }
            ?? "{server: \"http://127.0.0.1:\(port)\"}"
        let path = folder.appendingPathComponent("kubeconfig-\(UUID().uuidString.prefix(6)).yaml").path
        try """
        apiVersion: v1
        kind: Config
        current-context: test
        contexts: [{name: test, context: {cluster: emulator, user: natsync}}]
        clusters: [{name: emulator, cluster: \(cluster)}]
        users: [{name: natsync, user: \(user)}]
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    package init(tls: TLS? = nil) throws {
        if let tls {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
            if let clientCA = tls.clientCA {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .file(clientCA)
            }
            self.tls = try NIOSSLContext(configuration: configuration)
        } else {
            self.tls = nil
        }
        try start()
    }

    /// Starts serving (again, on the same port once it has one).
    package func start() throws {
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let closing = self.lock.withLock { () -> Bool in
                        guard self.closesConnections else { return false }
                        self.closed += 1
                        return true
                    }
                    if closing {
                        try channel.pipeline.syncOperations.addHandler(CloseOnAccept())
                        return
                    }
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    // gzip for whole responses (lists) to clients that accept it, never for watch
                    // streams, as the API server compresses.
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPResponseCompressor { head, supported in
                            guard head.headers["Content-Length"].first != nil else { return .doNotCompress }
                            if supported { self.lock.withLock { self.compressed += 1 } }
                            return .compressIfPossible
                        })
                    try channel.pipeline.syncOperations.addHandler(Handler(emulator: self))
                }
            }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
        port = channel.localAddress?.port ?? 0
        let bookmarks = lock.withLock { () -> TimeAmount? in
            server = channel
            serving = true
            return bookmarkTask == nil ? bookmarkInterval : nil
        }
        if let bookmarks { sendBookmarks(every: bookmarks) }
    }

    /// Sends a BOOKMARK with the current version every `interval` to each watch that asked for
    /// bookmarks (`allowWatchBookmarks=true`).
    package func sendBookmarks(every interval: TimeAmount) {
        lock.withLock { bookmarkInterval = interval }
        let task = MultiThreadedEventLoopGroup.singleton.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            [weak self] _ in
            guard let self else { return }
            let (targets, current) = self.lock.withLock { (self.watchers.filter(\.bookmarks), self.version) }
            for watcher in targets {
                self.write(
                    Self.line("BOOKMARK", ["kind": Self.paths[watcher.path]!, "metadata": ["resourceVersion": "\(current)"]]),
                    to: watcher.channel)
            }
        }
        lock.withLock { bookmarkTask = task }
    }

    /// Every open watch goes silent: its connection stays open, but nothing is written to it again
    /// (events and bookmarks go to the watches opened after this).
    package func silenceWatches() {
        lock.withLock {
            silenced += watchers.map(\.channel)
            watchers = []
        }
    }

    /// Watch requests served so far.
    package var watchRequests: Int { lock.withLock { requests.filter { $0.contains("watch=1") }.count } }

    /// Stops serving and closes every connection: the API server is down.
    package func stop() {
        let (channel, open) = lock.withLock { () -> ((any Channel)?, [any Channel]) in
            let result = (server, watchers.map(\.channel) + silenced)
            serving = false
            server = nil
            watchers = []
            silenced = []
            bookmarkTask?.cancel()
            bookmarkTask = nil
            return result
        }
        for connection in open { try? connection.close().wait() }
        try? channel?.close().wait()
    }

    /// Ends every open watch stream, as a dropped connection does.
    package func dropWatches() {
        let open = lock.withLock { () -> [any Channel] in
            let channels = watchers.map(\.channel)
            watchers = []
            return channels
        }
        for channel in open { try? channel.close().wait() }
    }

    /// Forgets the history: watches from any version seen so far get `410 Gone`.
    package func expireHistory() {
        // A list after this returns the new version, from which watches are valid again.
        lock.withLock {
            version += 1
            oldestKept = version
            history = []
        }
        dropWatches()
    }

    /// Creates or replaces an object (`kind` is "Service" or "EndpointSlice").
    package func put(_ object: [String: Any]) {
        record(object, deleted: false)
    }

    package func delete(_ object: [String: Any]) {
        record(object, deleted: true)
    }

    /// The objects as a `List` manifest, to compare the node's rules with (`natsync diff`).
    package func listManifest() -> Data {
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
            if deleted {
                objects[path]?[key] = nil
                listItems[path]?[key] = nil
            } else {
                objects[path, default: [:]][key] = object
                listItems[path, default: [:]][key] = Self.listItem(object)
            }
            if deleted != (old == nil) { orderedKeys[path] = nil }
            let type = deleted ? "DELETED" : old != nil ? "MODIFIED" : "ADDED"
            history.append((version, path, type, object))
            return watchers.filter { $0.path == path }.compactMap { watcher in
                let was = old.map { Self.matches($0, watcher.selector, fields: watcher.fields) } ?? false
                let now = !deleted && Self.matches(object, watcher.selector, fields: watcher.fields)
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
    package static func matches(_ object: [String: Any], _ selector: String?, fields: String? = nil) -> Bool {
        if let fields, !fields.isEmpty {
            // Field selectors on `metadata.name` and `metadata.namespace`, as the API serves them
            // for every kind: `field=value`, `field!=value`.
            let metadata = object["metadata"] as? [String: Any] ?? [:]
            let holds = fields.split(separator: ",").allSatisfy { requirement in
                let negated = requirement.contains("!=")
                let parts = requirement.components(separatedBy: negated ? "!=" : "=")
                guard parts.count == 2, parts[0].hasPrefix("metadata.") else { return false }
                let value = metadata[String(parts[0].dropFirst("metadata.".count))] as? String ?? ""
                return (value == parts[1]) != negated
            }
            guard holds else { return false }
        }
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

    /// `object` as a list page holds it: without `kind` and `apiVersion`.
    package static func listItem(_ object: [String: Any]) -> Data {
        var copy = object
        copy["kind"] = nil
        copy["apiVersion"] = nil
        return try! JSONSerialization.data(withJSONObject: copy)
    }

    package static func line(_ type: String, _ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: ["type": type, "object": object]), as: UTF8.self) + "\n"
    }

    private func write(_ text: String, to channel: any Channel) {
        let split = splitEvents
        channel.eventLoop.execute {
            let bytes = Array(text.utf8)
            let pieces = split && bytes.count > 1 ? [Array(bytes[..<(bytes.count / 2)]), Array(bytes[(bytes.count / 2)...])] : [bytes]
            for piece in pieces {
                channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: piece))), promise: nil)
            }
        }
    }

    /// Whether the request may go on: its bearer token is accepted (when tokens are asked for).
    private func authorized(_ head: HTTPRequestHead, on channel: any Channel, peer: String) -> Bool {
        let header = head.headers.first(name: "Authorization") ?? ""
        let token = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : nil
        let (accepted, refused) = lock.withLock { () -> (Bool, Bool) in
            clientNames.append(peer)
            let refused = token.map { forbidden.contains($0) } ?? false
            let accepted = tokens.map { known in token.map(known.contains) ?? false } ?? true
            if refused || !accepted { refusals += 1 }
            return (accepted, refused)
        }
        if refused {
            reply(
                channel, status: .forbidden, body: #"{"kind":"Status","code":403,"reason":"Forbidden","message":"services is forbidden"}"#)
            return false
        }
        if !accepted {
            reply(channel, status: .unauthorized, body: #"{"kind":"Status","code":401,"reason":"Unauthorized","message":"Unauthorized"}"#)
            return false
        }
        return true
    }

    /// Answers one request: a list, or a watch that stays open.
    fileprivate func respond(_ head: HTTPRequestHead, on channel: any Channel, peer: String) {
        guard authorized(head, on: channel, peer: peer) else { return }
        let components = URLComponents(string: head.uri)!
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { $1 }
        let (failing, closeAtOnce, up) = lock.withLock { () -> ((status: HTTPResponseStatus, retryAfter: Int?)?, Bool, Bool) in
            guard serving else { return (nil, false, false) }
            requests.append(head.uri)
            userAgents.append(head.headers.first(name: "User-Agent") ?? "")
            requestTimes.append((head.uri, .now))
            let isList = !head.uri.contains("watch=1")
            guard isList, failedLists > 0 else { return (nil, closesWatches, true) }
            failedLists -= 1
            return (failure, closesWatches, true)
        }
        guard up else {
            channel.close(promise: nil)
            return
        }
        if let failing {
            reply(
                channel, status: failing.status, body: #"{"kind":"Status","code":\#(failing.status.code),"message":"try again later"}"#,
                extra: failing.retryAfter.map { [("Retry-After", "\($0)")] } ?? [])
            return
        }
        guard let path = Optional(components.path), Self.paths[path] != nil else {
            reply(channel, status: .notFound, body: #"{"kind":"Status","code":404,"message":"not found"}"#)
            return
        }
        guard query["watch"] == "1" || query["watch"] == "true" else {
            let (page, expired) = lock.withLock { () -> (Data?, Bool) in
                if query["continue"] != nil && continueExpired {
                    continueExpired = false
                    expiredContinues += 1
                    return (nil, true)
                }
                return (listPage(path, query), false)
            }
            if expired {
                reply(
                    channel, status: .gone,
                    body: #"{"kind":"Status","code":410,"reason":"Expired","message":"The provided continue parameter is too old"}"#)
                return
            }
            reply(channel, status: .ok, body: page!)
            return
        }
        if closeAtOnce {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            // Said before closing, as HTTP asks of a server that closes after its answer: else
            // the client may send its next request on the connection as it closes, and lose it.
            headers.add(name: "Connection", value: "close")
            channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        let from = Int(query["resourceVersion"] ?? "") ?? 0
        let (gone, backlog, open) = lock.withLock { () -> (Bool, [String], Bool) in
            guard serving else { return (false, [], false) }
            if from < oldestKept { return (true, [], true) }
            let lines = history.filter {
                $0.path == path && $0.version > from && Self.matches($0.object, query["labelSelector"], fields: query["fieldSelector"])
            }
            .map { Self.line($0.type, $0.object) }
            watchers.append((channel, path, query["labelSelector"], query["fieldSelector"], query["allowWatchBookmarks"] == "true"))
            return (false, lines, true)
        }
        guard open else {
            channel.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        // Watches this server will end itself close their connection after the end.
        if gone || watchTimeoutScale != nil { headers.add(name: "Connection", value: "close") }
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), promise: nil)
        if gone {
            let status: [String: Any] = [
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired",
                "message": "too old resource version: \(from)",
            ]
            channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: Self.line("ERROR", status)))), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        // Bookmarks only for watches that allow them, as the real server.
        let bookmark =
            query["allowWatchBookmarks"] == "true"
            ? Self.line("BOOKMARK", ["kind": Self.paths[path]!, "metadata": ["resourceVersion": "\(lock.withLock { version })"]]) : ""
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: ""))), promise: nil)
        for line in backlog + [bookmark] where !line.isEmpty { write(line, to: channel) }
        if let scale = watchTimeoutScale, let seconds = Double(query["timeoutSeconds"] ?? "") {
            channel.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * scale * 1000))) { [weak self] in
                self?.lock.withLock { self?.watchers.removeAll { $0.channel === channel } }
                channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    /// One page of `path`'s objects matching the query's selectors, in key order, from the key
    /// after `continue` (as the real server's continue token, a position that survives changes),
    /// with a token when more match. Called under the lock.
    private func listPage(_ path: String, _ query: [String: String]) -> Data {
        if orderedKeys[path] == nil { orderedKeys[path] = (objects[path] ?? [:]).keys.sorted() }
        let keys = orderedKeys[path]!
        let size = min(Int(query["limit"] ?? "") ?? Int.max, pageCap ?? Int.max)
        var position = 0
        if let after = query["continue"] {
            var high = keys.count
            while position < high {
                let middle = (position + high) / 2
                if keys[middle] > after { high = middle } else { position = middle + 1 }
            }
        }
        var items: [Data] = []
        var last: String?
        var next: String?
        for key in keys[position...] where Self.matches(objects[path]![key]!, query["labelSelector"], fields: query["fieldSelector"]) {
            if items.count == size {
                next = last
                break
            }
            items.append(listItems[path]![key]!)
            last = key
        }
        var metadata: [String: Any] = ["resourceVersion": "\(version)"]
        if let next { metadata["continue"] = next }
        var body = Data(#"{"kind":"List","apiVersion":"v1","metadata":"#.utf8)
        body.append(try! JSONSerialization.data(withJSONObject: metadata))
        body.append(contentsOf: #","items":["#.utf8)
        for (index, item) in items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(item)
        }
        body.append(contentsOf: "]}".utf8)
        return body
    }

    private func reply(_ channel: any Channel, status: HTTPResponseStatus, body: String, extra: [(String, String)] = []) {
        reply(channel, status: status, body: Data(body.utf8), extra: extra)
    }

    private func reply(_ channel: any Channel, status: HTTPResponseStatus, body: Data, extra: [(String, String)] = []) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in extra { headers.add(name: name, value: value) }
        headers.add(name: "Content-Length", value: "\(body.count)")
        var buffer = channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(buffer)), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
    }

    private final class CloseOnAccept: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer

        func channelActive(context: ChannelHandlerContext) {
            context.close(promise: nil)
        }
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
            case .end:
                guard let head else { return }
                let peer = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self))?.peerCertificate
                let name = peer.flatMap {
                    "\($0)".components(separatedBy: "common_name=").dropFirst().first?.prefix { $0 != ";" && $0 != ">" }
                }
                emulator.respond(head, on: context.channel, peer: name.map(String.init) ?? "")
            }
        }
    }
}

/// Kubernetes objects as the API serves them.
package enum APIObjects {
    package static func service(_ name: String, clusterIP: String, port: Int = 80, proto: String = "TCP") -> [String: Any] {
        [
            "apiVersion": "v1", "kind": "Service", "metadata": ["name": name, "namespace": "default"],
            "spec": ["type": "ClusterIP", "clusterIP": clusterIP, "ports": [["name": "p", "port": port, "protocol": proto]]],
        ]
    }

    package static func slice(_ service: String, _ endpoints: [String], port: Int = 8080, proto: String = "TCP") -> [String: Any] {
        [
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": ["name": "\(service)-abc", "namespace": "default", "labels": ["kubernetes.io/service-name": service]],
            "addressType": "IPv4", "ports": [["name": "p", "port": port, "protocol": proto]],
            "endpoints": endpoints.map { ["addresses": [$0], "conditions": ["ready": true], "nodeName": "node-2"] },
        ]
    }
}
