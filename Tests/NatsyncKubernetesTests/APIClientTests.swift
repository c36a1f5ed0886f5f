import Foundation
import NatsyncAPIEmulator
import Testing

@testable import NatsyncKubernetes

struct APIClientTests {
    /// A request that cannot connect fails after one attempt, and the first request once the
    /// server is reachable is answered: the watch loop's backoff is the only one. The HTTP
    /// client's pool would otherwise retry the connect on a backoff of its own (up to a minute,
    /// grown by every failed attempt of an outage), holding a watch's request past the connect
    /// timeout after the server is back, failing it again and doubling the watch's backoff.
    @Test func aConnectThatFailsIsTriedOnceAndTheServerIsReachedOnceBack() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("apiclient-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (api, pki) = try APIEmulator.https(in: folder)
        defer { api.stop() }
        let client = try APIClient(
            connection: APIConnection(
                server: "https://127.0.0.1:\(api.port)",
                certificateAuthorityPEM: Array(try Data(contentsOf: URL(fileURLWithPath: pki.caCertificate)))),
            version: "test")
        // A load balancer with no server behind it: each connection is closed before its TLS
        // handshake, so the connect fails.
        api.closeConnectionsAtOnce = true
        for attempt in 1...3 {
            await #expect(throws: (any Error).self) { try await client.get("/api/v1/services", rateLimited: false) }
            #expect(api.closedConnections == attempt, "one connect a request")
        }
        api.closeConnectionsAtOnce = false
        let list = try await client.get("/api/v1/services", rateLimited: false)
        #expect(String(decoding: list, as: UTF8.self).contains("\"items\""))
        await client.shutdown()
    }
}
