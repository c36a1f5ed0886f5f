import Foundation

/// A network namespace inside a user namespace of its own (`unshare --user --map-root-user
/// --net`): its own empty filter, nat and conntrack tables, which a process without root may
/// change. It lives as long as the `sleep` holding it, and vanishes with it; nothing is named and
/// nothing is left behind in `/run/netns`.
public final class PrivateNamespace {
    private let holder: Process
    /// The lock file its iptables writers share (`/run/xtables.lock` needs root to open).
    public let lockFile: String

    /// Why such a namespace cannot be made here (user namespaces disabled), or nil when it can.
    public static let unavailable: String? = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
            FileManager.default.isExecutableFile(atPath: "/usr/bin/nsenter")
        else { return "needs unshare and nsenter (util-linux)" }
        let probe = try? NatsyncTestSupport.run(["unshare", "--user", "--map-root-user", "--net", "true"], check: false)
        guard let probe, probe.status == 0 else {
            return "cannot make a user and network namespace: \(probe?.standardError ?? "unshare did not run")"
        }
        return nil
    }()

    public init() throws {
        lockFile = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-\(UUID().uuidString).lock").path
        holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        holder.arguments = ["--user", "--map-root-user", "--net", "sleep", "3600"]
        try holder.run()
        // unshare runs in the holder's process and then becomes `sleep`: wait until it is inside.
        let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        for _ in 0..<500 {
            if let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(holder.processIdentifier)/ns/net"),
                theirs != own, Self.command(of: holder.processIdentifier) == "sleep\n"
            {
                return
            }
            usleep(10_000)
        }
        close()
        throw Failure(description: "the namespace holder did not start")
    }

    /// What process `pid` runs (`/proc/PID/comm`, whose size procfs reports as 0, so read to its end).
    private static func command(of pid: Int32) -> String? {
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/comm") else { return nil }
        defer { try? file.close() }
        return String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Runs a program inside the namespace (as its root), with `environment` added to its own; any
    /// exit status is returned, not thrown.
    public func run(_ command: [String], environment: [String: String] = [:]) throws -> CommandOutput {
        let variables = (["XTABLES_LOCKFILE": lockFile].merging(environment) { $1 }).sorted { $0.key < $1.key }.map { "\($0)=\($1)" }
        return try NatsyncTestSupport.run(
            ["nsenter", "--target", "\(holder.processIdentifier)", "--user", "--net", "--preserve-credentials", "env"] + variables
                + command, check: false)
    }

    /// Ends the holder, and with it the namespace and everything in it.
    public func close() {
        // SIGKILL: the holder inherits the test runner's signal dispositions, which may ignore SIGTERM.
        if holder.isRunning {
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: lockFile)
    }

    deinit { close() }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }
}
