import Logging
import NatsyncManifest
import NatsyncModel
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Watches manifest files and directories (by polling their names, sizes, modification times
/// and inodes) and hands every new cluster state to the runner. What counts when a file cannot be
/// read, cannot be parsed or is gone is ``ManifestKeeper``'s to decide; until every path could be
/// read once, nothing is handed on and `onWaiting` says why (`/healthz` is then not ready).
public final class ManifestWatcher: ServiceLifecycle.Service, Sendable {
    let paths: [String]
    let interval: Duration
    let logger: Logger
    let onState: @Sendable (ClusterState) -> Void
    let onWaiting: @Sendable (Bool) -> Void

    public init(
        paths: [String], interval: Duration, logger: Logger, onWaiting: @escaping @Sendable (Bool) -> Void = { _ in },
        onState: @escaping @Sendable (ClusterState) -> Void
    ) {
        self.paths = paths
        self.interval = interval
        self.logger = logger
        self.onWaiting = onWaiting
        self.onState = onState
    }

    /// What a look at the paths saw without reading the files: a change in it means reading again.
    struct Stamp: Equatable {
        var name: String
        var problem: String?
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var size: Int = 0
        var modified: timespec = timespec()

        static func == (a: Stamp, b: Stamp) -> Bool {
            a.name == b.name && a.problem == b.problem && a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
        }
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.watch() }
    }

    private func watch() async throws {
        var keeper = ManifestKeeper()
        var stamps: [Stamp]?
        var lastWaiting: [String]?
        while !Task.isCancelled {
            let listings = paths.map { ($0, ManifestFiles.list($0)) }
            let current = Self.stamps(listings)
            if current != stamps || keeper.awaitsConfirmation {
                stamps = current
                let outcome = keeper.take(Self.read(listings))
                if let state = outcome.state {
                    report(outcome)
                    if lastWaiting != nil {
                        lastWaiting = nil
                        onWaiting(false)
                    }
                    onState(state)
                } else if outcome.problems != lastWaiting {
                    // Said once for each new reason, not at every look.
                    logger.error(
                        "waiting for the manifests: nothing applied until every path can be read",
                        metadata: ["reasons": "\(outcome.problems.joined(separator: "; "))"])
                    lastWaiting = outcome.problems
                    onWaiting(true)
                }
            }
            try await Task.sleep(for: interval)
        }
    }

    private func report(_ outcome: ManifestKeeper.Outcome) {
        for problem in outcome.problems {
            logger.warning("manifest not applied as it is", metadata: ["reason": "\(problem)"])
        }
        for file in outcome.deleted {
            logger.info("manifest deleted; its objects are removed", metadata: ["file": "\(file)"])
        }
        for diagnostic in outcome.diagnostics {
            if diagnostic.severity == .warning {
                logger.warning("invalid object skipped", metadata: ["reason": "\(diagnostic)"])
            } else if diagnostic.object == nil {
                logger.notice("\(diagnostic.message)", metadata: ["path": "\(diagnostic.file ?? "")"])
            }
        }
        let state = outcome.state
        logger.info(
            "manifests loaded",
            metadata: ["services": "\(state?.services.count ?? 0)", "endpointslices": "\(state?.endpointSlices.count ?? 0)"])
    }

    static func stamps(_ listings: [(String, Result<ManifestFiles.Listing, ManifestReadError>)]) -> [Stamp] {
        var stamps: [Stamp] = []
        for (path, listing) in listings {
            switch listing {
            case .failure(let failure):
                stamps.append(Stamp(name: path, problem: failure.reason))
            case .success(let found):
                for entry in found.entries {
                    switch entry {
                    case .failure(let failure):
                        stamps.append(Stamp(name: failure.path, problem: failure.reason))
                    case .success(let file):
                        var status = stat()
                        guard stat(file.source, &status) == 0 else {
                            stamps.append(Stamp(name: file.name, problem: "errno \(errno)"))
                            continue
                        }
                        stamps.append(
                            Stamp(
                                name: file.name, device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int(status.st_size),
                                modified: status.st_mtim))
                    }
                }
            }
        }
        return stamps
    }

    static func read(_ listings: [(String, Result<ManifestFiles.Listing, ManifestReadError>)]) -> ManifestReading {
        ManifestReading(
            paths: listings.map { path, listing in
                switch listing {
                case .failure(let failure):
                    return ManifestReading.Path(path: path, files: .failure(failure))
                case .success(let found):
                    let files = found.entries.map { entry in
                        switch entry {
                        case .failure(let failure): ManifestReading.File(name: failure.path, contents: .failure(failure))
                        case .success(let file): ManifestReading.File(name: file.name, contents: ManifestFiles.read(file))
                        }
                    }
                    return ManifestReading.Path(path: path, files: .success(files), emptyDirectories: found.emptyDirectories)
                }
            })
    }
}
