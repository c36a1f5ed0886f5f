import CNatsyncShim
import NatsyncIPTables

/// A failed kernel operation: what natsync was doing, where, and what the kernel or libiptc said.
///
/// The errno is kept as is; the codes callers act on have names.
public struct KernelError: Error, Hashable, Sendable, CustomStringConvertible {
    public var errno: Int32
    /// The libiptc or system call, such as `iptc_commit`.
    public var operation: String
    public var table: TableName?
    public var chain: ChainName?
    /// The message captured when the call failed.
    public var message: String

    public init(errno: Int32, operation: String, table: TableName? = nil, chain: ChainName? = nil, message: String) {
        self.errno = errno
        self.operation = operation
        self.table = table
        self.chain = chain
        self.message = message
    }

    /// The error of the shim call that just failed on this thread: its captured errno and message
    /// (libiptc's message depends on a global the next call overwrites, so the shim keeps it).
    static func lastShimError(_ operation: String, table: TableName? = nil, chain: ChainName? = nil) -> KernelError {
        KernelError(
            errno: natsync_last_errno(), operation: operation, table: table, chain: chain, message: String(cString: natsync_last_error()))
    }

    /// The table changed since it was read (EAGAIN at commit): retry on a fresh read.
    public static let tableChanged: Int32 = 11
    /// A chain still referenced by a rule cannot be deleted (EMLINK).
    public static let chainInUse: Int32 = 31
    /// No CAP_NET_ADMIN (EPERM).
    public static let notPermitted: Int32 = 1
    /// Unknown chain, target or match (ENOENT).
    public static let notFound: Int32 = 2
    /// The chain already exists (EEXIST).
    public static let exists: Int32 = 17

    public var description: String {
        var where_: [String] = []
        if let table { where_.append("table \(table)") }
        if let chain { where_.append("chain \(chain)") }
        let place = where_.isEmpty ? "" : " (" + where_.joined(separator: ", ") + ")"
        return "\(operation)\(place): \(message) [errno \(errno)]"
    }
}
