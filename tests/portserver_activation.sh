#!/bin/sh
# Socket activation with two named sockets, as portd.socket and
# portd-portserver.socket pass them: the real portpicker gets a port
# through the passed endpoint before any API call was made.
#   portserver_activation.sh PORTD PORTCTL
# Exit 77 (skipped) without systemd-socket-activate or Debian's portpicker.
set -u
portd=$1
portctl=$2
py=/usr/bin/python3
command -v systemd-socket-activate >/dev/null 2>&1 || { echo "no systemd-socket-activate: skipped"; exit 77; }
$py -c 'import portpicker' 2>/dev/null || { echo "no python3-portpicker: skipped"; exit 77; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/portd-sa.XXXXXX") || exit 1
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
systemd-socket-activate -l "$dir/api.sock" -l "$dir/portserver.sock" \
    --fdname=api:portserver "$portd" --socket "$dir/api.sock" \
    --pool 24900-24999 2>"$dir/log" &
pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
	[ -S "$dir/portserver.sock" ] && break
	sleep 0.1
done
# The first connection is portpicker's: it starts portd.
port=$(PORTSERVER_ADDRESS="$dir/portserver.sock" timeout 10 $py -c '
import portpicker, sys
p = portpicker.pick_unused_port()
print(p)
# The port is leased to this process: portd says so before we exit.
import subprocess
out = subprocess.run([sys.argv[1], "--socket", sys.argv[2], "--no-autostart",
    "list", "--all", "--json"], capture_output=True, text=True).stdout
print(out)
' "$portctl" "$dir/api.sock") || { echo "FAIL: portpicker" >&2; cat "$dir/log" >&2; exit 1; }
first=$(echo "$port" | head -n 1)
echo "portpicker got $first"
case $first in
24[9][0-9][0-9]) ;;
*) echo "FAIL: port $first is not from portd's pool (portpicker fell back?)" >&2; cat "$dir/log" >&2; exit 1 ;;
esac
echo "$port" | tail -n +2 | grep -q "\"ports\":\[$first\].*\"name\":\"portserver\"" || {
	echo "FAIL: no portserver lease of $first in list:" >&2; echo "$port" >&2; exit 1; }
grep -q "serving the portserver protocol on the passed socket" "$dir/log" || {
	echo "FAIL: portd did not adopt the passed endpoint" >&2; cat "$dir/log" >&2; exit 1; }
echo "ok: portserver endpoint served from the passed socket"
