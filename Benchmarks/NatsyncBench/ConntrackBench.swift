import CNetfilterConntrack
import Foundation
import NatsyncConntrack
import NatsyncIPTables
import NatsyncKernel

#if canImport(Glibc)
import Glibc
import NatsyncNet
#endif

/// Conntrack cleanup on a table of `entries` UDP flows, `stale` of them pinned to a removed
/// endpoint: natsync's one dump + deletes against `conntrack -D` for the same deletions, in a
/// network namespace this benchmark creates and deletes.
enum ConntrackBench {
    static let service = IPAddress("10.96.0.10")!
    static let survivor = IPAddress("10.244.1.2")!
    static let removed = IPAddress("10.244.2.2")!

    static func run(entries: Int, stale: Int) {
        guard getuid() == 0 else {
            print("conntrack bench: skipped (needs root to create a network namespace)")
            return
        }
        let namespace = "natsync-bench-\(getpid())"
        guard shell(["ip", "netns", "add", namespace]) == 0 else {
            print("conntrack bench: skipped (cannot create a network namespace)")
            return
        }
        defer { _ = shell(["ip", "netns", "delete", namespace]) }
        do {
            try NetworkNamespace.run(in: namespace) {
                try measure(namespace: namespace, entries: entries, stale: stale)
            }
        } catch {
            print("conntrack bench: failed: \(error)")
        }
    }

    static func measure(namespace: String, entries: Int, stale: Int) throws {
        print("conntrack cleanup: \(entries) UDP flows, \(stale) of them stale (to \(service):53, reply from a removed endpoint)")
        for services in [1_000, 1] {
            print(services == 1 ? "  all flows to that one service:" : "  healthy flows spread over \(services) services:")
            try measure(namespace: namespace, entries: entries, stale: stale, services: services)
            _ = shell(["ip", "netns", "exec", namespace, "conntrack", "-F"])
        }
        try measureReconcile(entries: entries, stale: stale, services: 10_000)
        _ = shell(["ip", "netns", "exec", namespace, "conntrack", "-F"])
    }

    /// A full sync's reconcile: every UDP frontend of `services` services checked, changed or not,
    /// in one dump of the table.
    static func measureReconcile(entries: Int, stale: Int, services: Int) throws {
        var selector = StaleFlowSelector()
        for index in 0..<services {
            selector.add(.v4(0x0A60_0000 + UInt32(10 + index)), port: 53, serving: [survivor])
        }
        var times: [Double] = []
        var report = ConntrackReport()
        var rssGrowth = 0.0
        for round in 0..<3 {
            try insert(healthy: round == 0 ? entries - stale : 0, stale: stale, services: 1_000)
            let before = resetPeakResident()
            let start = ContinuousClock.now
            report = try Conntrack.deleteStaleFlows(selector)
            times.append(seconds(since: start))
            rssGrowth = max(rssGrowth, statusMegabytes("VmHWM") - before)
        }
        print("  reconcile (every full sync): every UDP frontend of \(services) services, one dump:")
        print(
            String(
                format: "    natsync: %8.1f ms, %llu flows visited, %llu deleted, peak RSS growth %.1f MB",
                median(times) * 1000, report.visited, report.deleted, rssGrowth))
    }

    static func measure(namespace: String, entries: Int, stale: Int, services: Int) throws {
        var natsyncTimes: [Double] = []
        var cliTimes: [Double] = []
        var deleted: UInt64 = 0
        var rssGrowth = 0.0
        var selector = StaleFlowSelector()
        selector.add(service, port: 53, serving: [survivor])
        for round in 0..<3 {
            try insert(healthy: round == 0 ? entries - stale : 0, stale: stale, services: services)
            let before = resetPeakResident()
            let start = ContinuousClock.now
            let report = try Conntrack.deleteStaleFlows(selector)
            natsyncTimes.append(seconds(since: start))
            rssGrowth = max(rssGrowth, statusMegabytes("VmHWM") - before)
            deleted = report.deleted

            try insert(healthy: 0, stale: stale, services: services)
            let cliStart = ContinuousClock.now
            _ = shell(
                [
                    "ip", "netns", "exec", namespace, "conntrack", "-D", "-p", "udp", "--orig-dst", "\(service)", "--reply-src",
                    "\(removed)",
                ],
                quiet: true)
            cliTimes.append(seconds(since: cliStart))
        }
        let natsync = median(natsyncTimes)
        let cli = median(cliTimes)
        print(
            String(
                format: "    natsync (filtered dump per frontend): %8.1f ms, %llu deleted, peak RSS growth %.1f MB", natsync * 1000,
                deleted, rssGrowth))
        print(String(format: "    conntrack -D --orig-dst --reply-src:  %8.1f ms", cli * 1000))
        print(String(format: "    ratio natsync / conntrack(8): %.2fx (target <= 0.5x)", natsync / cli))
    }

    /// Creates UDP flows through ctnetlink: `healthy` ones answered by the survivor (spread over
    /// many client ports and addresses) and `stale` ones answered by the removed endpoint.
    static func insert(healthy: Int, stale: Int, services: Int) throws {
        guard let handle = nfct_open(UInt8(CONNTRACK), 0) else { throw BenchError("nfct_open failed") }
        defer { nfct_close(handle) }
        guard let ct = nfct_new() else { throw BenchError("nfct_new failed") }
        defer { nfct_destroy(ct) }
        // Stale flows come from client ports the healthy ones never use, so re-inserting them works.
        for index in Array(0..<healthy) + Array(150_000..<(150_000 + stale)) {
            let isStale = index >= 150_000
            let client = IPAddress.v4(0x0A00_0000 | UInt32(index / 50_000) << 16 | 0x0302)
            let sourcePort = UInt16(10_000 + (index % 50_000))
            let endpoint = isStale ? removed : survivor
            nfct_set_attr_u8(ct, ATTR_L3PROTO, UInt8(AF_INET))
            nfct_set_attr_u8(ct, ATTR_L4PROTO, UInt8(IPPROTO_UDP))
            nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, UInt8(AF_INET))
            nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, UInt8(IPPROTO_UDP))
            nfct_set_attr_u32(ct, ATTR_IPV4_SRC, networkOrder(client))
            let destination = isStale ? service : IPAddress.v4(0x0A60_0000 + UInt32(10 + index % services))
            nfct_set_attr_u32(ct, ATTR_IPV4_DST, networkOrder(destination))
            nfct_set_attr_u16(ct, ATTR_PORT_SRC, sourcePort.bigEndian)
            nfct_set_attr_u16(ct, ATTR_PORT_DST, UInt16(53).bigEndian)
            nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, networkOrder(endpoint))
            nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, networkOrder(client))
            nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, UInt16(8080).bigEndian)
            nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, sourcePort.bigEndian)
            nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600)
            guard nfct_query(handle, NFCT_Q_CREATE, UnsafeMutableRawPointer(ct)) == 0 || errno == EEXIST else {
                throw BenchError("conntrack create failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Resets the kernel's peak-RSS mark of this process (`/proc/self/clear_refs` 5) and returns
    /// the current RSS in MB, so that the next `VmHWM` is the peak of what follows.
    static func resetPeakResident() -> Double {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        return statusMegabytes("VmRSS")
    }

    static func statusMegabytes(_ field: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
    }

    static func networkOrder(_ address: IPAddress) -> UInt32 {
        guard case .v4(let value) = address else { return 0 }
        return value.bigEndian
    }

    struct BenchError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start).inSeconds
    }

    @discardableResult
    static func shell(_ arguments: [String], quiet: Bool = true) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if quiet {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
