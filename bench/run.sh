#!/bin/sh
# Benchmark portd against its floors and Google's portserver in one run and
# write a Markdown report with charts. See docs/benchmarks.md.
#
#   bench/run.sh                 the full run: a few minutes
#   bench/run.sh --update-docs   the same, then put the report and charts
#                                into docs/benchmarks.md and docs/bench/
#   bench/run.sh --smoke         every step with a handful of operations,
#                                and a check that the report has every
#                                part (ctest: bench_run_smoke); no time
#                                is judged
#
# Environment:
#   PORTD_BENCH_REPS     repetitions of each figure of the goal table (5)
#   PORTD_BENCH_SCALE    percent of the default operation counts (100)
#   PORTD_BENCH_PROFILE  0: skip the callgrind and strace counts
#   PORTD_BENCH_NETNS    0: stay in this network namespace
#   PORTD_BENCH_OUT      folder of the report and charts (build/bench)
#   PORTD_BENCH_BUILD    a build folder holding daemon/portd and
#                        bench/portd-bench: use those, build nothing
set -eu
cd "$(dirname "$0")/.."
root=$PWD

update_docs=0 smoke=0
for a in "$@"; do
	case $a in
	--update-docs) update_docs=1 ;;
	--smoke) smoke=1 ;;
	*)
		echo "usage: bench/run.sh [--update-docs | --smoke]" >&2
		exit 2
		;;
	esac
done

# What the benchmark runs: Google's portserver, gnuplot, valgrind, strace
# (installed when run as root, before the namespace cuts the network off;
# without gnuplot, valgrind or strace there are no charts or profile).
if [ $smoke = 0 ] && [ -z "${PORTD_BENCH_IN_NETNS:-}" ]; then
	scripts/deps.sh bench ||
		echo "run.sh: some tools are missing; the report lacks what they make" >&2
fi

# A private network namespace: every port is ours, nothing the tests or
# other programs on the machine hold can collide with the pools, and
# abstract socket names are private too.
if [ "${PORTD_BENCH_NETNS:-1}" = 1 ] && [ -z "${PORTD_BENCH_IN_NETNS:-}" ]; then
	if unshare -n true 2>/dev/null; then
		PORTD_BENCH_IN_NETNS=root exec unshare -n sh "$root/bench/run.sh" "$@"
	elif unshare -rn true 2>/dev/null; then
		PORTD_BENCH_IN_NETNS=user exec unshare -rn sh "$root/bench/run.sh" "$@"
	fi
	if [ $smoke = 1 ]; then
		echo "run.sh: no network namespace (unshare -n); skipped" >&2
		exit 77
	fi
	echo "run.sh: cannot make a network namespace (unshare -n);" \
		"running in this one: the pools may collide" >&2
fi
netns=${PORTD_BENCH_IN_NETNS:-none}

reps=${PORTD_BENCH_REPS:-7}
scale=${PORTD_BENCH_SCALE:-100}
out=${PORTD_BENCH_OUT:-$root/build/bench}
pool=10000-29999     # 20,000 ports for portd: room for 15,000 leases
gpool=61000-64999    # Google's portserver
held_max=15000
levels="0 1000 2500 5000 10000 15000" # leases held, for the latency chart
sweep_reps=3
profile_wanted=${PORTD_BENCH_PROFILE:-1}
if [ $smoke = 1 ]; then
	reps=2 sweep_reps=1 scale=1 held_max=200 levels="0 100 200"
	profile_wanted=0 update_docs=0
fi

build=${PORTD_BENCH_BUILD:-}
if [ -z "$build" ]; then
	build=$root/build
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPORTD_SANITIZE=OFF \
		>/dev/null
	cmake --build build -j "$(nproc 2>/dev/null || echo 2)" \
		--target portd portd-bench >/dev/null
fi
portd=$build/daemon/portd
bench=$build/bench/portd-bench

# Each held port is a descriptor in portd and in the floor server, and each
# leased port one more in portd (its host-wide marker): 15,000 leases need
# 32,000 descriptors. Root with CAP_SYS_RESOURCE may raise the hard limit;
# below that, the figures are taken with as many leases as the limit
# allows, and the report says how many.
# shellcheck disable=SC3045 # dash and bash both have ulimit -n and -H
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# shellcheck disable=SC3045
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ $((2 * held_max + 2000)) -gt "$nofile" ]; then
	held_max=$(((nofile - 2000) / 2 / 1000 * 1000))
	[ "$held_max" -ge 1000 ] || {
		echo "run.sh: the descriptor limit $nofile is too low" >&2
		exit 1
	}
	levels=$(for h in $levels; do if [ "$h" -lt "$held_max" ]; then echo "$h"; fi; done)
	# shellcheck disable=SC2086,SC2116 # one line of words
	levels="$(echo $levels) $held_max"
	echo "run.sh: descriptor limit $nofile: $held_max leases at most" >&2
