import Foundation
import NatsyncManifest
import NatsyncTestSupport
import NatsyncWire
import Testing
import Yams

@testable import NatsyncKubernetes

/// `deploy/natsync.yaml` holds together: its kubeconfig and KubeProxyConfiguration load as natsync
/// reads them, its DaemonSet reads them where it mounts them and names the image `make image`
/// builds, and its service account gets kube-proxy's role.
struct DeployManifestTests {
    func documents() throws -> [[String: Any]] {
        let text = try String(
            contentsOf: URL(fileURLWithPath: Repository.root).appendingPathComponent("deploy/natsync.yaml"), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
    }

    func object(_ kind: String, in documents: [[String: Any]]) throws -> [String: Any] {
        try #require(documents.first { $0["kind"] as? String == kind }, "no \(kind)")
    }

    @Test func theDaemonSetReadsItsConfigMapAsNatsyncLoadsIt() throws {
        let all = try documents()
        let data = try #require(try object("ConfigMap", in: all)["data"] as? [String: String])
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("deploy-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (name, contents) in data { try contents.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8) }

        let config = try ProxyConfigurationFile.load(path: folder.appendingPathComponent("config.conf").path)
        #expect(config.unknownFields.isEmpty)
        let kubeconfigPath = try #require(config.kubeconfig)

        // The kubeconfig: the control plane's address and the service account's credentials
        // (read from its files at request time, so they need not exist here).
        let kubeconfig = try String(contentsOf: folder.appendingPathComponent("kubeconfig.conf"), encoding: .utf8)
            .replacingOccurrences(of: "certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n", with: "")
        try kubeconfig.write(to: folder.appendingPathComponent("kubeconfig.conf"), atomically: true, encoding: .utf8)
        let connection = try APIConnection.kubeconfig(path: folder.appendingPathComponent("kubeconfig.conf").path)
        #expect(connection.server == "https://CONTROL_PLANE_ENDPOINT:6443")
        guard case .file("/var/run/secrets/kubernetes.io/serviceaccount/token") = connection.token else {
            Issue.record("the kubeconfig must use the service account's token file")
            return
        }

        let daemonSet = try object("DaemonSet", in: all)
        let pod = try #require(((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let command = (container["command"] as? [String]) ?? []
        let mounts = (container["volumeMounts"] as? [[String: Any]]) ?? []
        let configMount = try #require(mounts.first { $0["name"] as? String == "config" }?["mountPath"] as? String)
        #expect(command.contains("--config=\(configMount)/config.conf"))
        #expect(kubeconfigPath == "\(configMount)/kubeconfig.conf")
        #expect(command.contains("--hostname-override=$(NODE_NAME)"))

        let source = try String(
            contentsOf: URL(fileURLWithPath: Repository.root).appendingPathComponent("Sources/natsync/Natsync.swift"), encoding: .utf8)
        let version = try #require(source.firstMatch(of: /version: "([^"]+)"/)?.1)
        #expect(container["image"] as? String == "natsync:\(version)", "the image make image builds")

        let binding = try object("ClusterRoleBinding", in: all)
        #expect((binding["roleRef"] as? [String: Any])?["name"] as? String == "system:node-proxier")
    }
}
