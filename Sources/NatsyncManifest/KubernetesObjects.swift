/// The wire form of the Kubernetes objects natsync reads: only the fields that matter, all
/// optional, so that validation (not decoding) decides what is missing.
struct ObjectMeta: Decodable {
    var name: String?
    var namespace: String?
    var labels: [String: String]?
    var resourceVersion: String?
    var annotations: [String: String]?
}

/// An `int-or-string` field such as `targetPort`.
enum IntOrString: Decodable {
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

struct ServiceObject: Decodable {
    struct Spec: Decodable {
        struct Port: Decodable {
            var name: String?
            var `protocol`: String?
            var port: Int?
            var targetPort: IntOrString?
            var nodePort: Int?
        }

        struct AffinityConfig: Decodable {
            struct ClientIP: Decodable { var timeoutSeconds: Int? }
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

    struct Status: Decodable {
        struct LoadBalancer: Decodable {
            struct Ingress: Decodable {
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

struct EndpointSliceObject: Decodable {
    struct Port: Decodable {
        var name: String?
        var `protocol`: String?
        var port: Int?
    }

    struct Endpoint: Decodable {
        struct Conditions: Decodable {
            var ready: Bool?
            var serving: Bool?
            var terminating: Bool?
        }
        var addresses: [String]?
        var conditions: Conditions?
        var nodeName: String?
    }

    var metadata: ObjectMeta?
    var addressType: String?
    var ports: [Port]?
    var endpoints: [Endpoint]?
}

/// Legacy `v1 Endpoints`, converted to slices on load.
struct EndpointsObject: Decodable {
    struct Subset: Decodable {
        struct Address: Decodable {
            var ip: String?
            var nodeName: String?
        }
        struct Port: Decodable {
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
