import Synchronization

/// client-go's client-side rate limit (kube-proxy's `--kube-api-qps` 5 and `--kube-api-burst`
/// 10): a token bucket, `burst` deep, refilled at `qps` a second. Each request takes a token,
/// waiting for one when the bucket is empty, so a burst of relists cannot flood the API server.
final class RequestRateLimit: Sendable {
    let qps: Double
    let burst: Double
    private let state: Mutex<(tokens: Double, at: ContinuousClock.Instant)>

    /// A `qps` of 0 or less means no limit, as client-go reads a negative QPS.
    init(qps: Double, burst: Int, now: ContinuousClock.Instant = .now) {
        self.qps = qps
        self.burst = Double(max(burst, 1))
        state = Mutex((Double(max(burst, 1)), now))
    }

    /// Takes a token; returns how long to wait before the request may go.
    func reserve(now: ContinuousClock.Instant = .now) -> Duration {
        guard qps > 0 else { return .zero }
        return state.withLock { bucket in
            let elapsed = now - bucket.at
            let refill = elapsed / .seconds(1) * qps
            bucket.tokens = min(burst, bucket.tokens + refill) - 1
            bucket.at = now
            return bucket.tokens >= 0 ? .zero : .seconds(-bucket.tokens / qps)
        }
    }

    func acquire() async throws {
        let wait = reserve()
        if wait > .zero { try await Task.sleep(for: wait) }
    }
}
