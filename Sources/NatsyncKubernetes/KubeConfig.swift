import Foundation
import Yams

/// How to reach and authenticate to the API server: from a kubeconfig's current context, or from
/// the pod's service account (in-cluster).
///
/// - Important: holds credentials. Its `description` names the server and the kind of
///   credential only, so it can be logged; no token, key or password ever reaches a log or error.
public struct APIConnection: Sendable, CustomStringConvertible {
    public enum Credential: Sendable {
        case none
        case token(String)
        /// Re-read for every request, as projected service-account tokens rotate.
        case tokenFile(String)
        case basic(username: String, password: String)
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
    }

    public var server: String
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    public var credential: Credential

    public var description: String {
        let kind: String
        switch credential {
        case .none: kind = "no credentials"
        case .token: kind = "a bearer token"
        case .tokenFile(let path): kind = "the token in \(path)"
        case .basic: kind = "basic authentication"
        case .clientCertificate: kind = "a client certificate"
        }
        return "\(server) with \(kind)"
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
        let user = config.users?.first { $0.name == context.user }?.user
        let ca = try Self.pem(cluster.certificateAuthorityData, cluster.certificateAuthority, resolve, path, "certificate-authority")
        let credential: Credential
        if let token = user?.token {
            credential = .token(token)
        } else if let file = user?.tokenFile {
            credential = .tokenFile(resolve(file))
        } else if let certificate = try Self.pem(user?.clientCertificateData, user?.clientCertificate, resolve, path, "client-certificate"),
            let key = try Self.pem(user?.clientKeyData, user?.clientKey, resolve, path, "client-key")
        {
            credential = .clientCertificate(certificatePEM: certificate, keyPEM: key)
        } else if let username = user?.username, let password = user?.password {
            credential = .basic(username: username, password: password)
        } else {
            credential = .none
        }
        return APIConnection(
            server: server.hasSuffix("/") ? String(server.dropLast()) : server, certificateAuthorityPEM: ca,
            insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false, credential: credential)
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, its token and CA.
    public static func inCluster(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> APIConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; give --kubeconfig")
        }
        let folder = "/var/run/secrets/kubernetes.io/serviceaccount"
        let ca = FileManager.default.contents(atPath: "\(folder)/ca.crt").map { [UInt8]($0) }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return APIConnection(
            server: "https://\(bracketed):\(port)", certificateAuthorityPEM: ca, insecureSkipTLSVerify: false,
            credential: .tokenFile("\(folder)/token"))
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
            enum CodingKeys: String, CodingKey {
                case token, tokenFile, username, password
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
