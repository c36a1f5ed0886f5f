import Foundation
import Logging
import NatsyncModel
import NatsyncNet
import NatsyncWire
import ServiceLifecycle
import Synchronization

/// Lists, then watches, Services and EndpointSlices: hands on the whole state after each list,
/// and each watch event's change on its own.
///
/// Follows the API's rules: resource versions, bookmarks, `410 Gone` (list again), dropped watches
/// (watch again from the last version, with backoff). Nothing is handed on before both lists
/// succeeded, and an unreachable or failing API server never empties the state: the last known
/// objects stay until the server says otherwise.
public final class KubernetesSource: ServiceLifecycle.Service, Sendable {
    let client: APIClient
    let logger: Logger
    let onState: @Sendable (ClusterState) -> Void
    let onChange: @Sendable (ClusterChange) -> Void
    let pageSize: Int
    let backoffLimit: Duration
    let nodeName: String?
    let onNodeEligibility: @Sendable (Bool) -> Void

    /// - Parameters:
    ///   - nodeName: this node, whose Node object is watched for deletion (nil: not watched).
    ///   - onNodeEligibility: called with false while this node is being deleted.
    public init(
        client: APIClient, logger: Logger, pageSize: Int = 500, backoffLimit: Duration = .seconds(30), nodeName: String? = nil,
        onNodeEligibility: @escaping @Sendable (Bool) -> Void = { _ in }, onState: @escaping @Sendable (ClusterState) -> Void,
        onChange: @escaping @Sendable (ClusterChange) -> Void
    ) {
        self.client = client
        self.logger = logger
        self.pageSize = pageSize
        self.backoffLimit = backoffLimit
        self.nodeName = nodeName
        self.onNodeEligibility = onNodeEligibility
        self.onState = onState
        self.onChange = onChange
    }

    /// The objects known so far, by kind and name.
    final class Store: Sendable {
        struct Objects {
            var services: [NamespacedName: NatsyncModel.Service] = [:]
            var slices: [NamespacedName: EndpointSlice] = [:]
            /// This node, once its watch has seen it.
            var node: Node?
        }
        let objects = Mutex(Objects())

        func replace(_ kind: APIKind, with list: [APIObject]) {
            objects.withLock { objects in
                switch kind {
                case .service:
                    objects.services = Dictionary(list.compactMap { if case .service(let s) = $0 { (s.name, s) } else { nil } }) { $1 }
                case .endpointSlice:
                    objects.slices = Dictionary(list.compactMap { if case .endpointSlice(let s) = $0 { (s.name, s) } else { nil } }) { $1 }
                }
            }
        }

        /// Stores a watch event's object of `kind` and hands on its change, if it is one.
        /// Hand-overs happen under the store's lock, so the proxier sees changes and states in the
        /// order the store did, whichever watch delivered them.
        ///
        /// An object that is no longer natsync's (another proxy's label, a slice without its
        /// service) leaves the store; an invalid update keeps the last valid version, as an invalid
        /// manifest object is skipped, but an invalid object's deletion deletes it.
        func apply(_ object: APIObject, kind: APIKind, deleted: Bool, handOn: (ClusterChange) -> Void) {
            objects.withLock { objects in
                let change: ClusterChange?
                switch object {
                case .service(let service):
                    let new = deleted ? nil : service
                    change = objects.services[service.name] == new ? nil : .service(service.name, new)
                    objects.services[service.name] = new
                case .endpointSlice(let slice):
                    let new = deleted ? nil : slice
                    change = objects.slices[slice.name] == new ? nil : .endpointSlice(slice.name, new)
                    objects.slices[slice.name] = new
                case .ignored(let name),
                    .invalid(let name?, _) where deleted:
                    switch kind {
                    case .service: change = objects.services.removeValue(forKey: name) == nil ? nil : .service(name, nil)
                    case .endpointSlice: change = objects.slices.removeValue(forKey: name) == nil ? nil : .endpointSlice(name, nil)
                    }
                case .invalid:
                    change = nil
                }
                if let change { handOn(change) }
            }
        }

        /// Takes this node's latest version (nil: deleted) and hands on the change, if it is one.
        func apply(node: Node?, named name: String, handOn: (ClusterChange) -> Void) {
            objects.withLock { objects in
                guard objects.node != node else { return }
                objects.node = node
                handOn(.node(name, node))
            }
        }

        /// Hands on everything known, under the lock like ``apply(_:kind:deleted:handOn:)``.
        func handOnState(_ handOn: (ClusterState) -> Void) {
            objects.withLock {
                handOn(
                    ClusterState(
                        services: Array($0.services.values), endpointSlices: Array($0.slices.values), nodes: $0.node.map { [$0] } ?? []))
            }
        }
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown { try await self.follow() }
        await client.shutdown()
    }

