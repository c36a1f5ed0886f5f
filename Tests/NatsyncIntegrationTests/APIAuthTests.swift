import Foundation
import NatsyncAPIEmulator
import NatsyncTestSupport
import Testing

/// `natsync run` against an emulator that speaks TLS with a CA the test made and asks for
/// credentials as a real API server does: refused credentials never become an anonymous
/// connection, and rotated ones (a token file, an exec plugin's token, renewed client
/// certificate files) are picked up without a restart.
@Suite(.serialized, liveKernel)
struct APIAuthTests {
    static func serve(_ api: APIEmulator) {
        api.put(APIObjects.service("web", clusterIP: "10.96.0.5"))
        api.put(APIObjects.slice("web", ["10.0.9.1"]))
    }

    @Test func refusedTokensAreNeverAnonymousAndARotatedTokenFileIsPickedUp() throws {
        let scene = try Scene()
        defer { scene.close() }
        let (api, _) = try APIEmulator.https(in: scene)
        defer { api.stop() }
        api.acceptedTokens = ["good-token"]
        api.forbiddenTokens = ["read-nothing"]
        Self.serve(api)
        let tokenFile = scene.folder.appendingPathComponent("token")
        try "wrong-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(
            scene: scene, manifests: "", extra: ["--kubeconfig", try api.kubeconfig(in: scene, user: "{tokenFile: \"\(tokenFile.path)\"}")])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { api.refusals >= 1 }
        try "read-nothing\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        try waitUntil(seconds: 8) { daemon.logText.contains("403") }
        #expect(!(try scene.save()).contains("10.96.0.5"), "nothing is applied without the lists")
        #expect(daemon.logText.contains("401"), "\(daemon.logText)")
        try "good-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        try waitUntil(seconds: 30) { try scene.save().contains("10.96.0.5") }
        #expect(!daemon.logText.contains("good-token") && !daemon.logText.contains("wrong-token"), "no token in the log")
    }

    /// An exec plugin's token is kept, and the plugin runs again when the server refuses it.
    @Test func anExecPluginRunsAgainAfterA401() throws {
        let scene = try Scene()
        defer { scene.close() }
        let (api, _) = try APIEmulator.https(in: scene)
        defer { api.stop() }
        api.acceptedTokens = ["t1"]
        Self.serve(api)
        let current = scene.folder.appendingPathComponent("current-token")
        let calls = scene.folder.appendingPathComponent("calls")
        try "t1".write(to: current, atomically: true, encoding: .utf8)
        let plugin = scene.folder.appendingPathComponent("plugin.sh")
        try """
        #!/bin/sh
        echo run >> \(calls.path)
        printf '{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": "%s"}}' "$(cat \(current.path))"
        """.write(to: plugin, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: plugin.path)
        let user = "{exec: {apiVersion: client.authentication.k8s.io/v1, command: \"\(plugin.path)\", interactiveMode: Never}}"
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", try api.kubeconfig(in: scene, user: user)])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try scene.save().contains("10.96.0.5") }
        let runs = try String(contentsOf: calls, encoding: .utf8).split(separator: "\n").count
        #expect(runs == 1, "one run serves every request while the token is good")

        // The token is revoked and a new one issued: the next request gets 401, the plugin runs
        // again, and the change comes through.
        api.acceptedTokens = ["t2"]
        try "t2".write(to: current, atomically: true, encoding: .utf8)
        api.dropWatches()
        api.put(APIObjects.slice("web", ["10.0.9.2"]))
        try waitUntil(seconds: 10) { try scene.save().contains("10.0.9.2") }
        #expect(try String(contentsOf: calls, encoding: .utf8).split(separator: "\n").count > runs)
    }

    /// A client certificate renewed in place (same files) is presented from the next connection on.
    @Test func renewedClientCertificateFilesAreUsed() throws {
        let scene = try Scene()
        defer { scene.close() }
        let (api, pki) = try APIEmulator.https(in: scene, clientCertificates: true)
        defer { api.stop() }
        Self.serve(api)
        let first = try pki.issue("natsync-1", client: true)
        let certificate = scene.folder.appendingPathComponent("client.crt").path
        let key = scene.folder.appendingPathComponent("client.key").path
        try FileManager.default.copyItem(atPath: first.certificate, toPath: certificate)
        try FileManager.default.copyItem(atPath: first.key, toPath: key)
        let user = "{client-certificate: \"\(certificate)\", client-key: \"\(key)\"}"
        let daemon = try DaemonProcess(scene: scene, manifests: "", extra: ["--kubeconfig", try api.kubeconfig(in: scene, user: user)])
        defer { _ = daemon.stop() }
        try waitUntil(seconds: 5) { try scene.save().contains("10.96.0.5") }
        #expect(Set(api.clientNames) == ["natsync-1"], "\(api.clientNames)")

        let second = try pki.issue("natsync-2", client: true)
        try FileManager.default.removeItem(atPath: certificate)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: second.certificate, toPath: certificate)
        try FileManager.default.copyItem(atPath: second.key, toPath: key)
        api.dropWatches()
        api.put(APIObjects.slice("web", ["10.0.9.3"]))
        try waitUntil(seconds: 10) { try scene.save().contains("10.0.9.3") }
        #expect(api.clientNames.last == "natsync-2", "\(api.clientNames)")
    }
}
