#!/usr/bin/env bash
# bench/lib/verdict_test.sh: checks the verdict lines verdict.sh prints,
# run by verdict_test.go (so `make test`, go test ./..., runs it). Exits
# non-zero, naming each wrong line, when a verdict is not the expected one.
set -euo pipefail
. "$(dirname "$0")/verdict.sh"

fails=0
# expect WANT GOT: one verdict line against the line it should be.
expect() {
	if [ "$1" != "$2" ]; then
		printf 'want: %s\ngot:  %s\n' "$1" "$2"
		fails=$((fails + 1))
	fi
}

# A ratio exactly at a "<=" target passes (0.55/1.10 happens to be exactly
# 0.5 in awk; the cases after it are not).
expect "PASS latency: gatehouse 0.55, peer 1.10, ratio 0.50, target <= 0.50" \
	"$(verdict_ratio latency 0.55 peer 1.10 '<=' 0.50)"
# That one's quotient happens to be exact; these are not (0.54/0.36 is
# 1.5000000000000002, 0.585/0.39 is 1.4999999999999998), and a quotient
# compared with the target failed them although the figures are at it.
expect "PASS latency: gatehouse 0.54, peer 0.36, ratio 1.50, target <= 1.50" \
	"$(verdict_ratio latency 0.54 peer 0.36 '<=' 1.5)"
expect "PASS throughput: gatehouse 0.585, peer 0.39, ratio 1.50, target >= 1.50" \
	"$(verdict_ratio throughput 0.585 peer 0.39 '>=' 1.5)"
# Just above it fails.
expect "FAIL latency: gatehouse 0.56, peer 1.10, ratio 0.51, target <= 0.50" \
	"$(verdict_ratio latency 0.56 peer 1.10 '<=' 0.50)"
expect "FAIL latency: gatehouse 0.5501, peer 1.10, ratio 0.50, target <= 0.50" \
	"$(verdict_ratio latency 0.5501 peer 1.10 '<=' 0.50)"

# A ">=" target (throughput): exactly at it and above pass, below fails.
expect "PASS throughput: gatehouse 2400, peer 1200, ratio 2.00, target >= 2.00" \
	"$(verdict_ratio throughput 2400 peer 1200 '>=' 2)"
expect "PASS throughput: gatehouse 2.4, peer 1.2, ratio 2.00, target >= 2.00" \
	"$(verdict_ratio throughput 2.4 peer 1.2 '>=' 2)"
expect "PASS throughput: gatehouse 3000, peer 1200, ratio 2.50, target >= 2.00" \
	"$(verdict_ratio throughput 3000 peer 1200 '>=' 2)"
expect "FAIL throughput: gatehouse 2399, peer 1200, ratio 2.00, target >= 2.00" \
	"$(verdict_ratio throughput 2399 peer 1200 '>=' 2)"

# A figure nobody measured, or a peer of zero, is a FAIL.
expect "FAIL throughput: gatehouse n/a, peer 1200, ratio n/a, target >= 2.00" \
	"$(verdict_ratio throughput n/a peer 1200 '>=' 2)"
expect "FAIL throughput: gatehouse 2400, peer 0, ratio n/a, target >= 2.00" \
	"$(verdict_ratio throughput 2400 peer 0 '>=' 2)"
expect "FAIL throughput: gatehouse 2400, peer , ratio n/a, target >= 2.00" \
	"$(verdict_ratio throughput 2400 peer '' '>=' 2)"

# A plain absolute target, both ways.
expect "PASS p99 ms: gatehouse 5, target <= 5" "$(verdict_value 'p99 ms' 5 '<=' 5)"
expect "PASS p99 ms: gatehouse 4.9, target <= 5" "$(verdict_value 'p99 ms' 4.9 '<=' 5)"
expect "FAIL p99 ms: gatehouse 5.01, target <= 5" "$(verdict_value 'p99 ms' 5.01 '<=' 5)"
expect "PASS leases/s: gatehouse 1000, target >= 1000" "$(verdict_value leases/s 1000 '>=' 1000)"
expect "FAIL leases/s: gatehouse 999, target >= 1000" "$(verdict_value leases/s 999 '>=' 1000)"
expect "FAIL leases/s: gatehouse n/a, target >= 1000" "$(verdict_value leases/s '' '>=' 1000)"

if [ "$fails" -ne 0 ]; then
	echo "verdict_test.sh: $fails wrong verdicts"
	exit 1
fi
echo "verdict_test.sh: ok"
