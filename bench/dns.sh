#!/usr/bin/env bash
# DNS benchmark (issue 16): the Gatehouse DNS guard against dnsmasq with the
# same upstream and the same dnsperf load, in one run.
#
# As deployed (what the targets are judged on): the real `gatehouse run` in
# a testbed router (inspection capturing every segment, the query log on)
# answering a pupil's namespace through the router (veth, conntrack, the
# nftables redirect of port 53 to the guard); dnsmasq runs on the same
# router on the pupil gateway's port 5300, asked from the same namespace
# over the same veth. Both forward to one upstream in the testbed's internet
# namespace. "cached" repeats NAMES names after a warming pass; "forwarded"
# asks unique names, so every query goes to the upstream. The daemon's
# per-client query limit is raised (dns.client_qps) above what one dnsperf
# address sends: it is still checked on every query. See
# bench/cmd/dnsbench/deployed.go.
#
# Then, with COMPONENT=1, the component figures: package dnsguard and
# dnsmasq on loopback in a namespace of their own (caches off for
# "forwarded").
#
# Prints, per workload, both sides' q/s, dnsperf's lost queries and
# response codes, and a verdict line: PASS|FAIL, ratio, target (>= 1.5x
# dnsmasq cached, >= 1.2x forwarded).
#
# Needs root (network namespaces), nft, dnsperf, dnsmasq (dnsmasq-base), Go.
# Settings: DURATION seconds per run (default 10), CLIENTS dnsperf clients
# (default 8), OUTSTANDING queries in flight (default 100), NAMES (1000),
# FWD_NAMES unique names for forwarded (1000000), WORKLOADS (one of them:
# cached or forwarded; both by default), ROUNDS (1: rounds of each
# workload, the two sides alternating, the verdict on the mean q/s; each
# round writes FWD_NAMES names per side), COMPONENT (0), PERF (a
# directory: the guard's runs are profiled there with perf record -a -g;
# see `perf report -i DIR/cached.perf.data --pid $(cat DIR/cached.pid)`).
# Bounded: about two minutes a round.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-100}
NAMES=${NAMES:-1000}
FWD_NAMES=${FWD_NAMES:-1000000}
COMPONENT=${COMPONENT:-0}
PERF=${PERF:-}
WORKLOADS=${WORKLOADS:-cached,forwarded}
ROUNDS=${ROUNDS:-1}

if [ "$(id -u)" != 0 ]; then
	echo "bench/dns.sh: needs root for network namespaces; skipped" >&2
	exit 0
fi
for tool in nft dnsperf dnsmasq go; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/dns.sh: $tool not installed (apt-get install dnsperf dnsmasq-base nftables); skipped" >&2
		exit 0
	fi
done

tmp=$(mktemp -d /tmp/gh-dns-bench.XXXXXX)
ns="gh-bench-dns-$$"
cleanup() {
	if ip netns pids "$ns" >/dev/null 2>&1; then
		for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/dnsbench" ./bench/cmd/dnsbench

echo "dns: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
timeout 600 "$tmp/dnsbench" -gatehouse "$tmp/gatehouse" -duration "${DURATION}s" -names "$NAMES" -fwd-names "$FWD_NAMES" \
	-clients "$CLIENTS" -outstanding "$OUTSTANDING" -workloads "$WORKLOADS" -rounds "$ROUNDS" ${PERF:+-perf "$PERF"}

if [ "$COMPONENT" != 0 ]; then
	echo "-- component: package dnsguard and dnsmasq on loopback"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	timeout 120 ip netns exec "$ns" "$tmp/dnsbench" -duration "${DURATION}s" -names "$NAMES" -clients "$CLIENTS" -outstanding "$OUTSTANDING"
fi
