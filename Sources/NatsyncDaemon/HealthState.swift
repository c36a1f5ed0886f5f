import Foundation
import NatsyncNet
import Synchronization

/// kube-proxy's proxy health, per family as since kube-proxy 1.33: a family is healthy unless an
/// update has been queued for it for longer than the timeout (2 x the sync period) without a
/// successful sync; the proxy is healthy when every family is. A family with nothing queued is
/// healthy, including while it starts.
public final class HealthState: Sendable {
    struct Family {
        /// The last successful sync; the start until there is one, so a family that never syncs
        /// turns unhealthy once an update waits too long.
        var lastUpdated: Date
        var synced = false
        var oldestQueued: Date?
    }

    struct Value {
        var families: [IPFamily: Family]
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

    public init(families: [IPFamily], timeout: Duration, now: @escaping @Sendable () -> Date = Date.init) {
        self.timeout = timeout
        self.now = now
        let start = now()
        self.value = Mutex(Value(families: Dictionary(uniqueKeysWithValues: families.map { ($0, Family(lastUpdated: start)) })))
    }

    /// A change is waiting to be applied to `family`'s tables.
    public func queued(_ family: IPFamily) {
        let time = now()
        value.withLock { if $0.families[family]?.oldestQueued == nil { $0.families[family]?.oldestQueued = time } }
    }

    /// A sync of `family` succeeded.
    public func updated(_ family: IPFamily) {
        let time = now()
        value.withLock { $0.families[family] = Family(lastUpdated: time, synced: true) }
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

    /// Whether every family's updates are applied in time.
    public var proxyHealthy: Bool {
        let current = now()
        return value.withLock { $0.families.values.allSatisfy { healthy($0, at: current) } }
    }

    private func healthy(_ family: Family, at time: Date) -> Bool {
        family.oldestQueued.map { time.timeIntervalSince($0) < timeout / .seconds(1) } ?? true
    }

    /// The status code and body of `/healthz` (with `nodeEligible`) or `/livez`: kube-proxy's JSON,
    /// field for field (`lastUpdated` is the latest sync of any family, or the current time while
    /// healthy, as kube-proxy keeps it for older readers; `status` has the families that synced).
    /// `waitingForInput` is natsync's: present, and true, while unread input fails `/healthz`.
    public func response(includeNodeEligibility: Bool) -> (status: Int, body: String) {
        let current = now()
        let state = value.withLock { $0 }
        var healthy = true
        var status: [String] = []
        for (family, entry) in state.families.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let familyHealthy = self.healthy(entry, at: current)
            healthy = healthy && familyHealthy
            if entry.synced {
                status.append("\"\(family.rawValue)\":{\"lastUpdated\":\(Self.goJSONTime(entry.lastUpdated)),\"healthy\":\(familyHealthy)}")
            }
        }
        let ok = healthy && (!includeNodeEligibility || state.nodeEligible && !state.waitingForInput)
        let latest = state.families.values.filter(\.synced).map(\.lastUpdated).max()
        var body = "{\"lastUpdated\":\(ok ? Self.goJSONTime(current) : latest.map(Self.goJSONTime) ?? "\"0001-01-01T00:00:00Z\"")"
        body += ",\"currentTime\":\(Self.goJSONTime(current))"
        if includeNodeEligibility { body += ",\"nodeEligible\":\(state.nodeEligible)" }
        body += ",\"healthy\":\(healthy)"
        if !status.isEmpty { body += ",\"status\":{\(status.joined(separator: ","))}" }
        // natsync's own field, there only while it says why /healthz fails.
        if includeNodeEligibility && state.waitingForInput { body += ",\"waitingForInput\":true" }
        body += "}"
        return (ok ? 200 : 503, body)
    }

    /// Go's JSON of a UTC `time.Time` (RFC 3339 with nanoseconds, trailing zeros dropped):
    /// `"2026-11-27T07:50:00.123456789Z"`.
    static func goJSONTime(_ date: Date) -> String {
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
        return "\"\(date)T\(time)\(fraction.isEmpty ? "" : "." + fraction)Z\""
    }
}
