#if canImport(Glibc)
import Glibc
#endif

/// Reads the wire objects natsync uses (Services and EndpointSlices) straight from JSON bytes:
/// the fields of ``ServiceObject`` and ``EndpointSliceObject`` are read, every other member is
/// skipped without being built.
///
/// kubectl's output for a large cluster is mostly fields natsync never reads (uids, timestamps,
/// managed fields, target references); `JSONDecoder` maps all of them before decoding any, which
/// made loading a third of a full sync. This reader answers only for objects it reads exactly as
/// `JSONDecoder` would; on anything else (another kind, a wrong type, a number with a fraction,
/// a duplicate key, invalid text) it gives up and the caller decodes the object the reference way,
/// so every error reads as before.
package struct WireReader {
    private var scanner: JSONScanner
    /// Set on anything the reader does not read exactly as the reference decoder.
    private var failed = false
    /// Hashes of the keys of the objects being read, innermost last, to notice duplicates
    /// (which `JSONDecoder` resolves first-wins; this reader gives up instead).
    private var keys: [UInt64] = []

    /// The object held by `bytes` (one item of a List), or nil when it is not a Service or an
    /// EndpointSlice this reader can read exactly.
    package static func document(_ bytes: UnsafeBufferPointer<UInt8>, position: String) -> ManifestDocument? {
        guard let (object, metadata) = read(bytes, kind: nil) else { return nil }
        let hint = NameHint(namespace: metadata?.namespace, name: metadata?.name, position: position)
        return ManifestDocument(objects: [(object, hint)])
    }

    /// An object of the API server's list or watch of `kind` (`Service` or `EndpointSlice`; list
    /// items carry no `kind` of their own), or nil when this reader cannot read it exactly.
    package static func apiObject(_ bytes: UnsafeBufferPointer<UInt8>, kind: String) -> DecodedObject? {
        read(bytes, kind: kind)?.object
    }

    /// The object and its metadata; `kind` is the object's own `kind` member when nil, and must
    /// agree with it when the object has one.
    private static func read(_ bytes: UnsafeBufferPointer<UInt8>, kind expected: String?) -> (object: DecodedObject, metadata: ObjectMeta?)?
    {
        var reader = WireReader(scanner: JSONScanner(bytes))
        var kind: String?
        var apiVersion: String?
        var metadata: ObjectMeta?
        var service = ServiceObject()
        var slice = EndpointSliceObject()
        // Members come in any order and which to keep depends on `kind`: the fields of both kinds
        // are read as they come, in one pass (a member of the other kind that does not read as
        // expected sends the object to JSONDecoder, which is only slower).
        reader.object { reader, key in
            if key == "kind" {
                kind = reader.string()
            } else if key == "apiVersion" {
                apiVersion = reader.string()
            } else if key == "metadata" {
                metadata = reader.metadata()
            } else if key == "spec" {
                service.spec = reader.serviceSpec()
            } else if key == "status" {
                service.status = reader.serviceStatus()
            } else if key == "addressType" {
                slice.addressType = reader.string()
            } else if key == "ports" {
                slice.ports = reader.array { $0.slicePort() }
            } else if key == "endpoints" {
                slice.endpoints = reader.array { $0.endpoint() }
            } else {
                reader.skip()
            }
        }
        reader.scanner.skipWhitespace()
        if let expected {
            guard kind == nil || kind == expected else { return nil }
            kind = expected
        }
        guard !reader.failed, reader.scanner.atEnd, let kind else { return nil }
        let expectedVersion: String
        switch kind {
        case "Service": expectedVersion = "v1"
        case "EndpointSlice": expectedVersion = "discovery.k8s.io/v1"
        default: return nil
        }
        if let apiVersion, apiVersion != expectedVersion { return nil }
        let object: DecodedObject
        if kind == "Service" {
            service.metadata = metadata
            object = .service(service)
        } else {
            slice.metadata = metadata
            object = .endpointSlice(slice)
        }
        guard !reader.failed else { return nil }
        return (object, metadata)
    }

    /// A member name: its raw bytes, or its text when it holds escapes (Foundation's encoders
    /// write `\/` for every slash, so `kubernetes.io\/service-name` is common).
    struct Key {
        let bytes: UnsafeBufferPointer<UInt8>
        let unescaped: String?

        static func == (key: Key, name: StaticString) -> Bool {
            if let text = key.unescaped {
                return text.utf8.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            }
            return key.bytes.count == name.utf8CodeUnitCount && memcmp(key.bytes.baseAddress!, name.utf8Start, key.bytes.count) == 0
        }

        var string: String { unescaped ?? String(decoding: bytes, as: UTF8.self) }

        /// FNV-1a of the name: a name seen twice in one object hashes the same (a collision
        /// only costs the fast path).
        var hash: UInt64 {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            func add(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            if let unescaped { unescaped.utf8.forEach(add) } else { bytes.forEach(add) }
            return hash
        }
    }

    // MARK: The wire types

    private mutating func metadata() -> ObjectMeta? {
        var meta = ObjectMeta()
        let present = object { reader, key in
            if key == "name" {
                meta.name = reader.string()
            } else if key == "namespace" {
                meta.namespace = reader.string()
            } else if key == "labels" {
                meta.labels = reader.stringMap()
            } else if key == "resourceVersion" {
                meta.resourceVersion = reader.string()
            } else if key == "annotations" {
                meta.annotations = reader.stringMap()
            } else {
                reader.skip()
            }
        }
        return present ? meta : nil
    }

    private mutating func serviceSpec() -> ServiceObject.Spec? {
        var spec = ServiceObject.Spec()
        let present = object { reader, key in
            if key == "type" {
                spec.type = reader.string()
            } else if key == "clusterIP" {
                spec.clusterIP = reader.string()
            } else if key == "clusterIPs" {
                spec.clusterIPs = reader.array { $0.requiredString() }
            } else if key == "ports" {
                spec.ports = reader.array { $0.servicePort() }
            } else if key == "externalIPs" {
                spec.externalIPs = reader.array { $0.requiredString() }
            } else if key == "loadBalancerSourceRanges" {
                spec.loadBalancerSourceRanges = reader.array { $0.requiredString() }
            } else if key == "sessionAffinity" {
                spec.sessionAffinity = reader.string()
            } else if key == "sessionAffinityConfig" {
                spec.sessionAffinityConfig = reader.affinityConfig()
            } else if key == "externalTrafficPolicy" {
                spec.externalTrafficPolicy = reader.string()
            } else if key == "internalTrafficPolicy" {
                spec.internalTrafficPolicy = reader.string()
            } else if key == "healthCheckNodePort" {
                spec.healthCheckNodePort = reader.integer()
            } else if key == "externalName" {
                spec.externalName = reader.string()
            } else {
                reader.skip()
            }
        }
        return present ? spec : nil
    }

    private mutating func servicePort() -> ServiceObject.Spec.Port? {
        var port = ServiceObject.Spec.Port()
        let present = object { reader, key in
            if key == "name" {
                port.name = reader.string()
            } else if key == "protocol" {
                port.protocol = reader.string()
            } else if key == "port" {
                port.port = reader.integer()
            } else if key == "targetPort" {
                port.targetPort = reader.intOrString()
            } else if key == "nodePort" {
                port.nodePort = reader.integer()
            } else {
                reader.skip()
            }
        }
        return required(present ? port : nil)
    }

    private mutating func affinityConfig() -> ServiceObject.Spec.AffinityConfig? {
        var config = ServiceObject.Spec.AffinityConfig()
        let present = object { reader, key in
            guard key == "clientIP" else { return reader.skip() }
            var clientIP = ServiceObject.Spec.AffinityConfig.ClientIP()
            let given = reader.object { reader, key in
                if key == "timeoutSeconds" { clientIP.timeoutSeconds = reader.integer() } else { reader.skip() }
            }
            config.clientIP = given ? clientIP : nil
        }
        return present ? config : nil
    }

    private mutating func serviceStatus() -> ServiceObject.Status? {
        var status = ServiceObject.Status()
        let present = object { reader, key in
            guard key == "loadBalancer" else { return reader.skip() }
            var balancer = ServiceObject.Status.LoadBalancer()
            let given = reader.object { reader, key in
                guard key == "ingress" else { return reader.skip() }
                balancer.ingress = reader.array { reader in
                    var ingress = ServiceObject.Status.LoadBalancer.Ingress()
                    let present = reader.object { reader, key in
                        if key == "ip" {
                            ingress.ip = reader.string()
                        } else if key == "hostname" {
                            ingress.hostname = reader.string()
                        } else if key == "ipMode" {
                            ingress.ipMode = reader.string()
                        } else {
                            reader.skip()
                        }
                    }
                    return reader.required(present ? ingress : nil)
                }
            }
            status.loadBalancer = given ? balancer : nil
        }
        return present ? status : nil
    }

    private mutating func slicePort() -> EndpointSliceObject.Port? {
        var port = EndpointSliceObject.Port()
        let present = object { reader, key in
            if key == "name" {
                port.name = reader.string()
            } else if key == "protocol" {
                port.protocol = reader.string()
            } else if key == "port" {
                port.port = reader.integer()
            } else {
                reader.skip()
            }
        }
        return required(present ? port : nil)
    }

    private mutating func hintName() -> EndpointSliceObject.Endpoint.Hints.Name? {
        var hint = EndpointSliceObject.Endpoint.Hints.Name()
        let present = object { reader, key in
            if key == "name" { hint.name = reader.string() } else { reader.skip() }
        }
        return required(present ? hint : nil)
    }

    private mutating func endpoint() -> EndpointSliceObject.Endpoint? {
        var endpoint = EndpointSliceObject.Endpoint()
        let present = object { reader, key in
            if key == "addresses" {
                endpoint.addresses = reader.array { $0.requiredString() }
            } else if key == "nodeName" {
                endpoint.nodeName = reader.string()
            } else if key == "hints" {
                var hints = EndpointSliceObject.Endpoint.Hints()
                let given = reader.object { reader, key in
                    if key == "forZones" {
                        hints.forZones = reader.array { $0.hintName() }
                    } else if key == "forNodes" {
                        hints.forNodes = reader.array { $0.hintName() }
                    } else {
                        reader.skip()
                    }
                }
                endpoint.hints = given ? hints : nil
            } else if key == "conditions" {
                var conditions = EndpointSliceObject.Endpoint.Conditions()
                let given = reader.object { reader, key in
                    if key == "ready" {
                        conditions.ready = reader.bool()
                    } else if key == "serving" {
                        conditions.serving = reader.bool()
                    } else if key == "terminating" {
                        conditions.terminating = reader.bool()
                    } else {
                        reader.skip()
                    }
                }
                endpoint.conditions = given ? conditions : nil
            } else {
                reader.skip()
            }
        }
        return required(present ? endpoint : nil)
    }

    // MARK: Values. Each reads an optional field: null is nil, anything unexpected fails.

    /// Skips a member natsync does not read, checking that it is JSON: a document the reference
    /// decoder refuses must not load through this reader either.
    private mutating func skip() {
        if !scanner.skipValidValue() { failed = true }
    }

    /// A scalar field read by `read`: null is nil, anything `read` cannot read fails.
    private mutating func scalar<T>(_ read: (inout JSONScanner) -> T?) -> T? {
        if scanner.null() { return nil }
        guard let value = read(&scanner) else {
            failed = true
            return nil
        }
        return value
    }

    private mutating func string() -> String? { scalar { $0.string() } }
    private mutating func integer() -> Int? { scalar { $0.integer() } }
    private mutating func bool() -> Bool? { scalar { $0.bool() } }

    /// An element of a list of strings: null there is an error for the reference decoder.
    private mutating func requiredString() -> String? { required(string()) }

    private mutating func intOrString() -> IntOrString? {
        if scanner.null() { return nil }
        if scanner.peek(UInt8(ascii: "\"")) { return string().map(IntOrString.string) }
        return integer().map(IntOrString.int)
    }

    private mutating func stringMap() -> [String: String]? {
        var map: [String: String] = [:]
        let present = object { reader, key in map[key.string] = reader.requiredString() }
        return present ? map : nil
    }

    private mutating func required<T>(_ value: T?) -> T? {
        if value == nil { failed = true }
        return value
    }

    /// The elements of a list, or nil for null (or on failure).
    private mutating func array<T>(_ element: (inout WireReader) -> T?) -> [T]? {
        if scanner.null() { return nil }
        guard scanner.consume(UInt8(ascii: "[")) else {
            failed = true
            return nil
        }
        var values: [T] = []
        if scanner.consume(UInt8(ascii: "]")) { return values }
        repeat {
            guard let value = element(&self), !failed else {
                failed = true
                return nil
            }
            values.append(value)
        } while scanner.consume(UInt8(ascii: ","))
        guard scanner.consume(UInt8(ascii: "]")) else {
            failed = true
            return nil
        }
        return values
    }

    /// Calls `member` with each key of an object, the scanner at its value (which `member`
    /// reads or skips). False for null (an absent object) or on failure.
    @discardableResult
    private mutating func object(_ member: (inout WireReader, Key) -> Void) -> Bool {
        if scanner.null() { return false }
        guard scanner.consume(UInt8(ascii: "{")) else {
            failed = true
            return false
        }
        if scanner.consume(UInt8(ascii: "}")) { return true }
        let outer = keys.count
        defer { keys.removeSubrange(outer...) }
        repeat {
            guard let key = rawKey(), scanner.consume(UInt8(ascii: ":")) else {
                failed = true
                return false
            }
            let hash = key.hash
            guard !keys[outer...].contains(hash) else {
                failed = true
                return false
            }
            keys.append(hash)
            member(&self, key)
            guard !failed else { return false }
        } while scanner.consume(UInt8(ascii: ","))
        guard scanner.consume(UInt8(ascii: "}")) else {
            failed = true
            return false
        }
        return true
    }

    /// A member name; nil when it is not a valid JSON string.
    private mutating func rawKey() -> Key? {
        scanner.skipWhitespace()
        let start = scanner.index
        guard scanner.skipString() else { return nil }
        let bytes = UnsafeBufferPointer(rebasing: scanner.bytes[(start + 1)..<(scanner.index - 1)])
        guard !bytes.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else {
            scanner.index = start
            guard let text = scanner.string() else { return nil }
            return Key(bytes: bytes, unescaped: text)
        }
        return Key(bytes: bytes, unescaped: nil)
    }
}
