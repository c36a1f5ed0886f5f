#if DEBUG
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A seam for tests, compiled into debug builds only: makes chosen shim calls fail with a chosen
/// errno before they reach the kernel, so the paths natsync takes when the kernel refuses (a table
/// changed under a commit, a chain still referenced, a read or a conntrack dump that fails) are
/// driven on purpose rather than by racing the kernel.
///
/// Armed from the environment: `NATSYNC_KERNEL_FAULTS` is a comma-separated list of
/// `CALL=ERRNO[xTIMES][@SKIP]`, where CALL is a shim function (``Shim/Call``), ERRNO a name such as
/// `EAGAIN`, TIMES how many calls fail (every one when absent) and SKIP how many calls succeed
/// first. `natsync_writer_commit=EAGAINx1@1` lets the first commit through and fails the second
/// once.
enum KernelFaults {
    struct Fault: Equatable {
        var errno: Int32
        /// Calls still to fail; nil for every call.
        var times: Int?
        /// Calls still to let through before failing.
        var skip: Int
    }

    private static let armed = Mutex<[Shim.Call: Fault]>(fromEnvironment())

    /// The errno `call` is to fail with this time, if a fault is armed for it; counts the call.
    static func take(_ call: Shim.Call) -> Int32? {
        armed.withLock { faults in
            guard var fault = faults[call] else { return nil }
            if fault.skip > 0 {
                fault.skip -= 1
                faults[call] = fault
                return nil
            }
            if let times = fault.times {
                if times <= 1 { faults[call] = nil } else { fault.times = times - 1; faults[call] = fault }
            }
            return fault.errno
        }
    }

    /// The faults a specification asks for, or why it cannot be read.
    static func parse(_ specification: String) -> Result<[Shim.Call: Fault], ParseError> {
        var faults: [Shim.Call: Fault] = [:]
        for item in specification.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let call = Shim.Call(rawValue: String(parts[0])) else {
                return .failure(ParseError(item: String(item), reason: "expected CALL=ERRNO with CALL a natsync_ shim function"))
            }
            var rest = Substring(parts[1])
            var skip = 0
            if let at = rest.lastIndex(of: "@") {
                guard let value = Int(rest[rest.index(after: at)...]), value >= 0 else {
                    return .failure(ParseError(item: String(item), reason: "@SKIP must be a number"))
                }
                skip = value
                rest = rest[..<at]
            }
            var times: Int?
            if let x = rest.lastIndex(of: "x") {
                guard let value = Int(rest[rest.index(after: x)...]), value > 0 else {
                    return .failure(ParseError(item: String(item), reason: "xTIMES must be a positive number"))
                }
                times = value
                rest = rest[..<x]
            }
            guard let errno = Errno.value(String(rest)) else {
                return .failure(ParseError(item: String(item), reason: "unknown errno \(rest)"))
            }
            faults[call] = Fault(errno: errno, times: times, skip: skip)
        }
        return .success(faults)
    }

    struct ParseError: Error, Equatable {
        var item: String
        var reason: String
    }

    /// A debug build given a specification it cannot read stops at once: a test that meant to
    /// inject a fault must not pass because none was injected.
    private static func fromEnvironment() -> [Shim.Call: Fault] {
        guard let raw = getenv("NATSYNC_KERNEL_FAULTS") else { return [:] }
        switch parse(String(cString: raw)) {
        case .success(let faults): return faults
        case .failure(let error):
            let message = "natsync: NATSYNC_KERNEL_FAULTS: \(error.item): \(error.reason)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
    }
}
#endif
