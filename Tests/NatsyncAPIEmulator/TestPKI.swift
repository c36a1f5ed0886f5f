import Foundation
import NatsyncTestSupport

/// A certificate authority made for one test with `openssl`, and the certificates it signs:
/// the emulator's serving certificate for 127.0.0.1, and client certificates.
package struct TestPKI {
    package let folder: URL
    package var caCertificate: String { folder.appendingPathComponent("ca.crt").path }

    package init(in folder: URL) throws {
        self.folder = folder.appendingPathComponent("pki")
        try FileManager.default.createDirectory(at: self.folder, withIntermediateDirectories: true)
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-keyout", path("ca.key"), "-out", caCertificate, "-subj", "/CN=natsync-test-ca",
        ])
    }

    /// Signs a new key pair named `name` (files `name.crt`, `name.key`) for a server at 127.0.0.1
    /// or, with `client`, for a client whose common name is `name`.
    @discardableResult
    package func issue(_ name: String, client: Bool) throws -> (certificate: String, key: String) {
        let extensions = path("\(name).ext")
        try (client ? "extendedKeyUsage=clientAuth\n" : "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
        ])
        try openssl([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", caCertificate, "-CAkey", path("ca.key"), "-CAcreateserial",
            "-days", "1", "-extfile", extensions, "-out", path("\(name).crt"),
        ])
        return (path("\(name).crt"), path("\(name).key"))
    }

    package func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    private func openssl(_ arguments: [String]) throws {
        _ = try run(["openssl"] + arguments)
    }
}
