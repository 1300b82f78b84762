#!/usr/bin/env bash
# WPA-Enterprise benchmark (issue 14): the same bounded parallel eapol_test
# load, PEAP-MSCHAPv2 then TTLS-PAP over TLS 1.2 with the MPPE keys checked,
# against the Gatehouse daemon as deployed (`gatehouse run` in a testbed
# router namespace; the person's password set with `gatehouse people
# password`) and against FreeRADIUS 3 (Debian freeradius, its packaged
# configuration copied to a temporary directory, the same user and the same
# ECDSA P-256 server certificate and CA), one after the other, in one run.
# bench/cmd/eapbench does the work; see its doc for what it prints.
#
# Prints full authentications/s and server CPU per full authentication
# (utime+stime of the server process from /proc) for both, per method, and
# the ratio against the target (Gatehouse <= 0.5x FreeRADIUS), PASS/FAIL.
# TTLS-PAP on Gatehouse checks argon2id hashes (deliberately expensive);
# FreeRADIUS compares a cleartext password, and the figures include that.
#
# Needs root (network namespaces), eapol_test (eapoltest), freeradius, Go.
# Settings: N (authentications per server in ttls-pap-cold, each a
# different pupil's first, default 200), REPEAT (peap-mschapv2 and ttls-pap
# make N*REPEAT, default 3: CPU is read in whole 10 ms ticks, so more
# logins resolve it finer),
# PARALLEL (in flight, default 16), TIMEOUT (hard limit of each load,
# default 5m), PERF (`perf record -g` the Gatehouse daemon during one load
# into this file, the binary beside it as PERF.bin), PERF_LOAD (the load
# PERF records: peap-mschapv2 (default), ttls-pap-cold or ttls-pap).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in eapol_test freeradius go; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/eap.sh: $tool not installed (build/deps installs eapoltest and freeradius); skipped" >&2
		exit 0
	fi
done
if [ "$(id -u)" != 0 ]; then
	echo "bench/eap.sh: needs root for the testbed namespaces; skipped" >&2
	exit 0
fi
tmp=$(mktemp -d /tmp/gh-eap-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/eapbench" ./bench/cmd/eapbench
perf=()
if [ -n "${PERF:-}" ] && command -v perf >/dev/null; then
	cp "$tmp/gatehouse" "$PERF.bin"
	perf=(-perf "$PERF" -perf-load "${PERF_LOAD:-peap-mschapv2}")
fi
# The hard limit of the whole run: two servers, two methods, start-up.
timeout 30m "$tmp/eapbench" -gatehouse "$tmp/gatehouse" -mis "$(pwd)/../shared/mis/pupils-sims.csv" \
	-n "${N:-200}" -repeat "${REPEAT:-3}" -parallel "${PARALLEL:-16}" -timeout "${TIMEOUT:-5m}" "${perf[@]}"
