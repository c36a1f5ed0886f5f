import Foundation
import Synchronization

/// A kubeconfig user's `exec` credential plugin (`client.authentication.k8s.io/v1` or
/// `v1beta1`), as EKS, GKE and AKS kubeconfigs use.
public struct ExecPlugin: Sendable, Equatable {
    public var apiVersion: String
    public var command: String
    public var arguments: [String]
    public var environment: [(String, String)]
    /// `provideClusterInfo`: the cluster's server and CA go to the plugin in `KUBERNETES_EXEC_INFO`.
    public var provideClusterInfo: Bool

    public static func == (lhs: ExecPlugin, rhs: ExecPlugin) -> Bool {
        lhs.apiVersion == rhs.apiVersion && lhs.command == rhs.command && lhs.arguments == rhs.arguments
            && lhs.environment.map { "\($0.0)=\($0.1)" } == rhs.environment.map { "\($0.0)=\($0.1)" }
            && lhs.provideClusterInfo == rhs.provideClusterInfo
    }

    static let versions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]
}

/// What a request carries to prove who natsync is: a bearer token, a client certificate, or
/// basic authentication. Each request asks for it again, so a rotated token file, a renewed
/// certificate file or an expired plugin credential is picked up without a restart.
public struct RequestCredentials: Sendable {
    public var bearerToken: String?
    public var basic: (username: String, password: String)?
    public var clientCertificate: (certificatePEM: [UInt8], keyPEM: [UInt8])?
}

/// The credentials of an ``APIConnection``, with what it caches: certificate files by
/// modification time, the exec plugin's answer until it expires (or the server says 401).
final class CredentialStore: Sendable {
    struct ExecAnswer {
        var token: String?
        var certificate: (certificatePEM: [UInt8], keyPEM: [UInt8])?
        var expires: Date?
    }

    struct FileCertificate {
        var stamps: [timespec]
        var pair: (certificatePEM: [UInt8], keyPEM: [UInt8])
    }

    let connection: APIConnection
    private let execAnswer = Mutex<ExecAnswer?>(nil)
    private let fileCertificate = Mutex<FileCertificate?>(nil)
    private let now: @Sendable () -> Date

    init(connection: APIConnection, now: @escaping @Sendable () -> Date = Date.init) {
        self.connection = connection
        self.now = now
    }

    /// A credential the server refused (401): the plugin runs again on the next request.
    func refused() {
        execAnswer.withLock { $0 = nil }
    }

