#!/bin/sh
# Install whatever portd needs to build and test that this Debian machine lacks.
# Usage: scripts/deps.sh [build|test|bench]   (test adds the tools the test
# suite runs; bench adds to those the charts' and the profile's: bench/run.sh)
set -eu

want="gcc make cmake pkg-config libevent-dev libjson-c-dev check libsubunit-dev libsystemd-dev"
if [ "${1:-build}" = test ] || [ "${1:-build}" = bench ]; then
	# Real peers the tests run as they are: systemd's tools, Python's
	# portpicker, pytest (with xdist) and http.server, node and npm, Go,
	# promtool (from prometheus), clang's libFuzzer, unshare/setpriv, ip,
	# zsh (its completion's test).
	want="$want systemd python3 python3-portpicker python3-pytest python3-pytest-xdist"
	want="$want python3-pycodestyle python3-setuptools python3-venv"
	want="$want nodejs golang-go prometheus clang libclang-rt-14-dev"
	want="$want util-linux iproute2 procps clang-format git zsh"
fi
if [ "${1:-build}" = bench ]; then
	want="$want gnuplot-nox valgrind strace"
fi

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# nodejs may come from elsewhere than Debian; a working node is enough.
case " $missing " in *" nodejs "*) command -v node >/dev/null 2>&1 &&
	missing=$(echo "$missing" | sed 's/ nodejs//') ;; esac

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "portd: missing packages:$missing" >&2
	echo "portd: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "portd: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
