#!/usr/bin/env bash
# The seed's scene, for real: a node, a client pod and two server pods, each a network namespace;
# natsync programs the node's tables for Service default/service-test (10.3.241.152:80 -> 8080),
# 100 requests go to the ClusterIP, one endpoint is removed, 100 more go. Everything made is
# deleted on exit. Needs root (namespaces); run through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug}
P="natsync-demo-$$"
NODE="$P-node" CLIENT="$P-client" A="$P-a" B="$P-b"

cleanup() {
    for ns in "$A" "$B" "$CLIENT" "$NODE"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns delete "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

if [ "$(id -u)" != 0 ]; then echo "demo: needs root to create network namespaces" >&2; exit 1; fi

for ns in "$NODE" "$CLIENT" "$A" "$B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1
# Each pod sits on its own point-to-point link to the node: 10.0.N.2 behind 10.0.N.1.
attach() { # namespace subnet
    ip -n "$NODE" link add "veth$2" type veth peer name eth0 netns "$1"
    ip -n "$NODE" addr add "10.0.$2.1/24" dev "veth$2"
    ip -n "$1" addr add "10.0.$2.2/24" dev eth0
    ip -n "$NODE" link set "veth$2" up
    ip -n "$1" link set eth0 up
    ip -n "$1" route add default via "10.0.$2.1"
}
attach "$A" 1
attach "$B" 2
attach "$CLIENT" 3
# kubelet marks a legacy-iptables host this way; natsync's backend check reads it.
ip netns exec "$NODE" iptables-legacy -t mangle -N KUBE-IPTABLES-HINT

# Started in subshells so they are not this shell's jobs: cleanup kills them without job notices.
(ip netns exec "$A" "$BIN/natsync-echo" serve service-test-6c7f9d5b8-kq2xw 8080 &)
(ip netns exec "$B" "$BIN/natsync-echo" serve service-test-6c7f9d5b8-r8m4t 8080 &)
sleep 0.5

FLAGS=(--netns "$NODE" --hostname-override node-1 --cluster-cidr 10.0.0.0/16 --node-ip 10.0.3.1)
echo "== natsync sync -f Fixtures/seed/service-test.yaml (pods 10.0.1.2 and 10.0.2.2)"
"$BIN/natsync" sync -f Fixtures/seed/service-test.yaml "${FLAGS[@]}"

requests() {
    echo "== 100 requests from the client pod (10.0.3.2) to http://10.3.241.152:80/"
    ip netns exec "$CLIENT" "$BIN/natsync-echo" get 10.3.241.152:80 100 | sed 's/; you are.*//' | sort | uniq -c
}
requests

echo
echo "== endpoint 10.0.2.2 removed; natsync sync again"
"$BIN/natsync" sync -f Fixtures/seed/after-deletion/service-test.yaml "${FLAGS[@]}"
requests
