# natsync: build, test, demo and benchmark entry points.
SWIFT ?= swift
DEB_PACKAGES := libiptc-dev libnetfilter-conntrack-dev libnftnl-dev libmnl-dev iptables conntrack iproute2 prometheus openssl
SEED := Fixtures/seed/service-test.yaml
VERSION := $(shell sed -n 's/.*version: "\(.*\)".*/\1/p' Sources/natsync/Natsync.swift)

.PHONY: build test test-asan stress fuzz demo dry-run deps bench clean image lint

build:
	$(SWIFT) build

# The whole suite. Tests that need root or a kernel feature skip with a printed reason. Serial,
# because the live-kernel tests time real traffic and syncs on a small machine.
test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest --no-parallel

# The seed's scene for real, in network namespaces (needs root): natsync programs a node, a client
# sends 100 requests to the ClusterIP, one endpoint goes, 100 more. Installs what it needs first.
demo: deps
	$(SWIFT) build --product natsync
	$(SWIFT) build --product natsync-echo
	scripts/demo.sh

# The rules natsync would program for the seed example, without touching the kernel.
dry-run: build
	$(SWIFT) run -q natsync sync --dry-run -f $(SEED) \
		--hostname-override node-1 --cluster-cidr 10.0.0.0/16 --node-ip 192.168.0.2

# natsync's container image, from the release build and Debian's packages (no registry, no base
# image): an OCI archive, whose path is the last line printed.
image: deps
	@command -v umoci >/dev/null || apt-get install -y umoci
	$(SWIFT) build -c release --product natsync --static-swift-stdlib
	deploy/image/build .build/release/natsync $(VERSION) .build/image

# The toolchain's swift-format over every Swift file, with the repository's .swift-format: any
# finding fails (`swift format format -i -r Sources Tests Benchmarks Fuzz Package.swift` fixes most).
lint:
	$(SWIFT) format lint --strict -r Sources Tests Benchmarks Fuzz Package.swift

# Installs the Debian packages the build and the tests need.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else echo "deps: all installed"; fi

# The live-kernel suite with natsync and its C shim under AddressSanitizer (a build of its own).
test-asan:
	$(SWIFT) build --build-tests --build-path .build-asan -Xswiftc -sanitize=address -Xcc -fsanitize=address -Xcc -fno-omit-frame-pointer
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 $(SWIFT) test --skip-build --build-path .build-asan --disable-xctest --no-parallel --filter NatsyncIntegrationTests

# Runs that need minutes (live kernel, root): libFuzzer, crash consistency under kill -9, and the
# daemon under churn.
stress: fuzz image
	$(SWIFT) build --build-tests
	NATSYNC_STRESS=1 NATSYNC_IMAGE=.build/image/natsync-$(VERSION).oci.tar $(SWIFT) test --skip-build --disable-xctest --no-parallel \
		--filter 'CrashConsistencyTests|ChurnTests|APIOutageTests|ImageTests'


# libFuzzer on the manifest loader and the restore-text parser for FUZZ_SECONDS, starting from the
# committed corpus (new finds go to a scratch folder; `-merge=1 Fuzz/corpus DIR` keeps the useful ones).
FUZZ_SECONDS ?= 300
fuzz:
	$(SWIFT) build --product natsync-fuzz --build-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -DNATSYNC_FUZZ
	rm -rf .build-fuzz/work && mkdir -p .build-fuzz/work
	.build-fuzz/debug/natsync-fuzz .build-fuzz/work Fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1

# QUICK=1: the small sizes only. ONLY=sync|api|conntrack|backends|nft|dispatch: one part. A full run writes
# docs/bench (results.json, full-sync.png); a quick one .build/bench.
bench: deps
	@command -v gnuplot >/dev/null || apt-get install -y gnuplot-nox
	@test -x /usr/bin/time || apt-get install -y time
	$(SWIFT) build -c release --product natsync
	$(SWIFT) build -c release --product NatsyncBench
	.build/release/NatsyncBench $(if $(QUICK),--quick --output .build/bench,--output docs/bench) $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf .build
