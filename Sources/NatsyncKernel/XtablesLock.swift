#if canImport(Glibc)
import Glibc
#endif

/// The xtables lock every iptables writer takes: `flock(LOCK_EX)` on `/run/xtables.lock`
/// (`$XTABLES_LOCKFILE` overrides it). `/run` is shared by all network namespaces, so the lock
/// serializes writers host-wide. Released when the value goes away.
struct XtablesLock: ~Copyable {
    private let descriptor: Int32

    static var path: String {
        if let override = getenv("XTABLES_LOCKFILE") { return String(cString: override) }
        return "/run/xtables.lock"
    }

    /// Waits up to `timeout` for the lock, polling as iptables' `-W` does.
    init(timeout: Duration, pollInterval: Duration = .milliseconds(20)) throws(KernelError) {
        let path = Self.path
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw KernelError(errno: errno, operation: "open", message: "cannot open the xtables lock \(path)")
        }
        let deadline = ContinuousClock.now + timeout
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else {
                close(descriptor)
                throw KernelError(errno: code, operation: "flock", message: "cannot lock \(path)")
            }
            guard ContinuousClock.now < deadline else {
                close(descriptor)
                throw KernelError(
                    errno: EWOULDBLOCK, operation: "flock",
                    message: "another program holds the xtables lock \(path); gave up after \(timeout.formatted)")
            }
            var request = timespec(tv_sec: 0, tv_nsec: Int(pollInterval.components.attoseconds / 1_000_000_000))
            nanosleep(&request, nil)
        }
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}

extension Duration {
    /// `5s`, `250ms`.
    var formatted: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
