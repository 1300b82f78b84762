#!/usr/bin/env bash
# RADIUS benchmark: Gatehouse's daemon as deployed (`gatehouse run` with
# every component on, in a testbed router namespace, devices in its SQLite
# database: bench/cmd/radiusdaemon) against FreeRADIUS 3 (Debian
# freeradius, files + pap modules, the same devices and users, in the same
# router namespace), loaded by the same radclient runs from the testbed's
# management namespace (where access points are), in the same run, one
# server after the other.
#
# Prints, for each server and each load: requests per second (radclient's
# answers divided by the wall time), the server process's CPU time per
# request (in microseconds: the run time of its threads, summed from
# /proc/PID/task/*/schedstat, in nanoseconds; user+system from
# /proc/PID/stat, whole 10 ms ticks, when a thread ended during the load
# and took its run time with it), the ratio
# Gatehouse/FreeRADIUS against the target (<= 0.5) with PASS/FAIL; then,
# from bench/cmd/radlat (radclient prints no latencies), p50/p99 latency
# with PARALLEL requests in flight against the target (p99 < 20 ms).
# radclient keeps PARALLEL requests in flight and is usually the
# bottleneck, so CPU per request is the figure to compare. The daemon's
# figure includes whatever its other components (DHCP, DNS, inspection,
# the admin page) spend while idle during the load.
#
# The loads: mab (MAC authentication of approved devices); pap-cold (each
# of PAP_COUNT users logs in once: Gatehouse verifies an argon2id hash,
# deliberately slow, where the files module compares a cleartext
# password); pap (the same users again, re-authenticating: Gatehouse's
# credential cache answers without argon2id, and the person comes from
# memory, checked against the people change log as devices are). Both servers require
# Message-Authenticator on requests. Gatehouse looks devices up in SQLite
# (synchronous=FULL, WAL; held in memory, checked against the devices
# change log at most 5 ms before each lookup), FreeRADIUS in its in-memory
# users file. Every request is a distinct packet (no duplicate-cache hits).
#
# SIDE=harness measures bench/cmd/radiusserver instead (package radius
# alone over the store, on loopback, no root needed); PROFILE then writes
# its CPU profile.
#
# Needs radclient (freeradius-utils), freeradius, Go, and root (namespaces)
# unless SIDE=harness. Settings:
#   COUNT      MAB requests per server (default 20000)
#   PAP_COUNT  PAP users, each logging in once in pap-cold (default 200)
#   PAP_REPEAT how many times each re-authenticates in pap (default 100:
#              a load of seconds, not a few milliseconds of CPU that a
#              timer interrupt or the 10 ms ticks of the fallback (load)
#              would move by whole per cents)
#   LAT_COUNT  requests per latency run (default 5000)
#   PARALLEL   requests in flight (default 64)
#   DEVICES    approved devices seeded in both (default 1000)
#   TIMEOUT    seconds each radclient run may take at most (default 180)
#   ROUNDS     how many times the mab and pap loads run on each server,
#              alternating: Gatehouse, FreeRADIUS, Gatehouse, ... (default
#              3; the server not loaded is stopped). Each server's figure is
#              the median of its rounds' CPU per request: FreeRADIUS's own
#              figure moved by half between runs minutes apart (21 to 35.5
#              us per MAB request), and one round each compared two moments
#              of the machine as much as two servers. pap-cold runs once
#              (first logins happen once).
#   SIDE       daemon (default) or harness
#   PROFILE    (harness) write a CPU profile of Gatehouse's loads to this file
#   PERF       (daemon) `perf record` the daemon during one load into this
#              file (the binary beside it as PERF.bin)
#   PERF_LOAD  which load PERF records: mab (default), pap-cold or pap
#   PERF_FREQ  samples per second PERF records (default 499: a MAB load is
#              under half a CPU second, so raise it, e.g. 10000, for shares)
# FreeRADIUS's packaged service is not used (and not touched): it runs from a
# copy of /etc/freeradius/3.0 in a temporary directory on other ports.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-20000}
PAP_COUNT=${PAP_COUNT:-200}
PAP_REPEAT=${PAP_REPEAT:-100}
LAT_COUNT=${LAT_COUNT:-5000}
PARALLEL=${PARALLEL:-64}
DEVICES=${DEVICES:-1000}
TIMEOUT=${TIMEOUT:-180}
ROUNDS=${ROUNDS:-3}
SIDE=${SIDE:-daemon}
USERS=$PAP_COUNT
GH_PORT=${GH_PORT:-28512}
FR_PORT=${FR_PORT:-28612}
case $SIDE in
daemon)
	if [ "$(id -u)" != 0 ]; then
		echo "bench/radius.sh: the daemon side needs root for the testbed namespaces (SIDE=harness does not); skipped" >&2
		exit 0
	fi
	;;
