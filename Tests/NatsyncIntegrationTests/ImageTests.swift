import Foundation
import NatsyncTestSupport
import Testing

/// The image `make image` wrote (`make stress` builds it and names it in NATSYNC_IMAGE).
let builtImage = ProcessInfo.processInfo.environment["NATSYNC_IMAGE"]

/// Why the image cannot be checked here, or nil when it can.
let imageUnavailable: String? = {
    guard getuid() == 0 else { return "needs root to chroot into the image" }
    guard let builtImage else { return "no image: make stress builds one (make image) and names it in NATSYNC_IMAGE" }
    guard FileManager.default.fileExists(atPath: builtImage) else { return "\(builtImage) does not exist (make image)" }
    return nil
}()

/// The container image holds everything natsync needs at run time: it is unpacked as a runtime
/// would (OCI index, manifest, layers) and natsync and the iptables tools run inside its root
/// alone, so a missing library fails here.
@Suite(.serialized, .enabled(if: imageUnavailable == nil, Comment(rawValue: imageUnavailable ?? "")))
struct ImageTests {
    @Test func natsyncAndItsToolsRunFromTheImageAlone() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-image-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        let layout = folder.appendingPathComponent("oci")
        let root = folder.appendingPathComponent("rootfs")
        try FileManager.default.createDirectory(at: layout, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try run(["tar", "-xf", builtImage!, "-C", layout.path])

        func blob(_ digest: String) -> URL { layout.appendingPathComponent("blobs/sha256/\(digest.dropFirst("sha256:".count))") }
        func json(_ url: URL) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
        }
        let index = try json(layout.appendingPathComponent("index.json"))
        let entry = (index["manifests"] as? [[String: Any]])?.first
        let manifest = try json(blob(entry?["digest"] as? String ?? ""))
        let config = try json(blob((manifest["config"] as? [String: Any])?["digest"] as? String ?? ""))
        #expect(((config["config"] as? [String: Any])?["Entrypoint"] as? [String]) == ["/usr/local/bin/natsync"])
        let layers = (manifest["layers"] as? [[String: Any]]) ?? []
        #expect(!layers.isEmpty)
        for layer in layers {
            try run(["tar", "-xzf", blob(layer["digest"] as? String ?? "").path, "-C", root.path])
        }

        /// `command` inside the image's root, with /proc mounted as a container runtime mounts it,
        /// in a mount namespace of its own (gone with the process, also on failure).
        func inImage(_ command: [String], check: Bool = true) throws -> CommandOutput {
            try run(
                ["unshare", "--mount", "--fork", "sh", "-c", "mount -t proc proc \"$0/proc\" && exec chroot \"$0\" \"$@\"", root.path]
                    + command, check: check)
        }

        let version = try run([buildFolder.appendingPathComponent("natsync").path, "--version"]).standardOutput
        #expect(try inImage(["/usr/local/bin/natsync", "--version"]).standardOutput == version)

        try FileManager.default.copyItem(
            at: URL(fileURLWithPath: Repository.root).appendingPathComponent("Fixtures/seed/service-test.yaml"),
            to: root.appendingPathComponent("seed.yaml"))
        let dryRun = try inImage([
            "/usr/local/bin/natsync", "sync", "--dry-run", "-f", "/seed.yaml", "--hostname-override", "node-1",
            "--cluster-cidr", "10.0.0.0/16", "--node-ip", "192.168.0.2",
        ])
        let expected = try String(
            contentsOf: URL(fileURLWithPath: Repository.root).appendingPathComponent("Fixtures/seed/expected.rules"), encoding: .utf8)
        #expect(dryRun.standardOutput == expected)

        // The restore backend's tools and the backend check's, each loading its libraries and
        // xtables modules from the image.
        for tool in [
            "iptables-nft-save", "iptables-nft-restore", "ip6tables-nft-save", "ip6tables-nft-restore", "iptables-legacy-save",
            "ip6tables-legacy-save",
        ] {
            let output = try inImage(["/usr/sbin/\(tool)", "--version"], check: false)
            #expect(
                output.status == 0 && output.standardOutput.contains(" v1."), "\(tool): \(output.standardOutput)\(output.standardError)")
        }
    }
}
