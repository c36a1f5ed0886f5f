import Foundation
import Testing

/// Credentials from a kubeconfig never reach an error message.
struct SecretsTests {
    func run(kubeconfig: String) throws -> NatsyncRunner.Output {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "natsync-secrets-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("kubeconfig").path
        try kubeconfig.write(toFile: path, atomically: true, encoding: .utf8)
        return try NatsyncRunner.run(["run", "--kubeconfig", path, "--iptables-backend", "legacy", "--netns", "natsync-none"])
    }

    static func kubeconfig(cluster: String, user: String) -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: c
        contexts: [{name: c, context: {cluster: k, user: u}}]
        clusters: [{name: k, cluster: {\(cluster)}}]
        users: [{name: u, user: {\(user)}}]
        """
    }

    /// Each of these fails while the kubeconfig is read, before anything is started.
    @Test(arguments: [
        ("server: \"https://127.0.0.1:6443\", certificate-authority-data: \"SECRET-CA-not-base64!\"", "token: SECRET-TOKEN-1"),
        ("server: \"https://127.0.0.1:6443\"", "client-certificate-data: \"U0VDUkVU\", client-key-data: \"SECRET-KEY!\""),
        // Base64 that is not PEM ("SECRET-CERT", "SECRET-KEY").
        ("server: \"https://127.0.0.1:6443\"", "client-certificate-data: \"U0VDUkVULUNFUlQ=\", client-key-data: \"U0VDUkVULUtFWQ==\""),
        ("certificate-authority-data: \"SECRET-CA\"", "username: admin, password: SECRET-PASSWORD"),
    ])
    func badKubeconfigsFailWithoutTheirSecrets(cluster: String, user: String) throws {
        let output = try run(kubeconfig: Self.kubeconfig(cluster: cluster, user: user))
        #expect(output.status == 2)
        #expect(!output.standardError.isEmpty)
        for secret in ["SECRET-CA", "SECRET-TOKEN", "SECRET-CERT", "SECRET-KEY", "SECRET-PASSWORD"] {
            #expect(!output.standardError.contains(secret), "\(output.standardError)")
            #expect(!output.standardOutput.contains(secret))
        }
    }
}
