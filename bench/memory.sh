#!/usr/bin/env bash
# Memory benchmark (issue 17): the real `gatehouse run` in a testbed router
# with four inspected segments, measured idle on an empty database, then
# with DEVICES known devices and VISITORS admitted visitors restored from
# its database, then with FLOWS TLS flows per segment in flight from the
# segments' clients to the fake internet (bench/cmd/memorybench says how).
# It prints resident memory (VmRSS), peak resident memory (VmHWM) and the
# Go heap in use for each phase, with PASS or FAIL against the budget:
# idle <= 40 MiB, under the load <= 64 MiB.
#
# Beside them, when BEFORE_REV names a revision, the same load on that
# revision's binary, built from `git archive` in a temporary directory, so
# figures before a change are measured on this machine in the same run.
# Off by default: memorybench seeds the database with this tree's store,
# and a binary whose migrations stop earlier refuses a newer schema (as it
# should), so only a revision with this tree's migrations can run here.
# The memory work's own before/after (70aa901, migrations up to 0080) is
# in bench/results.md.
#
# Needs root (network namespaces), nft and Go. Settings by environment:
#   DEVICES     known devices (default 5000)
#   VISITORS    admitted visitors (default 2000)
#   FLOWS       TCP flows per segment (default 2000)
#   HOLD        how long the flows are held (default 20s)
#   BEFORE_REV  a revision to compare with (default none; see above)
#   SMAPS       a directory to copy the daemon's /proc/PID/smaps into at
#               each phase (which mappings the resident set is in)
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEVICES:-5000}
VISITORS=${VISITORS:-2000}
FLOWS=${FLOWS:-2000}
HOLD=${HOLD:-20s}
BEFORE_REV=${BEFORE_REV-}

if [ "$(id -u)" != 0 ]; then
	echo "bench/memory.sh: needs root for network namespaces; skipped" >&2
	exit 0
fi
for tool in nft go; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/memory.sh: $tool not installed; skipped" >&2
		exit 0
	fi
done

tmp=$(mktemp -d /tmp/gh-memory-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Built as `make build` builds it: the figures are the shipped binary's.
make -s build BIN="$tmp/gatehouse" >/dev/null
go build -o "$tmp/memorybench" ./bench/cmd/memorybench

before=()
if [ -n "$BEFORE_REV" ]; then
	if git cat-file -e "$BEFORE_REV^{commit}" 2>/dev/null; then
		mkdir "$tmp/before-src"
		git archive "$BEFORE_REV" | tar -x -C "$tmp/before-src"
		(cd "$tmp/before-src" && go build -trimpath -ldflags '-s -w' -o "$tmp/gatehouse-before" ./cmd/gatehouse)
		before=(-before "$tmp/gatehouse-before")
	else
		echo "bench/memory.sh: no revision $BEFORE_REV here; measuring the current binary only"
	fi
fi

# Bounded: both binaries, every phase, in 20 minutes.
timeout 1200 "$tmp/memorybench" -gatehouse "$tmp/gatehouse" "${before[@]}" \
	-devices "$DEVICES" -visitors "$VISITORS" -flows "$FLOWS" -hold "$HOLD" \
	${SMAPS:+-smaps "$SMAPS"}
