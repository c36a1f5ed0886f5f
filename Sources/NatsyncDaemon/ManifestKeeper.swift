import NatsyncManifest
import NatsyncModel
import NatsyncWire

/// What one look at the manifest paths found: for each path named on the command line, what
/// reading each of its files gave, or why the path itself could not be read.
public struct ManifestReading: Sendable {
    public struct Path: Sendable {
        public var path: String
        public var files: Result<[File], ManifestReadError>
        /// Directories without a manifest file (they add no services, which the log says).
        public var emptyDirectories: [String]

        public init(path: String, files: Result<[File], ManifestReadError>, emptyDirectories: [String] = []) {
            self.path = path
            self.files = files
            self.emptyDirectories = emptyDirectories
        }
    }

    public struct File: Sendable {
        public var name: String
        public var contents: Result<[UInt8], ManifestReadError>

        public init(name: String, contents: Result<[UInt8], ManifestReadError>) {
            self.name = name
            self.contents = contents
        }
    }

    public var paths: [Path]

    public init(paths: [Path]) { self.paths = paths }
}

/// Decides, look after look, what the manifests want, losing nothing to input it cannot read.
///
/// - Until every named path and file has been read and parsed once, nothing is handed on: the
///   tables may hold rules of a previous run for whatever could not be read.
/// - After that, a file that cannot be read or parsed counts with its last good contents.
/// - A file that is gone (not listed, or listed but missing, as a dangling link) keeps its last
///   good contents at the look that first finds it gone, and its objects go only if the next
///   look still finds it gone: an update that replaces files (an editor's rename, a ConfigMap
///   whose key changed) is never seen as a deletion of everything.
/// - A path named on the command line that is gone is waited for; its files keep their contents.
///
/// Pure: the watcher does the reading, so every case is tested without a file system.
public struct ManifestKeeper: Sendable {
    /// What to do after a look.
    public struct Outcome: Sendable {
        /// The state to hand on, or nil while natsync waits for input it could not read at start.
        public var state: ClusterState?
        /// Why files counted with their last good contents, or why natsync waits.
        public var problems: [String]
        /// Files whose deletion this look confirmed.
        public var deleted: [String]
        /// The loader's diagnostics (skipped objects, empty directories).
        public var diagnostics: [Diagnostic]
    }

    /// Whether a state has been handed on.
    public private(set) var started = false
    private var lastGood: [String: [UInt8]] = [:]
    /// Each named path's files at the last look that listed it.
    private var filesOf: [String: [String]] = [:]
    /// Files found gone at the last look, whose deletion the next look confirms.
    private var gone: Set<String> = []

    public init() {}

    /// True while a deletion waits for the next look to confirm it.
    public var awaitsConfirmation: Bool { !gone.isEmpty }

    public mutating func take(_ reading: ManifestReading) -> Outcome {
        var loader = ManifestLoader()
        var problems: [String] = []
        var waiting: [String] = []
        var deleted: [String] = []
        var goneNow: Set<String> = []
        var notes: [Diagnostic] = []

        /// A file that could not be used as it is now: its last good contents, if any.
        func fallBack(_ name: String, _ reason: String, missing: Bool) {
            guard let good = lastGood[name] else {
                if started {
                    problems.append("\(reason); the file adds nothing until it can be read")
                } else {
                    waiting.append(reason)
                }
                return
            }
            if missing && gone.contains(name) {
                lastGood[name] = nil
                deleted.append(name)
                return
            }
            if missing { goneNow.insert(name) }
            problems.append("\(reason); keeping its last good contents")
            loader.add(contents: good, file: name)
        }

        for path in reading.paths {
            switch path.files {
            case .failure(let failure):
                guard started else {
                    waiting.append("\(failure)")
                    continue
                }
                problems.append("\(failure); waiting for it, its files keep their last good contents")
                for name in filesOf[path.path] ?? [] {
                    if let good = lastGood[name] { loader.add(contents: good, file: name) }
                }
            case .success(let files):
                for directory in path.emptyDirectories {
                    notes.append(.emptyDirectory(directory))
                }
                for file in files {
                    switch file.contents {
                    case .success(let bytes):
                        if loader.add(contents: bytes, file: file.name) {
                            lastGood[file.name] = bytes
                        } else {
                            // The loader added nothing but the error, which `problems` carries.
                            let reason = loader.diagnostics.last.map { "\($0.file ?? file.name): \($0.message)" } ?? file.name
                            fallBack(file.name, reason, missing: false)
                        }
                    case .failure(let failure):
                        fallBack(file.name, "\(failure)", missing: failure.isMissing)
                    }
                }
                let listed = Set(files.map(\.name))
                for name in filesOf[path.path] ?? [] where !listed.contains(name) {
                    fallBack(name, "\(name): no longer listed", missing: true)
                }
                // Names still gone stay known, so that the next look confirms their deletion.
                filesOf[path.path] = files.map(\.name) + (filesOf[path.path] ?? []).filter { !listed.contains($0) && goneNow.contains($0) }
            }
        }
        gone = goneNow
        guard waiting.isEmpty else {
            return Outcome(state: nil, problems: waiting, deleted: deleted, diagnostics: [])
        }
        started = true
        let result = loader.result()
        return Outcome(
            state: result.state, problems: problems, deleted: deleted,
            diagnostics: notes + result.diagnostics.filter { $0.severity != .error })
    }
}
