import Foundation
import Testing

@testable import NatsyncManifest
@testable import NatsyncWire

/// Paths natsync cannot read are errors naming the path and the reason, never "no services".
@Suite(.serialized)
final class ManifestFilesTests {
    let folder: String
    static let web =
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}\n"
    static let dns =
        "apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: default}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 53}]}\n"

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-files-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = "\(folder)/\(name)"
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func link(_ name: String, to target: String) throws -> String {
        let path = "\(folder)/\(name)"
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
        return path
    }

    func errors(_ paths: [String]) -> [String] {
        ManifestLoader.load(paths: paths).errors.map(\.description)
    }

    @Test func aPathThatDoesNotExistIsAnError() throws {
        let good = try write("seed.yaml", Self.web)
        let result = ManifestLoader.load(paths: [good, "\(folder)/seeed.yaml"])
        #expect(result.errors.map(\.description) == ["error: \(folder)/seeed.yaml: no such file or directory"])
        #expect(result.state.services.count == 1, "the rest still loads; the commands refuse to apply it")
    }

    @Test func aSymbolicLinkLoopIsAnError() throws {
        let loop = try link("loop.yaml", to: "loop.yaml")
        #expect(errors([loop]) == ["error: \(loop): too many levels of symbolic links"])
    }

    @Test func aDirectoryThatLinksBackToItselfIsAnError() throws {
        _ = try write("manifests/web.yaml", Self.web)
        _ = try link("manifests/self.yaml", to: ".")
        #expect(
            errors(["\(folder)/manifests"]) == ["error: \(folder)/manifests/self.yaml: a directory loop: leads back to \(folder)/manifests"]
        )
    }

    @Test func aDeviceIsAnError() throws {
        #expect(errors(["/dev/null"]) == ["error: /dev/null: not a regular file or directory (a character device)"])
        _ = try write("manifests/web.yaml", Self.web)
        _ = try link("manifests/zero.yaml", to: "/dev/zero")
        #expect(errors(["\(folder)/manifests"]) == ["error: \(folder)/manifests/zero.yaml: not a regular file (a character device)"])
    }

    @Test func aNamedPipeInADirectoryIsAnErrorAndNeverBlocks() throws {
        _ = try write("manifests/web.yaml", Self.web)
        #expect(mkfifo("\(folder)/manifests/pipe.yaml", 0o644) == 0)
        #expect(errors(["\(folder)/manifests"]) == ["error: \(folder)/manifests/pipe.yaml: not a regular file (a named pipe)"])
    }

    @Test func aPipeNamedOnTheCommandLineIsReadToItsEnd() throws {
        let pipe = "\(folder)/pipe"
        #expect(mkfifo(pipe, 0o644) == 0)
        let writer = Thread {
            guard let handle = FileHandle(forWritingAtPath: pipe) else { return }
            handle.write(Data(Self.web.utf8))
            try? handle.close()
        }
        writer.start()
        let result = ManifestLoader.load(paths: [pipe])
        #expect(result.errors.isEmpty)
        #expect(result.state.services.map(\.name.name) == ["web"])
    }

    @Test func aFileThatCannotBeOpenedNamesTheReason() throws {
        let file = try write("manifests/web.yaml", Self.web)
        let listed = try #require(try? ManifestFiles.list("\(folder)/manifests").get())
        try FileManager.default.removeItem(atPath: file)
        let read = ManifestFiles.read(try #require(try? listed.entries[0].get()))
        #expect(read.failure == ManifestReadError(path: file, reason: "no such file or directory", isMissing: true))
    }

    @Test func aDanglingLinkInADirectoryIsAnError() throws {
        _ = try write("manifests/web.yaml", Self.web)
        let dangling = try link("manifests/gone.yaml", to: "\(folder)/nowhere.yaml")
        let listing = try #require(try? ManifestFiles.list("\(folder)/manifests").get())
        #expect(
            listing.entries.compactMap(\.failure) == [
                ManifestReadError(path: dangling, reason: "no such file or directory", isMissing: true)
            ])
        #expect(errors(["\(folder)/manifests"]) == ["error: \(dangling): no such file or directory"])
    }

    @Test func anEmptyDirectoryMeansNoServicesAndSaysSo() throws {
        try FileManager.default.createDirectory(atPath: "\(folder)/empty", withIntermediateDirectories: true)
        _ = try write("empty/README.md", "not a manifest")
        let result = ManifestLoader.load(paths: ["\(folder)/empty"])
        #expect(result.errors.isEmpty && result.warnings.isEmpty)
        #expect(
            result.diagnostics.map(\.description) == [
                "note: \(folder)/empty: no .yaml, .yml or .json file in this directory; it adds no services"
            ])
    }

    @Test func hiddenEntriesAndSubdirectoriesWithoutASuffixArePassedOver() throws {
        _ = try write("manifests/web.yaml", Self.web)
        _ = try write("manifests/.web.yaml.swp", "binary junk")
        _ = try link("manifests/.#web.yaml", to: "root@host.1234")
        _ = try write("manifests/older/dns.yaml", Self.dns)
        let result = ManifestLoader.load(paths: ["\(folder)/manifests"])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        #expect(result.state.services.map(\.name.name) == ["web"])
    }

    /// A kubelet-projected ConfigMap: the files are read from the version `..data` names, whatever
    /// the visible links say in the middle of an update.
    @Test func aProjectedDirectoryIsReadThroughItsDataLink() throws {
        let volume = "\(folder)/volume"
        _ = try write("volume/..2026_12_06_10_00_00.1/web.yaml", Self.web)
        _ = try write("volume/..2026_12_06_10_00_01.2/dns.yaml", Self.dns)
        _ = try link("volume/..data", to: "..2026_12_06_10_00_01.2")
        // The moment after the switch: the old key's link dangles, the new key's is not made yet.
        _ = try link("volume/web.yaml", to: "..data/web.yaml")
        let result = ManifestLoader.load(paths: [volume])
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        #expect(result.state.services.map(\.name.name) == ["dns"])
        let files = try #require(try? ManifestFiles.list(volume).get()).entries.compactMap { try? $0.get() }
        #expect(files == [ManifestFile(name: "\(volume)/dns.yaml", source: "\(folder)/volume/..2026_12_06_10_00_01.2/dns.yaml")])
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
