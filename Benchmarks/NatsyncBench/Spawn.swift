import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One child process run to its end: its wall time and its own peak resident set (from `wait4`,
/// which reports the child alone, unlike `RUSAGE_CHILDREN`).
struct ChildRun {
    var seconds: Double
    var peakMegabytes: Double
    var status: Int32

    /// Runs `arguments` (looked up in PATH), stdin from `input` (or /dev/null), output discarded.
    static func run(_ arguments: [String], input: String? = nil) throws -> ChildRun {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let start = ContinuousClock.now
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw BenchError("cannot start \(arguments[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let elapsed = ContinuousClock.now - start
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ChildRun(
            seconds: elapsed.inSeconds,
            peakMegabytes: Double(usage.ru_maxrss) / 1024, status: exit)
    }
}
