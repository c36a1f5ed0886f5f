import Foundation
import NatsyncTestSupport
import Testing

/// The kernel path's promises, checked on live tables in namespaces each test creates.
@Suite(.serialized, liveKernel)
struct KernelTests {
    static let root = Repository.root
    static let realistic = "\(root)/Fixtures/realistic/cluster.yaml"
    static let realisticFlags = ["--hostname-override", "node-1", "--cluster-cidr", "10.244.0.0/16", "--node-ip", "192.168.0.2"]

    /// The dry run's `# -I CHAIN N ...` lines as real inserts, placed where the chains exist.
    static func restoreInput(fromDryRun text: String) -> String {
        var out: [String] = []
        var inserts: [String] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# -I ") {
                inserts.append(String(line.dropFirst(2)))
            } else if line == "COMMIT" {
                out += inserts + ["COMMIT"]
                inserts = []
            } else {
                out.append(String(line))
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// natsync run inside a fresh namespace (as `ip netns exec NAME natsync ...`), whose `lo` is
    /// down, with the backend detected: the detection's and the restore backend's commands return
    /// (they once waited forever there on Foundation's loopback wakeup), and the rules land.
    @Test func syncInsideANamespaceWhoseLoopbackIsDown() throws {
        let scene = try Scene()
        defer { scene.close() }
        let bare = try scene.addBareNamespace("lo-down")
        try run(["ip", "-n", bare, "link", "set", "lo", "down"])
        let natsync = buildFolder.appendingPathComponent("natsync").path
        let synced = try run(
            ["timeout", "-k", "10", "120", "ip", "netns", "exec", bare, natsync, "sync", "-f", Self.realistic] + Self.realisticFlags,
            check: false)
        #expect(synced.status == 0, "\(synced.standardError)")
        #expect(synced.standardError.contains("iptables backend"), "\(synced.standardError)")
        let saved =
            try run(["ip", "netns", "exec", bare, "iptables-nft-save", "-t", "nat"]).standardOutput
            + run(["ip", "netns", "exec", bare, "iptables-legacy-save", "-t", "nat"]).standardOutput
        #expect(saved.contains("-A KUBE-SERVICES "), "\(saved.prefix(2000))")
    }

    @Test func syncAndRestoreOfTheDryRunGiveTheSameTables() throws {
        let scene = try Scene()
        defer { scene.close() }
        let other = try scene.addBareNamespace("restore")
        try scene.natsync(["sync", "--iptables-backend", "legacy", "-f", Self.realistic] + Self.realisticFlags)
        let dryRun = try run(
            [buildFolder.appendingPathComponent("natsync").path, "sync", "--dry-run", "-f", Self.realistic] + Self.realisticFlags)
        try run(
            ["ip", "netns", "exec", other, "iptables-legacy-restore", "--noflush"],
            input: Self.restoreInput(fromDryRun: dryRun.standardOutput))
        let viaNatsync = try scene.save()
        let viaRestore = try scene.save(other)
        #expect(viaNatsync == viaRestore)
        #expect(viaNatsync.contains("-A KUBE-SVC-TCOU7JCQXEZGVUNU"))
        #expect(viaNatsync.split(separator: "\n").count > 100)
    }

    @Test(arguments: ["legacy", "nft"])
    func aSecondSyncWithoutChangesCommitsNothingAndDiffAgrees(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        let first = try scene.natsync(["sync", "-f", Self.realistic] + scene.backendFlags + Self.realisticFlags)
        #expect(first.standardOutput.hasPrefix("natsync: committed filter, nat:"))
        let second = try scene.natsync(["sync", "-f", Self.realistic] + scene.backendFlags + Self.realisticFlags)
        #expect(second.standardOutput.hasPrefix("natsync: no changes; nothing committed"), "\(second.standardOutput)")
        let diff = try scene.natsync(["diff", "-f", Self.realistic] + scene.backendFlags + Self.realisticFlags, check: false)
        #expect(diff.status == 0 && diff.standardOutput.isEmpty)
    }

    @Test(arguments: ["legacy", "nft"])
    func diffShowsWhatSyncWouldChangeAndExits1(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        let v1 = try scene.manifest(
            "v1.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1", "10.0.9.2"]))
        let v2 = try scene.manifest("v2.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        try scene.sync([v1])
        let before = try scene.save()
        let diff = try scene.natsync(["diff", "-f", v2] + scene.backendFlags + Scene.nodeFlags, check: false)
        #expect(diff.status == 1)
        #expect(diff.standardOutput.contains("~ :KUBE-SVC-"), "\(diff.standardOutput)")
        #expect(diff.standardOutput.contains("- :KUBE-SEP-"), "\(diff.standardOutput)")
        #expect(diff.standardOutput.contains("--to-destination 10.0.9.2:8080"), "\(diff.standardOutput)")
        #expect(try scene.save() == before, "diff must not change the tables")
        try scene.sync([v2])
        let after = try scene.natsync(["diff", "-f", v2] + scene.backendFlags + Scene.nodeFlags, check: false)
        #expect(after.status == 0)
    }

