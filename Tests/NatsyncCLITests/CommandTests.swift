import Foundation
import NatsyncTestSupport
import Testing

struct CommandTests {
    static let seedArguments = [
        "sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--hostname-override", "node-1",
        "--cluster-cidr", "10.0.0.0/16", "--node-ip", "192.168.0.2",
    ]

    @Test func seedDryRunMatchesItsSnapshotAndTheReadme() throws {
        let output = try NatsyncRunner.run(Self.seedArguments)
        #expect(output.status == 0)
        #expect(output.standardError == "")
        if let mismatch = snapshotMismatch(output.standardOutput, path: "\(Repository.root)/Fixtures/seed/expected.rules") {
            Issue.record(Comment(rawValue: mismatch))
        }
        let readme = try String(contentsOfFile: "\(Repository.root)/README.md", encoding: .utf8)
        #expect(readme.contains(output.standardOutput), "README.md must show the seed's dry run as it is now")
    }

    @Test func strictTurnsWarningsIntoExit2WithNothingPrinted() throws {
        let output = try NatsyncRunner.run([
            "sync", "--dry-run", "--strict", "-f", "Fixtures/seed/service-test.yaml", "-f", "Fixtures/bad/bad-cluster-ip.yaml",
        ])
        #expect(output.status == 2)
        #expect(output.standardOutput == "")
        #expect(output.standardError.contains(#"Service default/web: spec.clusterIP: invalid IP address "999.1.1.1"; object skipped"#))
        #expect(output.standardError.hasSuffix("natsync: 1 warning(s) with --strict; nothing applied\n"))
    }

