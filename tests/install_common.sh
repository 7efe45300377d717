# shellcheck shell=sh
# Sourced by client_cmake.sh and client_install.sh: a temporary folder
# ($tmp, made by install_prefix), the build installed into $tmp/prefix
# ($p), and the portd installed there run on a socket of its own
# ($daemon_pid while it runs).
daemon_pid=
tmp=
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
kill_portd() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
}
# At exit: the portd started here, and one the installed portctl may
# have auto-started on $tmp/run, are stopped; $tmp goes.
cleanup() {
	kill_portd
	if [ -f "$tmp/run/portd/portd.sock.lock" ]; then
		kill "$(cat "$tmp/run/portd/portd.sock.lock")" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
# install_prefix BUILD_DIR NAME: $tmp made (/tmp/NAME.XXXXXX, removed by
# cleanup at exit), and the build installed into it.
install_prefix() {
	tmp=$(mktemp -d "/tmp/$2.XXXXXX")
	trap cleanup EXIT
	cmake --install "$1" --prefix "$tmp/prefix" >/dev/null
	p=$tmp/prefix
}
# sanitize_flags ON|OFF: the compiler flags of a sanitizer build, or none.
sanitize_flags() {
	if [ "$1" = ON ]; then
		echo "-fsanitize=address,undefined"
	fi
}
# start_portd SOCKET POOL TRIES PAUSE: start it, wait for its socket.
start_portd() {
	"$p/sbin/portd" --socket "$1" --pool "$2" 2>"$tmp/portd.log" &
	daemon_pid=$!
	for _ in $(seq "$3"); do
		[ -S "$1" ] && break
		sleep "$4"
	done
}
# stop_portd: it must exit cleanly on SIGTERM.
stop_portd() {
	kill "$daemon_pid"
	wait "$daemon_pid" || fail "portd exited badly: $(cat "$tmp/portd.log")"
	daemon_pid=
}
