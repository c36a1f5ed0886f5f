import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// An HTTP client for one API server, with the connection's TLS trust and credentials.
public final class APIClient: Sendable {
    let connection: APIConnection
    let http: HTTPClient
    let credentials: CredentialStore
    let rateLimit: RequestRateLimit
    /// The trust every request starts from; a client certificate is added per request, so a
    /// renewed one is used as soon as it is on disk.
    let tls: TLSConfiguration
    /// `natsync/VERSION (linux/ARCH)`, as client-go's `NAME/VERSION (OS/ARCH)`, so the API
    /// server's audit log and priority-and-fairness rules can tell natsync.
    let userAgent: String

    /// A response the client cannot use. Carries the status and the API's own message only.
    public struct StatusError: Error, CustomStringConvertible {
        public var status: Int
        public var message: String
        /// A `429` or `503`'s `Retry-After`: the server's word on when to come back.
        public var retryAfter: Duration?
        public var description: String { "the API server answered \(status): \(message)" }

        public init(status: Int, message: String, retryAfter: Duration? = nil) {
            self.status = status
            self.message = message
            self.retryAfter = retryAfter
        }
    }

    /// How long a response may stay silent before the client gives up on it: the API server
    /// sends a watch a bookmark every minute, so a watch silent for longer is a dead connection
    /// (a load balancer that failed over, a lost control-plane node, a NAT entry that expired),
    /// dropped and resumed from its last resource version, as client-go's HTTP/2 health check
    /// does.
    public static let defaultIdleTimeout: Duration = .seconds(70)

    public init(
        connection: APIConnection, version: String, idleTimeout: Duration = defaultIdleTimeout, qps: Double = 5, burst: Int = 10
    ) throws {
        rateLimit = RequestRateLimit(qps: qps, burst: burst)
        self.connection = connection
        self.userAgent = "natsync/\(version) (linux/\(Self.architecture))"
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = connection.certificateAuthorityPEM {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
        }
        if connection.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        }
        self.tls = tls
        credentials = CredentialStore(connection: connection)
        // A kubeconfig's own certificate and key fail now, before anything starts, not at every
        // request; a plugin's credentials are only known when it runs.
        if connection.clientCertificate != nil, let identity = try credentials.current().clientCertificate {
            _ = try Self.tls(tls, presenting: identity)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(
            connect: .seconds(10),
            read: .nanoseconds(Int64(idleTimeout / .nanoseconds(1))))
        // A refused connect fails its request at once: the watch loop's client-go backoff decides
        // when to try again. The pool's own backoff grows with every refused attempt of an outage
        // (to a minute) and would hold the first request after the server is back past the
        // connect timeout, failing it and doubling the watch's backoff on top.
        configuration.connectionPool.retryConnectionEstablishment = false
        // The API server is reached directly; a proxy from the environment is not for it.
        configuration.proxy = nil
        // Lists of a large cluster shrink several times over in gzip, which the API server
        // sends when asked (as client-go asks); the limit matches the largest body read.
        configuration.decompression = .enabled(limit: .size(1 << 30))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    private func request(_ pathAndQuery: String) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: connection.server + pathAndQuery)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "Accept-Encoding", value: "gzip")
        request.headers.add(name: "User-Agent", value: userAgent)
        let current: RequestCredentials
        do {
            current = try credentials.current()
        } catch {
            throw StatusError(status: 0, message: error.description)
        }
        if let token = current.bearerToken {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        } else if let basic = current.basic {
            request.headers.add(
                name: "Authorization", value: "Basic \(Data("\(basic.username):\(basic.password)".utf8).base64EncodedString())")
        }
        if let identity = current.clientCertificate {
            request.tlsConfiguration = try Self.tls(tls, presenting: identity)
        }
        return request
    }

    /// `base` with a client certificate and its key.
    static func tls(_ base: TLSConfiguration, presenting identity: (certificatePEM: [UInt8], keyPEM: [UInt8])) throws -> TLSConfiguration {
        var tls = base
        do {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(identity.certificatePEM).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: identity.keyPEM, format: .pem))
        } catch {
            throw StatusError(status: 0, message: "the client certificate or its key is not PEM")
        }
        return tls
    }

    /// Runs `body` once more after a 401 when an exec plugin gives the credentials: its cached
    /// one may have been revoked before it expired, and client-go runs the plugin again then.
    private func refreshingOn401<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StatusError where error.status == 401 && connection.exec != nil {
            credentials.refused()
            return try await body()
        }
    }

    /// GET of a whole (non-streaming) response, within a minute (a list that takes longer is
    /// asked for again). `rateLimited` false: a later page of a list whose first page took the
    /// token. The server split one list into pages because natsync asked for a `limit` (to bound
    /// each response, not the server's work), so the list takes one token as an unpaged list
    /// would. A token a page made a large cluster's list wait on the limit itself (10,000
    /// services are 40 pages: 30 of them past the burst, at 5 a second).
    public func get(_ pathAndQuery: String, rateLimited: Bool = true) async throws -> Data {
        try await refreshingOn401 {
            if rateLimited { try await rateLimit.acquire() }
            let response = try await http.execute(try request(pathAndQuery), timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 1 << 30)
            let data = Data(body.readableBytesView)
            guard response.status == .ok else { throw Self.error(response, data) }
            return data
        }
    }

    /// GET of a streaming response (a watch): the body's lines as they arrive.
    public func lines(_ pathAndQuery: String) async throws -> AsyncThrowingStream<Data, any Error> {
        let response = try await refreshingOn401 {
            try await rateLimit.acquire()
            let response = try await http.execute(try request(pathAndQuery), timeout: .hours(1))
            guard response.status == .ok else {
                let body = try await response.body.collect(upTo: 1 << 20)
                throw Self.error(response, Data(body.readableBytesView))
            }
            return response
        }
        let body = response.body
        return AsyncThrowingStream { continuation in
            let task = Task {
                var pending = Data()
                do {
                    for try await chunk in body {
                        pending.append(contentsOf: chunk.readableBytesView)
                        while let newline = pending.firstIndex(of: 0x0A) {
                            let line = pending[pending.startIndex..<newline]
                            pending = Data(pending[pending.index(after: newline)...])
                            if !line.isEmpty { continuation.yield(Data(line)) }
                        }
                    }
                    if !pending.isEmpty { continuation.yield(pending) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The machine's architecture under Go's names (`GOARCH`), as client-go reports it.
    static var architecture: String {
        var names = utsname()
        uname(&names)
        let machine = withUnsafeBytes(of: names.machine) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        return ["x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"][machine] ?? machine
    }

    static func error(_ response: HTTPClientResponse, _ body: Data) -> StatusError {
        let code = Int(response.status.code)
        // Seconds, as the API server writes it (an HTTP date is not used by it).
        let retryAfter =
            [429, 503].contains(code) ? response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds($0) } : nil
        return StatusError(status: code, message: message(body), retryAfter: retryAfter)
    }

    /// The `message` of an API `Status` body, cut short; never the request's headers.
    static func message(_ data: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let message = object["message"] as? String {
            return String(message.prefix(200))
        }
        return String(decoding: data.prefix(200), as: UTF8.self)
    }
}
