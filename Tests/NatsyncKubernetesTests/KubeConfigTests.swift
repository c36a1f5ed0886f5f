import Foundation
import NatsyncManifest
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
        #expect(connection.certificateAuthorityPEM.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
        guard case .token(let token) = connection.credential else {
            Issue.record("expected a token")
            return
        }
        #expect(token == "very-secret")
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
        guard case .clientCertificate(let certificate, let key) = connection.credential else {
            Issue.record("expected a client certificate")
            return
        }
        #expect(certificate == Array("CERT".utf8) && key == Array("KEY".utf8))
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
        let added = #"{"type":"ADDED","object":{"kind":"EndpointSlice","metadata":{"name":"web-1","namespace":"default","resourceVersion":"130","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","ports":[{"port":8080}],"endpoints":[{"addresses":["10.0.0.1"]}]}}"#
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
