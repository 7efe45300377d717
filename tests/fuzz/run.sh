#!/bin/sh
# Fuzz one target for a fixed time from its seeds, in a fresh corpus.
#   run.sh FUZZER SECONDS MAX_LEN SUMMARY_FILE DICTIONARY SEED_DIR...
# The seeds of a SEED_DIR are its files, and the file input of each folder
# in it (the golden tree's layout, tests/cases/README.md), as
# portd_fuzz_target in tests/CMakeLists.txt takes them.
# Fails when libFuzzer finds a crash, a leak or a sanitizer report; the
# executions and the corpus size go to SUMMARY_FILE (docs/reliability.md).
set -eu
bin=$1 secs=$2 maxlen=$3 summary=$4 dict=$5
shift 5
[ $# -gt 0 ] || { echo "run.sh: no seed folder" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/portd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/seeds"
n=0
for dir in "$@"; do
	for f in "$dir"/* "$dir"/*/input; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		cp "$f" "$work/seeds/$n"
	done
done
[ "$n" -gt 0 ] || { echo "run.sh: no seeds in $*" >&2; exit 2; }
cd "$work"
rc=0
"$bin" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -dict="$dict" corpus seeds \
	>"$work/log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
corpus=$(ls corpus | wc -l)
crashes=$(ls | grep -c -E '^(crash|leak|timeout|oom)-' || true)
echo "$(basename "$bin"): ${execs:-0} executions in ${secs} s, $n seeds, corpus $corpus, crashes $crashes, exit $rc" |
	tee "$summary"
if [ "$rc" -ne 0 ]; then
	tail -60 "$work/log"
	exit 1
fi
