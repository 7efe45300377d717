# shellcheck shell=sh
# Sourced by client_cmake.sh and client_install.sh once they have made
# $tmp: the build installed into $tmp/prefix ($p), and the portd installed
# there run on a socket of its own ($daemon_pid while it runs).
daemon_pid=
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
kill_portd() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
}
# install_prefix BUILD_DIR
install_prefix() {
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