harness) ;;
*)
	echo "bench/radius.sh: SIDE is daemon or harness, not $SIDE" >&2
	exit 2
	;;
esac

for tool in radclient freeradius go; do
	if ! command -v "$tool" >/dev/null; then
		echo "bench/radius.sh: $tool not installed (apt-get install freeradius freeradius-utils); skipped" >&2
		exit 0
	fi
done
if [ ! -d /etc/freeradius/3.0 ]; then
	echo "bench/radius.sh: /etc/freeradius/3.0 missing; skipped" >&2
	exit 0
fi

tmp=$(mktemp -d /tmp/gh-radius-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
gh= fr=
cleanup() {
	# A server stopped while the other ran must run again to hear SIGTERM.
	[ -n "$gh" ] && kill -CONT "$gh" 2>/dev/null || true
	[ -n "$fr" ] && kill -CONT "$fr" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
secret=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

mac() { printf '02000000%02x%02x' $(( ($1 >> 8) & 255 )) $(( $1 & 255 )); }

# The same requests for both servers (awk: a shell loop takes minutes).
awk -v n="$COUNT" -v d="$DEVICES" 'BEGIN {
	for (i = 0; i < n; i++) {
		k = i % d; m = sprintf("02000000%02x%02x", int(k / 256) % 256, k % 256)
		printf "User-Name = \"%s\"\nUser-Password = \"%s\"\nCalling-Station-Id = \"%s\"\nCalled-Station-Id = \"0A-00-00-00-00-01:Pupils\"\nMessage-Authenticator = 0x00\n\n", m, m, m
	}
}' > "$tmp/mab.txt"
awk -v n="$PAP_COUNT" 'BEGIN {
	for (i = 0; i < n; i++) {
		printf "User-Name = \"user%d\"\nUser-Password = \"benchpass%d\"\nCalled-Station-Id = \"0A-00-00-00-00-01:Pupils\"\nMessage-Authenticator = 0x00\n\n", i, i
	}
}' > "$tmp/pap-cold.txt"
# The re-authentications: the same users, the same order, PAP_REPEAT times
# (enough requests for a CPU figure of whole seconds' load; see PAP_REPEAT).
for ((r = 0; r < PAP_REPEAT; r++)); do cat "$tmp/pap-cold.txt"; done > "$tmp/pap.txt"

