#!/usr/bin/env bash
# Captive portal benchmark: a morning rush in the testbed. CLIENTS visitors,
# each its own macvlan interface (own MAC and address) on the visitor
# segment, arrive at once, CONCURRENCY in flight: each phone's probe is
# redirected to the portal, the visitor opens the sign-in page, posts a code
# and probes again until its traffic is forwarded to the fake internet.
# The daemon is the real `gatehouse run` in the testbed's router. The
# visitors' interfaces sit fifty to a namespace, so that a connection's
# route lookup walks fifty visitors' routes, not all of them (a phone has
# one route; see perNamespace in bench/cmd/captivebench).
#
# Prints: probe redirects per second (every visitor still held, each probe
# a new connection), logins per second, p50/p99 time from the form POST
# until the visitor's next probe comes from the internet, the daemon's peak
# resident memory, and how long a restarted daemon takes to put every
# visitor back in the kernel after a reboot (the nftables table deleted).
# See bench/cmd/captivebench for how the visitors are simulated.
#
# Side by side: when Debian's opennds is installed (apt-get install
# opennds iptables), the same visitors and the same probe load measure its
# redirect rate in the same router (the Gatehouse daemon and its table are
# gone by then). openNDS only serves addresses its DHCP server leased, so
# the run writes /tmp/dhcp.leases (OpenWrt's path, the first openNDS reads)
# and removes it after; it refuses to run if that file already exists.
#
# Needs root (network namespaces), nft, Go. Settings by environment:
#   CLIENTS            simulated visitors (default 2000)
#   CONCURRENCY        visitors in flight at once (default 200)
#   REDIRECT_SECONDS   length of each redirect-rate run (default 5)
#   OPENNDS            0 skips openNDS even when installed
#   PERF               `perf record -a -g` the whole machine during the rush
#                      into this file (perf report --comm gatehouse for the
#                      daemon, --comm captivebench for the load generator)
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-2000}
CONCURRENCY=${CONCURRENCY:-200}
REDIRECT_SECONDS=${REDIRECT_SECONDS:-5}
OPENNDS=${OPENNDS:-1}

if [ "$(id -u)" != 0 ]; then
	echo "bench/captive.sh: needs root for network namespaces; skipped" >&2
	exit 0
fi
for tool in nft go; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/captive.sh: $tool not installed; skipped" >&2
		exit 0
	fi
done

tmp=$(mktemp -d /tmp/gh-captive-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/captivebench" ./bench/cmd/captivebench

nds=()
if [ "$OPENNDS" != 0 ]; then
	if command -v opennds >/dev/null && command -v iptables >/dev/null; then
		nds=(-opennds "$(command -v opennds)")
	else
		echo "opennds (or iptables) not installed: Gatehouse only (apt-get install opennds iptables for the side-by-side run)"
	fi
fi

echo "captive portal: $CLIENTS visitors, $CONCURRENCY in flight, $(nproc) cores"
# Bounded: the whole run, openNDS included, has 15 minutes.
timeout 900 "$tmp/captivebench" -gatehouse "$tmp/gatehouse" -clients "$CLIENTS" -concurrency "$CONCURRENCY" \
	-redirect-seconds "$REDIRECT_SECONDS" ${PERF:+-perf "$PERF"} "${nds[@]}" | tee "$tmp/out"

# The verdict lines (bench/lib/verdict.sh) against issue 16's portal-rush
# targets: >= 500 logins/s and form POST -> forwarded p99 <= 300 ms.
. bench/lib/verdict.sh
logins=$(sed -n 's/^rush: .* \([0-9.]*\) logins\/s$/\1/p' "$tmp/out")
p99=$(sed -n 's/^rush: form POST -> first forwarded probe: p50 [0-9.]* ms, p99 \([0-9.]*\) ms.*/\1/p' "$tmp/out")
verdict_value "captive logins/s, $CLIENTS visitors, $CONCURRENCY in flight" "$logins" ">=" 500
verdict_value "captive form POST to forwarded p99 ms" "$p99" "<=" 300
