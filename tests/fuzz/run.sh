#!/bin/sh
# Fuzz one target for a fixed time from its seeds, in a fresh corpus.
#   run.sh FUZZER SECONDS MAX_LEN SEED_DIR SUMMARY_FILE DICTIONARY
# Fails when libFuzzer finds a crash, a leak or a sanitizer report; the
# executions and the corpus size go to SUMMARY_FILE (docs/reliability.md).
set -eu
bin=$1 secs=$2 maxlen=$3 seeds=$4 summary=$5 dict=$6
work=$(mktemp -d "${TMPDIR:-/tmp}/portd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cd "$work"
rc=0
"$bin" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -dict="$dict" corpus "$seeds" \
	>"$work/log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
corpus=$(ls corpus | wc -l)
crashes=$(ls | grep -c -E '^(crash|leak|timeout|oom)-' || true)
echo "$(basename "$bin"): ${execs:-0} executions in ${secs} s, corpus $corpus, crashes $crashes, exit $rc" |
	tee "$summary"
if [ "$rc" -ne 0 ]; then
	tail -60 "$work/log"
	exit 1
fi