# FreeRADIUS: a copy of the packaged configuration with only what the
# benchmark needs (files, pap), one virtual server on loopback.
raddb="$tmp/raddb"
cp -a /etc/freeradius/3.0 "$raddb"
sed -i "s#^raddbdir = .*#raddbdir = $raddb#" "$raddb/radiusd.conf"
for m in "$raddb"/mods-enabled/*; do
	case $(basename "$m") in always|expr|files|pap|preprocess|attr_filter) ;; *) rm -f "$m" ;; esac
done
rm -f "$raddb"/sites-enabled/*
cat > "$raddb/sites-enabled/bench" <<CONF
server default {
listen {
	type = auth
	ipaddr = @FR_HOST@
	port = $FR_PORT
}
authorize {
	files
	pap
}
authenticate {
	Auth-Type PAP {
		pap
	}
}
post-auth {
}
}
CONF
{
	awk -v d="$DEVICES" 'BEGIN {
		for (k = 0; k < d; k++) {
			m = sprintf("02000000%02x%02x", int(k / 256) % 256, k % 256)
			printf "%s Cleartext-Password := \"%s\"\n\tTunnel-Type = VLAN,\n\tTunnel-Medium-Type = IEEE-802,\n\tTunnel-Private-Group-Id = \"20\"\n\n", m, m
		}
	}'
	for ((u = 0; u < USERS; u++)); do
		printf 'user%d Cleartext-Password := "benchpass%d"\n\tTunnel-Type = VLAN,\n\tTunnel-Medium-Type = IEEE-802,\n\tTunnel-Private-Group-Id = "20"\n\n' "$u" "$u"
	done
} > "$raddb/mods-config/files/authorize"
chmod -R a+rX "$raddb"

go build -o "$tmp/radlat" ./bench/cmd/radlat

# The Gatehouse side: where it listens (GH_HOST:GH_PORT), its process
# (gh), and IN, the prefix that runs a client where the access points are.
IN=()
if [ "$SIDE" = daemon ]; then
	go build -o "$tmp/gatehouse" ./cmd/gatehouse
	go build -o "$tmp/radiusdaemon" ./bench/cmd/radiusdaemon
	mkdir -m 755 "$tmp/daemon"
	"$tmp/radiusdaemon" -gatehouse "$tmp/gatehouse" -mis "$(pwd)/../shared/mis/pupils-sims.csv" -dir "$tmp/daemon" \
		-env "$tmp/daemon.env" -devices "$DEVICES" -users "$USERS" > "$tmp/radiusdaemon.log" 2>&1 &
	helper=$!
	pids+=("$helper")
	# Seeding hashes USERS argon2id passwords: minutes on a loaded machine.
	for _ in $(seq 600); do
		[ -f "$tmp/daemon.env" ] && break
		if ! kill -0 "$helper" 2>/dev/null; then
			echo "bench/radius.sh: radiusdaemon exited:" >&2
			cat "$tmp/radiusdaemon.log" >&2
			exit 1
		fi
		sleep 0.5
	done
	# shellcheck disable=SC1091
	. "$tmp/daemon.env"
	secret=$SECRET gh=$PID GH_HOST=$ADDR GH_PORT=1812 FR_HOST=$ADDR nas=$CLIENTS
	IN=(ip netns exec "$NS_MGMT")
	FR=(ip netns exec "$NS_ROUTER")
else
	go build -o "$tmp/radiusserver" ./bench/cmd/radiusserver
	GH_HOST=127.0.0.1 FR_HOST=127.0.0.1 nas=127.0.0.1
	FR=()
	"$tmp/radiusserver" -db "$tmp/gatehouse.db" -auth "127.0.0.1:$GH_PORT" -acct "127.0.0.1:$((GH_PORT + 1))" \
		-secret "$secret" -devices "$DEVICES" -users "$USERS" ${PROFILE:+-cpuprofile "$PROFILE"} > "$tmp/gatehouse.log" 2>&1 &
	gh=$!
	pids+=("$gh")
fi
sed -i "s#@FR_HOST@#$FR_HOST#" "$raddb/sites-enabled/bench"
printf 'client bench {\n\tipaddr = %s\n\tsecret = %s\n\trequire_message_authenticator = yes\n}\n' "$nas" "$secret" > "$raddb/clients.conf"

# wait_ready HOST PORT PID: until the server answers a request for device 0
# (at most 120 s).
wait_ready() {
	local m
	m=$(mac 0)
	for _ in $(seq 240); do
		if printf 'User-Name = "%s"\nUser-Password = "%s"\nCalled-Station-Id = "0A-00-00-00-00-01:Pupils"\nMessage-Authenticator = 0x00\n' "$m" "$m" |
			"${IN[@]}" radclient -x -r 1 -t 1 "$1:$2" auth "$secret" 2>&1 | grep -q 'Received Access-Accept'; then
			return 0
		fi
		if ! kill -0 "$3" 2>/dev/null; then
			echo "server exited before answering" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "server did not accept device 0 within 120 s" >&2
	return 1
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# cpu_ns PID: the run time of PID's threads so far, in nanoseconds. Where
# ticks counts whole 10 ms ticks (a MAB round of 20,000 requests took 17
# of them, so one tick moved the figure by 6%), this is exact; but a
# thread that has ended is no longer listed, so load checks it against
# ticks.
cpu_ns() {
	local t a s=0
	for t in /proc/"$1"/task/*/schedstat; do
		read -r a _ <"$t" 2>/dev/null && s=$((s + a))
	done
	echo "$s"
}

