import Foundation
import Logging
import NatsyncManifest
import NatsyncModel
import ServiceLifecycle

/// Watches manifest files and directories (by polling their names, sizes and modification times)
/// and hands every new cluster state to the runner. A file that cannot be parsed keeps its last
/// good contents, with a log line saying why.
public final class ManifestWatcher: ServiceLifecycle.Service, Sendable {
    let paths: [String]
    let interval: Duration
    let logger: Logger
    let onState: @Sendable (ClusterState) -> Void

    public init(paths: [String], interval: Duration, logger: Logger, onState: @escaping @Sendable (ClusterState) -> Void) {
        self.paths = paths
        self.interval = interval
        self.logger = logger
        self.onState = onState
    }

    struct FileStamp: Equatable {
        var size: Int
        var modified: Date
        var inode: Int
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.watch() }
    }

    private func watch() async throws {
        var stamps: [String: FileStamp] = [:]
        var lastGood: [String: [UInt8]] = [:]
        var first = true
        do {
            while !Task.isCancelled {
                let files = self.paths.flatMap(ManifestLoader.manifestFiles)
                var current: [String: FileStamp] = [:]
                for file in files {
                    guard let attributes = try? FileManager.default.attributesOfItem(atPath: file) else { continue }
                    current[file] = FileStamp(
                        size: (attributes[.size] as? Int) ?? -1, modified: (attributes[.modificationDate] as? Date) ?? .distantPast,
                        inode: (attributes[.systemFileNumber] as? Int) ?? -1)
                }
                if first || current != stamps {
                    first = false
                    stamps = current
                    self.onState(self.load(files, lastGood: &lastGood))
                }
                try await Task.sleep(for: self.interval)
            }
        }
    }

    /// Loads `files`, using the last good contents of any file that cannot be parsed now.
    func load(_ files: [String], lastGood: inout [String: [UInt8]]) -> ClusterState {
        var loader = ManifestLoader()
        var seen = Set<String>()
        for file in files {
            guard let contents = ManifestLoader.read(file) else { continue }
            if loader.add(contents: contents, file: file) {
                lastGood[file] = contents
            } else {
                logger.warning(
                    "manifest not applied; keeping its last good contents",
                    metadata: ["reason": "\(loader.result().diagnostics.last { $0.file == file }.map { "\($0)" } ?? file)"])
                guard let previous = lastGood[file] else { continue }
                loader.add(contents: previous, file: file)
            }
            seen.insert(file)
        }
        for file in lastGood.keys where !seen.contains(file) { lastGood[file] = nil }
        let result = loader.result()
        // A file that did not parse was reported above, with what was kept instead.
        for diagnostic in result.diagnostics
        where diagnostic.severity == .warning && !(diagnostic.object == nil && loader.unreadableFiles.contains(diagnostic.file ?? "")) {
            logger.warning("invalid object skipped", metadata: ["reason": "\(diagnostic)"])
        }
        logger.info(
            "manifests loaded",
            metadata: ["services": "\(result.state.services.count)", "endpointslices": "\(result.state.endpointSlices.count)"])
        return result.state
    }
}
