#if canImport(Glibc)
import Glibc
#endif

/// A manifest file found under a path the user named: the name it goes by (in diagnostics and
/// from one poll to the next) and the path its bytes are read from. The two differ only in a
/// kubelet-projected directory, which is read through the one version its `..data` link names.
public struct ManifestFile: Hashable, Sendable {
    public var name: String
    public var source: String
    /// Named on the command line, where a pipe is read to its end (`-f /dev/stdin`); in a
    /// directory, a pipe could block the reader forever.
    public var named: Bool

    public init(name: String, source: String, named: Bool = false) {
        self.name = name
        self.source = source
        self.named = named
    }
}

/// Why a path or file could not be read: natsync then cannot know what it wanted, so no command
/// treats it as "no services" (a typo in `-f` must not delete every rule on the node).
public struct ManifestReadError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    /// The path does not exist (or a link in it points nowhere): the one failure the daemon may
    /// come to take as a deletion, once it has lasted.
    public var isMissing: Bool

    public init(path: String, reason: String, isMissing: Bool = false) {
        self.path = path
        self.reason = reason
        self.isMissing = isMissing
    }

    public var description: String { "\(path): \(reason)" }
}

/// Finds and reads manifest files.
///
/// A path is a file (a pipe too, such as `/dev/stdin`) or a directory, whose `.yaml`, `.yml` and
/// `.json` entries are read in name order. Hidden entries (editors' swap and lock files, a
/// projected volume's `..data`) are passed over, and subdirectories are not read (as `kubectl
/// apply -f DIR` without `-R`). An entry that is not a regular file, a path that does not exist,
/// and anything the kernel refuses to open or read is a ``ManifestReadError``.
///
/// A directory with a `..data` link is a kubelet-projected volume (a ConfigMap or Secret): its
/// files are read from the directory the link names at the moment of listing, so one listing sees
/// one version whole, never the moment of an update where `..data` has switched but the visible
/// links of new files do not exist yet or those of removed files still dangle.
public enum ManifestFiles {
    public struct Listing: Sendable {
        /// In name order: each file, or why the entry cannot be read as one.
        public var entries: [Result<ManifestFile, ManifestReadError>]
        /// The directories that hold no manifest file (allowed: they add no services).
        public var emptyDirectories: [String]
    }

    static let suffixes = [".yaml", ".yml", ".json"]

    /// The manifest files `path` names, or why the path itself cannot be read.
    public static func list(_ path: String) -> Result<Listing, ManifestReadError> {
        var status = stat()
        guard stat(path, &status) == 0 else { return .failure(error(path, errno)) }
        switch status.st_mode & S_IFMT {
        case S_IFREG, S_IFIFO:
            return .success(Listing(entries: [.success(ManifestFile(name: path, source: path, named: true))], emptyDirectories: []))
        case S_IFDIR:
            return listDirectory(path, status)
        default:
            return .failure(ManifestReadError(path: path, reason: "not a regular file or directory (\(kind(status.st_mode)))"))
        }
    }

    private static func listDirectory(_ path: String, _ status: stat) -> Result<Listing, ManifestReadError> {
        var folder = path
        var projected = false
        var link = stat()
        let data = join(path, "..data")
        if lstat(data, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK {
            guard let resolved = realpath(data, nil) else { return .failure(error(data, errno)) }
            folder = String(cString: resolved)
            free(resolved)
            projected = true
        }
        let names: [String]
        switch entries(folder) {
        case .success(let found): names = found
        case .failure(let failure): return .failure(failure)
        }
        let listed = names.sorted().filter { !$0.hasPrefix(".") && suffixes.contains(where: $0.hasSuffix) }.map { entry in
            let name = join(path, entry)
            return file(name: name, source: projected ? join(folder, entry) : name, in: status, path)
        }
        return .success(Listing(entries: listed, emptyDirectories: listed.isEmpty ? [path] : []))
    }

    /// A directory's entry as a file to read, or why it is not one.
    private static func file(name: String, source: String, in directory: stat, _ path: String) -> Result<ManifestFile, ManifestReadError> {
        var status = stat()
        guard stat(source, &status) == 0 else { return .failure(error(name, errno)) }
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            return .success(ManifestFile(name: name, source: source))
        case S_IFDIR where status.st_dev == directory.st_dev && status.st_ino == directory.st_ino:
            return .failure(ManifestReadError(path: name, reason: "a directory loop: leads back to \(path)"))
        case S_IFDIR:
            return .failure(ManifestReadError(path: name, reason: "is a directory (directories inside a manifest directory are not read)"))
        default:
            return .failure(ManifestReadError(path: name, reason: "not a regular file (\(kind(status.st_mode)))"))
        }
    }

    private static func entries(_ path: String) -> Result<[String], ManifestReadError> {
        guard let directory = opendir(path) else { return .failure(error(path, errno)) }
        defer { closedir(directory) }
        var names: [String] = []
        errno = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
            errno = 0
        }
        guard errno == 0 else { return .failure(error(path, errno)) }
        return .success(names)
    }

    /// The bytes of a listed file, read at once at the size it has (growing if it grows
    /// meanwhile): a tenth of loading a 66 MB kubectl output went to `FileManager`'s reading. Not
    /// mapped: a file truncated while mapped would kill the process (SIGBUS) instead of failing.
    public static func read(_ file: ManifestFile) -> Result<[UInt8], ManifestReadError> {
        // Non-blocking unless a pipe is wanted, so that a pipe put where a file was expected
        // cannot hang the open or the read.
        var status = stat()
        let pipe = file.named && stat(file.source, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO
        let fd = open(file.source, O_RDONLY | O_CLOEXEC | (pipe ? 0 : O_NONBLOCK))
        guard fd >= 0 else { return .failure(error(file.name, errno)) }
        defer { close(fd) }
        guard fstat(fd, &status) == 0 else { return .failure(error(file.name, errno)) }
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            break
        case S_IFIFO where pipe:
            break
        case S_IFDIR:
            return .failure(ManifestReadError(path: file.name, reason: "is a directory"))
        default:
            return .failure(ManifestReadError(path: file.name, reason: "not a regular file (\(kind(status.st_mode)))"))
        }
        var failure: Int32 = 0
        // One byte more than the size, to notice a file that grew since fstat.
        var bytes = [UInt8](unsafeUninitializedCapacity: max(Int(status.st_size), 0) + 1) { buffer, initialized in
            while initialized < buffer.count {
                let done = Glibc.read(fd, buffer.baseAddress! + initialized, buffer.count - initialized)
                if done < 0 && errno == EINTR { continue }
                if done <= 0 {
                    failure = done < 0 ? errno : 0
                    return
                }
                initialized += done
            }
        }
        if failure == 0 && bytes.count > Int(status.st_size) {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let done = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                if done < 0 && errno == EINTR { continue }
                if done <= 0 {
                    failure = done < 0 ? errno : 0
                    break
                }
                bytes += chunk[..<done]
            }
        }
        guard failure == 0 else { return .failure(error(file.name, failure)) }
        return .success(bytes)
    }

    /// The error of a failed call, in strerror's words (lower-cased as the rest of the messages).
    static func error(_ path: String, _ code: Int32) -> ManifestReadError {
        let text = String(cString: strerror(code))
        let reason = text.prefix(1).lowercased() + text.dropFirst()
        return ManifestReadError(path: path, reason: reason, isMissing: code == ENOENT || code == ENOTDIR)
    }

    private static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFIFO: return "a named pipe"
        case S_IFLNK: return "a symbolic link"
        default: return "mode \(String(mode, radix: 8))"
        }
    }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
