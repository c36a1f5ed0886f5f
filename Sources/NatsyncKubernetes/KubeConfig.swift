import Foundation
import Yams

/// How to reach and authenticate to the API server: from a kubeconfig's current context, or from
/// the pod's service account (in-cluster).
///
/// - Important: holds credentials. Its `description` names the server and the kind of
///   credential only, so it can be logged; no token, key or password ever reaches a log or error.
public struct APIConnection: Sendable, CustomStringConvertible {
    public enum Token: Sendable {
        case literal(String)
        /// Re-read for every request, as projected service-account tokens rotate.
        case file(String)
    }

    public enum ClientCertificate: Sendable {
        case inline(certificatePEM: [UInt8], keyPEM: [UInt8])
        /// Read again whenever either file changes, as certificates are renewed in place.
        case files(certificate: String, key: String)
    }

    public struct Basic: Sendable {
        public var username: String
        public var password: String
    }

    public var server: String
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    /// Any of these may be set together (a token and a client certificate, say), as client-go
    /// sends every credential a kubeconfig user has.
    public var token: Token?
    public var clientCertificate: ClientCertificate?
    public var basic: Basic?
    public var exec: ExecPlugin?

    public init(
        server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false, token: Token? = nil,
        clientCertificate: ClientCertificate? = nil, basic: Basic? = nil, exec: ExecPlugin? = nil
    ) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.token = token
        self.clientCertificate = clientCertificate
        self.basic = basic
        self.exec = exec
    }

    public var description: String {
        var kinds: [String] = []
        switch token {
        case .literal: kinds.append("a bearer token")
        case .file(let path): kinds.append("the token in \(path)")
        case nil: break
        }
        switch clientCertificate {
        case .inline: kinds.append("a client certificate")
        case .files(let certificate, _): kinds.append("the client certificate in \(certificate)")
        case nil: break
        }
        if basic != nil { kinds.append("basic authentication") }
        if let exec { kinds.append("the exec plugin \(exec.command)") }
        return "\(server) with \(kinds.isEmpty ? "no credentials" : kinds.joined(separator: " and "))"
    }

    /// A kubeconfig that cannot be used; the message names the file and field, never a secret.
    public struct ConfigError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// The current context of the kubeconfig at `path`.
    public static func kubeconfig(path: String) throws(ConfigError) -> APIConnection {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError("\(path): cannot read the kubeconfig")
        }
        let config: KubeConfigFile
        do {
            config = try YAMLDecoder().decode(KubeConfigFile.self, from: text)
        } catch {
            throw ConfigError("\(path): not a kubeconfig (\(Self.field(of: error)))")
        }
        let folder = (path as NSString).deletingLastPathComponent
        func resolve(_ file: String) -> String { file.hasPrefix("/") ? file : (folder as NSString).appendingPathComponent(file) }
        guard let contextName = config.currentContext,
            let context = config.contexts?.first(where: { $0.name == contextName })?.context
        else { throw ConfigError("\(path): current-context names no context") }
        guard let cluster = config.clusters?.first(where: { $0.name == context.cluster })?.cluster, let server = cluster.server else {
            throw ConfigError("\(path): context \(contextName) names no cluster with a server")
        }
        let userName = context.user ?? ""
        let user = config.users?.first { $0.name == context.user }?.user
        let ca = try Self.pem(cluster.certificateAuthorityData, cluster.certificateAuthority, resolve, path, "certificate-authority")
        var connection = APIConnection(
            server: server.hasSuffix("/") ? String(server.dropLast()) : server, certificateAuthorityPEM: ca,
            insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false)
        guard let user else { return connection }
        // client-go's auth-provider plugins (gcp, azure, oidc) are gone from it since 1.26; a
        // silent anonymous connection instead would fail later and obscurely.
        if user.authProvider != nil {
            throw ConfigError(
                "\(path): users[\(userName)].user.auth-provider is not supported (client-go removed it); use an exec credential plugin")
        }
        if let token = user.token, !token.isEmpty {
            connection.token = .literal(token)
        } else if let file = user.tokenFile, !file.isEmpty {
            connection.token = .file(resolve(file))
        }
        if let data = user.clientCertificateData, let keyData = user.clientKeyData {
            guard let certificate = Data(base64Encoded: data) else { throw ConfigError("\(path): client-certificate-data is not base64") }
            guard let key = Data(base64Encoded: keyData) else { throw ConfigError("\(path): client-key-data is not base64") }
            connection.clientCertificate = .inline(certificatePEM: [UInt8](certificate), keyPEM: [UInt8](key))
        } else if let certificate = user.clientCertificate, let key = user.clientKey {
            for (field, file) in [("client-certificate", certificate), ("client-key", key)]
            where !FileManager.default.isReadableFile(atPath: resolve(file)) {
                throw ConfigError("\(path): cannot read \(field) \(resolve(file))")
            }
            connection.clientCertificate = .files(certificate: resolve(certificate), key: resolve(key))
        } else if user.clientCertificate != nil || user.clientCertificateData != nil || user.clientKey != nil || user.clientKeyData != nil {
            throw ConfigError("\(path): users[\(userName)].user: a client certificate needs both the certificate and its key")
        }
        if let username = user.username, let password = user.password {
            connection.basic = Basic(username: username, password: password)
        }
        if let exec = user.exec {
            connection.exec = try Self.plugin(exec, resolve: resolve, path: path, user: userName)
        }
        return connection
    }

    private static func plugin(
        _ exec: KubeConfigFile.NamedUser.User.Exec, resolve: (String) -> String, path: String, user: String
    ) throws(ConfigError) -> ExecPlugin {
        let field = "\(path): users[\(user)].user.exec"
        guard let version = exec.apiVersion, ExecPlugin.versions.contains(version) else {
            throw ConfigError(
                "\(field).apiVersion: expected \(ExecPlugin.versions.joined(separator: " or ")), found \(exec.apiVersion.map { "\"\($0)\"" } ?? "nothing")"
            )
        }
        guard let command = exec.command, !command.isEmpty else { throw ConfigError("\(field).command: missing") }
        if exec.interactiveMode == "Always" {
            throw ConfigError("\(field).interactiveMode: Always, but natsync runs without a terminal")
        }
        // As client-go: a command with a slash is a path (relative to the kubeconfig), else
        // looked up in PATH.
        let executable: String
        if command.contains("/") {
            executable = (resolve(command) as NSString).standardizingPath
        } else {
            let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
            guard let found = folders.map({ "\($0)/\(command)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw ConfigError("\(field).command: \(command) is not in PATH" + (exec.installHint.map { " (\($0))" } ?? ""))
            }
            executable = found
        }
        return ExecPlugin(
            apiVersion: version, command: executable, arguments: exec.args ?? [], environment: (exec.env ?? []).map { ($0.name, $0.value) },
            provideClusterInfo: exec.provideClusterInfo ?? false)
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, its token and CA.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> APIConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; give --kubeconfig")
        }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return serviceAccount(server: "https://\(bracketed):\(port)")
    }

    /// `server` with the pod's service-account token and CA, where the pod has them (`--master`
    /// without a kubeconfig: the control plane's address, since the `kubernetes` Service's cluster
    /// IP answers only once a proxy has programmed it).
    public static func serviceAccount(server: String, folder: String = "/var/run/secrets/kubernetes.io/serviceaccount") -> APIConnection {
        let ca = FileManager.default.contents(atPath: "\(folder)/ca.crt").map { [UInt8]($0) }
        let token = FileManager.default.fileExists(atPath: "\(folder)/token") ? Token.file("\(folder)/token") : nil
        return APIConnection(server: server, certificateAuthorityPEM: ca, token: token)
    }

    private static func pem(
        _ data: String?, _ file: String?, _ resolve: (String) -> String, _ path: String, _ field: String
    ) throws(ConfigError) -> [UInt8]? {
        if let data {
            guard let decoded = Data(base64Encoded: data) else { throw ConfigError("\(path): \(field)-data is not base64") }
            return [UInt8](decoded)
        }
        guard let file else { return nil }
        guard let contents = FileManager.default.contents(atPath: resolve(file)) else {
            throw ConfigError("\(path): cannot read \(field) \(resolve(file))")
        }
        return [UInt8](contents)
    }

    private static func field(of error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return context.codingPath.map(\.stringValue).joined(separator: ".")
            case .keyNotFound(let key, _):
                return key.stringValue
            @unknown default:
                return "invalid"
            }
        }
        return "invalid YAML"
    }
}

