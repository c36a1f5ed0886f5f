/// The wire form of the Kubernetes objects natsync reads: only the fields that matter, all
/// optional, so that validation (not decoding) decides what is missing.
package struct ObjectMeta: Decodable, Equatable {
    package var name: String?
    package var namespace: String?
    package var labels: [String: String]?
    package var resourceVersion: String?
    package var annotations: [String: String]?
}

/// An `int-or-string` field such as `targetPort`.
package enum IntOrString: Decodable, Equatable {
    case int(Int)
    case string(String)

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }
}

package struct ServiceObject: Decodable, Equatable {
    package struct Spec: Decodable, Equatable {
        package struct Port: Decodable, Equatable {
            package var name: String?
            package var `protocol`: String?
            package var port: Int?
            package var targetPort: IntOrString?
            package var nodePort: Int?
        }

        package struct AffinityConfig: Decodable, Equatable {
            package struct ClientIP: Decodable, Equatable { var timeoutSeconds: Int? }
            package var clientIP: ClientIP?
        }

        package var type: String?
        package var clusterIP: String?
        package var clusterIPs: [String]?
        package var ports: [Port]?
        package var externalIPs: [String]?
        package var loadBalancerSourceRanges: [String]?
        package var sessionAffinity: String?
        package var sessionAffinityConfig: AffinityConfig?
        package var externalTrafficPolicy: String?
        package var internalTrafficPolicy: String?
        package var healthCheckNodePort: Int?
        package var externalName: String?
    }

    package struct Status: Decodable, Equatable {
        package struct LoadBalancer: Decodable, Equatable {
            package struct Ingress: Decodable, Equatable {
                package var ip: String?
                package var hostname: String?
                package var ipMode: String?
            }
            package var ingress: [Ingress]?
        }
        package var loadBalancer: LoadBalancer?
    }

    package var metadata: ObjectMeta?
    package var spec: Spec?
    package var status: Status?
}

package struct EndpointSliceObject: Decodable, Equatable {
    package struct Port: Decodable, Equatable {
        package var name: String?
        package var `protocol`: String?
        package var port: Int?
    }

    package struct Endpoint: Decodable, Equatable {
        package struct Conditions: Decodable, Equatable {
            package var ready: Bool?
            package var serving: Bool?
            package var terminating: Bool?
        }
        /// Topology hints the EndpointSlice controller writes: the zones and nodes that should
        /// use this endpoint.
        package struct Hints: Decodable, Equatable {
            package struct Name: Decodable, Equatable { package var name: String? }
            package var forZones: [Name]?
            package var forNodes: [Name]?
        }
        package var addresses: [String]?
        package var conditions: Conditions?
        package var nodeName: String?
        package var hints: Hints?
    }

    package var metadata: ObjectMeta?
    package var addressType: String?
    package var ports: [Port]?
    package var endpoints: [Endpoint]?
}

/// Legacy `v1 Endpoints`, converted to slices on load.
package struct EndpointsObject: Decodable, Equatable {
    package struct Subset: Decodable, Equatable {
        package struct Address: Decodable, Equatable {
            package var ip: String?
            package var nodeName: String?
        }
        package struct Port: Decodable, Equatable {
            package var name: String?
            package var `protocol`: String?
            package var port: Int?
        }
        package var addresses: [Address]?
        package var notReadyAddresses: [Address]?
        package var ports: [Port]?
    }

    package var metadata: ObjectMeta?
    package var subsets: [Subset]?
}

/// `v1 Node`: its name, its zone label (topology hints) and its pod CIDRs (NodeCIDR detection).
package struct NodeObject: Decodable, Equatable {
    package struct Spec: Decodable, Equatable {
        package var podCIDR: String?
        package var podCIDRs: [String]?
    }
    package var metadata: ObjectMeta?
    package var spec: Spec?
}