    func current() throws(APIConnection.ConfigError) -> RequestCredentials {
        var credentials = RequestCredentials()
        switch connection.token {
        case .literal(let token): credentials.bearerToken = token
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw APIConnection.ConfigError("cannot read the token file \(path)")
            }
            credentials.bearerToken = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        case nil: break
        }
        credentials.basic = connection.basic.map { ($0.username, $0.password) }
        switch connection.clientCertificate {
        case .inline(let certificate, let key): credentials.clientCertificate = (certificate, key)
        case .files(let certificate, let key): credentials.clientCertificate = try certificateFiles(certificate, key)
        case nil: break
        }
        if let plugin = connection.exec {
            let answer = try execCredential(plugin)
            // A token from the plugin wins over a kubeconfig's, as for client-go.
            if let token = answer.token { credentials.bearerToken = token }
            if let certificate = answer.certificate { credentials.clientCertificate = certificate }
        }
        return credentials
    }

    /// The certificate and key files, read again when either changed on disk.
    private func certificateFiles(_ certificate: String, _ key: String) throws(APIConnection.ConfigError) -> ([UInt8], [UInt8]) {
        let stamps = [certificate, key].map { path -> timespec in
            var info = stat()
            return stat(path, &info) == 0 ? info.st_mtim : timespec()
        }
        if let cached = fileCertificate.withLock({ $0 }),
            zip(cached.stamps, stamps).allSatisfy({ $0.tv_sec == $1.tv_sec && $0.tv_nsec == $1.tv_nsec })
        {
            return cached.pair
        }
        guard let certificatePEM = FileManager.default.contents(atPath: certificate) else {
            throw APIConnection.ConfigError("cannot read the client certificate \(certificate)")
        }
        guard let keyPEM = FileManager.default.contents(atPath: key) else {
            throw APIConnection.ConfigError("cannot read the client key \(key)")
        }
        let pair = ([UInt8](certificatePEM), [UInt8](keyPEM))
        fileCertificate.withLock { $0 = FileCertificate(stamps: stamps, pair: pair) }
        return pair
    }

    /// The plugin's credential: the cached one until it expires, else a new run of the plugin.
    private func execCredential(_ plugin: ExecPlugin) throws(APIConnection.ConfigError) -> ExecAnswer {
        let time = now()
        if let cached = execAnswer.withLock({ $0 }), cached.expires.map({ $0 > time }) ?? true {
            return cached
        }
        let answer = try Self.run(plugin, cluster: connection)
        execAnswer.withLock { $0 = answer }
        return answer
    }

    /// Runs the plugin as client-go does: `KUBERNETES_EXEC_INFO` in its environment, never
    /// interactive, its ExecCredential read from stdout.
    static func run(_ plugin: ExecPlugin, cluster: APIConnection) throws(APIConnection.ConfigError) -> ExecAnswer {
        var spec: [String: Any] = ["interactive": false]
        if plugin.provideClusterInfo {
            var info: [String: Any] = ["server": cluster.server, "insecure-skip-tls-verify": cluster.insecureSkipTLSVerify]
            if let ca = cluster.certificateAuthorityPEM { info["certificate-authority-data"] = Data(ca).base64EncodedString() }
            spec["cluster"] = info
        }
        let request: [String: Any] = ["apiVersion": plugin.apiVersion, "kind": "ExecCredential", "spec": spec]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: plugin.command)
        process.arguments = plugin.arguments
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in plugin.environment { environment[name] = value }
        environment["KUBERNETES_EXEC_INFO"] = String(decoding: try! JSONSerialization.data(withJSONObject: request), as: UTF8.self)
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw APIConnection.ConfigError("exec plugin \(plugin.command): cannot run it (\(error.localizedDescription))")
        }
        // Read stderr on the side, so a plugin that writes much there cannot block on a full pipe.
        let stderrText = Mutex<Data>(Data())
        let reader = Thread { stderrText.withLock { $0 = errors.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        guard process.terminationStatus == 0 else {
            let message = String(decoding: stderrText.withLock { $0 }.prefix(300), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines)
            throw APIConnection.ConfigError("exec plugin \(plugin.command) exited \(process.terminationStatus): \(message)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            object["kind"] as? String == "ExecCredential", let status = object["status"] as? [String: Any]
        else { throw APIConnection.ConfigError("exec plugin \(plugin.command): its output is not an ExecCredential") }
        guard object["apiVersion"] as? String == plugin.apiVersion else {
            throw APIConnection.ConfigError(
                "exec plugin \(plugin.command): answered \(object["apiVersion"] as? String ?? "no apiVersion"), asked for \(plugin.apiVersion)"
            )
        }
        var answer = ExecAnswer()
        answer.token = (status["token"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        if let certificate = status["clientCertificateData"] as? String, let key = status["clientKeyData"] as? String {
            answer.certificate = (Array(certificate.utf8), Array(key.utf8))
        }
        guard answer.token != nil || answer.certificate != nil else {
            throw APIConnection.ConfigError(
                "exec plugin \(plugin.command): the ExecCredential has neither a token nor a client certificate")
        }
        if let text = status["expirationTimestamp"] as? String {
            guard let date = ISO8601DateFormatter().date(from: text) else {
                throw APIConnection.ConfigError("exec plugin \(plugin.command): expirationTimestamp \"\(text)\" is not RFC 3339")
            }
            answer.expires = date
        }
        return answer
    }
}
