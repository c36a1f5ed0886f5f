#if canImport(Glibc)
import Glibc
#endif

/// The kernel settings kube-proxy makes at start (`cmd/kube-proxy/app/conntrack.go`, the
/// iptables proxier's `route_localnet`), made the same way: a value is written only when it
/// differs, and one that cannot be written (read-only inside a network namespace, `/proc/sys`
/// mounted read-only) is reported, not a failure.
public struct HostSettings: Sendable, Equatable {
    /// `nf_conntrack_max`: `--conntrack-max-per-core` times the CPUs, at least `--conntrack-min`
    /// (nil: left alone, as a max-per-core of 0 says).
    public var conntrackMax: Int?
    public var tcpEstablishedTimeout: Int?
    public var tcpCloseWaitTimeout: Int?
    public var tcpBeLiberal = false
    public var udpTimeout: Int?
    public var udpStreamTimeout: Int?
    /// `net.ipv4.conf.all.route_localnet=1`, which NodePorts on 127.0.0.1 need.
    public var routeLocalnet = false
    /// Raise the conntrack hash table to a quarter of ``conntrackMax`` when it is smaller, as
    /// kube-proxy does. The hash size is one for the whole host (a module parameter), so natsync
    /// changes it only when it programs the host's own namespace.
    public var raiseHashsize = false
    /// The process's `oom_score_adj` (kube-proxy's `--oom-score-adj`, -999 by default, so the
    /// OOM killer takes the node's rules keeper last); nil: left alone, as for one-shot commands.
    /// Written by ``applyToProcess()``, outside any network namespace.
    public var oomScoreAdj: Int?

    public init() {}

    /// kube-proxy's `getConntrackMax`: the scaled value when it is above the floor, else the floor.
    public static func conntrackMax(perCore: Int, minimum: Int, cpus: Int) -> Int? {
        guard perCore > 0 else { return nil }
        return max(perCore * cpus, minimum)
    }

    /// What applying one setting did.
    public struct Outcome: Sendable, Equatable, CustomStringConvertible {
        public enum Result: Sendable, Equatable {
            case set(from: Int)
            case unchanged
            case failed(String)
        }

        public var name: String
        public var value: Int
        public var result: Result

        public var description: String {
            switch result {
            case .set(let old): "\(name) = \(value) (was \(old))"
            case .unchanged: "\(name) = \(value) (already)"
            case .failed(let reason): "\(name) = \(value) not set: \(reason)"
            }
        }
    }

    /// The sysctls to write, by `/proc/sys` path, in kube-proxy's order.
    var wanted: [(path: String, value: Int)] {
        var out: [(String, Int)] = []
        if let conntrackMax { out.append(("net/netfilter/nf_conntrack_max", conntrackMax)) }
        if let tcpEstablishedTimeout, tcpEstablishedTimeout > 0 {
            out.append(("net/netfilter/nf_conntrack_tcp_timeout_established", tcpEstablishedTimeout))
        }
        if let tcpCloseWaitTimeout, tcpCloseWaitTimeout > 0 {
            out.append(("net/netfilter/nf_conntrack_tcp_timeout_close_wait", tcpCloseWaitTimeout))
        }
        if tcpBeLiberal { out.append(("net/netfilter/nf_conntrack_tcp_be_liberal", 1)) }
        if let udpTimeout, udpTimeout > 0 { out.append(("net/netfilter/nf_conntrack_udp_timeout", udpTimeout)) }
        if let udpStreamTimeout, udpStreamTimeout > 0 { out.append(("net/netfilter/nf_conntrack_udp_timeout_stream", udpStreamTimeout)) }
        if routeLocalnet { out.append(("net/ipv4/conf/all/route_localnet", 1)) }
        return out
    }

    /// Writes the settings in the calling thread's network namespace (`/proc/sys/net` follows
    /// the thread that opens it, so this runs inside ``NetworkNamespace/run(in:_:)``).
    public func apply() -> [Outcome] {
        var outcomes: [Outcome] = []
        if raiseHashsize, let conntrackMax {
            let path = "/sys/module/nf_conntrack/parameters/hashsize"
            let size = (conntrackMax + 3) / 4
            if let current = Self.read(path) {
                let result: Outcome.Result =
                    current >= size ? .unchanged : Self.write(path, size) ? .set(from: current) : .failed(Self.lastError())
                outcomes.append(Outcome(name: "nf_conntrack hashsize", value: max(current, size), result: result))
            } else {
                outcomes.append(Outcome(name: "nf_conntrack hashsize", value: size, result: .failed(Self.lastError())))
            }
        }
        return outcomes
            + wanted.map { path, value in
                let name = path.replacingSlashes()
                let full = "/proc/sys/" + path
                guard let current = Self.read(full) else {
                    return Outcome(name: name, value: value, result: .failed(Self.lastError()))
                }
                guard current != value else { return Outcome(name: name, value: value, result: .unchanged) }
                guard Self.write(full, value) else { return Outcome(name: name, value: value, result: .failed(Self.lastError())) }
                return Outcome(name: name, value: value, result: .set(from: current))
            }
    }

    /// The name `applyToProcess` reports the process's OOM score under.
    public static let oomScoreAdjName = "oom_score_adj"

    /// Writes the process's own settings. Call it from a thread that has not entered another
    /// network namespace: the kernel refuses `/proc/self/oom_score_adj` to such a thread.
    public func applyToProcess() -> [Outcome] {
        guard let oomScoreAdj else { return [] }
        let path = "/proc/self/oom_score_adj"
        let result: Outcome.Result =
            if let current = Self.read(path) {
                current == oomScoreAdj ? .unchanged : Self.write(path, oomScoreAdj) ? .set(from: current) : .failed(Self.lastError())
            } else {
                .failed(Self.lastError())
            }
        return [Outcome(name: Self.oomScoreAdjName, value: oomScoreAdj, result: result)]
    }

    static func read(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[..<count], as: UTF8.self).filter { !$0.isWhitespace })
    }

    static func write(_ path: String, _ value: Int) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let text = Array("\(value)\n".utf8)
        return text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) } == text.count
    }

    private static func lastError() -> String {
        let text = String(cString: strerror(errno))
        return text.prefix(1).lowercased() + text.dropFirst()
    }
}

extension String {
    /// `net/ipv4/conf/all/route_localnet` as sysctl names it: `net.ipv4.conf.all.route_localnet`.
    fileprivate func replacingSlashes() -> String {
        String(map { $0 == "/" ? "." : $0 })
    }
}
