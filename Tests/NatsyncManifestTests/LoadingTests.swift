import Foundation
import NatsyncModel
import NatsyncNet
import NatsyncTestSupport
import Testing

@testable import NatsyncManifest
@testable import NatsyncWire

struct LoadingTests {
    @Test func kubectlYAMLAndJSONListsLoadTheSame() {
        let yaml = ManifestLoader.load(paths: ["\(Repository.fixtures)/realistic/cluster.yaml"])
        let json = ManifestLoader.load(paths: ["\(Repository.fixtures)/realistic/cluster.json"])
        #expect(yaml.warnings.isEmpty)
        #expect(json.warnings.isEmpty)
        #expect(yaml.state == json.state)
        #expect(
            yaml.state.services.map(\.name.description)
                == ["default/kubernetes", "default/shop", "edge/gateway", "edge/ingress", "kube-system/kube-dns"])
        #expect(yaml.state.endpointSlices.count == 5)
    }

    @Test func serviceFieldsAreRead() throws {
        let state = ManifestLoader.load(paths: ["\(Repository.fixtures)/realistic/cluster.yaml"]).state
        let ingress = try #require(state.services.first { $0.name.name == "ingress" })
        #expect(ingress.kind == .loadBalancer)
        #expect(ingress.clusterIPs == [IPAddress("10.96.200.10")!])
        #expect(ingress.ports == [.init(name: "https", protocol: .tcp, port: 443, nodePort: 31443)])
        #expect(ingress.loadBalancerSourceRanges == [CIDR("203.0.113.0/25")!, CIDR("192.168.0.0/24")!])
        #expect(ingress.loadBalancerIngress == [.init(ip: IPAddress("198.51.100.10")!)])
        let gateway = try #require(state.services.first { $0.name.name == "gateway" })
        #expect(gateway.externalTrafficPolicy == .local)
        #expect(gateway.healthCheckNodePort == 32001)
        let shop = try #require(state.endpointSlices.first { $0.service.name == "shop" })
        #expect(shop.endpoints.map(\.conditions) == [.init(), .init(), .init(ready: false, serving: true, terminating: true)])
        #expect(shop.endpoints.first?.nodeName == "node-1")
    }

    /// A large List decoded item by item in parallel reads exactly as decoded whole: the same
    /// objects in the same order, the same positions and messages for bad items (bad fields,
    /// missing names, a nested List, an item that is not an object, escapes and brackets in strings).
    @Test func largeListsDecodedItemByItemReadAsDecodedWhole() throws {
        var items: [String] = []
        for index in 0..<300 {
            switch index % 7 {
            case 0:
                items.append(
                    #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s\#(index)","namespace":"default"},"spec":{"clusterIP":"10.96.0.\#(index % 250 + 1)","ports":[{"name":"p","port":80}]}}"#
                )
            case 1:
                items.append(
                    #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"bad\#(index)"},"spec":{"clusterIP":"999.1.1.1","ports":[{"port":80}]}}"#
                )
            case 2:
                items.append(#"{"kind":"Service","metadata":{"namespace":"x"}}"#)
            case 3:
                items.append(
                    #"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c\#(index)"}},{"kind":"Service"}]}"#
                )
            case 4:
                items.append(#"[1, 2, {"a": "]}"}]"#)
            case 5:
                items.append(
                    #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s\#(index - 5)-a","namespace":"default","labels":{"kubernetes.io/service-name":"s\#(index - 5)"},"annotations":{"note":"a \"quoted\" ] } value"}},"addressType":"IPv4","ports":[{"name":"p","port":8080}],"endpoints":[{"addresses":["10.1.0.\#(index % 250 + 1)"]}]}"#
                )
            default:
                items.append(
                    #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"t\#(index)","namespace":"default"},"spec":{"clusterIP":"10.96.1.\#(index % 250 + 1)","ports":[{"name":"p","port":70000}]}}"#
                )
            }
        }
        let text =
            "{\n \"apiVersion\": \"v1\", \"items\": [\n" + items.joined(separator: ",\n ") + "\n], \"kind\": \"List\", \"metadata\": {}}\n"
        let split = try #require(JSONListProbe.documents(text), "the list was not split")
        let whole = try ManifestLoader.decodeDocuments(text)
        let describe = { (documents: [ManifestDocument]) in documents.flatMap(\.objects).map { "\($0.0) at \($0.1.position)" } }
        #expect(describe(split).count == describe(whole).count)
        #expect(describe(split) == describe(whole))
        #expect(describe(whole).contains { $0.contains("items[3].items[1]") })

        // Loaded from the bytes (split, and checked over the cores), each bad item still named.
        var loader = ManifestLoader()
        let added = loader.add(contents: Array(text.utf8), file: "big.json")
        #expect(added)
        let loaded = loader.result()
        #expect(loaded.state.services.count == 43)
        #expect(loaded.state.endpointSlices.count == 43)
        let warnings = loaded.warnings.map(\.description)
        #expect(warnings.contains { $0.hasPrefix("warning: big.json: Service default/bad1: spec.clusterIP: ") }, "\(warnings.prefix(3))")
        #expect(warnings.contains { $0.hasPrefix("warning: big.json: Service default/t6: spec.ports[0].port: ") })
        #expect(warnings.contains("warning: big.json: Service at items[2]: metadata.name: missing; object skipped"))

        // An item that is not JSON: the whole document's error, as before.
        let broken = text.replacingOccurrences(of: #"[1, 2,"#, with: #"[1, tru,"#)
        #expect(JSONListProbe.documents(broken) == nil)
        #expect(throws: (any Error).self) { try ManifestLoader.decodeDocuments(broken) }
        var brokenLoader = ManifestLoader()
        let brokenAdded = brokenLoader.add(contents: Array(broken.utf8), file: "broken.json")
        #expect(!brokenAdded)
        #expect(brokenLoader.result().errors.map(\.message).first?.hasPrefix("cannot parse: line ") == true)
        // Text that is not JSON in members natsync never reads (an item's unread member, its
        // metadata's uid, the List's own metadata): the reference refuses the document (a bad
        // literal or separator; it does not check the numbers and escapes of what it never
        // decodes), and so does the fast path.
        for damage in [
            (#""spec":{"clusterIP":"10.96.0.1""#, #""extra":{"x":nul},"spec":{"clusterIP":"10.96.0.1""#),
            (#""name":"s0-a","namespace""#, #""name":"s0-a","uid":tru,"namespace""#),
            (#""metadata": {}}"#, #""metadata": {"n" 1}}"#),
            (#""name":"s0-a","namespace""#, #""name":"s0-a","generation":[1 2],"namespace""#),
            (#""name":"s0-a","namespace""#, #""name":"s0-a","generation":[1,,2],"namespace""#),
        ] {
            let damaged = text.replacingOccurrences(of: damage.0, with: damage.1)
            #expect(damaged != text, "\(damage.1)")
            #expect(throws: (any Error).self, "\(damage.1)") { try ManifestLoader.decodeDocuments(damaged) }
            var damagedLoader = ManifestLoader()
            let damagedAdded = damagedLoader.add(contents: Array(damaged.utf8), file: "damaged.json")
            #expect(!damagedAdded, "\(damage.1)")
            #expect(damagedLoader.result().errors.map(\.message).first?.hasPrefix("cannot parse: line ") == true)
        }

        // Not a list, or something after it: decoded whole.
        #expect(JSONListProbe.documents(#"{"kind":"Service","items":[]}"#) == nil)
        #expect(JSONListProbe.items(#"{"kind":"List","items":[]} x"#) == nil)
        #expect(JSONListProbe.items(#"{"kind":"List","items":[{"a":"\"]"}, 1 ,"x"]}"#) == 3)
    }

    /// A large list is scanned in pieces from guessed item starts, each taken only when the piece
    /// before it ends there: the items are those of one scan from the start, also when guesses
    /// fall inside items (nested objects laid out at the items' own column, after a comma) or
    /// none can be made (the whole list on one line).
    @Test func largeListsScannedInPiecesFindTheSameItems() throws {
        var items: [String] = []
        for index in 0..<10_000 {
            items.append(
                #"{"kind": "Service", "metadata": {"name": "s\#(index)", "note": "a \"quoted\", ] } value"}, "spec": {"ports": [{"port": \#(index % 60000 + 1)}]}}"#
            )
        }
        let oneLine = "{\"kind\": \"List\", \"items\": [" + items.joined(separator: ",") + "]}"
        let object = try JSONSerialization.jsonObject(with: Data(oneLine.utf8))
        let pretty = String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
        let misleading = pretty.replacingOccurrences(of: "\"ports\" : [\n", with: "\"ports\" : [\n    {\"x\" : 1},\n    {\"y\" : 2},\n")
        #expect(misleading != pretty)
        for text in [pretty, misleading, oneLine] {
            var text = text
            #expect(text.utf8.count > 1 << 20)
            text.withUTF8 { bytes in
                var start = bytes.firstIndex(of: UInt8(ascii: "["))! + 1
                while bytes[start] == 0x20 || bytes[start] == 0x0A { start += 1 }
                let pieces = JSONList.items(bytes, from: start)
                let whole = JSONList.scan(bytes, from: start, until: nil)
                #expect(pieces?.ranges.count == 10_000)
                #expect(pieces?.ranges == whole?.ranges)
                #expect(pieces?.end == whole?.end)
                #expect(JSONList(bytes)?.items.count == 10_000)
            }
        }
    }

    /// Go's RFC3339Nano, as the endpoints controller writes it: with or without a fraction.
    @Test func triggerTimesReadWithAndWithoutFractionalSeconds() {
        #expect(Validation.triggerTime("2026-11-27T12:00:00Z") == 1_795_780_800)
        #expect(Validation.triggerTime("2026-11-27T12:00:00.25Z") == 1_795_780_800.25)
        #expect(Validation.triggerTime("2026-11-27T12:00:00.123456789Z").map { abs($0 - 1_795_780_800.123) < 0.001 } == true)
        #expect(Validation.triggerTime("2026-11-27T13:30:00+01:30") == 1_795_780_800)
        #expect(Validation.triggerTime("1970-01-01T00:00:00Z") == 0)
        #expect(Validation.triggerTime("2000-02-29T00:00:00Z") == 951_782_400)
        #expect(Validation.triggerTime("yesterday") == nil)
        #expect(Validation.triggerTime("2026-11-27T12:00:00") == nil)
        #expect(Validation.triggerTime("2026-13-27T12:00:00Z") == nil)
        #expect(Validation.triggerTime("2026-11-27T12:00:00.Z") == nil)
    }

    @Test func multiDocumentYAMLWithLegacyEndpointsAndDefaults() throws {
        var loader = ManifestLoader()
        let yaml = """
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: legacy}
            spec:
              clusterIP: 10.96.0.50
              sessionAffinity: ClientIP
              ports: [{name: dns, port: 53, protocol: UDP}]
            ---
            ---
            apiVersion: v1
            kind: Endpoints
            metadata: {name: legacy}
            subsets:
            - addresses: [{ip: 10.0.0.1, nodeName: n1}, {ip: "fd00::1"}]
              notReadyAddresses: [{ip: 10.0.0.2}]
              ports: [{name: dns, port: 5353, protocol: UDP}]
            """
        loader.add(contents: Array(yaml.utf8), file: "legacy.yaml")
        let result = loader.result()
        #expect(result.diagnostics.isEmpty)
        let service = try #require(result.state.services.first)
        #expect(service.name == NamespacedName(namespace: "default", name: "legacy"))
        #expect(service.sessionAffinity == .clientIP(timeoutSeconds: 10800))
        let slices = result.state.endpointSlices
        #expect(slices.map(\.addressType) == [.ipv4, .ipv6])
        #expect(slices[0].endpoints.map(\.conditions.ready) == [true, false])
        #expect(slices[0].endpoints.map(\.conditions.serving) == [true, false])
        #expect(slices[0].ports == [.init(name: "dns", protocol: .udp, port: 5353)])
    }

    @Test func legacyEndpointsYieldToSlices() {
        var loader = ManifestLoader()
        let yaml = """
            {"apiVersion": "v1", "kind": "List", "items": [
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "namespace": "ns"},
               "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80}]}},
              {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "a", "namespace": "ns"},
               "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
              {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "a-1", "namespace": "ns", "labels": {"kubernetes.io/service-name": "a"}},
               "addressType": "IPv4", "ports": [{"port": 80}], "endpoints": [{"addresses": ["10.0.0.2"]}]}
            ]}
            """
        loader.add(contents: Array(yaml.utf8), file: "both.json")
        let result = loader.result()
        #expect(result.state.endpointSlices.map(\.name.name) == ["a-1"])
        #expect(
            result.diagnostics.map(\.description)
                == ["note: both.json: Endpoints ns/a: EndpointSlices exist for this Service; legacy Endpoints ignored"])
    }

    @Test func directoriesLoadTheirManifestFilesInNameOrder() {
        let result = ManifestLoader.load(paths: ["\(Repository.fixtures)/seed"])
        #expect(result.diagnostics.isEmpty)
        #expect(result.state.services.map(\.name.description) == ["default/service-test"])
        #expect(result.state.endpointSlices.first?.endpoints.map(\.address.description) == ["10.0.1.2", "10.0.2.2"])
    }

    @Test func headlessAndExternalNameServicesLoad() throws {
        var loader = ManifestLoader()
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: headless, namespace: db}
            spec: {clusterIP: None, ports: [{port: 5432}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: ext, namespace: db}
            spec: {type: ExternalName, externalName: db.example.com}
            """
        loader.add(contents: Array(yaml.utf8), file: "x.yaml")
        let result = loader.result()
        #expect(result.warnings.isEmpty)
        #expect(result.state.services.map(\.clusterIPs) == [[], []])
    }

    @Test func configFileCarriesKubeProxySettings() throws {
        let config = try ProxyConfigurationFile.load(path: "\(Repository.fixtures)/config/kube-proxy.yaml")
        #expect(config.hostnameOverride == "node-1")
        #expect(config.clusterCIDRs == [CIDR("10.244.0.0/16")!, CIDR("fd00:10:244::/56")!])
        #expect(config.masqueradeAll == true)
        #expect(config.masqueradeBit == 15)
        #expect(config.localhostNodePorts == false)
        #expect(config.nodePortAddresses == [CIDR("192.168.0.0/24")!])
        #expect(config.conntrackMaxPerCore == 65536 && config.conntrackMin == 262144)
        #expect(config.conntrackTCPEstablishedTimeout == 86400 && config.conntrackTCPCloseWaitTimeout == 3600)
        #expect(config.conntrackTCPBeLiberal == false)
        #expect(config.conntrackUDPTimeout == 0 && config.conntrackUDPStreamTimeout == 150)
        #expect(config.oomScoreAdj == -500 && config.loggingFormat == "json" && config.loggingVerbosity == 4)
        #expect(config.apiQPS == 20 && config.apiBurst == 40)
        #expect(config.unknownFields.isEmpty)
    }

    @Test(arguments: [
        ("oomScoreAdj: -1001", "oomScoreAdj: -1001 is out of range (-1000-1000)"),
        ("logging: {format: xml}", "logging.format: expected text or json, found \"xml\""),
    ])
    func configFileValuesOutOfRangeNameTheirField(line: String, message: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-config-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\(line)\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ProxyConfigurationFile.LoadError.self) { try ProxyConfigurationFile.load(path: path) }
        do {
            _ = try ProxyConfigurationFile.load(path: path)
        } catch {
            #expect(error.description == "\(path): \(message)")
        }
    }
}

enum JSONListProbe {
    static func items(_ text: String) -> Int? {
        var text = text
        return text.withUTF8 { JSONList($0)?.items.count }
    }

    /// The items of a `List`, split and decoded one by one as a large one is.
    static func documents(_ text: String) -> [ManifestDocument]? {
        var text = text
        return text.withUTF8 { ManifestLoader.decodeListItems($0, minimumItems: 0) { $0 } }
    }
}
