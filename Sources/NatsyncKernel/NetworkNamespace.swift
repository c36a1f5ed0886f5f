#if canImport(Glibc)
import Glibc
#endif

/// Runs work inside a named network namespace (`ip netns` style, `/run/netns/NAME`).
///
/// Namespaces belong to threads, and libiptc and netlink sockets belong to the namespace they
/// were opened in, so the work runs on a thread of its own that joins the namespace first; the
/// caller's thread never changes namespace.
public enum NetworkNamespace {
    /// Runs `body` on a new thread in namespace `name` (or in the caller's namespace when `nil`)
    /// and waits for it.
    public static func run<T>(in name: String?, _ body: () throws -> T) throws -> T {
        guard let name else { return try body() }
        let path = name.hasPrefix("/") ? name : "/run/netns/\(name)"
        var result: Result<T, any Error>?
        try withoutActuallyEscaping(body) { escapable in
            let job = Job(path: path) { result = Result { try escapable() } }
            try job.runOnNewThread()
        }
        return try result!.get()
    }

    /// Work for a thread that first enters a namespace. The thread is joined before the job's
    /// owner continues, so nothing in it is shared concurrently.
    private final class Job: @unchecked Sendable {
        let path: String
        let work: () -> Void
        var failure: KernelError?

        init(path: String, work: @escaping () -> Void) {
            self.path = path
            self.work = work
        }

        func runOnNewThread() throws(KernelError) {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let created = pthread_create(
                &thread, nil,
                { raw in
                    let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                    job.execute()
                    return nil
                }, context)
            guard created == 0 else {
                Unmanaged<Job>.fromOpaque(context).release()
                throw KernelError(errno: created, operation: "pthread_create", message: "cannot start a thread")
            }
            pthread_join(thread, nil)
            if let failure { throw failure }
        }

        private func execute() {
            do {
                try Shim.enterNetworkNamespace(path)
            } catch {
                failure = error
                return
            }
            work()
        }
    }
}
