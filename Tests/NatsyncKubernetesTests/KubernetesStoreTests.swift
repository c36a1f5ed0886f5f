import Foundation
import NatsyncManifest
import NatsyncModel
import NatsyncWire
import Testing

@testable import NatsyncKubernetes

/// Watch events reaching the store: what natsync holds afterwards, and what it hands on.
struct KubernetesStoreTests {
    static func service(_ name: String, clusterIP: String, labels: String = "") -> APIObject {
        let json = """
            {"metadata": {"name": "\(name)", "namespace": "default"\(labels.isEmpty ? "" : ", \"labels\": {\(labels)}")},
             "spec": {"clusterIP": "\(clusterIP)", "ports": [{"port": 80}]}}
            """
        return APIDecoder.object(Data(json.utf8), kind: .service)
    }

    static func slice(_ name: String, service: String, labels: String = "") -> APIObject {
        let json = """
            {"metadata": {"name": "\(name)", "namespace": "default",
                          "labels": {"kubernetes.io/service-name": "\(service)"\(labels.isEmpty ? "" : ", \(labels)")}},
             "addressType": "IPv4", "ports": [{"port": 8080}], "endpoints": [{"addresses": ["10.0.0.1"]}]}
            """
        return APIDecoder.object(Data(json.utf8), kind: .endpointSlice)
    }

    /// Applies an event, returning the changes handed on.
    static func apply(_ store: KubernetesSource.Store, _ object: APIObject, _ kind: APIKind, deleted: Bool = false) -> [ClusterChange] {
        var changes: [ClusterChange] = []
        store.apply(object, kind: kind, deleted: deleted) { changes.append($0) }
        return changes
    }

    static func names(_ store: KubernetesSource.Store) -> (services: [String], slices: [String]) {
        store.objects.withLock { ($0.services.keys.map(\.name).sorted(), $0.slices.keys.map(\.name).sorted()) }
    }

    @Test func anInvalidUpdateKeepsTheLastValidVersionAndItsDeletionDeletesIt() {
        let store = KubernetesSource.Store()
        #expect(Self.apply(store, Self.service("web", clusterIP: "10.96.0.5"), .service).count == 1)
        let invalid = Self.service("web", clusterIP: "999.1.1.1")
        guard case .invalid = invalid else {
            Issue.record("expected an invalid object: \(invalid)")
            return
        }
        #expect(Self.apply(store, invalid, .service).isEmpty)
        #expect(Self.names(store).services == ["web"])
        let deleted = Self.apply(store, invalid, .service, deleted: true)
        #expect(Self.names(store).services == [])
        guard case .service(let name, nil)? = deleted.first, deleted.count == 1 else {
            Issue.record("expected the service's deletion handed on: \(deleted)")
            return
        }
        #expect(name == NamespacedName(namespace: "default", name: "web"))
    }

    @Test func anInvalidSliceDeletedRemovesTheSliceNotAServiceOfTheSameName() {
        let store = KubernetesSource.Store()
        _ = Self.apply(store, Self.service("web", clusterIP: "10.96.0.5"), .service)
        _ = Self.apply(store, Self.slice("web", service: "web"), .endpointSlice)
        let invalid = APIDecoder.object(
            Data(#"{"metadata": {"name": "web", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}}}"#.utf8),
            kind: .endpointSlice)
        _ = Self.apply(store, invalid, .endpointSlice, deleted: true)
        #expect(Self.names(store).services == ["web"])
        #expect(Self.names(store).slices == [])
    }

    /// A label that gives the object to another proxy takes it from natsync, even when the
    /// server did not apply the selector; taking the label off gives it back.
    @Test func anObjectLabelledForAnotherProxyLeavesTheStore() {
        let store = KubernetesSource.Store()
        _ = Self.apply(store, Self.service("web", clusterIP: "10.96.0.5"), .service)
        _ = Self.apply(store, Self.slice("web-1", service: "web"), .endpointSlice)
        let labelled = Self.service("web", clusterIP: "10.96.0.5", labels: #""service.kubernetes.io/service-proxy-name": """#)
        #expect(Self.apply(store, labelled, .service).count == 1)
        let headless = Self.slice("web-1", service: "web", labels: #""service.kubernetes.io/headless": """#)
        #expect(Self.apply(store, headless, .endpointSlice).count == 1)
        #expect(Self.names(store).services == [] && Self.names(store).slices == [])
        _ = Self.apply(store, Self.service("web", clusterIP: "10.96.0.5"), .service)
        #expect(Self.names(store).services == ["web"])
    }

    @Test func listsAndWatchesAskForKubeProxysSelector() {
        #expect(
            KubernetesSource.selector
                == "labelSelector=%21service.kubernetes.io%2Fservice-proxy-name%2C%21service.kubernetes.io%2Fheadless")
    }
}

/// client-go's reflector backoff: 0.8 s doubling to the limit, jittered up to 2x, never under
/// the server's Retry-After, back to the start only after two minutes without a failure.
struct BackoffTests {
    @Test func growsWithJitterToItsLimitAndHonoursRetryAfter() {
        var backoff = Backoff(limit: .seconds(30))
        var previousStep = Duration.milliseconds(400)
        var now = ContinuousClock.now
        for _ in 0..<8 {
            // Attempts that each took 10 s to fail (a connect timing out) still back off further.
            now += .seconds(10)
            let wait = backoff.next(now: now)
            let step = min(previousStep * 2, .seconds(30))
            #expect(wait >= step && wait < step * 2, "\(wait) for a step of \(step)")
            previousStep = step
        }
        #expect(backoff.next(retryAfter: .seconds(120), now: now) == .seconds(120))
        let first = backoff.next(now: now + .seconds(121))
        #expect(first >= .milliseconds(800) && first < .milliseconds(1600), "two quiet minutes start it over")
    }
}

/// client-go's token bucket: `burst` requests at once, then `qps` a second.
struct RequestRateLimitTests {
    @Test func aBurstGoesAtOnceThenRequestsAreSpacedByTheRate() {
        let start = ContinuousClock.now
        let limit = RequestRateLimit(qps: 5, burst: 10, now: start)
        for _ in 0..<10 { #expect(limit.reserve(now: start) == .zero) }
        #expect(limit.reserve(now: start) == .milliseconds(200))
        #expect(limit.reserve(now: start) == .milliseconds(400), "each waiting request queues behind the last")
        #expect(limit.reserve(now: start + .seconds(10)) == .zero, "the bucket refills, up to the burst")
        #expect(RequestRateLimit(qps: -1, burst: 1, now: start).reserve(now: start) == .zero)
    }
}
