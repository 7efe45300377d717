#!/bin/sh
# Check portd's systemd units with systemd's own tools.
#   test_units.sh UNITDIR [THRESHOLD]
# UNITDIR holds system/ and user/, each with portd.service and portd.socket
# naming the built binary. THRESHOLD is the highest exposure allowed for the
# system service on systemd-analyze's 0-100 scale (20 means 2.0).
# Exit 77 (skipped) without systemd-analyze.
set -u

dir=$1
threshold=${2:-20}
fail=0

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze not found: skipped"
	exit 77
fi
systemd-analyze --version | head -n 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/portd-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
# The user manager's paths need a runtime folder; give it a private one.
mkdir -m 0700 "$tmp/xdg"

# verify MODE FILE: systemd-analyze verify, failing on any stderr output,
# since it exits 0 on an unknown key or a bad value it ignores.
verify() {
	if [ "$1" = user ]; then
		set -- --user verify "$2"
	else
		set -- verify "$2"
	fi
	XDG_RUNTIME_DIR="$tmp/xdg" systemd-analyze "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ]; then
		echo "FAIL: systemd-analyze $*: exit $rc" >&2
		cat "$tmp/out" "$tmp/err" >&2
		return 1
	fi
	echo "ok: systemd-analyze $*"
	return 0
}

# verify must notice a broken unit, or the checks below prove nothing.
mkdir "$tmp/bad"
printf '[Service]\nExecStart=/bin/true\nNoSuchKey=1\n' \
    >"$tmp/bad/portd-bad.service"
if verify system "$tmp/bad/portd-bad.service" 2>/dev/null; then
	echo "FAIL: verify accepted a unit with an unknown key" >&2
	fail=1
fi

for mode in system user; do
	for unit in portd.service portd.socket portd-portserver.socket; do
		if [ ! -f "$dir/$mode/$unit" ]; then
			echo "FAIL: $dir/$mode/$unit missing" >&2
			fail=1
			continue
		fi
		verify "$mode" "$dir/$mode/$unit" || fail=1
	done
done

# The system service's exposure, checked by systemd-analyze (--threshold) and
# again from the figure it prints.
XDG_RUNTIME_DIR="$tmp/xdg" systemd-analyze security --offline=yes \
    --threshold="$threshold" "$dir/system/portd.service" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' \
    "$tmp/out")
echo "system portd.service exposure: ${exposure:-unknown}" \
    "(at most $(awk "BEGIN { printf \"%.1f\", $threshold / 10 }"))"
if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ] || [ -z "$exposure" ] ||
    ! awk "BEGIN { exit !($exposure * 10 <= $threshold) }"; then
	echo "FAIL: systemd-analyze security: exit $rc" >&2
	grep -v '^✓' "$tmp/out" >&2
	cat "$tmp/err" >&2
	fail=1
fi

# The user service for information: no threshold, many sandboxing options
# need the system manager.
XDG_RUNTIME_DIR="$tmp/xdg" systemd-analyze --user security --offline=yes \
    "$dir/user/portd.service" 2>/dev/null |
    sed -n 's/.*\(Overall exposure level for [^:]*: [0-9.]*\).*/user \1/p'

exit "$fail"
