import Foundation
import NatsyncModel
import NatsyncNet

/// Why an object is invalid: the field and what is wrong with it.
package struct FieldError: Error {
    package var field: String
    package var message: String

    package init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// Services and EndpointSlices that another proxy serves, left alone as kube-proxy leaves them: it
/// lists and watches with ``labelSelector`` (`cmd/kube-proxy/app/server.go`), so any value of
/// either label, the empty one included, takes the object away. The EndpointSlice controller
/// copies a Service's labels onto its slices, so their slices carry the label too.
public enum OtherProxies {
    public static let labels = ["service.kubernetes.io/service-proxy-name", "service.kubernetes.io/headless"]
    public static let labelSelector = labels.map { "!" + $0 }.joined(separator: ",")

    /// The label that gives the object to another proxy, if it carries one.
    package static func label(of metadata: ObjectMeta?) -> String? {
        labels.first { metadata?.labels?[$0] != nil }
    }
}

/// Turns decoded wire objects into validated model objects, the checks the API server would have
/// made for the fields a proxy uses.
package enum Validation {
    package static func service(_ object: ServiceObject, name: NamespacedName) throws(FieldError) -> Service {
        let spec = object.spec ?? ServiceObject.Spec()
        let kind: Service.Kind
        switch spec.type ?? "ClusterIP" {
        case "ClusterIP": kind = .clusterIP
        case "NodePort": kind = .nodePort
        case "LoadBalancer": kind = .loadBalancer
        case "ExternalName": kind = .externalName
        case let other:
            throw FieldError("spec.type", "unknown type \(quote(other)) (must be ClusterIP, NodePort, LoadBalancer or ExternalName)")
        }

        var clusterIPs: [IPAddress] = []
        let ipStrings = spec.clusterIPs ?? spec.clusterIP.map { [$0] } ?? []
        let ipField = spec.clusterIPs != nil ? "spec.clusterIPs" : "spec.clusterIP"
        let headless = ipStrings.isEmpty || ipStrings.first == "None" || ipStrings.first == ""
        if kind != .externalName && !headless {
            for (index, text) in ipStrings.enumerated() {
                let field = spec.clusterIPs != nil ? "\(ipField)[\(index)]" : ipField
                let address = try ip(text, field)
                guard !clusterIPs.contains(where: { $0.family == address.family }) else {
                    throw FieldError(field, "a second \(address.family) cluster IP")
                }
                clusterIPs.append(address)
            }
        }

        var ports: [Service.Port] = []
        for (index, port) in (spec.ports ?? []).enumerated() {
            let field = "spec.ports[\(index)]"
            let portName = port.name ?? ""
            if !portName.isEmpty { try dnsLabel(portName, "\(field).name") }
            let proto = try transportProtocol(port.protocol, "\(field).protocol")
            guard let number = port.port else { throw FieldError("\(field).port", "missing") }
            let value = try portNumber(number, "\(field).port")
            var nodePort: UInt16?
            if let node = port.nodePort, node != 0 {
                nodePort = try portNumber(node, "\(field).nodePort")
            }
            if case .int(let target) = port.targetPort, target != 0 {
                _ = try portNumber(target, "\(field).targetPort")
            }
            if let previous = ports.firstIndex(where: { $0.port == value && $0.protocol == proto }) {
                throw FieldError("\(field).port", "duplicate port \(value)/\(proto.rawValue) (also spec.ports[\(previous)])")
            }
            if let previous = ports.firstIndex(where: { $0.name == portName }) {
                throw FieldError("\(field).name", "duplicate port name \(quote(portName)) (also spec.ports[\(previous)])")
            }
            ports.append(Service.Port(name: portName, protocol: proto, port: value, nodePort: nodePort))
        }

        let externalIPs = try (spec.externalIPs ?? []).enumerated().map { (index, text) throws(FieldError) in
            try ip(text, "spec.externalIPs[\(index)]")
        }
        let ranges = try (spec.loadBalancerSourceRanges ?? []).enumerated().map { (index, text) throws(FieldError) in
            let trimmed = text.trimmingASCIIWhitespace()
            guard let cidr = CIDR(trimmed) else {
                throw FieldError("spec.loadBalancerSourceRanges[\(index)]", "invalid CIDR \(quote(text))")
            }
            return cidr
        }
        var ingress: [Service.LoadBalancerIngress] = []
        for (index, entry) in (object.status?.loadBalancer?.ingress ?? []).enumerated() {
            let field = "status.loadBalancer.ingress[\(index)]"
            guard let text = entry.ip, !text.isEmpty else { continue }
            let address = try ip(text, "\(field).ip")
            switch entry.ipMode ?? "VIP" {
            case "VIP": ingress.append(.init(ip: address))
            case "Proxy": ingress.append(.init(ip: address, isProxyMode: true))
            case let other: throw FieldError("\(field).ipMode", "unknown mode \(quote(other)) (must be VIP or Proxy)")
            }
        }

        let affinity: Service.SessionAffinity
        switch spec.sessionAffinity ?? "None" {
        case "None": affinity = .none
        case "ClientIP":
            let timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800
            guard (1...86400).contains(timeout) else {
                throw FieldError("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\(timeout) is out of range (1-86400)")
            }
            affinity = .clientIP(timeoutSeconds: timeout)
        case let other: throw FieldError("spec.sessionAffinity", "unknown affinity \(quote(other)) (must be None or ClientIP)")
        }

        var healthCheck: UInt16?
        if let port = spec.healthCheckNodePort, port != 0 {
            healthCheck = try portNumber(port, "spec.healthCheckNodePort")
        }
        return Service(
            name: name,
            kind: kind,
            clusterIPs: clusterIPs,
            ports: ports,
            externalIPs: externalIPs,
            loadBalancerIngress: ingress,
            loadBalancerSourceRanges: ranges,
            sessionAffinity: affinity,
            externalTrafficPolicy: try policy(spec.externalTrafficPolicy, "spec.externalTrafficPolicy"),
            internalTrafficPolicy: try policy(spec.internalTrafficPolicy, "spec.internalTrafficPolicy"),
            healthCheckNodePort: healthCheck
        )
    }

    package static func endpointSlice(_ object: EndpointSliceObject, name: NamespacedName) throws(FieldError) -> EndpointSlice? {
        guard let serviceName = object.metadata?.labels?["kubernetes.io/service-name"] else { return nil }
        try dnsLabel(serviceName, "metadata.labels[kubernetes.io/service-name]")
        let addressType: EndpointSlice.AddressType
        switch object.addressType {
        case "IPv4": addressType = .ipv4
        case "IPv6": addressType = .ipv6
        case "FQDN": addressType = .fqdn
        case nil: throw FieldError("addressType", "missing")
        case let other?: throw FieldError("addressType", "unknown address type \(quote(other)) (must be IPv4, IPv6 or FQDN)")
        }
        var ports: [EndpointSlice.Port] = []
        for (index, port) in (object.ports ?? []).enumerated() {
            let field = "ports[\(index)]"
            let portName = port.name ?? ""
            if !portName.isEmpty { try dnsLabel(portName, "\(field).name") }
            let proto = try transportProtocol(port.protocol, "\(field).protocol")
            // A port without a number means "all ports", which a service proxy cannot use.
            guard let number = port.port else { continue }
            let value = try portNumber(number, "\(field).port")
            if let previous = ports.firstIndex(where: { $0.name == portName && $0.protocol == proto }) {
                throw FieldError("\(field).name", "duplicate port \(quote(portName))/\(proto.rawValue) (also ports[\(previous)])")
            }
            ports.append(EndpointSlice.Port(name: portName, protocol: proto, port: value))
        }
        var endpoints: [EndpointSlice.Endpoint] = []
        if let family = addressType.family {
            for (index, endpoint) in (object.endpoints ?? []).enumerated() {
                let field = "endpoints[\(index)]"
                guard let first = endpoint.addresses?.first else {
                    throw FieldError("\(field).addresses", "missing")
                }
                let address = try ip(first, "\(field).addresses[0]")
                guard address.family == family else {
                    throw FieldError(
                        "\(field).addresses[0]", "\(address) is not an \(family) address (addressType is \(addressType.rawValue))")
                }
                let conditions = endpoint.conditions
                endpoints.append(
                    EndpointSlice.Endpoint(
                        address: address,
                        conditions: EndpointSlice.Conditions(
                            ready: conditions?.ready ?? true,
                            serving: conditions?.serving ?? true,
                            terminating: conditions?.terminating ?? false),
                        nodeName: endpoint.nodeName,
                        zoneHints: (endpoint.hints?.forZones ?? []).compactMap(\.name),
                        nodeHints: (endpoint.hints?.forNodes ?? []).compactMap(\.name)))
            }
        }
        // A malformed trigger time only costs the latency metric, so it is not an error.
        let trigger = object.metadata?.annotations?["endpoints.kubernetes.io/last-change-trigger-time"]
            .flatMap(Self.triggerTime)
        return EndpointSlice(
            name: name, service: NamespacedName(namespace: name.namespace, name: serviceName),
            addressType: addressType, ports: ports, endpoints: endpoints, lastChangeTriggerTime: trigger)
    }

    /// Legacy Endpoints as slices: one per subset and family, unready addresses not serving.
    package static func endpoints(_ object: EndpointsObject, name: NamespacedName) throws(FieldError) -> [EndpointSlice] {
        var slices: [EndpointSlice] = []
        for (subsetIndex, subset) in (object.subsets ?? []).enumerated() {
            let subsetField = "subsets[\(subsetIndex)]"
            var ports: [EndpointSlice.Port] = []
            for (index, port) in (subset.ports ?? []).enumerated() {
                let portName = port.name ?? ""
                if !portName.isEmpty { try dnsLabel(portName, "\(subsetField).ports[\(index)].name") }
                let proto = try transportProtocol(port.protocol, "\(subsetField).ports[\(index)].protocol")
                guard let number = port.port else { throw FieldError("\(subsetField).ports[\(index)].port", "missing") }
                ports.append(.init(name: portName, protocol: proto, port: try portNumber(number, "\(subsetField).ports[\(index)].port")))
            }
            var byFamily: [IPFamily: [EndpointSlice.Endpoint]] = [:]
            for (list, ready, key) in [(subset.addresses, true, "addresses"), (subset.notReadyAddresses, false, "notReadyAddresses")] {
                for (index, address) in (list ?? []).enumerated() {
                    let field = "\(subsetField).\(key)[\(index)].ip"
                    guard let text = address.ip else { throw FieldError(field, "missing") }
                    let ip = try ip(text, field)
                    byFamily[ip.family, default: []].append(
                        .init(address: ip, conditions: .init(ready: ready, serving: ready, terminating: false), nodeName: address.nodeName))
                }
            }
            for family in IPFamily.allCases {
                guard let endpoints = byFamily[family] else { continue }
                slices.append(
                    EndpointSlice(
                        name: NamespacedName(namespace: name.namespace, name: "\(name.name) (Endpoints \(subsetField) \(family))"),
                        service: name, addressType: family == .ipv4 ? .ipv4 : .ipv6, ports: ports, endpoints: endpoints))
            }
        }
        return slices
    }

    package static func ip(_ text: String, _ field: String) throws(FieldError) -> IPAddress {
        guard let address = IPAddress(text) else { throw FieldError(field, "invalid IP address \(quote(text))") }
        return address
    }

    package static func portNumber(_ value: Int, _ field: String) throws(FieldError) -> UInt16 {
        guard (1...65535).contains(value) else { throw FieldError(field, "\(value) is out of range (1-65535)") }
        return UInt16(value)
    }

    package static func transportProtocol(_ text: String?, _ field: String) throws(FieldError) -> TransportProtocol {
        guard let text else { return .tcp }
        guard let value = TransportProtocol(rawValue: text) else {
            throw FieldError(field, "unsupported protocol \(quote(text)) (must be TCP, UDP or SCTP)")
        }
        return value
    }

    package static func policy(_ text: String?, _ field: String) throws(FieldError) -> Service.TrafficPolicy {
        switch text ?? "Cluster" {
        case "Cluster", "Global": return .cluster
        case "Local": return .local
        case let other: throw FieldError(field, "unknown policy \(quote(other)) (must be Cluster or Local)")
        }
    }

    /// An RFC 1123 label: lower-case letters, digits and '-', starting and ending alphanumeric, at most 63.
    package static func dnsLabel(_ text: String, _ field: String) throws(FieldError) {
        let bytes = Array(text.utf8)
        func alphanumeric(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        }
        guard !bytes.isEmpty, bytes.count <= 63, alphanumeric(bytes.first!), alphanumeric(bytes.last!),
            bytes.allSatisfy({ alphanumeric($0) || $0 == UInt8(ascii: "-") })
        else {
            throw FieldError(field, "\(quote(text)) is not a valid DNS label (lower-case letters, digits and '-', at most 63)")
        }
    }

    /// An RFC 1123 subdomain: dot-separated labels, at most 253 characters.
    package static func dnsSubdomain(_ text: String, _ field: String) throws(FieldError) {
        guard text.utf8.count <= 253 else { throw FieldError(field, "\(quote(text)) is longer than 253 characters") }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            do {
                try dnsLabel(String(label), field)
            } catch {
                throw FieldError(field, "\(quote(text)) is not a valid DNS subdomain name")
            }
        }
    }
}

extension Validation {
    /// An RFC 3339 time in seconds since 1970. The endpoints controller writes Go's
    /// `time.RFC3339Nano`, which drops trailing zeros and so may carry no fraction at all.
    /// Parsed by hand: Foundation's ISO8601DateFormatter goes through ICU and cost half the load
    /// time of a large cluster (one annotation per EndpointSlice).
    package static func triggerTime(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + digits] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2), expect("Tt "),
            let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, bytes[index] >= 48 && bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        if expect("Zz") {
            offset = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), expect(":"), let minutes = number(2) else { return nil }
            offset = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        // Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
    }
}

extension String {
    package func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