# load PID HOST PORT FILE WAIT: prints "answered seconds cpu_seconds lost";
# WAIT is radclient's wait per try.
load() {
	local t0 t1 c0 c1 n0 n1 cpu out answered
	c0=$(ticks "$1")
	n0=$(cpu_ns "$1")
	t0=$(date +%s.%N)
	out=$(timeout "$TIMEOUT" "${IN[@]}" radclient -s -q -p "$PARALLEL" -r 3 -t "$5" -f "$4" "$2:$3" auth "$secret" 2>&1 || true)
	t1=$(date +%s.%N)
	n1=$(cpu_ns "$1")
	c1=$(ticks "$1")
	# The threads' sum, unless it falls short of the ticks by more than
	# two (the ticks' rounding at both ends): then a thread ended (a
	# thread pool shrinking) and only the process's ticks still hold its
	# time.
	cpu=$(echo "($n1 - $n0) / 1000000000" | bc -l)
	if [ "$(echo "$n1 - $n0 < ($c1 - $c0 - 2) * 1000000000 / $hz" | bc -l)" = 1 ]; then
		cpu=$(echo "($c1 - $c0) / $hz" | bc -l)
	fi
	answered=$(echo "$out" | awk '/Accepted|Rejected/ {n += $3} END {print n + 0}')
	lost=$(echo "$out" | awk '/Lost/ {print $3}')
	echo "$answered $(echo "$t1 - $t0" | bc -l) $cpu ${lost:-?}"
}

declare -A res lat
# run_loads NAME HOST PORT PID ROUND KIND...: each load once, its
# "answered seconds cpu_seconds lost" in res[NAME.KIND.ROUND].
run_loads() {
	local name=$1 host=$2 port=$3 pid=$4 round=$5 kind wait perf n s c lost
	shift 5
	for kind in "$@"; do
		# First logins queue for argon2id (a core each): with PARALLEL in
		# flight, the last waits seconds, so radclient waits longer.
		wait=5
		[ "$kind" = pap-cold ] && wait=60
		perf=
		if [ -n "${PERF:-}" ] && [ "$round" = 1 ] && [ "$SIDE" = daemon ] && [ "$name.$kind" = "gatehouse.${PERF_LOAD:-mab}" ] && command -v perf >/dev/null; then
			cp "$tmp/gatehouse" "$PERF.bin"
			perf record -q -F "${PERF_FREQ:-499}" -g -p "$pid" -o "$PERF" >/dev/null 2>&1 &
			perf=$!
		fi
		read -r n s c lost < <(load "$pid" "$host" "$port" "$tmp/$kind.txt" "$wait")
		if [ -n "$perf" ]; then
			kill -INT "$perf"
			wait "$perf" 2>/dev/null || true
		fi
		res[$name.$kind.$round]="$n $s $c $lost"
	done
}
# latency NAME HOST PORT: p50/p99 with PARALLEL in flight, MAB and PAP
# re-authentications (every user was verified a moment ago by the loads).
latency() {
	lat[$1.mab]=$(timeout "$TIMEOUT" "${IN[@]}" "$tmp/radlat" -addr "$2:$3" -secret "$secret" -kind mab -n "$LAT_COUNT" -parallel "$PARALLEL" -devices "$DEVICES")
	lat[$1.pap]=$(timeout "$TIMEOUT" "${IN[@]}" "$tmp/radlat" -addr "$2:$3" -secret "$secret" -kind pap -n "$LAT_COUNT" -parallel "$PARALLEL" -devices "$USERS")
}

wait_ready "$GH_HOST" "$GH_PORT" "$gh"
echo "gatehouse ($SIDE) ready; uptime: $(uptime)"
run_loads gatehouse "$GH_HOST" "$GH_PORT" "$gh" 1 mab pap-cold pap
latency gatehouse "$GH_HOST" "$GH_PORT"
# Stopped, a server takes no CPU from the other's loads; it keeps its
# state (and the daemon its namespaces) for its next round.
kill -STOP "$gh"

"${FR[@]}" freeradius -f -l stdout -d "$raddb" > "$tmp/freeradius.log" 2>&1 &
fr=$!
pids+=("$fr")
wait_ready "$FR_HOST" "$FR_PORT" "$fr"
echo "freeradius ready; uptime: $(uptime)"
run_loads freeradius "$FR_HOST" "$FR_PORT" "$fr" 1 mab pap-cold pap
latency freeradius "$FR_HOST" "$FR_PORT"
for ((round = 2; round <= ROUNDS; round++)); do
	kill -STOP "$fr"
	kill -CONT "$gh"
	run_loads gatehouse "$GH_HOST" "$GH_PORT" "$gh" "$round" mab pap
	kill -STOP "$gh"
	kill -CONT "$fr"
	run_loads freeradius "$FR_HOST" "$FR_PORT" "$fr" "$round" mab pap
