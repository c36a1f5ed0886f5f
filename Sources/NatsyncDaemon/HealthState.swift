import Foundation
import Synchronization

/// kube-proxy's proxy health: healthy unless an update has been queued for longer than the
/// timeout (2 x the sync period) without a successful sync. A proxy with nothing queued is
/// healthy, including while it starts.
public final class HealthState: Sendable {
    struct Value {
        var lastUpdated: Date
        var oldestQueued: Date?
        /// False while the node is being deleted (deletion timestamp, or the cluster autoscaler's
        /// ToBeDeletedByClusterAutoscaler taint): `/healthz` then fails so load balancers drain it.
        var nodeEligible = true
        /// True while the manifests named at start cannot all be read: nothing has been applied,
        /// so the node is not ready.
        var waitingForInput = false
    }

    public let timeout: Duration
    private let value: Mutex<Value>
    private let now: @Sendable () -> Date

    public init(timeout: Duration, now: @escaping @Sendable () -> Date = Date.init) {
        self.timeout = timeout
        self.now = now
        self.value = Mutex(Value(lastUpdated: now()))
    }

    /// A change is waiting to be applied.
    public func queued() {
        let time = now()
        value.withLock { if $0.oldestQueued == nil { $0.oldestQueued = time } }
    }

    /// A sync succeeded.
    public func updated() {
        let time = now()
        value.withLock {
            $0.lastUpdated = time
            $0.oldestQueued = nil
        }
    }

    /// Whether the proxy waits for input it could not read at start (`/healthz` fails meanwhile;
    /// `/livez` does not, since restarting would not help).
    public func waitingForInput(_ waiting: Bool) {
        value.withLock { $0.waitingForInput = waiting }
    }

    /// Whether this node should receive load-balancer traffic.
    public func nodeEligible(_ eligible: Bool) {
        value.withLock { $0.nodeEligible = eligible }
    }

    /// The status code and JSON body of `/healthz` (with `nodeEligible`) or `/livez`.
    public func response(includeNodeEligibility: Bool) -> (status: Int, body: String) {
        let current = now()
        let (lastUpdated, queued, eligible, waiting) = value.withLock {
            ($0.lastUpdated, $0.oldestQueued, $0.nodeEligible, $0.waitingForInput)
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let healthy = queued.map { current.timeIntervalSince($0) < seconds } ?? true
        // On success kube-proxy reports lastUpdated as the current time.
        let reported = healthy ? current : lastUpdated
        var body = "{\"lastUpdated\": \(Self.goTime(reported)),\"currentTime\": \(Self.goTime(current))"
        if includeNodeEligibility { body += ", \"nodeEligible\": \(eligible)" }
        body += "}"
        let ok = healthy && (eligible && !waiting || !includeNodeEligibility)
        return (ok ? 200 : 503, body)
    }

    /// Go's `%q` of a `time.Time`: `"2026-11-27 07:50:00.123456789 +0000 UTC"`.
    static func goTime(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let nanoseconds = Int((date.timeIntervalSince1970 - Double(seconds)) * 1e9)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        var fraction = String(nanoseconds)
        fraction = String(repeating: "0", count: max(0, 9 - fraction.count)) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let date = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
        let time = "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
        return "\"\(date) \(time)\(fraction.isEmpty ? "" : "." + fraction) +0000 UTC\""
    }
}