fi

# Sockets and journals on tmpfs, as under /run in production.
for base in "${XDG_RUNTIME_DIR:-}" /dev/shm /tmp; do
	[ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] && break
done
tmp=$(mktemp -d "$base/portd-bench.XXXXXX")
[ $smoke = 1 ] && out=$tmp/out
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

n() { # n COUNT: COUNT scaled, at least 50
	v=$(($1 * scale / 100))
	[ "$v" -ge 50 ] && echo "$v" || echo 50
}

# run FIGURE SERVER REP BENCH-ARGS...: one result line, recorded as
#   FIGURE SERVER REP NAME N MEDIAN_US P99_US OPS_PER_S
run() {
	fig=$1 srv=$2 rep=$3
	shift 3
	echo "  $fig $srv #$rep: $*" >&2
	"$bench" "$@" | while IFS= read -r line; do
		printf '%s\t%s\t%s\t%s\n' "$fig" "$srv" "$rep" "$line"
	done >>"$results"
}

# note FIGURE SERVER VALUE: one number (memory, counts).
note() {
	printf '%s\t%s\t0\t%s\n' "$1" "$2" "$3" >>"$results"
}

# start NAME COMMAND...: start a server in the background as $started.
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
		echo "run.sh: pid $1 exited with $rc; its log:" >&2
		cat "$tmp"/*.log >&2 || true
		exit 1
	}
}

rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

echo "portd-bench: working in $tmp (network namespace: $netns)" >&2
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_start=$(date +%s)

ps=@portd-bench-ps-$$
psfloor=@portd-bench-psfloor-$$
gps=@portd-bench-google-$$
start portd "$portd" --socket "$tmp/portd.sock" --pool $pool --quota 65536 \
	--max-leases 65536 --log-level warning --portserver-address "$ps"
api=$started
start floor "$bench" -s "$tmp/floor.sock" serve-floor
floor=$started
start psfloor "$bench" -p "$psfloor" serve-ps-floor
start google /usr/bin/python3 /usr/bin/portserver \
	--portserver_address="$gps" --portserver_static_pool=$gpool
google=$started
"$bench" -s "$tmp/portd.sock" wait
"$bench" -s "$tmp/floor.sock" wait
"$bench" -p "$ps" wait
"$bench" -p "$psfloor" wait
"$bench" -p "$gps" wait
note rss-idle portd "$(rss $api)"
note rss-idle floor "$(rss $floor)"
note rss-idle google "$(rss $google)"

# The goal table: each figure against its floor or peer, interleaved and
# in alternating order, so that load coming and going on the machine
# touches both sides alike.
n1=$(n 3000) n4=$(n 6000) nps=$(n 4000) ngoogle=$(n 1000)
echo "goal table: $reps repetitions" >&2
rep=1
while [ $rep -le "$reps" ]; do
	if [ $((rep % 2)) = 1 ]; then order="portd floor"; else order="floor portd"; fi
	for s in $order; do
		run lease-1 "$s" "$rep" -s "$tmp/$s.sock" -n "$n1" -l lease-1 lease
	done
	for s in $order; do
		run lease-4 "$s" "$rep" -s "$tmp/$s.sock" -n "$n4" -c 4 -l lease-4 \
			concurrent
	done
	if [ $((rep % 2)) = 1 ]; then order="$ps $psfloor $gps"; else order="$gps $psfloor $ps"; fi
	for a in $order; do
		case $a in
		"$ps") s=portd k=$nps ;;
		"$psfloor") s=floor k=$nps ;;
		*) s=google k=$ngoogle ;;
		esac
		run ps-4 "$s" "$rep" -p "$a" -n "$k" -c 4 -l ps-4 portserver-concurrent
	done
	rep=$((rep + 1))
done

# Throughput against concurrent clients.
echo "throughput against clients" >&2
rep=1
while [ $rep -le $sweep_reps ]; do
	for k in 1 2 4 8 16; do
		for s in portd floor; do
			run "clients-$k" "$s" "$rep" -s "$tmp/$s.sock" -n "$(n 4000)" \
				-c $k -l "clients-$k" concurrent
		done
	done
	rep=$((rep + 1))
done

# Latency against leases held: both servers keep the sockets of the
# leases taken so far (the floor's bound to ephemeral ports by bind(0)).
echo "latency against leases held" >&2
have=0
for h in $levels; do
	if [ "$h" -gt "$have" ]; then
		for s in portd floor; do
			"$bench" -s "$tmp/$s.sock" fill $((h - have)) >/dev/null
		done
		have=$h
	fi
	rep=1
	while [ $rep -le $sweep_reps ]; do
		for s in portd floor; do
			run "held-$h" "$s" "$rep" -s "$tmp/$s.sock" -n "$(n 500)" \
				-l "held-$h" lease
		done
		rep=$((rep + 1))
	done
done
note rss-held portd "$(rss $api)"
note rss-held floor "$(rss $floor)"
for p in $pids; do stop "$p"; done

# Restart: 15,000 leases, SIGKILL, ready again; memory before and after.
echo "restart with $held_max leases" >&2
rep=1
while [ $rep -le $sweep_reps ]; do
	"$bench" --portd "$portd" --pool $pool --dir "$tmp" restart $held_max |
		while IFS= read -r line; do
			printf 'restart\tportd\t%s\t%s\n' $rep "$line"
		done >>"$results"
	rep=$((rep + 1))
done

# Where the time goes, counted rather than timed: instructions per pair
# under callgrind (two runs, so start-up cancels out) and system calls per
# pair under strace (attached after start-up).
profile=0
if [ "$profile_wanted" = 1 ] && command -v valgrind >/dev/null &&
	command -v strace >/dev/null; then
	profile=1
	echo "profile: callgrind and strace" >&2
	small=500 big=2500
	for s in portd floor; do
		for k in $small $big; do
			if [ $s = portd ]; then
				start cg valgrind --tool=callgrind \
					--callgrind-out-file="$tmp/cg-$s-$k.out" "$portd" \
					--socket "$tmp/cg.sock" --pool $pool --log-level warning
			else
				start cg valgrind --tool=callgrind \
					--callgrind-out-file="$tmp/cg-$s-$k.out" "$bench" \
					-s "$tmp/cg.sock" serve-floor
			fi
			cgpid=$started
			"$bench" -s "$tmp/cg.sock" wait
			"$bench" -s "$tmp/cg.sock" -n "$k" lease >/dev/null
			stop $cgpid
		done
		a=$(awk '/^summary:/ {print $2}' "$tmp/cg-$s-$small.out")
		b=$(awk '/^summary:/ {print $2}' "$tmp/cg-$s-$big.out")
		note ir-pair $s $(((b - a) / (big - small)))
	done
	# What the guarantees' own system calls cost, timed alone.
	"$bench" -n 20000 --dir "$tmp" guarantees |
		while IFS="$(printf '\t')" read -r _ w m o; do
			note guar-write portd "$w"
			note guar-marker portd "$m"
			note guar-sockopt portd "$o"
		done
	# "IR (PCT%) FILE:FUNCTION [LIB]" -> IR, PCT, FUNCTION, LIB.
	callgrind_annotate --inclusive=no "$tmp/cg-portd-$big.out" 2>/dev/null |
		awk '$1 ~ /^[0-9,]+$/ && !/PROGRAM TOTALS/ && n < 15 {
			n++; ir = $1; gsub(",", "", ir)
			pct = $0; sub(/^[^(]*\( */, "", pct); sub(/%\).*/, "", pct)
			fn = $0; sub(/^[^)]*\) +/, "", fn); lib = ""
			if (match(fn, / \[.*\]$/)) {
				lib = substr(fn, RSTART + 2, RLENGTH - 3)
				fn = substr(fn, 1, RSTART - 1)
				sub(/.*\//, "", lib)
			}
			sub(/.*:/, "", fn)
			printf "%s\t%s\t%s\t%s\n", ir, pct, fn, lib }' \
		>"$tmp/cg-top.txt" || true

	# strace -c attached to a running server; N operations.
	# straced SERVER-NAME TEST-ARGS...
	straced() {
		sname=$1
		shift
		strace -c -f -o "$tmp/st-$sname.txt" -p "$target" 2>"$tmp/st.log" &
		st=$!
		sleep 0.5
		"$bench" "$@" >/dev/null
		kill -INT $st
		wait $st || true
	}
	start stportd "$portd" --socket "$tmp/st.sock" --pool $pool \
		--log-level warning --portserver-address "$ps"
	target=$started
	"$bench" -s "$tmp/st.sock" wait
	straced portd -s "$tmp/st.sock" -n 2000 lease
	straced portd-ps -p "$ps" -n 1000 portserver
	stop "$target"
	start stfloor "$bench" -s "$tmp/st.sock" serve-floor
	target=$started
	"$bench" -s "$tmp/st.sock" wait
	straced floor -s "$tmp/st.sock" -n 2000 lease
	stop "$target"
	start stpsfloor "$bench" -p "$psfloor" serve-ps-floor
	target=$started
	"$bench" -p "$psfloor" wait
	straced floor-ps -p "$psfloor" -n 1000 portserver
	stop "$target"
	# Per operation: calls / N, by system call.
	for f in portd:2000 portd-ps:1000 floor:2000 floor-ps:1000; do
		sname=${f%%:*} k=${f#*:}
		awk -v s="$sname" -v k="$k" '
			$NF != "total" && $(NF) ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ {
				printf "sys\t%s\t0\t%s\t%.2f\n", s, $NF, $4 / k }' \
			"$tmp/st-$sname.txt" >>"$results"
	done
fi

load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }
machine="$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($cpu), \
$(awk '/MemTotal/ {printf "%.1f GB RAM", $2 / 1048576}' /proc/meminfo), \
Linux $(uname -r), portd $(git describe --always --dirty 2>/dev/null || echo '?'), \
libevent $(pkg-config --modversion libevent 2>/dev/null || echo '?'), \
json-c $(pkg-config --modversion json-c 2>/dev/null || echo '?'), \
python3-portpicker $(ver python3-portpicker). \
Load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end; \
$(nproc) CPUs. The run took $(($(date +%s) - t_start)) s \
(network namespace: $netns)."

