import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One child process run to its end: its wall time and its own peak resident set.
///
/// The peak comes from GNU time, which forks the command from its own small process: a child
/// spawned straight from this (large) bench process inherits the bench's peak, because
/// `posix_spawn` runs the child in the parent's memory until it execs, and the kernel carries
/// that memory's high-water mark into the child's `ru_maxrss` at exec (a `/bin/true` spawned
/// from a 500 MB process "peaks" at 513 MB). Measured that way, both natsync's and
/// iptables-restore's peaks read as the bench's own.
struct ChildRun {
    var seconds: Double
    var peakMegabytes: Double
    var status: Int32

    /// Runs `arguments` (looked up in PATH), stdin from `input` (or /dev/null), output discarded.
    static func run(_ arguments: [String], input: String? = nil) throws -> ChildRun {
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-bench-time-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: report) }
        let command = ["time", "--format", "%M", "--output", report] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let start = ContinuousClock.now
        let spawned = posix_spawnp(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw BenchError("cannot start GNU time: \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let elapsed = ContinuousClock.now - start
        // GNU time exits with the command's status (128 + signal when it was killed).
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        // Its last line is the peak in KB (a line before it says when the command failed).
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        guard let kilobytes = text.split(separator: "\n").last.flatMap({ Double($0) }) else {
            throw BenchError("GNU time gave no peak for \(arguments[0]): \(text)")
        }
        return ChildRun(seconds: elapsed.inSeconds, peakMegabytes: kilobytes / 1024, status: exit)
    }
}
