import Foundation
import NatsyncTestSupport
import Testing

@testable import NatsyncKernel

/// The commands the restore backend and the backend detection run: input, output and errors
/// served together, statuses as the shell reports them, and no hang in a fresh namespace.
@Suite struct ChildProcessTests {
    /// A megabyte each way through `cat`: a parent that wrote all its input before reading would
    /// wait forever on the child, blocked writing to a full pipe.
    @Test func servesInputOutputAndErrorsTogether() {
        let input = String(repeating: "-A KUBE-SERVICES -j KUBE-SVC-X\n", count: 35_000)
        let echoed = ChildProcess.run(["cat"], input: input)
        #expect(echoed.status == 0)
        #expect(echoed.output == input)
        let failed = ChildProcess.run(["sh", "-c", "cat >/dev/null; echo out; echo err >&2; exit 3"], input: input)
        #expect(failed.status == 3)
        #expect(failed.output == "out\n")
        #expect(failed.errors == "err\n")
        #expect(ChildProcess.run(["sh", "-c", "kill -TERM $$"]).status == 128 + SIGTERM)
    }

    /// A child that exits without reading its input ends the write, not this process (SIGPIPE);
    /// a command that does not exist is status 127, named in the errors.
    @Test func aChildThatIgnoresItsInputOrCannotStart() {
        #expect(ChildProcess.run(["true"], input: String(repeating: "x", count: 1 << 20)).status == 0)
        let missing = ChildProcess.run(["natsync-no-such-command"])
        #expect(missing.status == 127)
        #expect(missing.errors.contains("natsync-no-such-command"))
    }

    /// A fresh namespace's `lo` is down: the child runs there, sees that namespace's links and
    /// returns (Foundation's `Process` never returned there).
    @Test(.enabled(if: getuid() == 0, "needs root to create a network namespace"))
    func runsInAFreshNamespaceWhoseLoopbackIsDown() throws {
        let name = "natsync-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try #require(shell("ip", "netns", "add", name) == 0)
        defer { _ = shell("ip", "netns", "delete", name) }
        let shown = try NetworkNamespace.run(in: name) { ChildProcess.run(["ip", "-o", "link", "show"]) }
        #expect(shown.status == 0)
        let links = shown.output.split(separator: "\n")
        #expect(links.count == 1, "\(shown.output)")
        #expect(links.first?.contains("lo:") == true && links.first?.contains("state DOWN") == true, "\(shown.output)")
    }
}
