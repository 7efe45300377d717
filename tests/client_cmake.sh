#!/bin/sh
# The CMake package from an installed prefix, as a user's project uses it:
# tests/cmake_sample builds against portd::portd and portd::portd_static
# and registers its tests with portd_add_test(); `ctest -j4` runs them
# against the installed portd, and every test must have seen its own held
# ports (the tests check that themselves and write what they saw).
# regression_cmake_static_threads: portd::portd_static named
# Threads::Threads, which the package config never found.
#   client_cmake.sh BUILD_DIR SOURCE_DIR SANITIZE(ON|OFF)
set -eu
build=$1
src=$2
sanitize=$3
# shellcheck source=tests/install_common.sh
. "$(dirname "$0")/install_common.sh"

install_prefix "$build" portd-cmake
flags=$(sanitize_flags "$sanitize")
cmake -S "$src/tests/cmake_sample" -B "$tmp/sample" \
	-DCMAKE_PREFIX_PATH="$p" -DCMAKE_C_FLAGS="$flags" \
	-DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/configure.log" 2>&1 ||
	fail "configure: $(cat "$tmp/configure.log")"
cmake --build "$tmp/sample" >"$tmp/build.log" 2>&1 ||
	fail "build: $(cat "$tmp/build.log")"
mkdir "$tmp/sample/seen"

start_portd "$tmp/portd.sock" 31900-31999 500 0.01
export PORTD_SOCKET="$tmp/portd.sock"
(cd "$tmp/sample" && ctest -j4 --output-on-failure) >"$tmp/ctest.log" 2>&1 ||
	fail "ctest: $(cat "$tmp/ctest.log")"
tests=$(cd "$tmp/sample" && ctest -N | awk '/Total Tests:/ {print $3}')
[ "$tests" -eq 14 ] || fail "$tests tests registered, not 14"
seen=$(find "$tmp/sample/seen" -type f | wc -l)
[ "$seen" -eq "$tests" ] || fail "$seen of $tests tests saw their ports"
total=$(cat "$tmp/sample/seen"/* | wc -l)
distinct=$(cat "$tmp/sample/seen"/* | sort -u | wc -l)
[ "$total" -eq 17 ] && [ "$distinct" -eq 17 ] ||
	fail "$distinct distinct ports of $total: $(cat "$tmp/sample/seen"/*)"
left=$("$p/bin/portctl" list --json)
[ "$left" = "[]" ] || fail "leases left after the run: $left"
stop_portd
echo "ok: $tests tests under portd_add_test, ctest -j4, $distinct distinct held ports"
