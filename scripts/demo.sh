#!/bin/sh
# Build portd and show its main job: a per-user portd on a user socket leases
# a port, holds it (a plain bind fails, a SO_REUSEADDR server co-binds), and
# lets go on release.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DPORTD_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$jobs" >/dev/null
bin=build/release

# A private runtime folder, so the demo never touches a real user daemon.
export XDG_RUNTIME_DIR="$(mktemp -d /tmp/portd-demo.XXXXXX)"
unset PORTD_SOCKET
sock="$XDG_RUNTIME_DIR/portd/portd.sock"
cleanup() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$XDG_RUNTIME_DIR"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "portd &   (per-user: $sock)"
"$bin/daemon/portd" --log-level notice &
pid=$!
i=0
until "$bin/client/portctl" --no-autostart status >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "portd did not start" >&2; exit 1; }
	sleep 0.01
done

say "portctl lease --name demo"
port=$("$bin/client/portctl" lease --name demo)
echo "$port"

say "portctl list"
"$bin/client/portctl" list

probe() { # probe REUSEADDR: try to bind and listen on $port
	python3 - "$port" "$1" <<'PY'
import socket, sys
port, reuse = int(sys.argv[1]), sys.argv[2] == "1"
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if reuse:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", port)); s.listen()
    print("bind(%d)%s: ok" % (port, " with SO_REUSEADDR" if reuse else ""))
except OSError as e:
    print("bind(%d)%s: %s" % (port, " with SO_REUSEADDR" if reuse else "", e.strerror))
PY
}

say "a plain bind on the leased port (someone else trying to take it)"
probe 0
say "a server that sets SO_REUSEADDR binds beside portd (co-bind)"
probe 1

say "portctl release $port"
"$bin/client/portctl" release "$port"
say "a plain bind after the release"
probe 0

say "portctl status"
"$bin/client/portctl" status