    /// A rule changed in place in an owned chain (same chain, same position, one field different)
    /// is found by `diff` and put back by `sync`: one field at a time, a DNAT port, a
    /// probability, a comment, a source address.
    @Test func aRuleChangedInPlaceInAnOwnedChainIsFoundAndPutBack() throws {
        let scene = try Scene()
        defer { scene.close() }
        try scene.natsync(["sync", "--iptables-backend", "legacy", "-f", Self.realistic] + Self.realisticFlags)
        let diff = ["diff", "--iptables-backend", "legacy", "-f", Self.realistic] + Self.realisticFlags
        #expect(try scene.natsync(diff, check: false).status == 0)
        let mutations: [(String, (String) -> String?)] = [
            (
                "-j DNAT",
                { line in
                    guard let range = line.range(of: #":[0-9]+$"#, options: .regularExpression) else { return nil }
                    return line[..<range.lowerBound] + ":\(Int(line[range].dropFirst())! + 1)"
                }
            ),
            (
                "--probability",
                { line in
                    line.replacingOccurrences(
                        of: #"--probability [0-9.]+"#, with: "--probability 0.10000000009", options: .regularExpression)
                }
            ),
            (
                "--comment",
                { line in
                    guard let range = line.range(of: #"--comment "[^"]*"#, options: .regularExpression) else { return nil }
                    return line.replacingCharacters(in: range, with: line[range] + "x")
                }
            ),
            (
                "-j KUBE-MARK-MASQ",
                { line in
                    line.replacingOccurrences(of: #"-s [0-9.]+/32"#, with: "-s 10.99.99.99/32", options: .regularExpression)
                }
            ),
        ]
        for (marker, mutate) in mutations {
            let saved = try scene.save(tables: ["nat"]).split(separator: "\n").map(String.init)
            var positions: [String: Int] = [:]
            var target: (chain: String, index: Int, line: String)?
            for line in saved where line.hasPrefix("-A ") {
                let chain = String(line.split(separator: " ")[1])
                positions[chain, default: 0] += 1
                if target == nil, chain.hasPrefix("KUBE-S"), line.contains(marker), let changed = mutate(line), changed != line {
                    target = (chain, positions[chain]!, changed)
                }
            }
            let found = try #require(target, "no rule with \(marker)")
            let arguments = found.line.split(separator: " ").dropFirst(2).map(String.init)
            // Through sh, which takes the saved line's quoting as iptables-save wrote it.
            try run([
                "ip", "netns", "exec", scene.node, "sh", "-c",
                "iptables-legacy -t nat -R \(found.chain) \(found.index) " + arguments.joined(separator: " "),
            ])
            let drift = try scene.natsync(diff, check: false)
            #expect(drift.status == 1, "\(marker): diff did not see \(found.line)")
            #expect(drift.standardOutput.contains(found.chain), "\(marker): \(drift.standardOutput)")
            try scene.natsync(["sync", "--iptables-backend", "legacy", "-f", Self.realistic] + Self.realisticFlags)
            #expect(try scene.natsync(diff, check: false).status == 0, "\(marker): not put back")
        }
    }

    /// Every bad-input case beside a valid manifest: with `--strict` natsync exits 2 and no table
    /// changes, counters included; without it the valid objects are applied and the bad one skipped.
    @Test func strictLeavesTheTablesUnchangedForEveryBadInput() throws {
        let scene = try Scene()
        defer { scene.close() }
        let foreign = try String(contentsOfFile: "\(Self.root)/Fixtures/foreign/docker-and-operator.rules", encoding: .utf8)
        try run(["ip", "netns", "exec", scene.node, "iptables-legacy-restore", "--noflush", "--counters"], input: foreign)
        let earlier = try scene.manifest(
            "earlier.yaml", Objects.service("old", clusterIP: "10.96.7.7") + Objects.slice("old", ["10.0.7.1"]))
        try scene.sync([earlier])
        let seed = "\(Self.root)/Fixtures/seed/service-test.yaml"
        let cases = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/Fixtures/bad").filter { $0.hasSuffix(".yaml") }
            .sorted()
        #expect(cases.count >= 18)
        for name in cases {
            try scene.sync([earlier])
            let before = try scene.save(counters: true, tables: ["filter", "nat", "mangle"])
            let bad = "\(Self.root)/Fixtures/bad/\(name)"
            let strict = try scene.sync([seed, bad], extra: ["--strict"], check: false)
            // A kind natsync does not use is a note, as kube-proxy ignores it, not a warning.
            if name == "unknown-kind.yaml" {
                #expect(strict.status == 0 && strict.standardError.contains("note:"))
                continue
            }
            #expect(strict.status == 2, "\(name): --strict exited \(strict.status)")
            #expect(strict.standardError.contains("nothing applied"), "\(name): \(strict.standardError)")
            #expect(try scene.save(counters: true, tables: ["filter", "nat", "mangle"]) == before, "\(name): --strict changed a table")
        }
        // Without --strict the same input applies the seed and skips only the bad object.
        let lenient = try scene.sync([seed, "\(Self.root)/Fixtures/bad/bad-cluster-ip.yaml"], check: false)
        #expect(lenient.status == 0)
        #expect(lenient.standardError.contains("warning"))
        #expect(try scene.natsync(["diff", "-f", seed] + scene.backendFlags + Scene.nodeFlags, check: false).status == 0)
    }

    @Test(arguments: ["legacy", "nft"])
    func foreignChainsAndRulesSurviveFiftySyncsAndACleanupCountersIncluded(backend: String) throws {
        let scene = try Scene(backend: backend)
        defer { scene.close() }
        let foreign = try String(contentsOfFile: "\(Self.root)/Fixtures/foreign/docker-and-operator.rules", encoding: .utf8)
        try run(["ip", "netns", "exec", scene.node, scene.restoreCommand, "--noflush", "--counters"], input: foreign)
        func foreignPart() throws -> String {
            try scene.save(counters: true, tables: ["filter", "nat", "mangle"]).split(separator: "\n")
                .filter { !$0.contains("KUBE-") }.joined(separator: "\n")
        }
        let before = try foreignPart()
        #expect(before.contains("[7:420] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"))

        var generator = SystemRandomNumberGenerator()
        for round in 0..<50 {
            var yaml = ""
            for index in 0..<Int.random(in: 1...6, using: &generator) {
                let kind = ["ClusterIP", "NodePort"].randomElement(using: &generator)!
                let proto = ["TCP", "UDP"].randomElement(using: &generator)!
                yaml += Objects.service(
                    "svc\(index)", clusterIP: "10.96.1.\(index + 1)", proto: proto, type: kind,
                    nodePort: kind == "NodePort" ? 30100 + index : nil)
                let endpoints = (0..<Int.random(in: 0...4, using: &generator)).map { "10.0.\(index).\($0 + 10)" }
                yaml += Objects.slice("svc\(index)", endpoints, proto: proto)
            }
            let result = try scene.sync([try scene.manifest("round\(round).yaml", yaml)])
            #expect(result.status == 0)
        }
        #expect(try foreignPart() == before)
        try scene.natsync(["cleanup"] + scene.backendFlags)
        #expect(try foreignPart() == before)
        let left = try scene.save(tables: ["filter", "nat"]).split(separator: "\n").filter { $0.contains("KUBE-") }
        #expect(left.allSatisfy { $0.contains("KUBE-FIREWALL") }, "only kubelet's shared KUBE-FIREWALL stays: \(left)")
    }

    @Test func syncWaitsForTheXtablesLockThenFailsLeavingTablesUnchanged() throws {
        let scene = try Scene()
        defer { scene.close() }
        let lockFile = scene.folder.appendingPathComponent("xtables.lock").path
        let manifest = try scene.manifest("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        let before = try scene.save()
        func holdLock(seconds: String) throws -> Process {
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            holder.arguments = [lockFile, "sleep", seconds]
            try holder.run()
            usleep(200_000)
            return holder
        }

        // Held for longer than natsync waits: it gives up, and nothing changed.
        let holder = try holdLock(seconds: "3")
        let start = Date()
        let blocked = try scene.sync(
            [manifest], extra: ["--iptables-lock-timeout", "1"], check: false, environment: ["XTABLES_LOCKFILE": lockFile])
        let waited = Date().timeIntervalSince(start)
        #expect(blocked.status == 1)
        #expect(
            blocked.standardError.contains("another program holds the xtables lock \(lockFile); gave up after 1s"),
            "\(blocked.standardError)")
        #expect(waited >= 1 && waited < 2.5)
        #expect(try scene.save() == before)
        holder.waitUntilExit()

        // Held for less than natsync waits: it waits, then applies.
        let shortHolder = try holdLock(seconds: "1.5")
        let again = Date()
        let applied = try scene.sync([manifest], environment: ["XTABLES_LOCKFILE": lockFile])
        #expect(Date().timeIntervalSince(again) >= 1)
        #expect(applied.standardOutput.hasPrefix("natsync: committed"))
        shortHolder.waitUntilExit()
    }

    @Test func autoPicksTheHostsBackendAndSaysWhich() throws {
        let scene = try Scene()
        defer { scene.close() }
        let manifest = try scene.manifest("web.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1"]))
        let args = ["sync", "-f", manifest] + Scene.nodeFlags
        func rules(_ namespace: String, _ backend: String) throws -> Int {
            try run(["ip", "netns", "exec", namespace, "iptables-\(backend)-save", "-t", "nat"]).standardOutput
                .split(separator: "\n").filter { $0.hasPrefix("-A KUBE-") }.count
        }

        // The scene's node looks like a legacy kubelet host: libiptc.
        let legacy = try scene.natsync(args)
        #expect(
            legacy.standardError.contains("iptables backend legacy: kubelet's hint chains are in the legacy tables"),
            "\(legacy.standardError)")
        #expect(try rules(scene.node, "legacy") > 0 && rules(scene.node, "nft") == 0)

        // A namespace where kubelet marked nft: iptables-nft-restore, nothing in the legacy tables.
        let nft = try scene.addBareNamespace("nft")
        try run(["ip", "netns", "exec", nft, "iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"])
        let viaNft = try scene.natsync(args, in: nft)
        #expect(
            viaNft.standardError.contains("iptables backend nft: kubelet's hint chains are in the nft mangle table"),
            "\(viaNft.standardError)")
        #expect(try rules(nft, "nft") > 0 && rules(nft, "legacy") == 0)
        let forced = try scene.natsync(args + ["--iptables-backend", "legacy"], in: nft)
        #expect(!forced.standardError.contains("iptables backend"), "\(forced.standardError)")
        #expect(try rules(nft, "legacy") > 0)

        // An empty namespace has no hint and no rules: like iptables-wrapper, natsync picks nft.
        let empty = try scene.addBareNamespace("empty")
        let unsure = try scene.natsync(args, in: empty)
        #expect(
            unsure.standardError.contains("iptables backend nft: no kubelet hint chains; 0 legacy rules, 0 nft rules"),
            "\(unsure.standardError)")
        #expect(
            try run(["ip", "netns", "exec", empty, "cat", "/proc/net/ip_tables_names"]).standardOutput.contains("mangle") == false,
            "probing must not create the legacy mangle table")
    }
}

