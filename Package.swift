// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "natsync",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "natsync", targets: ["natsync"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // Addresses, prefixes and protocols, parsed the way Kubernetes parses them.
        .target(name: "NatsyncNet"),
        // Small pieces several modules share: a key ordered as bytes, a map over the cores.
        .target(name: "NatsyncUtilities"),
        // Validated Kubernetes objects: Services and EndpointSlices.
        .target(name: "NatsyncModel", dependencies: ["NatsyncNet"]),
        // Kubernetes objects as the API server and kubectl write them: the wire types, their fast
        // JSON reader, list pages and watch events, and validation into the model with diagnostics.
        .target(name: "NatsyncWire", dependencies: ["NatsyncModel", "NatsyncNet", "NatsyncUtilities"]),
        // Manifest files (YAML, JSON, lists, directories) and the kube-proxy configuration file.
        .target(
            name: "NatsyncManifest",
            dependencies: ["NatsyncWire", "NatsyncModel", "NatsyncUtilities", .product(name: "Yams", package: "Yams")]
        ),
        // Structured iptables rules and tables, and their iptables-restore text.
        .target(name: "NatsyncIPTables", dependencies: ["NatsyncNet"]),
        // libip4tc, for the shim's link line (pkg-config libip4tc; Debian libiptc-dev).
        .systemLibrary(name: "CIP4TC", pkgConfig: "libip4tc", providers: [.apt(["libiptc-dev"])]),
        // libip6tc, the same for the IPv6 tables (pkg-config libip6tc; Debian libiptc-dev).
        .systemLibrary(name: "CIP6TC", pkgConfig: "libip6tc", providers: [.apt(["libiptc-dev"])]),
        // The C shim: libiptc handles and variable-length kernel entries behind a stdint-only header.
        // libnetfilter_conntrack (pkg-config libnetfilter_conntrack; Debian libnetfilter-conntrack-dev).
        .systemLibrary(
            name: "CNetfilterConntrack", pkgConfig: "libnetfilter_conntrack",
            providers: [.apt(["libnetfilter-conntrack-dev"])]),
        // libnftnl and libmnl: nf_tables over netlink (Debian libnftnl-dev, libmnl-dev).
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev"])]),
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        .target(name: "CNatsyncShim", dependencies: ["CIP4TC", "CIP6TC", "CNetfilterConntrack", "CNftnl", "CMnl"]),
        // kube-proxy's iptables-mode rule generation: model and options in, tables out; and which
        // services' UDP flows a committed change made stale.
        .target(
            name: "NatsyncRules",
            dependencies: [
                "NatsyncModel", "NatsyncIPTables", "NatsyncReconcile", "NatsyncConntrack", "NatsyncUtilities",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Planning the change from live tables to desired ones: pure, no kernel access.
        .target(name: "NatsyncReconcile", dependencies: ["NatsyncIPTables"]),
        // Following a packet through the tables, hook by hook: pure, no kernel access.
        .target(name: "NatsyncTrace", dependencies: ["NatsyncIPTables"]),
        // Conntrack flows, and which of them are stale for given frontends and endpoints: what the
        // kernel's cleanup applies. Pure, no kernel access.
        .target(name: "NatsyncConntrack", dependencies: ["NatsyncNet"]),
        // The kernel edge: libiptc handles, conntrack, the xtables lock, network namespaces, transactions.
        .target(
            name: "NatsyncKernel",
            dependencies: ["CNatsyncShim", "NatsyncModel", "NatsyncReconcile", "NatsyncIPTables", "NatsyncConntrack"]),
        // The Kubernetes API as a source of desired state: kubeconfig, list and watch.
        .target(
            name: "NatsyncKubernetes",
            dependencies: [
                "NatsyncWire", "NatsyncModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // natsync run: the sync loop, manifest watching, health and metrics, under ServiceLifecycle.
        .target(
            name: "NatsyncDaemon",
            dependencies: [
                "NatsyncKernel", "NatsyncRules", "NatsyncWire", "NatsyncManifest", "NatsyncConntrack", "NatsyncKubernetes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "natsync",
            dependencies: [
                "NatsyncWire", "NatsyncManifest", "NatsyncRules", "NatsyncIPTables", "NatsyncReconcile", "NatsyncKernel",
                "NatsyncConntrack",
                "NatsyncDaemon", "NatsyncKubernetes", "NatsyncTrace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The benchmarks' floor (libiptc and the kernel's own replace, timed in C), kept out of the product.
        .target(name: "CNatsyncBenchFloor", dependencies: ["CIP4TC"], path: "Benchmarks/CNatsyncBenchFloor"),
        .executableTarget(
            name: "NatsyncBench",
            dependencies: [
                "NatsyncManifest", "NatsyncRules", "NatsyncIPTables", "NatsyncKernel", "NatsyncConntrack", "CNetfilterConntrack",
                "NatsyncDaemon", "NatsyncReconcile", "NatsyncWire", "CNatsyncBenchFloor", "NatsyncAPIEmulator",
            ],
            path: "Benchmarks/NatsyncBench"
        ),
        // Fuzzing the manifest loader and the restore-text parser (`make stress` runs libFuzzer on it);
        // built normally, it replays the committed corpus.
        .executableTarget(
            name: "natsync-fuzz", dependencies: ["NatsyncManifest", "NatsyncWire", "NatsyncIPTables"], path: "Fuzz/NatsyncFuzz"),
        // The pods and clients of the traffic tests.
        .executableTarget(name: "natsync-echo", path: "Tests/Tools/EchoServer"),
        // What every test target shares: where the repository and its fixtures are.
        .target(name: "NatsyncTestSupport", path: "Tests/NatsyncTestSupport"),
        // A Kubernetes API server emulator (list, watch, TLS, failures) for the tests and the bench.
        .target(
            name: "NatsyncAPIEmulator",
            dependencies: [
                "NatsyncTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
            ],
            path: "Tests/NatsyncAPIEmulator"),
        .testTarget(name: "NatsyncNetTests", dependencies: ["NatsyncNet"]),
        .testTarget(name: "NatsyncManifestTests", dependencies: ["NatsyncTestSupport", "NatsyncManifest", "NatsyncWire"]),
        .testTarget(name: "NatsyncIPTablesTests", dependencies: ["NatsyncIPTables"]),
        .testTarget(
            name: "NatsyncRulesTests",
            dependencies: ["NatsyncRules", "NatsyncManifest", "NatsyncIPTables", "NatsyncUtilities"]
        ),
        .testTarget(name: "NatsyncTraceTests", dependencies: ["NatsyncTestSupport", "NatsyncTrace", "NatsyncRules", "NatsyncManifest"]),
        .testTarget(name: "NatsyncCLITests", dependencies: ["NatsyncTestSupport", "natsync"]),
        .testTarget(name: "NatsyncReconcileTests", dependencies: ["NatsyncReconcile", "NatsyncRules"]),
        .testTarget(name: "NatsyncDaemonTests", dependencies: ["NatsyncDaemon"]),
        .testTarget(
            name: "NatsyncKubernetesTests",
            dependencies: [
                "NatsyncTestSupport", "NatsyncKubernetes", "NatsyncManifest", "NatsyncWire", "NatsyncAPIEmulator",
                .product(name: "Yams", package: "Yams"),
            ]),
        .testTarget(name: "NatsyncKernelTests", dependencies: ["NatsyncTestSupport", "NatsyncKernel", "NatsyncIPTables", "CNatsyncShim"]),
        .testTarget(name: "NatsyncConntrackTests", dependencies: ["NatsyncConntrack", "NatsyncRules", "NatsyncReconcile"]),
        // Live-kernel tests in network namespaces they create; they skip without root.
        .testTarget(
            name: "NatsyncIntegrationTests",
            dependencies: [
                "natsync", "natsync-echo", "NatsyncTestSupport", "NatsyncAPIEmulator",
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
    ]
)