/// The fields of a kubeconfig natsync uses.
struct KubeConfigFile: Decodable {
    struct NamedCluster: Decodable {
        struct Cluster: Decodable {
            var server: String?
            var certificateAuthority: String?
            var certificateAuthorityData: String?
            var insecureSkipTLSVerify: Bool?
            enum CodingKeys: String, CodingKey {
                case server
                case certificateAuthority = "certificate-authority"
                case certificateAuthorityData = "certificate-authority-data"
                case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            }
        }
        var name: String
        var cluster: Cluster
    }

    struct NamedContext: Decodable {
        struct Context: Decodable {
            var cluster: String
            var user: String?
        }
        var name: String
        var context: Context
    }

    struct NamedUser: Decodable {
        struct User: Decodable {
            var token: String?
            var tokenFile: String?
            var clientCertificate: String?
            var clientCertificateData: String?
            var clientKey: String?
            var clientKeyData: String?
            var username: String?
            var password: String?
            var exec: Exec?
            /// Only to name it in the error: natsync, like client-go today, has no auth providers.
            var authProvider: AuthProvider?
            struct AuthProvider: Decodable {
                var name: String?
            }
            struct Exec: Decodable {
                struct Variable: Decodable {
                    var name: String
                    var value: String
                }
                var apiVersion: String?
                var command: String?
                var args: [String]?
                var env: [Variable]?
                var installHint: String?
                var provideClusterInfo: Bool?
                var interactiveMode: String?
            }
            enum CodingKeys: String, CodingKey {
                case token, tokenFile, username, password, exec
                case authProvider = "auth-provider"
                case clientCertificate = "client-certificate"
                case clientCertificateData = "client-certificate-data"
                case clientKey = "client-key"
                case clientKeyData = "client-key-data"
            }
        }
        var name: String
        var user: User
    }

    var currentContext: String?
    var clusters: [NamedCluster]?
    var contexts: [NamedContext]?
    var users: [NamedUser]?

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case clusters, contexts, users
    }
}