/// A sync that fails part-way changes nothing, and test scenes leave nothing behind.
@Suite(.serialized, liveKernel)
struct FailureTests {
    @Test func aFailedNatChangeRollsBackTheCommittedFilterTable() throws {
        let scene = try Scene()
        defer { scene.close() }
        let v1 = try scene.manifest(
            "v1.yaml", Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", ["10.0.9.1", "10.0.9.2"]))
        try scene.sync([v1])
        // An operator's chain jumps to one of natsync's endpoint chains, so it cannot be deleted.
        let sep = try scene.save().split(separator: "\n").first { $0.hasPrefix(":KUBE-SEP-") }.map {
            String($0.dropFirst().prefix { $0 != " " })
        }!
        try run(["ip", "netns", "exec", scene.node, "iptables-legacy", "-t", "nat", "-N", "OPERATOR"])
        try run(["ip", "netns", "exec", scene.node, "iptables-legacy", "-t", "nat", "-A", "OPERATOR", "-j", sep])
        let before = try scene.save()
        // v2 drops both endpoints (nat must delete the SEP chains) and adds a service without
        // endpoints (filter gains a REJECT and is committed first).
        let v2 = try scene.manifest(
            "v2.yaml",
            Objects.service("web", clusterIP: "10.96.0.5") + Objects.slice("web", []) + Objects.service("new", clusterIP: "10.96.0.6"))
        let failed = try scene.sync([v2], check: false)
        #expect(failed.status == 1)
        #expect(failed.standardError.contains("chain \(sep) cannot be deleted"), "\(failed.standardError)")
        // EMLINK, what libiptc's iptc_delete_chain says of a chain still referenced.
        #expect(failed.standardError.contains("[EMLINK, errno 31]"), "\(failed.standardError)")
        #expect(try scene.save() == before, "the filter table committed before the failure must be restored")
    }

    @Test func scenesLeaveNoNamespaceOrProcessBehind() throws {
        let scene = try Scene()
        try scene.addPod("leftover-probe")
        let names = scene.namespaces
        scene.close()
        let list = try run(["ip", "netns", "list"]).standardOutput
        #expect(names.allSatisfy { !list.contains($0) })
        let pids = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { $0.allSatisfy(\.isNumber) }
        let commandLines = pids.compactMap { FileManager.default.contents(atPath: "/proc/\($0)/cmdline") }
            .map { String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self) }
        #expect(!commandLines.contains { $0.contains("natsync-echo serve leftover-probe 8080") })
    }
}