    /// A path natsync cannot read stops every command that reads manifests, `--strict` or not:
    /// exit 2, the path and the reason on stderr, nothing printed or applied.
    @Test(arguments: [
        ["sync", "--dry-run"], ["sync", "--dry-run", "--strict"],
        ["trace", "--src", "10.0.3.2", "--dst", "10.3.241.152:80"],
    ])
    func unreadableInputIsAnErrorWithOrWithoutStrict(command: [String]) throws {
        for (path, reason) in [
            ("Fixtures/seed/seeed.yaml", "no such file or directory"),
            ("Fixtures/bad/unparseable.json", "cannot parse: line 7 column 24: unexpected character 'x'"),
            (
                "Fixtures/bad/truncated.yaml",
                "cannot parse: line 8 column 1: did not find expected ',' or ']' while parsing a flow sequence"
            ),
        ] {
            let output = try NatsyncRunner.run(
                command + ["-f", "Fixtures/seed/service-test.yaml", "-f", path, "--hostname-override", "node-1"])
            #expect(output.status == 2, "\(command) \(path): \(output.standardError)")
            #expect(output.standardOutput == "")
            #expect(
                output.standardError
                    == "error: \(path): \(reason)\nnatsync: 1 input error(s): a path or file could not be read; nothing applied\n")
        }
    }

    @Test func withoutStrictTheValidObjectsAreStillRendered() throws {
        let output = try NatsyncRunner.run([
            "sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "-f", "Fixtures/bad/bad-cluster-ip.yaml",
            "--hostname-override", "node-1",
        ])
        #expect(output.status == 0)
        #expect(output.standardOutput.contains("KUBE-SVC-GBTMB5ZTD56ECL5F"))
        #expect(output.standardError.contains("warning: Fixtures/bad/bad-cluster-ip.yaml"))
    }

    @Test(arguments: [
        (["sync", "--dry-run"], "give at least one manifest with -f PATH"),
        (["sync", "--dry-run", "-f", "x", "--cluster-cidr", "10.0.0.0/33"], #"--cluster-cidr: invalid CIDR "10.0.0.0/33""#),
        (["sync", "--dry-run", "-f", "x", "--iptables-masquerade-bit", "40"], "--iptables-masquerade-bit: 40 is out of range (0-31)"),
        (["sync", "--dry-run", "-f", "x", "--ip-family", "ipx"], "--ip-family"),
        (
            ["sync", "--dry-run", "-f", "x", "--node-ip", "10.0.0.1,10.0.0.2"],
            #"--node-ip: give at most one address per family, got "10.0.0.1,10.0.0.2""#
        ),
        (["sync", "--dry-run", "-f", "x", "--node-ip", "10.0.0.1,nope"], #"--node-ip: invalid IP address "nope""#),
        (["trace", "-f", "x", "--src", "10.0.0.1", "--dst", "[fd00::1]:80"], "--src 10.0.0.1 and --dst fd00::1 are of different families"),
        (["sync", "-f", "x", "--bogus"], "Unknown option '--bogus'"),
        (["run", "-f", "x", "--iptables-min-sync-period", "soon"], "--iptables-min-sync-period"),
        (["run", "-f", "x", "--healthz-bind-address", "nowhere"], #"--healthz-bind-address: expected host:port, got "nowhere""#),
        (["run", "-f", "x", "--kubeconfig", "k"], "give either -f PATH or --kubeconfig/--master, not both"),
        (["run", "--master", "10.0.0.1:6443"], #"--master: expected an http or https URL, got "10.0.0.1:6443""#),
        (["run", "-f", "x", "--oom-score-adj=-1001"], "--oom-score-adj: -1001 is out of range (-1000-1000)"),
        (["run", "-f", "x", "--logging-format", "xml"], "--logging-format"),
        (["sync", "-f", "x", "--iptables-lock-timeout=-1"], "--iptables-lock-timeout: -1.0 is out of range (0-3600 seconds)"),
        (["sync", "-f", "x", "--detect-local-mode", "PodCIDR"], #"--detect-local-mode: unknown mode "PodCIDR""#),
        (
            ["sync", "-f", "x", "--detect-local-mode", "BridgeInterface"],
            "--detect-local-mode BridgeInterface needs --pod-bridge-interface"
        ),
        (
            ["sync", "-f", "x", "--detect-local-mode", "InterfaceNamePrefix"],
            "--detect-local-mode InterfaceNamePrefix needs --pod-interface-name-prefix"
        ),
    ])
    func badUsageExits2(arguments: [String], message: String) throws {
        let output = try NatsyncRunner.run(arguments)
        #expect(output.status == 2)
        #expect(output.standardError.contains(message), "\(output.standardError)")
    }

    /// kubeadm's `kube-proxy` ConfigMap (`config.conf`, every field kubeadm writes, zero values
    /// meaning "default") loads without a word and gives the rules of the equivalent flags.
    @Test func kubeadmsConfigFileLoadsQuietlyAndMatchesTheFlags() throws {
        let seed = [
            "sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--hostname-override", "node-1", "--node-ip", "192.168.0.2",
        ]
        let fromFile = try NatsyncRunner.run(seed + ["--config", "Fixtures/config/kubeadm-config.conf"])
        #expect(fromFile.status == 0 && fromFile.standardError.isEmpty, "\(fromFile.standardError)")
        let fromFlags = try NatsyncRunner.run(seed + ["--cluster-cidr", "10.244.0.0/16"])
        #expect(fromFile.standardOutput == fromFlags.standardOutput)
    }

    /// `nodePortAddresses: [primary]` (and `--nodeport-addresses primary`): NodePorts on the
    /// node's primary IP only, so no localhost NodePorts either.
    @Test func primaryNodePortAddressesAreTheNodesPrimaryIP() throws {
        let base = [
            "sync", "--dry-run", "-f", "Fixtures/rules/nodeport-addresses/input.yaml", "--hostname-override", "test-node",
            "--node-ip", "192.168.0.2", "--node-addresses", "192.168.0.2,192.168.1.2,127.0.0.1",
        ]
        let fromFile = try NatsyncRunner.run(base + ["--config", "Fixtures/config/nodeport-primary.yaml"])
        #expect(fromFile.status == 0, "\(fromFile.standardError)")
        let nodePortJumps = fromFile.standardOutput.split(separator: "\n").filter {
            $0.hasSuffix("-j KUBE-NODEPORTS") && $0.hasPrefix("-A KUBE-SERVICES")
        }
        #expect(nodePortJumps.count == 1 && nodePortJumps[0].contains("-d 192.168.0.2 "), "\(nodePortJumps)")
        let fromFlag = try NatsyncRunner.run(base + ["--nodeport-addresses", "primary"])
        #expect(fromFlag.standardOutput == fromFile.standardOutput)
    }

    @Test func unknownConfigFieldsAreWarningsAndErrorsWithStrict() throws {
        let base = ["sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--config", "Fixtures/config/unknown-fields.yaml"]
        let lenient = try NatsyncRunner.run(base)
        #expect(lenient.status == 0)
        #expect(lenient.standardError.contains("warning: Fixtures/config/unknown-fields.yaml: conntrack.maxPerCor: unknown field; ignored"))
        #expect(lenient.standardError.contains("warning: Fixtures/config/unknown-fields.yaml: newField: unknown field; ignored"))
        let strict = try NatsyncRunner.run(base + ["--strict"])
        #expect(strict.status == 2 && strict.standardOutput.isEmpty)
        #expect(strict.standardError.contains("natsync: 2 warning(s) with --strict; nothing applied"), "\(strict.standardError)")
        let ipvs = try NatsyncRunner.run([
            "sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--config", "Fixtures/config/ipvs-mode.yaml",
        ])
        #expect(ipvs.status == 2)
        #expect(ipvs.standardError.contains("mode: natsync is an iptables-mode proxy; found \"ipvs\""), "\(ipvs.standardError)")
    }

    /// `detectLocalMode` and `detectLocal` from the config file shape the masquerade rule.
    @Test func theConfigFileChoosesHowLocalTrafficIsDetected() throws {
        let base = ["sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--config", "Fixtures/config/detect-local.yaml"]
        let bridge = try NatsyncRunner.run(base)
        #expect(bridge.status == 0, "\(bridge.standardError)")
        #expect(bridge.standardOutput.contains("--dport 80 ! -i cbr0 -j KUBE-MARK-MASQ"), "\(bridge.standardOutput)")
        let flags = try NatsyncRunner.run(
            [
                "sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--detect-local-mode", "InterfaceNamePrefix",
                "--pod-interface-name-prefix", "veth",
            ])
        #expect(flags.standardOutput.contains("--dport 80 ! -i veth+ -j KUBE-MARK-MASQ"), "\(flags.standardOutput)")
    }

    /// As kube-proxy: with --config the file's values win, and the flags bound to the same
    /// settings are ignored (and said to be); --hostname-override still applies.
    @Test func configFileSettingsWinOverTheirFlags() throws {
        let base = ["sync", "--dry-run", "-f", "Fixtures/seed/service-test.yaml", "--config", "Fixtures/config/kube-proxy.yaml"]
        let fromFile = try NatsyncRunner.run(base)
        #expect(fromFile.status == 0)
        // masqueradeBit 15 and masqueradeAll from the file.
        #expect(fromFile.standardOutput.contains("-A KUBE-MARK-MASQ -j MARK --or-mark 0x8000\n"))
        #expect(fromFile.standardOutput.contains(#"--dport 80 -j KUBE-MARK-MASQ"#))
        let overridden = try NatsyncRunner.run(base + ["--iptables-masquerade-bit", "14", "--hostname-override", "node-9"])
        #expect(overridden.standardOutput == fromFile.standardOutput.replacingOccurrences(of: "node-1", with: "node-9"))
        #expect(
            overridden.standardError.contains(
                "note: --iptables-masquerade-bit ignored: --config is given, and kube-proxy reads the file in place of that flag"),
            "\(overridden.standardError)")
        let badConfig = try NatsyncRunner.run(base.dropLast(2) + ["--config", "Fixtures/seed/service-test.yaml"])
        #expect(badConfig.status == 2)
        #expect(badConfig.standardError.contains("kind: expected KubeProxyConfiguration"))
    }
}
