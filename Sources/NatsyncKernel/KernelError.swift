import NatsyncIPTables

#if canImport(Glibc)
import Glibc
#endif

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

    /// The table changed since it was read (EAGAIN at commit): retry on a fresh read.
    public static let tableChanged = EAGAIN
    /// A chain still referenced by a rule cannot be deleted (EMLINK).
    public static let chainInUse = EMLINK
    /// No CAP_NET_ADMIN (EPERM).
    public static let notPermitted = EPERM
    /// Unknown chain, target or match (ENOENT).
    public static let notFound = ENOENT
    /// The chain already exists (EEXIST).
    public static let exists = EEXIST
    /// The nf_tables ruleset changed since the transaction was planned (ERESTART): re-read, retry.
    public static let generationMoved = ERESTART
    /// A dump that a concurrent commit interrupted (EINTR, the kernel's NLM_F_DUMP_INTR): read again.
    public static let dumpInterrupted = EINTR
    /// A kernel answer natsync cannot take apart (EPROTO).
    public static let malformedAnswer = EPROTO

    /// The C library's message for `errno`.
    static func describe(_ errno: Int32) -> String { String(cString: strerror(errno)) }

    public var description: String {
        var where_: [String] = []
        if let table { where_.append("table \(table)") }
        if let chain { where_.append("chain \(chain)") }
        let place = where_.isEmpty ? "" : " (" + where_.joined(separator: ", ") + ")"
        let code = Errno.name(errno).map { "\($0), " } ?? ""
        return "\(operation)\(place): \(message) [\(code)errno \(errno)]"
    }
}

/// The errno values natsync names in its messages and that `NATSYNC_KERNEL_FAULTS` accepts.
enum Errno {
    static let names: [(name: String, value: Int32)] = [
        ("EPERM", EPERM), ("ENOENT", ENOENT), ("EINTR", EINTR), ("EIO", EIO), ("EAGAIN", EAGAIN), ("ENOMEM", ENOMEM),
        ("EACCES", EACCES), ("EBUSY", EBUSY), ("EEXIST", EEXIST), ("EINVAL", EINVAL), ("ENOSPC", ENOSPC), ("EMLINK", EMLINK),
        ("ENOBUFS", ENOBUFS), ("ETIMEDOUT", ETIMEDOUT), ("ECANCELED", ECANCELED), ("EAFNOSUPPORT", EAFNOSUPPORT),
        ("EOPNOTSUPP", EOPNOTSUPP), ("ELOOP", ELOOP), ("EPROTO", EPROTO),
        ("ERESTART", ERESTART),
    ]

    static func name(_ value: Int32) -> String? { names.first { $0.value == value }?.name }
    static func value(_ name: String) -> Int32? { names.first { $0.name == name }?.value }
}
