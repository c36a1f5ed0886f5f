import Foundation
import NatsyncTestSupport
import Testing

/// natsync and another program writing the same tables at once: every write of both is kept. On
/// the legacy tables the xtables lock does it (libiptc replaces a whole table, and the kernel only
/// notices a changed entry count); on nf_tables each transaction carries the ruleset generation it
/// was planned against, and the one that loses the race is refused whole and retried.
@Suite(.serialized, liveKernel)
struct ConcurrentWriterTests {
    /// A shell loop in the node namespace: appends to its own chain and to FORWARD, deleting the
    /// oldest of each every third round, with `$IPTABLES -w`, until a stop file appears.
    /// It logs each write that succeeded.
    static let writer = """
        $IPTABLES -w -N WRITER
        i=0
        while [ ! -e "$STOP" ]; do
          a="10.99.$((i / 250)).$((i % 250 + 1))"
          $IPTABLES -w -A WRITER -s "$a" -j RETURN && echo "A $a"
          $IPTABLES -w -A FORWARD -s "$a" -j RETURN && echo "F $a"
          if [ $((i % 3)) -eq 2 ]; then
            $IPTABLES -w -D WRITER 1 && echo "D WRITER"
            first=$($IPTABLES -w -S FORWARD | grep -m1 -- '-s 10.99.' | sed 's/^-A FORWARD //')
            $IPTABLES -w -D FORWARD $first && echo "D FORWARD"
          fi
          i=$((i + 1))
        done
        """

    @Test(arguments: ["legacy", "nft"])
    func twoHundredSyncsAndAConcurrentWriterBothKeepEveryWrite(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        let stop = scene.folder.appendingPathComponent("stop").path
        let log = scene.folder.appendingPathComponent("writer.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["STOP=\(stop)", "IPTABLES=iptables-\(backend)", "ip", "netns", "exec", scene.node, "sh", "-c", Self.writer]
        writer.standardOutput = try FileHandle(forWritingTo: log)
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        defer { if writer.isRunning { writer.terminate() } }

        var generator = SystemRandomNumberGenerator()
        var last = ""
        var attempts = 0
        var passedOver = 0
        for round in 0..<200 {
            var yaml = ""
            for index in 0..<Int.random(in: 1...8, using: &generator) {
                yaml += Objects.service(
                    "svc\(index)", clusterIP: "10.96.2.\(index + 1)", type: index % 2 == 0 ? "NodePort" : "ClusterIP",
                    nodePort: index % 2 == 0 ? 30200 + index : nil)
                yaml += Objects.slice("svc\(index)", (0..<Int.random(in: 0...3, using: &generator)).map { "10.0.\(index).\($0 + 10)" })
            }
            last = try scene.manifest("round\(round).yaml", yaml)
            let output = try scene.sync([last]).standardOutput + "\n"
            // "..., 3 attempts" after a table written more than once.
            // "(12.5 ms, 3 others' commits passed over, 2 attempts)" when it took more than one.
            for part in output.split(whereSeparator: { $0 == "\n" || $0 == "," }) {
                let count = Int(part.split(separator: " ").first ?? "") ?? 0
                if part.hasSuffix(" attempts)") { attempts += count }
                if part.contains(" others' commits passed over") { passedOver += count }
            }
        }
        FileManager.default.createFile(atPath: stop, contents: nil)
        writer.waitUntilExit()

        // natsync's side: the tables hold exactly its last write.
        let diff = try scene.natsync(["diff", "-f", last] + scene.backendFlags + Scene.nodeFlags, check: false)
        #expect(diff.status == 0, "\(diff.standardOutput)")

        // The writer's side: each chain holds exactly the rules it added and did not delete, in order.
        let operations = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        var expected: [String: [String]] = ["WRITER": [], "FORWARD": []]
        for operation in operations {
            let parts = operation.split(separator: " ").map(String.init)
            switch parts[0] {
            case "A": expected["WRITER"]!.append(parts[1])
            case "F": expected["FORWARD"]!.append(parts[1])
            default: expected[parts[1]]!.removeFirst()
            }
        }
        let saved = try scene.save(tables: ["filter"]).split(separator: "\n")
        for chain in ["WRITER", "FORWARD"] {
            let actual = saved.filter { $0.hasPrefix("-A \(chain) -s 10.99.") }.map { String($0.split(separator: " ")[3].dropLast(3)) }
            #expect(actual == expected[chain]!, "\(chain): \(actual.count) rules live, \(expected[chain]!.count) written and kept")
        }
        let writes = operations.count
        #expect(writes > 50, "the writer made only \(writes) writes during the syncs")
        // Its commits touch none of natsync's chains: on nf_tables a sync that saw them during its
        // read commits at the generation they made rather than read again.
        #expect(backend == "legacy" || passedOver > 0, "no commit of the writer was passed over")
        print(
            "concurrent writers (\(backend)): natsync 200 syncs (\(attempts) transactions in those that took more than one, \(passedOver) of the writer's commits passed over), the other writer \(writes) writes (\(expected["WRITER"]!.count + expected["FORWARD"]!.count) rules kept); nothing lost on either side"
        )
    }
}