mkdir -p "$out"
awk -F '\t' -v machine="$machine" -v reps="$reps" -v sweep="$sweep_reps" \
	-v held_max=$held_max -v levels="$levels" -v out="$out" \
	-v profile=$profile \
	-v top="$tmp/cg-top.txt" -f bench/report.awk "$results" >"$out/report.md"
cp "$results" "$out/results.tsv"

if command -v gnuplot >/dev/null; then
	gnuplot <<-EOF
		set terminal svg size 720,420 font "sans,12"
		set grid
		set key top left
		set output "$out/latency-held.svg"
		set title "lease + release, one client: median against leases held"
		set xlabel "leases held"
		set ylabel "µs per lease + release"
		set logscale y
		plot "$out/latency-held.dat" using 1:2 with linespoints title "portd", \
		     "" using 1:3 with linespoints title "floor (poll, bind 0)"
		set output "$out/throughput-clients.svg"
		set title "lease + release pairs per second against concurrent clients"
		set xlabel "clients (processes)"
		set ylabel "pairs/s"
		unset logscale y
		set yrange [0:*]
		set logscale x 2
		set xtics (1, 2, 4, 8, 16)
		plot "$out/throughput-clients.dat" using 1:2 with linespoints title "portd", \
		     "" using 1:3 with linespoints title "floor (poll, bind 0)"
	EOF