done
kill "$fr"

# figure SERVER KIND: "answered seconds cpu_seconds lost us_per_request
# rounds", the round with the median CPU per request (with an even count,
# the upper one) and every round's figure; lost sums the rounds (any
# loss makes the figure n/a below).
figure() {
	local r n s c lost all=() lines=() total=0 nr
	nr=$ROUNDS
	[ "$2" = pap-cold ] && nr=1
	for ((r = 1; r <= nr; r++)); do
		read -r n s c lost <<<"${res[$1.$2.$r]}"
		[ "$lost" = 0 ] || total=unknown
		[ "$total" = unknown ] || total=$((total + lost))
		lines+=("$(echo "if ($n > 0) $c * 1000000 / $n else 0" | bc -l) $n $s $c")
	done
	printf '%s\n' "${lines[@]}" | sort -g | awk -v lost="$total" '
		{ us[NR] = $1; row[NR] = $2 " " $3 " " $4; all = all (NR > 1 ? "/" : "") sprintf("%.1f", $1) }
		END { m = int(NR / 2) + 1; printf "%s %s %s %s\n", row[m], lost, us[m], all }'
}

echo "radclient load, $PARALLEL in flight; pap-cold: first logins (argon2id at Gatehouse), pap: the same users re-authenticating (Gatehouse's credential cache)"
echo "mab and pap: $ROUNDS rounds per server, alternating; the row is the median round's, the last column every round's CPU per request"
printf '%-10s %-8s %9s %8s %10s %12s %6s  %s\n' server load answered req/s cpu_s us_cpu/req lost rounds
declare -A fig
for kind in mab pap-cold pap; do
	for srv in gatehouse freeradius; do
		fig[$srv.$kind]=$(figure "$srv" "$kind")
		read -r n s c lost us all <<<"${fig[$srv.$kind]}"
		printf '%-10s %-8s %9d %8.0f %10.2f %12.1f %6s  %s\n' "$srv" "$kind" "$n" "$(echo "$n / $s" | bc -l)" "$c" "$us" "$lost" "$all"
	done
done
# The verdict lines (bench/lib/verdict.sh): CPU per request against
# FreeRADIUS's (<= 0.5x), and p99 at $PARALLEL in flight (< 20 ms, none lost).
. bench/lib/verdict.sh
for kind in mab pap-cold pap; do
	read -r gn _ _ glost gus _ <<<"${fig[gatehouse.$kind]}"
	read -r fn _ _ flost fus _ <<<"${fig[freeradius.$kind]}"
	g=n/a f=n/a
	# No CPU time in a load is no measurement (a count too small), not 0.
	if [ "$gn" -gt 0 ] && [ "$fn" -gt 0 ] && [ "$glost" = 0 ] && [ "$flost" = 0 ] &&
		[ "$(echo "$gus > 0 && $fus > 0" | bc -l)" = 1 ]; then
		g=$(printf '%.1f' "$gus")
		f=$(printf '%.1f' "$fus")
	fi
	verdict_ratio "radius $kind CPU us per request" "$g" freeradius "$f" "<=" 0.5
	# A load measured in ticks (a thread ended) and under one is still a
	# bound: say it, so that an n/a row reads as what it is.
	for srv in gatehouse freeradius; do
		read -r n _ _ lost us _ <<<"${fig[$srv.$kind]}"
		if [ "$n" -gt 0 ] && [ "$lost" = 0 ] && [ "$(echo "$us == 0" | bc -l)" = 1 ]; then
			echo "radius $kind: $srv answered $n requests in less than one CPU tick ($((1000 / hz)) ms): under $(echo "scale=1; 1000000 / $hz / $n" | bc -l) us each"
		fi
	done
done
for kind in mab pap; do
	for srv in gatehouse freeradius; do
		echo "latency $kind $srv ($PARALLEL in flight): ${lat[$srv.$kind]}"
	done
	p99=$(echo "${lat[gatehouse.$kind]}" | awk '{for (i = 1; i < NF; i++) if ($i == "p99_ms") print $(i + 1)}')
	glost=$(echo "${lat[gatehouse.$kind]}" | awk '{print $4}')
	# A lost request makes the p99 meaningless: no figure, so FAIL.
	[ "$glost" = 0 ] || p99=n/a
	verdict_value "radius $kind p99 ms at $PARALLEL in flight" "${p99:-n/a}" "<=" 20
done
