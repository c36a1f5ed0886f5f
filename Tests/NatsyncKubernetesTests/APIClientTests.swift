import Foundation
import NatsyncAPIEmulator
import Testing

@testable import NatsyncKubernetes

struct APIClientTests {
    /// A request to a server that is down fails at once with the connect error, and the first
    /// request after it is back connects at once: the watch loop's backoff is the only one. The
    /// HTTP client's own pool backoff (up to a minute, grown by every refused attempt of an
    /// outage) would hold a watch's request past the connect timeout after the server is back,
    /// failing it again and doubling the watch's backoff.
    @Test func aServerBackFromAnOutageIsReachedOnTheNextRequest() async throws {
        let api = try APIEmulator()
        defer { api.stop() }
        let client = try APIClient(connection: APIConnection(server: "http://127.0.0.1:\(api.port)"), version: "test")
        api.stop()
        for _ in 1...3 {
            let started = ContinuousClock.now
            await #expect(throws: (any Error).self) { try await client.get("/api/v1/services", rateLimited: false) }
            #expect(ContinuousClock.now - started < .seconds(2), "a refused connection fails the request at once")
        }
        try api.start()
        let started = ContinuousClock.now
        let list = try await client.get("/api/v1/services", rateLimited: false)
        #expect(ContinuousClock.now - started < .seconds(2), "the server is reached once it is back")
        #expect(String(decoding: list, as: UTF8.self).contains("\"items\""))
        await client.shutdown()
    }
}
