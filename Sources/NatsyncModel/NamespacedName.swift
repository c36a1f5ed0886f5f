import NatsyncNet

/// A namespaced object name, `namespace/name`.
public struct NamespacedName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }
}

/// One port of one Service: kube-proxy's `ServicePortName`.
///
/// ``description`` is kube-proxy's `String()`: `namespace/name`, plus `:port` only when the port has
/// a name. Chain-name hashes and rule comments are built from it.
public struct ServicePortName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var service: NamespacedName
    public var port: String
    public var `protocol`: TransportProtocol

    public init(service: NamespacedName, port: String, protocol: TransportProtocol) {
        self.service = service
        self.port = port
        self.protocol = `protocol`
    }

    public var description: String {
        port.isEmpty ? service.description : "\(service):\(port)"
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.service, lhs.port, lhs.protocol) < (rhs.service, rhs.port, rhs.protocol)
    }
}
