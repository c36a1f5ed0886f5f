/// The wire form of the Kubernetes objects natsync reads: only the fields that matter, all
/// optional, so that validation (not decoding) decides what is missing.
struct ObjectMeta: Decodable, Equatable {
    var name: String?
    var namespace: String?
    var labels: [String: String]?
    var resourceVersion: String?
    var annotations: [String: String]?
}

/// An `int-or-string` field such as `targetPort`.
enum IntOrString: Decodable, Equatable {
    case int(Int)
    case string(String)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }
}

struct ServiceObject: Decodable, Equatable {
    struct Spec: Decodable, Equatable {
        struct Port: Decodable, Equatable {
            var name: String?
            var `protocol`: String?
            var port: Int?
            var targetPort: IntOrString?
            var nodePort: Int?
        }

        struct AffinityConfig: Decodable, Equatable {
            struct ClientIP: Decodable, Equatable { var timeoutSeconds: Int? }
            var clientIP: ClientIP?
        }

        var type: String?
        var clusterIP: String?
        var clusterIPs: [String]?
        var ports: [Port]?
        var externalIPs: [String]?
        var loadBalancerSourceRanges: [String]?
        var sessionAffinity: String?
        var sessionAffinityConfig: AffinityConfig?
        var externalTrafficPolicy: String?
        var internalTrafficPolicy: String?
        var healthCheckNodePort: Int?
        var externalName: String?
    }

    struct Status: Decodable, Equatable {
        struct LoadBalancer: Decodable, Equatable {
            struct Ingress: Decodable, Equatable {
                var ip: String?
                var hostname: String?
                var ipMode: String?
            }
            var ingress: [Ingress]?
        }
        var loadBalancer: LoadBalancer?
    }

    var metadata: ObjectMeta?
    var spec: Spec?
    var status: Status?
}

struct EndpointSliceObject: Decodable, Equatable {
    struct Port: Decodable, Equatable {
        var name: String?
        var `protocol`: String?
        var port: Int?
    }

    struct Endpoint: Decodable, Equatable {
        struct Conditions: Decodable, Equatable {
            var ready: Bool?
            var serving: Bool?
            var terminating: Bool?
        }
        /// Topology hints the EndpointSlice controller writes: the zones and nodes that should
        /// use this endpoint.
        struct Hints: Decodable, Equatable {
            struct Name: Decodable, Equatable { var name: String? }
            var forZones: [Name]?
            var forNodes: [Name]?
        }
        var addresses: [String]?
        var conditions: Conditions?
        var nodeName: String?
        var hints: Hints?
    }

    var metadata: ObjectMeta?
    var addressType: String?
    var ports: [Port]?
    var endpoints: [Endpoint]?
}

/// Legacy `v1 Endpoints`, converted to slices on load.
struct EndpointsObject: Decodable, Equatable {
    struct Subset: Decodable, Equatable {
        struct Address: Decodable, Equatable {
            var ip: String?
            var nodeName: String?
        }
        struct Port: Decodable, Equatable {
            var name: String?
            var `protocol`: String?
            var port: Int?
        }
        var addresses: [Address]?
        var notReadyAddresses: [Address]?
        var ports: [Port]?
    }

    var metadata: ObjectMeta?
    var subsets: [Subset]?
}

/// `v1 Node`: its name, its zone label (topology hints) and its pod CIDRs (NodeCIDR detection).
struct NodeObject: Decodable, Equatable {
    struct Spec: Decodable, Equatable {
        var podCIDR: String?
        var podCIDRs: [String]?
    }
    var metadata: ObjectMeta?
    var spec: Spec?
}
