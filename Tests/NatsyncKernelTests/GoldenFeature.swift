import Foundation
import NatsyncNet
import NatsyncTestSupport

/// A golden feature's expected tables (`Fixtures/rules/NAME/expected.rules`) of one family, as
/// the live-table tests restore them. Dual-stack output holds both families' tables, which one
/// restore cannot take, so it is left out.
struct GoldenFeature {
    let name: String
    let path: String
    let text: String
    let family: IPFamily

    /// Every single-family golden feature, by name.
    static func singleFamily() throws -> [GoldenFeature] {
        let folder = Repository.root + "/Fixtures/rules"
        return try FileManager.default.contentsOfDirectory(atPath: folder).sorted().compactMap { name in
            let path = "\(folder)/\(name)/expected.rules"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            guard text.components(separatedBy: "*nat").count == 2 else { return nil }
            return GoldenFeature(name: name, path: path, text: text, family: text.contains("::") ? .ipv6 : .ipv4)
        }
    }
}
