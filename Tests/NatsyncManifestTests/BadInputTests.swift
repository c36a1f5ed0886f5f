import NatsyncModel
import NatsyncNet
import NatsyncTestSupport
import Testing

@testable import NatsyncManifest
@testable import NatsyncWire

/// Every kind of bad input gets one clear message naming the file, the object and the field, and
/// only the bad object is skipped.
struct BadInputTests {
    @Test(arguments: [
        ("bad-cluster-ip.yaml", #"Service default/web: spec.clusterIP: invalid IP address "999.1.1.1"; object skipped"#),
        ("port-out-of-range.yaml", "Service default/web: spec.ports[0].port: 65536 is out of range (1-65535); object skipped"),
        ("port-zero.yaml", "Service default/web: spec.ports[0].port: 0 is out of range (1-65535); object skipped"),
        ("port-negative.yaml", "Service default/web: spec.ports[0].port: -1 is out of range (1-65535); object skipped"),
        ("port-wrong-type.yaml", "Service default/web: spec.ports[0].port: expected an integer; object skipped"),
        (
            "unknown-protocol.yaml",
            #"Service default/web: spec.ports[0].protocol: unsupported protocol "ICMP" (must be TCP, UDP or SCTP); object skipped"#
        ),
        ("missing-port.yaml", "Service default/web: spec.ports[0].port: missing; object skipped"),
        ("missing-name.yaml", "Service at document: metadata.name: missing; object skipped"),
        ("missing-kind.yaml", "object default/web: kind: missing; object skipped"),
        ("duplicate-ports.yaml", "Service default/web: spec.ports[1].port: duplicate port 80/TCP (also spec.ports[0]); object skipped"),
        ("bad-cidr.yaml", #"Service default/web: spec.loadBalancerSourceRanges[0]: invalid CIDR "1.2.3.4/40"; object skipped"#),
        (
            "bad-name.yaml",
            #"Service default/"web\" -j ACCEPT": metadata.name: "web\" -j ACCEPT" is not a valid DNS label (lower-case letters, digits and '-', at most 63); object skipped"#
        ),
        (
            "slice-without-service.yaml",
            "EndpointSlice default/ghost-abcde: metadata.labels[kubernetes.io/service-name]: Service default/ghost not found; slice not used"
        ),
        (
            "wrong-family.yaml",
            "EndpointSlice default/web-abcde: endpoints[1].addresses[0]: fd00::1 is not an IPv4 address (addressType is IPv4); object skipped"
        ),
    ])
    func eachBadInputHasItsMessage(file: String, message: String) {
        let path = "\(Repository.fixtures)/bad/\(file)"
        let result = ManifestLoader.load(paths: [path])
        #expect(result.warnings.map(\.description) == ["warning: \(path): \(message)"])
    }

    @Test func duplicateObjectsKeepTheFirstCopy() {
        let path = "\(Repository.fixtures)/bad/duplicate-objects.yaml"
        let result = ManifestLoader.load(paths: [path])
        #expect(
            result.warnings.map(\.description)
                == ["warning: \(path): Service default/web: duplicate object (first defined in \(path)); this copy skipped"])
        #expect(result.state.services.map { $0.clusterIPs } == [[IPAddress("10.96.0.20")!]])
    }

    @Test func wrongFamilySliceIsSkippedButItsServiceStays() {
        let result = ManifestLoader.load(paths: ["\(Repository.fixtures)/bad/wrong-family.yaml"])
        #expect(result.state.services.count == 1)
        #expect(result.state.endpointSlices.isEmpty)
    }

    @Test func unknownKindsAreNotedNotWarned() {
        let path = "\(Repository.fixtures)/bad/unknown-kind.yaml"
        let result = ManifestLoader.load(paths: [path])
        #expect(result.warnings.isEmpty)
        #expect(result.diagnostics.map(\.description) == ["note: \(path): Deployment default/web: kind not used by natsync; skipped"])
    }

    @Test func oneBadObjectInAListLeavesTheRest() {
        var loader = ManifestLoader()
        let yaml = """
            apiVersion: v1
            kind: List
            items:
            - apiVersion: v1
              kind: Service
              metadata: {name: good, namespace: default}
              spec: {clusterIP: 10.96.0.5, ports: [{port: 80}]}
            - apiVersion: v1
              kind: Service
              metadata: {name: bad, namespace: default}
              spec: {clusterIP: 10.96.0.6, ports: [{port: 80, nodePort: 70000}], type: NodePort}
            - apiVersion: v1
              kind: Service
              metadata: {namespace: default}
              spec: {clusterIP: 10.96.0.7, ports: [{port: http}]}
            """
        loader.add(contents: Array(yaml.utf8), file: "list.yaml")
        let result = loader.result()
        #expect(result.state.services.map(\.name.name) == ["good"])
        #expect(
            result.warnings.map(\.description) == [
                "warning: list.yaml: Service default/bad: spec.ports[0].nodePort: 70000 is out of range (1-65535); object skipped",
                "warning: list.yaml: Service at items[2]: spec.ports[0].port: expected an integer; object skipped",
            ])
    }

    /// A file that cannot be parsed is an error with the place the parser stopped: what it
    /// wanted is unknown, so no command applies anything.
    @Test(arguments: [
        ("not-utf8.yaml", "not valid UTF-8"),
        ("truncated.yaml", "cannot parse: line 8 column 1: did not find expected ',' or ']' while parsing a flow sequence"),
        ("truncated.json", "cannot parse: line 9 column 1: unexpected end of file"),
        ("unparseable.json", "cannot parse: line 7 column 24: unexpected character 'x'"),
        (
            "tab-indented.yaml",
            "cannot parse: line 5 column 1: found a tab character that violates indentation while scanning a plain scalar"
        ),
    ])
    func filesThatDoNotParseAreErrors(file: String, message: String) {
        let path = "\(Repository.fixtures)/bad/\(file)"
        let result = ManifestLoader.load(paths: [path])
        #expect(result.errors.map(\.description) == ["error: \(path): \(message)"])
        #expect(result.warnings.isEmpty)
        #expect(result.state.services.isEmpty)
    }

    @Test func missingPathsAreErrors() {
        let result = ManifestLoader.load(paths: ["/nonexistent/natsync.yaml"])
        #expect(result.errors.map(\.description) == ["error: /nonexistent/natsync.yaml: no such file or directory"])
    }

    @Test func longHostileStringsAreQuotedAndCut() {
        var loader = ManifestLoader()
        let long = String(repeating: "x", count: 1_000_000)
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: \"\(long)\n\"}\nspec: {clusterIP: 10.96.0.5}\n"
        loader.add(contents: Array(yaml.utf8), file: "long.yaml")
        let warning = try! #require(loader.result().warnings.first)
        #expect(warning.description.count < 400)
        #expect(warning.description.contains("is not a valid DNS label"))
    }
}