    private func follow() async throws {
        let store = Store()
        var versions: [APIKind: String] = [:]
        let started = ContinuousClock.now
        for kind in APIKind.allCases {
            versions[kind] = try await retrying("list \(kind.rawValue)s") { try await self.list(kind, into: store, fromCache: true) }
        }
        let counts = store.objects.withLock { ($0.services.count, $0.slices.count) }
        logger.info(
            "initial lists done",
            metadata: ["services": "\(counts.0)", "endpointslices": "\(counts.1)", "elapsed": "\(ContinuousClock.now - started)"])
        store.handOnState(onState)
        try await withThrowingDiscardingTaskGroup { group in
            for kind in APIKind.allCases {
                let version = versions[kind]!
                group.addTask { try await self.watch(kind, from: version, into: store) }
            }
            if let nodeName {
                group.addTask { try await self.watchNode(nodeName, into: store) }
            }
        }
    }

    /// Follows this node's Node object: being deleted, or tainted by the cluster autoscaler for
    /// deletion, makes it ineligible for load-balancer traffic; its zone label is handed on for
    /// topology hints.
    func watchNode(_ name: String, into store: Store) async throws {
        let selector = "fieldSelector=metadata.name%3D\(name)"
        var backoff = Backoff(limit: backoffLimit)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            var events = 0
            do {
                let list = try JSONSerialization.jsonObject(with: try await client.get("/api/v1/nodes?\(selector)")) as? [String: Any]
                let items = (list?["items"] as? [[String: Any]]) ?? []
                if let node = items.first(where: { (($0["metadata"] as? [String: Any])?["name"] as? String) == name }) {
                    onNodeEligibility(Self.eligible(node))
                    store.apply(node: Self.node(node, name), named: name, handOn: onChange)
                }
                let version = ((list?["metadata"] as? [String: Any])?["resourceVersion"] as? String) ?? ""
                for try await line in try await client.lines(
                    "/api/v1/nodes?watch=1&allowWatchBookmarks=true&\(selector)&resourceVersion=\(version)&timeoutSeconds=\(Int.random(in: 300...600))"
                ) {
                    events += 1
                    guard let event = try JSONSerialization.jsonObject(with: line) as? [String: Any],
                        let object = event["object"] as? [String: Any]
                    else { continue }
                    switch event["type"] as? String {
                    case "ADDED", "MODIFIED":
                        if ((object["metadata"] as? [String: Any])?["name"] as? String) == name {
                            onNodeEligibility(Self.eligible(object))
                            store.apply(node: Self.node(object, name), named: name, handOn: onChange)
                        }
                    case "ERROR":
                        throw APIClient.StatusError(status: (object["code"] as? Int) ?? 0, message: "node watch ended")
                    default:
                        break
                    }
                }
                if events == 0 && ContinuousClock.now - started < .seconds(1) { throw VeryShortWatch() }
            } catch is CancellationError {
                return
            } catch {
                try await Task.sleep(for: backoff.next(retryAfter: (error as? APIClient.StatusError)?.retryAfter))
            }
        }
    }

    static func node(_ object: [String: Any], _ name: String) -> Node {
        let labels = (object["metadata"] as? [String: Any])?["labels"] as? [String: Any]
        let spec = object["spec"] as? [String: Any]
        let texts = (spec?["podCIDRs"] as? [String]) ?? (spec?["podCIDR"] as? String).map { [$0] } ?? []
        return Node(name: name, zone: labels?[Node.zoneLabel] as? String, podCIDRs: texts.compactMap { CIDR($0) })
    }

    static func eligible(_ node: [String: Any]) -> Bool {
        let metadata = node["metadata"] as? [String: Any]
        if metadata?["deletionTimestamp"] is String { return false }
        let taints = ((node["spec"] as? [String: Any])?["taints"] as? [[String: Any]]) ?? []
        return !taints.contains { ($0["key"] as? String) == "ToBeDeletedByClusterAutoscaler" }
    }

    /// Lists every page of `kind` and replaces it in the store; returns the list's resource version.
    /// The first list of a run asks for `resourceVersion=0`, served from the API server's watch
    /// cache as client-go's reflector does (a node's start, or every node's at once after an API
    /// server restart, then costs the server no etcd read); relists after `410` ask for the latest.
    func list(_ kind: APIKind, into store: Store, fromCache: Bool = false) async throws -> String {
        var objects: [APIObject] = []
        var token: String?
        var version = ""
        repeat {
            var query = "\(kind.path)?limit=\(pageSize)&\(Self.selector)"
            if fromCache && token == nil { query += "&resourceVersion=0" }
            if let token { query += "&continue=\(token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token)" }
            let page = try APIDecoder.list(try await client.get(query, rateLimited: token == nil), kind: kind)
            objects += page.objects
            token = page.continueToken
            version = page.resourceVersion
        } while token != nil
        for case .invalid(_, let diagnostic) in objects {
            logger.warning("invalid object skipped", metadata: ["reason": "\(diagnostic)"])
        }
        store.replace(kind, with: objects)
        return version
    }

    /// kube-proxy's selector: the objects of other proxies are never sent (``OtherProxies``).
    static let selector =
        "labelSelector="
        + (OtherProxies.labelSelector.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", ".", "_"])) ?? "")

    struct Gone: Error {}

    /// Watches `kind` forever: events update the store, 410 relists, errors back off and resume.
    func watch(_ kind: APIKind, from start: String, into store: Store) async throws {
        var version = start
        var backoff = Backoff(limit: backoffLimit)
        while !Task.isCancelled {
            let started = ContinuousClock.now
            var events = 0
            do {
                // Between 5 and 10 minutes, as client-go's reflector: nodes do not all reconnect at once.
                let query =
                    "\(kind.path)?watch=1&allowWatchBookmarks=true&\(Self.selector)&resourceVersion=\(version)&timeoutSeconds=\(Int.random(in: 300...600))"
                for try await line in try await client.lines(query) {
                    events += 1
                    let event = try APIDecoder.event(line, kind: kind)
                    switch event {
                    case .added(let object, let rv), .modified(let object, let rv):
                        if case .invalid(_, let diagnostic) = object {
                            logger.warning("invalid object skipped", metadata: ["reason": "\(diagnostic)"])
                        }
                        if let rv { version = rv }
                        store.apply(object, kind: kind, deleted: false, handOn: onChange)
                    case .deleted(let object, let rv):
                        if let rv { version = rv }
                        store.apply(object, kind: kind, deleted: true, handOn: onChange)
                    case .bookmark(let rv):
                        version = rv
                    case .error(410, _):
                        throw Gone()
                    case .error(let code, let message):
                        throw APIClient.StatusError(status: code, message: message)
                    }
                }
                // A watch that ends at once with nothing in it is a server in trouble, not a
                // timeout (client-go's "very short watch"): back off rather than ask again at once.
                if events == 0 && ContinuousClock.now - started < .seconds(1) { throw VeryShortWatch() }
            } catch is Gone {
                logger.info("watch expired (410 Gone); listing again", metadata: ["kind": "\(kind.rawValue)"])
                version = try await relist(kind, into: store)
            } catch let error as APIClient.StatusError where error.status == 410 {
                version = try await relist(kind, into: store)
            } catch is CancellationError {
                return
            } catch {
                // A watch that had been working resumes at once; one that fails again backs off.
                let wait = events > 0 ? .zero : backoff.next(retryAfter: (error as? APIClient.StatusError)?.retryAfter)
                logger.warning(
                    "watch interrupted; resuming after backoff",
                    metadata: ["kind": "\(kind.rawValue)", "error": "\(error)", "backoff": "\(wait)"])
                if wait > .zero { try await Task.sleep(for: wait) }
            }
        }
    }

    /// Lists `kind` again after its watch expired and hands on the whole state: the proxier
    /// compares it with what it has, so a relist that brings nothing new syncs nothing.
    func relist(_ kind: APIKind, into store: Store) async throws -> String {
        let started = ContinuousClock.now
        let version = try await retrying("list \(kind.rawValue)s") { try await self.list(kind, into: store) }
        let count = store.objects.withLock { kind == .service ? $0.services.count : $0.slices.count }
        logger.info(
            "listed again", metadata: ["kind": "\(kind.rawValue)", "objects": "\(count)", "elapsed": "\(ContinuousClock.now - started)"])
        store.handOnState(onState)
        return version
    }

    struct VeryShortWatch: Error, CustomStringConvertible {
        var description: String { "the watch closed at once with no event" }
    }

    /// Runs `body` until it succeeds, backing off between failures (the server may be down).
    func retrying<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var backoff = Backoff(limit: backoffLimit)
        while true {
            do {
                return try await body()
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let wait = backoff.next(retryAfter: (error as? APIClient.StatusError)?.retryAfter)
                logger.warning("\(what) failed; retrying", metadata: ["error": "\(error)", "backoff": "\(wait)"])
                try await Task.sleep(for: wait)
            }
        }
    }
}

/// client-go's backoff for its reflector: 0.8 s doubling up to the limit (30 s), each wait
/// stretched by a random factor between 1 and 2 (jitter 1.0), so a thousand nodes that lost the
/// same API server do not come back in step; never sooner than the server's `Retry-After`. As
/// client-go's backoff manager, it starts over only after two minutes without a failure: an
/// attempt that fails slowly (a connect that times out) does not reset it.
struct Backoff {
    static let initial: Duration = .milliseconds(800)
    static let resetAfter: Duration = .seconds(120)
    let limit: Duration
    private var step: Duration = .zero
    private var lastFailure: ContinuousClock.Instant?

    init(limit: Duration) { self.limit = limit }

    mutating func next(retryAfter: Duration? = nil, now: ContinuousClock.Instant = .now) -> Duration {
        if let lastFailure, now - lastFailure > Self.resetAfter { step = .zero }
        lastFailure = now
        step = step == .zero ? Self.initial : min(step * 2, limit)
        return max(step * Double.random(in: 1..<2), retryAfter ?? .zero)
    }
}
