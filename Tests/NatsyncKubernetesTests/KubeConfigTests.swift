import Foundation
import NatsyncManifest
import NatsyncWire
import Synchronization
import Testing

@testable import NatsyncKubernetes

struct KubeConfigTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kubeconfig-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theCurrentContextGivesServerCAAndToken() throws {
        let ca = Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8).base64EncodedString()
        let path = try write(
            """
            apiVersion: v1
            kind: Config
            current-context: prod
            contexts:
            - {name: dev, context: {cluster: dev, user: dev}}
            - {name: prod, context: {cluster: prod, user: admin}}
            clusters:
            - {name: dev, cluster: {server: "https://dev:6443"}}
            - {name: prod, cluster: {server: "https://10.0.0.1:6443/", certificate-authority-data: "\(ca)"}}
            users:
            - {name: admin, user: {token: "very-secret"}}
            - {name: dev, user: {username: u, password: p}}
            """)
        let connection = try APIConnection.kubeconfig(path: path)
        #expect(connection.server == "https://10.0.0.1:6443")
        #expect(
            connection.certificateAuthorityPEM.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("-----BEGIN CERTIFICATE-----") == true
        )
        guard case .literal(let token) = connection.token else {
            Issue.record("expected a token")
            return
        }
        #expect(token == "very-secret")
        #expect(try CredentialStore(connection: connection).current().bearerToken == "very-secret")
        #expect(connection.description == "https://10.0.0.1:6443 with a bearer token")
        #expect(!"\(connection)".contains("very-secret"))
    }

    @Test func clientCertificatesAndRelativeFilesAreRead() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "CERT".write(to: folder.appendingPathComponent("client.crt"), atomically: true, encoding: .utf8)
        try "KEY".write(to: folder.appendingPathComponent("client.key"), atomically: true, encoding: .utf8)
        let path = folder.appendingPathComponent("config").path
        try """
        current-context: c
        contexts: [{name: c, context: {cluster: k, user: u}}]
        clusters: [{name: k, cluster: {server: "https://k:6443", insecure-skip-tls-verify: true}}]
        users: [{name: u, user: {client-certificate: client.crt, client-key: client.key}}]
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let connection = try APIConnection.kubeconfig(path: path)
        #expect(connection.insecureSkipTLSVerify)
        guard case .files(let certificate, let key) = connection.clientCertificate else {
            Issue.record("expected client certificate files")
            return
        }
        #expect(certificate == folder.appendingPathComponent("client.crt").path && key == folder.appendingPathComponent("client.key").path)
        let store = CredentialStore(connection: connection)
        #expect(
            try store.current().clientCertificate.map { $0.certificatePEM == Array("CERT".utf8) && $0.keyPEM == Array("KEY".utf8) } == true)
        // A renewed pair on disk is used from the next request on.
        try "CERT2".write(to: folder.appendingPathComponent("client.crt"), atomically: true, encoding: .utf8)
        try "KEY2".write(to: folder.appendingPathComponent("client.key"), atomically: true, encoding: .utf8)
        #expect(
            try store.current().clientCertificate.map { $0.certificatePEM == Array("CERT2".utf8) && $0.keyPEM == Array("KEY2".utf8) }
                == true)
    }

    @Test func aTokenAndAClientCertificateGoTogether() throws {
        let pem = Data("PEM".utf8).base64EncodedString()
        let path = try write(
            """
            current-context: c
            contexts: [{name: c, context: {cluster: k, user: u}}]
            clusters: [{name: k, cluster: {server: "https://k:6443"}}]
            users: [{name: u, user: {token: t0k3n, client-certificate-data: "\(pem)", client-key-data: "\(pem)"}}]
            """)
        let connection = try APIConnection.kubeconfig(path: path)
        let credentials = try CredentialStore(connection: connection).current()
        #expect(credentials.bearerToken == "t0k3n" && credentials.clientCertificate?.certificatePEM == Array("PEM".utf8))
        #expect(connection.description == "https://k:6443 with a bearer token and a client certificate")
    }

    @Test func anAuthProviderIsAnErrorNamingIt() throws {
        let path = try write(
            """
            current-context: c
            contexts: [{name: c, context: {cluster: k, user: gke}}]
            clusters: [{name: k, cluster: {server: "https://k:6443"}}]
            users: [{name: gke, user: {auth-provider: {name: gcp, config: {access-token: secret}}}}]
            """)
        do {
            _ = try APIConnection.kubeconfig(path: path)
            Issue.record("an auth-provider must not connect anonymously")
        } catch {
            #expect(
                error.description
                    == "\(path): users[gke].user.auth-provider is not supported (client-go removed it); use an exec credential plugin")
            #expect(!error.description.contains("secret"))
        }
    }

    /// A plugin written as EKS's and GKE's are: it reads `KUBERNETES_EXEC_INFO` and prints an
    /// ExecCredential. Its answer is kept until it expires, and asked for again after a 401.
    @Test(arguments: ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
    func execPluginsGiveTokensKeptUntilTheyExpire(version: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("exec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let calls = folder.appendingPathComponent("calls")
        let plugin = folder.appendingPathComponent("plugin.sh")
        try """
        #!/bin/sh
        echo "$KUBERNETES_EXEC_INFO $1 $PLUGIN_ENV" >> \(calls.path)
        n=$(wc -l < \(calls.path))
        printf '{"apiVersion": "\(version)", "kind": "ExecCredential", "status": {"token": "tok-%s", "expirationTimestamp": "%s"}}' "$n" "$EXPIRES"
        """.write(to: plugin, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: plugin.path)
        let path = folder.appendingPathComponent("config").path
        try """
        current-context: c
        contexts: [{name: c, context: {cluster: k, user: u}}]
        clusters: [{name: k, cluster: {server: "https://k:6443"}}]
        users:
        - name: u
          user:
            exec:
              apiVersion: \(version)
              command: ./plugin.sh
              args: [first-arg]
              env: [{name: PLUGIN_ENV, value: from-kubeconfig}]
              interactiveMode: Never
              provideClusterInfo: true
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let connection = try APIConnection.kubeconfig(path: path)
        #expect(connection.exec?.command == plugin.path)
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let store = CredentialStore(connection: connection) { clock.withLock { $0 } }
        setenv("EXPIRES", "2027-01-15T08:10:00Z", 1)
        defer { unsetenv("EXPIRES") }
        #expect(try store.current().bearerToken == "tok-1")
        #expect(try store.current().bearerToken == "tok-1", "cached until it expires")
        clock.withLock { $0 += 601 }
        #expect(try store.current().bearerToken == "tok-2", "expired: the plugin runs again")
        store.refused()
        #expect(try store.current().bearerToken == "tok-3", "after a 401 the plugin runs again")
        let lines = try String(contentsOf: calls, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        let info = try JSONSerialization.jsonObject(with: Data(lines[0].prefix { $0 != " " }.utf8)) as? [String: Any]
        #expect(info?["apiVersion"] as? String == version && info?["kind"] as? String == "ExecCredential")
        let spec = info?["spec"] as? [String: Any]
        #expect(spec?["interactive"] as? Bool == false)
        #expect((spec?["cluster"] as? [String: Any])?["server"] as? String == "https://k:6443")
        #expect(lines[0].hasSuffix(" first-arg from-kubeconfig"))
    }

    @Test func aFailingPluginSaysWhy() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("exec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("config").path
        try """
        current-context: c
        contexts: [{name: c, context: {cluster: k, user: u}}]
        clusters: [{name: k, cluster: {server: "https://k:6443"}}]
        users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: sh, args: [-c, "echo no credentials here >&2; exit 3"], interactiveMode: Never}}}]
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let store = CredentialStore(connection: try APIConnection.kubeconfig(path: path))
        do {
            _ = try store.current()
            Issue.record("a failing plugin must fail the request")
        } catch {
            #expect(error.description.hasSuffix("sh exited 3: no credentials here"), "\(error.description)")
        }
        let wrong = folder.appendingPathComponent("wrong").path
        try
            "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: \"https://k\"}}]\nusers: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: sh}}}]\n"
            .write(toFile: wrong, atomically: true, encoding: .utf8)
        #expect(throws: APIConnection.ConfigError.self) { try APIConnection.kubeconfig(path: wrong) }
    }

    @Test func unusableConfigsSayWhyWithoutSecrets() throws {
        let missing = try write("current-context: nope\ncontexts: []\nusers: [{name: u, user: {token: hidden}}]\n")
        #expect(throws: APIConnection.ConfigError.self) { try APIConnection.kubeconfig(path: missing) }
        do {
            _ = try APIConnection.kubeconfig(path: missing)
        } catch {
            #expect(error.description == "\(missing): current-context names no context")
        }
        #expect(throws: APIConnection.ConfigError.self) { try APIConnection.inCluster(environment: [:]) }
        let inCluster = try APIConnection.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"])
        #expect(inCluster.server == "https://[fd00::1]:443")
    }
}

struct APIDecoderTests {
    @Test func listItemsWithoutKindsDecodeAndBadOnesAreSkipped() throws {
        let list = """
            {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"123","continue":"abc"},"items":[
              {"metadata":{"name":"web","namespace":"default","resourceVersion":"120"},"spec":{"clusterIP":"10.96.0.5","ports":[{"port":80}]}},
              {"metadata":{"name":"bad","namespace":"default"},"spec":{"clusterIP":"999.1.1.1","ports":[{"port":80}]}}
            ]}
            """
        let page = try APIDecoder.list(Data(list.utf8), kind: .service)
        #expect(page.resourceVersion == "123" && page.continueToken == "abc")
        guard case .service(let web) = page.objects[0] else {
            Issue.record("expected a service")
            return
        }
        #expect(web.clusterIPs.map(\.description) == ["10.96.0.5"])
        guard case .invalid(_, let diagnostic) = page.objects[1] else {
            Issue.record("expected an invalid object")
            return
        }
        #expect(diagnostic.description == #"warning: Service default/bad: spec.clusterIP: invalid IP address "999.1.1.1"; object skipped"#)
    }

    @Test func watchEventsCarryTheirVersionAndGoneIsAnError() throws {
        let added =
            #"{"type":"ADDED","object":{"kind":"EndpointSlice","metadata":{"name":"web-1","namespace":"default","resourceVersion":"130","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","ports":[{"port":8080}],"endpoints":[{"addresses":["10.0.0.1"]}]}}"#
        guard case .added(.endpointSlice(let slice), let version) = try APIDecoder.event(Data(added.utf8), kind: .endpointSlice) else {
            Issue.record("expected an added slice")
            return
        }
        #expect(version == "130" && slice.endpoints.count == 1)
        let bookmark = #"{"type":"BOOKMARK","object":{"kind":"EndpointSlice","metadata":{"resourceVersion":"140"}}}"#
        guard case .bookmark("140") = try APIDecoder.event(Data(bookmark.utf8), kind: .endpointSlice) else {
            Issue.record("expected a bookmark")
            return
        }
        let gone = #"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}}"#
        guard case .error(410, _) = try APIDecoder.event(Data(gone.utf8), kind: .service) else {
            Issue.record("expected 410")
            return
        }
    }
}