else
	echo "run.sh: gnuplot not found; no charts (the data is in $out/*.dat)" >&2
fi

if [ $update_docs = 1 ]; then
	mkdir -p docs/bench
	cp "$out"/*.svg docs/bench/ 2>/dev/null || true
	awk -v report="$out/report.md" '
		/^<!-- report: begin/ { print; while ((getline l < report) > 0) {
			gsub(/\]\(/, "](bench/", l); if (l ~ /^#/) l = "##" l; print l }; skip = 1; next }
		/^<!-- report: end/ { skip = 0 }
		!skip' docs/benchmarks.md >"$tmp/benchmarks.md"
	cp "$tmp/benchmarks.md" docs/benchmarks.md
	echo "run.sh: docs/benchmarks.md and docs/bench/ updated" >&2
fi
if [ $smoke = 1 ]; then
	# Every part of the report is there, with a figure in each row.
	for part in "## Goals" "native lease+release p50, 1 client" \
		"native lease+release p50, 4 clients" "native pairs/s, 4 clients" \
		"portserver requests/s, 4 clients" "ready after SIGKILL" \
		"RSS with $held_max leases" "## Charts"; do
		grep -F -- "$part" "$out/report.md" >/dev/null || {
			echo "run.sh: the report lacks '$part'" >&2
			cat "$out/report.md" >&2
			exit 1
		}
	done
	if grep -E '^\| (native|portserver|ready)[^|]*\| —' "$out/report.md"; then
		echo "run.sh: a goal row has no figure" >&2
		exit 1
	fi
	if [ "$(wc -l <"$out/latency-held.dat")" != 3 ] ||
		[ "$(wc -l <"$out/throughput-clients.dat")" != 5 ]; then
		echo "run.sh: the charts' data is incomplete" >&2
		exit 1
	fi
	if command -v gnuplot >/dev/null &&
		{ [ ! -s "$out/latency-held.svg" ] ||
			[ ! -s "$out/throughput-clients.svg" ]; }; then
		echo "run.sh: gnuplot drew no chart" >&2
		exit 1
	fi
	echo "run.sh: smoke run complete; the report has every part" >&2
	exit 0
fi
cat "$out/report.md"
