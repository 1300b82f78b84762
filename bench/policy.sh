#!/usr/bin/env bash
# Policy benchmarks (issue 3), run as root:
#  (a) the enforcer with a full school: 5,000 approved devices and 2,000
#      admitted visitors in one table, in a fresh network namespace; the
#      time of one full Apply, and the median and p99 of 1,000 single admits
#      and evicts against that table (go test -bench in ./policy, whose
#      benchmarks create and delete their own namespaces);
#  (b) the DNS guard's queries per second side by side with dnsmasq
#      forwarding to the same upstream, with the same load generator
#      (dnsperf when installed), all on loopback inside a namespace this
#      script creates and always deletes.
# Needs: iproute2, nftables, dnsmasq-base; dnsperf optional (Debian packages).
# Bounded: about a minute in all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if [ "$(id -u)" != 0 ]; then
	echo "bench/policy.sh: needs root (network namespaces, nftables)" >&2
	exit 1
fi

echo "-- enforcer: full table of 5,000 approved + 2,000 admitted"
go test -run '^$' -bench 'BenchmarkApplyFullRuleset$' -benchtime 5x -count 1 ./policy/ | grep -E '^Benchmark|^ok|FAIL'
go test -run '^$' -bench 'BenchmarkAdmitEvict$' -benchtime 1000x -count 1 ./policy/ | grep -E '^Benchmark|^ok|FAIL'

echo "-- dns guard vs dnsmasq"
if ! command -v dnsmasq >/dev/null; then
	echo "bench/policy.sh: dnsmasq not found (apt-get install -y dnsmasq-base)" >&2
	exit 1
fi
tmp=$(mktemp -d)
ns="gh-bench-dns-$$"
cleanup() {
	# Killing what still runs in the namespace first, then the namespace.
	if ip netns pids "$ns" >/dev/null 2>&1; then
		for pid in $(ip netns pids "$ns"); do kill "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
go build -o "$tmp/dnsbench" ./bench/cmd/dnsbench
ip netns add "$ns"
ip -n "$ns" link set lo up
timeout 120 ip netns exec "$ns" "$tmp/dnsbench" -duration 5s -names 1000 -clients 8
