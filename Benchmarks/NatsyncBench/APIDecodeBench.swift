import Foundation
import NatsyncManifest
import NatsyncModel
import NatsyncWire

/// What reading the API server's answers costs: list pages of 500 (items without `kind`, as the
/// server sends them) and watch events, read straight from the bytes against the reference
/// decoder (`JSONDecoder`, each item decoded on its own).
enum APIDecodeBench {
    static func run(services: Int, events: Int) {
        let state = cluster(services: services, endpointsPerService: 10)
        let items = KubectlOutput.items(state)
        var pages: [(APIKind, Data)] = []
        for kind in APIKind.allCases {
            let objects = items.filter { $0["kind"] as? String == kind.rawValue }.map { item in
                item.filter { $0.key != "kind" && $0.key != "apiVersion" }
            }
            for start in stride(from: 0, to: objects.count, by: 500) {
                let page: [String: Any] = [
                    "kind": "\(kind.rawValue)List", "apiVersion": "v1",
                    "metadata": ["resourceVersion": "4711", "continue": start + 500 < objects.count ? "token" : ""],
                    "items": Array(objects[start..<min(start + 500, objects.count)]),
                ]
                pages.append((kind, try! JSONSerialization.data(withJSONObject: page)))
            }
        }
        let megabytes = Double(pages.reduce(0) { $0 + $1.1.count }) / 1e6
        func decodeAll(_ decode: (Data, APIKind) throws -> APIListPage) -> Double {
            median(
                (0..<3).map { _ in
                    seconds { for (kind, data) in pages { _ = try! decode(data, kind) } }
                })
        }
        let fast = decodeAll(APIDecoder.list)
        // The syntax check the fast reader runs first (the reference decoder rejects text that is
        // not JSON anywhere; the wire reader skips unread members by structure alone).
        let check = median(
            (0..<3).map { _ in
                seconds { for (_, data) in pages { _ = data.withUnsafeBytes { JSONSyntax.firstError($0.bindMemory(to: UInt8.self)) } } }
            })
        let reference = decodeAll(APIDecoder.referenceList)

        // The same objects as one kubectl List file, loaded as `natsync sync -f` loads it.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("natsync-api-bench-\(getpid()).json").path
        try! KubectlOutput.json(state).write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let load = median((0..<3).map { _ in seconds { _ = ManifestLoader.load(paths: [file]) } })

        let slices = items.filter { $0["kind"] as? String == "EndpointSlice" }.prefix(events)
        let lines = slices.map { try! JSONSerialization.data(withJSONObject: ["type": "MODIFIED", "object": $0]) }
        func decodeEvents(_ decode: (Data, APIKind) throws -> APIWatchEvent) -> Double {
            median((0..<3).map { _ in seconds { for line in lines { _ = try! decode(line, .endpointSlice) } } }) / Double(lines.count)
        }
        let fastEvent = decodeEvents(APIDecoder.event)
        let referenceEvent = decodeEvents(APIDecoder.referenceEvent)

        print("API decode: \(services) services x 10 endpoints, \(pages.count) pages of 500 (\(String(format: "%.1f", megabytes)) MB)")
        print(
            String(
                format: "  list pages    %7.3f s  (reference decoder %7.3f s, %.2fx); of which the JSON syntax check %.3f s", fast,
                reference,
                fast / reference, check))
        print(String(format: "  kubectl file  %7.3f s  (the same objects as one List, loaded as sync -f loads it)", load))
        print(
            String(
                format: "  watch event   %7.1f us (reference decoder %7.1f us, %.2fx), an EndpointSlice of 10 endpoints",
                fastEvent * 1e6, referenceEvent * 1e6, fastEvent / referenceEvent))
    }
}
