#if canImport(Glibc)
import Glibc
#endif

/// A command run to its end: `input` as its standard input, its output and errors captured.
///
/// Spawned with `posix_spawnp` and served with `poll` from the calling thread, so the child
/// starts in that thread's network namespace and the parent needs nothing from the namespace.
/// Foundation's `Process` waited for the child on a run loop woken through a loopback socket,
/// and in a namespace whose `lo` was down (a fresh one) that wait never returned.
public struct ChildProcess: Sendable {
    /// The exit status; 128 + the signal when a signal ended it; 127 when it could not start.
    public var status: Int32
    public var output: String
    public var errors: String

    /// Runs `command` (its first word looked up in `PATH`) and waits for it.
    public static func run(_ command: [String], input: String? = nil) -> ChildProcess {
        guard let name = command.first else { return ChildProcess(status: 127, output: "", errors: "no command") }
        var output = ChildPipe()
        var errors = ChildPipe()
        var stdin = input == nil ? nil : ChildPipe()
        guard output.isOpen, errors.isOpen, stdin?.isOpen ?? true else {
            return ChildProcess(status: 127, output: "", errors: "cannot run \(name): no pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)
        // The child starts with no signal blocked and every signal's default action, whatever
        // this thread blocks or ignores (a runtime's threads often block some).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigfillset(&signals)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, name, &actions, &attributes, argv, environ)
        // The child's ends are the child's alone now: closed here, each pipe ends when the child does.
        stdin?.closeRead()
        output.closeWrite()
        errors.closeWrite()
        guard spawned == 0 else {
            stdin?.closeWrite()
            output.closeRead()
            errors.closeRead()
            return ChildProcess(status: 127, output: "", errors: "cannot run \(name): \(String(cString: strerror(spawned)))")
        }
        let (out, err) = serve(input: Array((input ?? "").utf8), to: &stdin, output: &output, errors: &errors)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ChildProcess(status: exit, output: String(decoding: out, as: UTF8.self), errors: String(decoding: err, as: UTF8.self))
    }

    /// Writes `input` and reads both outputs as each is ready, until the child closes them: a
    /// child blocked on a full pipe while the parent waits on another can never happen.
    private static func serve(input: [UInt8], to stdin: inout ChildPipe?, output: inout ChildPipe, errors: inout ChildPipe) -> (
        [UInt8], [UInt8]
    ) {
        // A child that exits without reading its input makes the write fail with EPIPE instead of
        // killing this process: SIGPIPE is held for this thread, and one it raised is taken back.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
        var raisedPipeSignal = false
        defer {
            if raisedPipeSignal {
                var now = timespec()
                _ = sigtimedwait(&pipeSignal, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }
        if let descriptor = stdin?.write { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        var written = 0
        if input.isEmpty { stdin?.closeWrite() }
        var out: [UInt8] = []
        var err: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while output.isReadable || errors.isReadable || stdin?.isWritable == true {
            var descriptors: [pollfd] = []
            if output.isReadable { descriptors.append(pollfd(fd: output.read, events: Int16(POLLIN), revents: 0)) }
            if errors.isReadable { descriptors.append(pollfd(fd: errors.read, events: Int16(POLLIN), revents: 0)) }
            if let stdin, stdin.isWritable { descriptors.append(pollfd(fd: stdin.write, events: Int16(POLLOUT), revents: 0)) }
            guard poll(&descriptors, nfds_t(descriptors.count), -1) >= 0 || errno == EINTR else { break }
            for descriptor in descriptors where descriptor.revents != 0 {
                if descriptor.fd == stdin?.write {
                    let done = input.withUnsafeBytes { Glibc.write(descriptor.fd, $0.baseAddress! + written, $0.count - written) }
                    if done > 0 { written += done }
                    if done < 0 && errno == EPIPE { raisedPipeSignal = true }
                    if written == input.count || (done < 0 && errno != EAGAIN && errno != EINTR) { stdin?.closeWrite() }
                    continue
                }
                let done = chunk.withUnsafeMutableBytes { Glibc.read(descriptor.fd, $0.baseAddress!, $0.count) }
                if done < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                let isOutput = descriptor.fd == output.read
                if done > 0 {
                    if isOutput { out += chunk[..<done] } else { err += chunk[..<done] }
                } else if isOutput {
                    output.closeRead()
                } else {
                    errors.closeRead()
                }
            }
        }
        stdin?.closeWrite()
        return (out, err)
    }
}

/// Both ends of a pipe, closed on exec, each closed once.
private struct ChildPipe {
    private(set) var read: Int32 = -1
    private(set) var write: Int32 = -1

    init() {
        if let ends = try? Shim.pipe() { (read, write) = ends }
    }

    var isOpen: Bool { read >= 0 && write >= 0 }
    var isReadable: Bool { read >= 0 }
    var isWritable: Bool { write >= 0 }

    mutating func closeRead() {
        if read >= 0 { close(read) }
        read = -1
    }

    mutating func closeWrite() {
        if write >= 0 { close(write) }
        write = -1
    }
}
