#!/bin/sh
# Build portd and run every test: once as released, once under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh            both builds
#   scripts/test.sh plain      only the plain build
#   scripts/test.sh sanitize   only the sanitizer build
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh test

jobs=$(nproc 2>/dev/null || echo 2)
which=${1:-all}

run() { # run NAME BUILD-TYPE CMAKE-ARGS...
	dir=build/$1
	type=$2
	shift 2
	echo "== portd: $dir ($type)" >&2
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
	cmake --build "$dir" -j "$jobs" >/dev/null
	(cd "$dir" && ctest --output-on-failure -j "$jobs")
}

if [ "$which" = all ] || [ "$which" = plain ]; then
	# Optimised, as released: -O2 also finds warnings -O0 cannot.
	# With the fuzz targets' short fixed-time runs (tests/fuzz/README.md).
	run plain RelWithDebInfo -DPORTD_FUZZ_RUN=ON
fi
if [ "$which" = all ]; then
	# Without libsystemd portd speaks the notify and socket-activation
	# protocols itself: build it so, and run the tests that play the
	# service manager against it.
	echo "== portd: build/nosystemd (service manager tests)" >&2
	cmake -S . -B build/nosystemd -DCMAKE_BUILD_TYPE=Debug \
		-DPORTD_WITH_SYSTEMD=OFF >/dev/null
	cmake --build build/nosystemd -j "$jobs" >/dev/null
	(cd build/nosystemd && ctest --output-on-failure -j "$jobs" \
		-R 'test_service|test_restart')
fi
if [ "$which" = all ] || [ "$which" = sanitize ]; then
	# detect_leaks: every leak fails the run; halt_on_error: UBSan too.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	CK_TIMEOUT_MULTIPLIER=4 \
		run sanitize Debug -DPORTD_SANITIZE=ON
fi
