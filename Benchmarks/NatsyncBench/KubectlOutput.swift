import Foundation
import NatsyncModel

/// `kubectl get services,endpointslices -A -o json` (and `-o yaml`) of a benchmark cluster, with
/// the fields a real API server returns (uids, resource versions, timestamps, target refs,
/// conditions), so loading it costs what loading a real cluster's output costs.
enum KubectlOutput {
    static func items(_ state: ClusterState) -> [[String: Any]] {
        var items: [[String: Any]] = []
        for (index, service) in state.services.enumerated() {
            let clusterIPs = service.clusterIPs.map(\.description)
            items.append([
                "apiVersion": "v1", "kind": "Service",
                "metadata": [
                    "name": service.name.name, "namespace": service.name.namespace, "uid": uid(index, 1),
                    "resourceVersion": "\(1000 + index)", "creationTimestamp": "2026-11-01T10:00:00Z",
                    "labels": ["app": service.name.name],
                ],
                "spec": [
                    "type": "ClusterIP", "clusterIP": clusterIPs[0], "clusterIPs": clusterIPs, "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
                    "selector": ["app": service.name.name],
                    "ports": service.ports.map { ["name": $0.name, "port": Int($0.port), "protocol": "TCP", "targetPort": 8080] },
                ],
                "status": ["loadBalancer": [String: Any]()],
            ])
        }
        for (index, slice) in state.endpointSlices.enumerated() {
            items.append([
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": [
                    "name": slice.name.name, "namespace": slice.name.namespace, "uid": uid(index, 2),
                    "resourceVersion": "\(500_000 + index)", "creationTimestamp": "2026-11-01T10:00:00Z",
                    "generateName": "\(slice.service.name)-",
                    "labels": [
                        "kubernetes.io/service-name": slice.service.name,
                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                    ],
                    "annotations": ["endpoints.kubernetes.io/last-change-trigger-time": "2026-11-01T10:00:00Z"],
                ],
                "ports": slice.ports.map { ["name": $0.name, "port": Int($0.port), "protocol": "TCP"] },
                "endpoints": slice.endpoints.enumerated().map { number, endpoint -> [String: Any] in
                    [
                        "addresses": [endpoint.address.description],
                        "conditions": ["ready": true, "serving": true, "terminating": false],
                        "nodeName": endpoint.nodeName ?? "",
                        "targetRef": [
                            "kind": "Pod", "name": "\(slice.service.name)-\(number)", "namespace": slice.name.namespace,
                            "uid": uid(index * 16 + number, 3),
                        ],
                        "zone": "zone-a",
                    ]
                },
            ])
        }
        return items
    }

    static func json(_ state: ClusterState) -> String {
        let list: [String: Any] = ["apiVersion": "v1", "kind": "List", "metadata": ["resourceVersion": ""], "items": items(state)]
        return String(decoding: try! JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
    }

    static func yaml(_ state: ClusterState) -> String {
        var out = "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n"
        for item in items(state) { emit(item, indent: 0, listItem: true, into: &out) }
        return out
    }

    /// A block-style YAML writer for what ``items(_:)`` holds: maps, lists, strings, ints, bools.
    private static func emit(_ value: Any, indent: Int, listItem: Bool, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case let map as [String: Any]:
            var first = true
            for key in map.keys.sorted() {
                let prefix = listItem && first ? "\(pad)- " : listItem ? "\(pad)  " : pad
                first = false
                let child = map[key]!
                let childIndent = indent + (listItem ? 4 : 2)
                if let scalar = scalar(child) {
                    out += "\(prefix)\(key): \(scalar)\n"
                } else {
                    out += "\(prefix)\(key):\n"
                    emit(child, indent: child is [Any] ? childIndent - 2 : childIndent, listItem: false, into: &out)
                }
            }
        case let list as [Any]:
            for element in list {
                if let scalar = scalar(element) {
                    out += "\(pad)- \(scalar)\n"
                } else {
                    emit(element, indent: indent, listItem: true, into: &out)
                }
            }
        default:
            out += "\(pad)\(scalar(value) ?? "null")\n"
        }
    }

    private static func scalar(_ value: Any) -> String? {
        switch value {
        case let text as String: return "\"\(text)\""
        case let flag as Bool: return flag ? "true" : "false"
        case let number as Int: return "\(number)"
        case let map as [String: Any] where map.isEmpty: return "{}"
        case let list as [Any] where list.isEmpty: return "[]"
        default: return nil
        }
    }

    private static func uid(_ index: Int, _ kind: Int) -> String {
        String(format: "%08x-%04x-4%03x-8000-%012x", index, kind, index % 4096, index * 7919)
    }
}
