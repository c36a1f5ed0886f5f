import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

@main
struct Natsync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "natsync",
        abstract: "A Kubernetes service proxy that programs kube-proxy's iptables rules through libiptc.",
        discussion: """
            Exit status: 0 success; 1 the rules could not be applied (nothing changed); \
            2 bad usage, or bad input with --strict.
            """,
        version: "0.1.0",
        subcommands: [Sync.self, Diff.self, Trace.self, Cleanup.self, Run.self]
    )

    /// Bad usage exits 2 (not ArgumentParser's 64), the status every natsync command documents.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                let message = fullMessage(for: error)
                if !message.isEmpty { FileDescriptorOutput.standardError.write(message + "\n") }
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Writes to the process's standard streams without Foundation.
struct FileDescriptorOutput {
    let descriptor: Int32

    static let standardOutput = FileDescriptorOutput(descriptor: 1)
    static let standardError = FileDescriptorOutput(descriptor: 2)

    func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
