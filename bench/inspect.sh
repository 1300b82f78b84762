#!/usr/bin/env bash
# Inspection benchmark: `gatehouse inspect replay` against Debian's
# ndpiReader (package libndpi-bin, nDPI's demo reader), on the same trace, in
# the same run, pinned to the same core, five runs each, alternating.
#
# The trace is built by bench/cmd/tracegen from the shared captures: every
# packet of every file, made Ethernet, repeated with renumbered addresses
# until it holds about PACKETS packets, so that most packets belong to new
# flows (handshakes, classifiers) as on a live segment, not to one capture's
# flows seen again.
#
# The figure is packets per second of CPU time (user + system, from bash's
# `time`, including start-up), the packet count being the trace's. Both
# programs read every packet; Gatehouse prints its findings (to /dev/null),
# ndpiReader runs quiet (-q). The ratio is Gatehouse's median over
# ndpiReader's median: above 1 means Gatehouse inspects more packets per CPU
# second.
#
# Needs Go, taskset (util-linux) and ndpiReader (apt-get install
# libndpi-bin). Settings by environment:
#   PACKETS  trace size to aim for (default 1000000)
#   RUNS     runs per program (default 5)
#   CORE     CPU to pin both to (default 1, or 0 on a one-CPU machine)
#   GATEHOUSE_PCAPS  the capture set (default ../shared/pcaps)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKETS=${PACKETS:-1000000}
RUNS=${RUNS:-5}
PCAPS=${GATEHOUSE_PCAPS:-../shared/pcaps}
if [ -z "${CORE:-}" ]; then
	CORE=1
	[ "$(nproc --all)" -gt 1 ] || CORE=0
fi
# Bounds one run; a hang must not hold the whole benchmark up.
RUN_TIMEOUT=${RUN_TIMEOUT:-300}

for tool in go taskset ndpiReader timeout; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/inspect.sh: $tool not installed (apt-get install libndpi-bin util-linux coreutils); skipped" >&2
		exit 0
	fi
done
if [ ! -d "$PCAPS" ]; then
	echo "bench/inspect.sh: no capture set at $PCAPS (set GATEHOUSE_PCAPS); skipped" >&2
	exit 0
fi

tmp=$(mktemp -d /tmp/gh-inspect-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

go build -o bin/gatehouse ./cmd/gatehouse
go build -o "$tmp/tracegen" ./bench/cmd/tracegen
packets=$("$tmp/tracegen" -in "$PCAPS" -out "$tmp/trace.pcap" -packets "$PACKETS")
trace="$tmp/trace.pcap"
echo "trace: $packets packets, $(du -m "$trace" | cut -f1) MiB; pinned to CPU $CORE; $RUNS runs each"
cat "$trace" >/dev/null # into the page cache, for both alike

# cpu NAME CMD...: runs CMD pinned to $CORE and prints its user+system CPU
# seconds. taskset execs CMD, and timeout's own rusage includes its child.
cpu() {
	local name=$1
	shift
	local TIMEFORMAT='%3U %3S' t status=0
	t=$({ time timeout "$RUN_TIMEOUT" taskset -c "$CORE" "$@" >/dev/null 2>"$tmp/stderr"; } 2>&1) || status=$?
	if [ "$status" != 0 ]; then
		echo "bench/inspect.sh: $name failed (exit $status):" >&2
		cat "$tmp/stderr" >&2
		exit 1
	fi
	awk '{ printf "%.3f\n", $1 + $2 }' <<<"$t"
}

gh=()
nd=()
for i in $(seq "$RUNS"); do
	g=$(cpu gatehouse ./bin/gatehouse inspect replay "$trace")
	n=$(cpu ndpiReader ndpiReader -q -i "$trace")
	gh+=("$g")
	nd+=("$n")
	awk -v i="$i" -v p="$packets" -v g="$g" -v n="$n" 'BEGIN {
		printf "run %d: gatehouse %.3f s CPU = %.0f pkt/s; ndpiReader %.3f s CPU = %.0f pkt/s\n", i, g, p / g, n, p / n }'
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
gm=$(median "${gh[@]}")
nm=$(median "${nd[@]}")
findings=$(./bin/gatehouse inspect replay "$trace" | wc -l)
awk -v p="$packets" -v g="$gm" -v n="$nm" -v f="$findings" 'BEGIN {
	printf "median: gatehouse %.0f pkt/s of CPU (%.3f s), ndpiReader %.0f pkt/s of CPU (%.3f s)\n", p / g, g, p / n, n
	printf "ratio gatehouse/ndpiReader: %.2f\n", (p / g) / (p / n)
	printf "gatehouse findings on the trace: %d\n", f }'
. bench/lib/verdict.sh
verdict_ratio "inspect packets per CPU-second" "$(awk -v p="$packets" -v g="$gm" 'BEGIN { printf "%.0f", p / g }')" ndpiReader \
	"$(awk -v p="$packets" -v n="$nm" 'BEGIN { printf "%.0f", p / n }')" ">=" 2
