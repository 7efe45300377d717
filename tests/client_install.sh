#!/bin/sh
# Install into a temporary prefix and use libportd the way a user would:
# a C program built with pkg-config (shared, and static from libportd.a),
# a CMake project with find_package(portd), and the installed portctl
# auto-starting the installed portd from ../sbin.
#   client_install.sh BUILD_DIR SANITIZE(ON|OFF)
set -eu
build=$1
sanitize=$2
# shellcheck source=tests/install_common.sh
. "$(dirname "$0")/install_common.sh"

install_prefix "$build" portd-install
libdir=$(cd "$p" && find . -name libportd.so -path '*lib*' | head -1)
[ -n "$libdir" ] || fail "libportd.so not installed"
libdir=$p/$(dirname "$libdir")
for f in "$p/include/portd.h" "$libdir/libportd.a" "$libdir/pkgconfig/portd.pc" \
	"$libdir/cmake/portd/portdConfig.cmake" "$p/bin/portctl" \
	"$p/sbin/portd" "$p/share/man/man1/portctl.1" \
	"$p/share/man/man3/libportd.3" \
	"$p/share/bash-completion/completions/portctl" \
	"$p/share/zsh/site-functions/_portctl"; do
	[ -e "$f" ] || fail "$f not installed"
done
soname=$(objdump -p "$libdir/libportd.so" | awk '/SONAME/ {print $2}')
[ -e "$libdir/$soname" ] || fail "SONAME $soname not installed"

cflags=$(sanitize_flags "$sanitize")

cat >"$tmp/use.c" <<'EOC'
#include <portd.h>
#include <stdio.h>

int
main(void)
{
	struct portd_options opts = {.timeout_ms = 2000};
	struct portd *h;
	struct portd_lease *l;
	int rc;

	if ((rc = portd_connect(&opts, &h)) < 0) {
		fprintf(stderr, "connect: %s\n", portd_strerror(rc));
		return 1;
	}
	if ((rc = portd_lease(h, NULL, &l)) < 0) {
		fprintf(stderr, "lease: %s: %s\n", portd_strerror(rc),
		    portd_errmsg(h));
		return 1;
	}
	printf("%u\n", l->ports[0]);
	portd_lease_free(l);
	portd_close(h);
	return 0;
}
EOC
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
cc -std=c17 -Wall -Werror $cflags -o "$tmp/use" "$tmp/use.c" \
	$(pkg-config --cflags --libs portd) -Wl,-rpath,"$libdir"
# shellcheck disable=SC2046
cc -std=c17 -Wall -Werror $cflags -o "$tmp/use-static" "$tmp/use.c" \
	$(pkg-config --cflags portd) "$libdir/libportd.a" \
	$(pkg-config --libs json-c) -pthread
if nm "$tmp/use-static" | grep -q ' T proto_'; then
	fail "libportd.a leaks the codec's symbols"
fi

mkdir -p "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<'EOC'
cmake_minimum_required(VERSION 3.18)
project(use_portd C)
find_package(portd 0.1 REQUIRED)
add_executable(use ../use.c)
target_link_libraries(use PRIVATE portd::portd)
EOC
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$p" \
	-DCMAKE_C_FLAGS="$cflags" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null

start_portd "$tmp/portd.sock" 26800-26999 200 0.02
for prog in "$tmp/use" "$tmp/use-static" "$tmp/cm/build/use"; do
	port=$(PORTD_SOCKET=$tmp/portd.sock "$prog") || fail "$prog failed"
	[ "$port" -ge 26800 ] && [ "$port" -le 26999 ] ||
		fail "$prog leased $port, outside the pool"
done
stop_portd

# The installed portctl starts the installed portd from ../sbin, with no
# portd in PATH.
mkdir -m 0700 "$tmp/run"
port=$(env -u PORTD_SOCKET -u PORTD_NO_AUTOSTART XDG_RUNTIME_DIR="$tmp/run" \
	PATH=/usr/bin:/bin "$p/bin/portctl" lease --ttl 60) ||
	fail "installed portctl could not auto-start portd"
[ -S "$tmp/run/portd/portd.sock" ] || fail "no socket after auto-start"
echo "ok: installed library, pkg-config, CMake package and portctl work"
