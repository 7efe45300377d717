#!/bin/sh
# Benchmark portd against its peers in one run and write a Markdown report
# to stdout and build/bench/report.md. See docs/benchmarks.md.
#
#   bench/run.sh
#
# Environment:
#   PORTD_BENCH_SCALE     percent of the default iteration counts (100: a
#                         run takes about a minute)
#   PORTD_BENCH_BIG_POOL  pool for the 10,000-lease memory figures
#                         (default 20000-29999: it overlaps ports the test
#                         suite uses, so never run this beside the tests)
#   PORTD_BENCH_CALLGRIND 1: also count portd's instructions per lease and
#                         release under valgrind (adds about 30 s)
set -eu
cd "$(dirname "$0")/.."

scale=${PORTD_BENCH_SCALE:-100}
big_pool=${PORTD_BENCH_BIG_POOL:-20000-29999}
pool=61000-64999 # 4,000 ports outside the ephemeral range
clients=8

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPORTD_SANITIZE=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
portd=$PWD/build/daemon/portd
bench=$PWD/build/bench/portd-bench
out=$PWD/build/bench

# Every held port is a descriptor in the daemon: 10,000 leases need more
# than the usual 1024.
# shellcheck disable=SC3045 # dash and bash both have ulimit -n and -H
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 12000 ]; then
	echo "run.sh: the descriptor limit is $hard; need 12000 (ulimit -Hn)" >&2
	exit 1
fi
# shellcheck disable=SC3045
ulimit -n "$([ "$hard" = unlimited ] && echo 65536 || echo "$hard")"

# The daemons keep their journal beside the socket: put it on tmpfs, like
# /run and $XDG_RUNTIME_DIR where portd normally lives.
for base in "${XDG_RUNTIME_DIR:-}" /dev/shm /tmp; do
	[ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] && break
done
tmp=$(mktemp -d "$base/portd-bench.XXXXXX")
results=$tmp/results.tsv
: >"$results"
pids=""

cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

n() { # n COUNT: COUNT scaled, at least 100
	v=$(($1 * scale / 100))
	[ "$v" -ge 100 ] && echo "$v" || echo 100
}

# run PEER TEST-ARGS...: one portd-bench result, recorded under PEER.
run() {
	peer=$1
	shift
	echo "  $peer: $*" >&2
	"$bench" "$@" | while IFS= read -r line; do
		printf '%s\t%s\n' "$peer" "$line"
	done >>"$results"
}

# start NAME COMMAND...: start a peer in the background as $started.
start() {
	name=$1
	shift
	XDG_CONFIG_HOME=$tmp XDG_RUNTIME_DIR=$tmp "$@" 2>"$tmp/$name.log" &
	started=$!
	pids="$pids $started"
}

# stop PID: SIGTERM, and a clean exit or a failed run.
stop() {
	kill "$1"
	rc=0
	wait "$1" || rc=$?
	pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
	[ "$rc" = 0 ] || [ "$rc" = 143 ] || {
		echo "run.sh: pid $1 exited with $rc" >&2
		exit 1
	}
}

portd_start() { # portd_start NAME ARGS...
	name=$1
	shift
	start "$name" "$portd" --socket "$tmp/$name.sock" --log-level warning \
		--quota 65536 "$@"
	"$bench" -s "$tmp/$name.sock" wait
}

echo "portd-bench: results in $tmp" >&2
# Other work on the machine shows in the p99s: the report gives the load.
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)

# The racy baseline needs no server.
run bind0 -n "$(n 200000)" bind0
run bind0 -n "$(n 200000)" -c $clients bind0-concurrent

# portd's API: an empty pool, then 90 % full.
portd_start api --pool $pool
api=$started
run portd -l idle rss "$api"
run portd -s "$tmp/api.sock" -n "$(n 40000)" lease
run portd -s "$tmp/api.sock" -n "$(n 40000)" lease-fd
run portd -s "$tmp/api.sock" -n "$(n 100000)" -b 64 pipeline
run portd -s "$tmp/api.sock" -n "$(n 40000)" -c $clients concurrent
run portd -s "$tmp/api.sock" fill 3600
run portd -s "$tmp/api.sock" -n "$(n 40000)" -l lease-90 lease
run portd -l held-3600 rss "$api"
stop "$api"

# The portserver protocol: portd's endpoint, then portpicker's own server
# on the same pool, one after the other.
ps2=@portd-bench-ps2-$$
portd_start ps --pool $pool --portserver-address "$ps2"
run portd -p "$ps2" -n "$(n 20000)" portserver
run portd -p "$ps2" -n "$(n 20000)" -c $clients portserver-concurrent
stop "$started"

ps=@portd-bench-ps-$$
start portserver /usr/bin/python3 /usr/bin/portserver \
	--portserver_address="$ps" --portserver_static_pool=$pool
pserver=$started
"$bench" -p "$ps" wait
run portserver -l idle rss "$pserver"
run portserver -p "$ps" -n "$(n 20000)" portserver
run portserver -p "$ps" -n "$(n 20000)" -c $clients portserver-concurrent
stop "$pserver"

# Memory with 10,000 leases: held sockets through the API; records only
# through the portserver protocol (both servers then hold no socket).
sleep 600 &
holder=$!
pids="$pids $holder"
portd_start big --pool "$big_pool"
run portd -s "$tmp/big.sock" fill 10000
run portd -l api-10000 rss "$started"
stop "$started"
portd_start bigps --pool "$big_pool" --portserver-address "$ps2"
run portd -p "$ps2" --pid "$holder" ps-fill 10000
run portd -l ps-10000 rss "$started"
stop "$started"
start bigserver /usr/bin/python3 /usr/bin/portserver \
	--portserver_address="$ps" --portserver_static_pool="$big_pool"
"$bench" -p "$ps" wait
run portserver -p "$ps" --pid "$holder" ps-fill 10000
run portserver -l ps-10000 rss "$started"
stop "$started"
stop "$holder"

# Instructions per lease + release in the daemon, by difference of two
# runs so that start and stop cancel out.
ir=""
if [ "${PORTD_BENCH_CALLGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
	for k in 1000 11000; do
		start cg$k valgrind --tool=callgrind \
			--callgrind-out-file="$tmp/cg$k.out" "$portd" \
			--socket "$tmp/cg$k.sock" --log-level warning --pool $pool
		"$bench" -s "$tmp/cg$k.sock" wait
		"$bench" -s "$tmp/cg$k.sock" -n $k lease >/dev/null
		stop "$started"
	done
	a=$(awk '/^summary:/ {print $2}' "$tmp/cg1000.out")
	b=$(awk '/^summary:/ {print $2}' "$tmp/cg11000.out")
	ir=$(((b - a) / 10000))
fi

load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
machine="$(date -u +%Y-%m-%d), $(nproc) CPUs ($cpu), Linux $(uname -r), \
portd $(git describe --always --dirty 2>/dev/null || echo '?'), \
$(/usr/bin/python3 -c 'import sys; print("Python", sys.version.split()[0])'). \
Load average at the start: $load_start; at the end: $load_end."
mkdir -p "$out"
awk -F '\t' -v clients=$clients -v ir="$ir" -v machine="$machine" \
	-v big_pool="$big_pool" -f bench/report.awk "$results" >"$out/report.md"
cat "$out/report.md"
