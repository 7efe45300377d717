#!/bin/sh
# Run a test program in a network namespace of its own, loopback up, so
# that test programs running side by side (ctest -j) never meet on a port:
# each may use any port range it likes, and none has to be kept by hand.
#   netns.sh COMMAND [ARG...]
#
# As root (CI): unshare -n. As another user, where unprivileged user
# namespaces are allowed: unshare -rn (the program then runs as root of
# its own user namespace; tests that need a second real uid skip or fail
# there, see docs/architecture.md). Where neither works the program runs
# in the host's namespace, with a warning: run such a suite with ctest -j1.
# PORTD_TEST_NETNS=0 turns the launcher off; inside its namespace it is
# set to 1, so a nested call does not make another one.
set -eu
[ $# -gt 0 ] || { echo "usage: netns.sh COMMAND [ARG...]" >&2; exit 2; }
if [ "${PORTD_TEST_NETNS:-}" = 0 ] || [ "${PORTD_TEST_NETNS:-}" = 1 ]; then
	exec "$@"
fi
PORTD_TEST_NETNS=1
export PORTD_TEST_NETNS
inner='ip link set lo up && exec "$@"'
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
	exec unshare -n -- sh -c "$inner" sh "$@"
fi
if unshare -rn true 2>/dev/null; then
	exec unshare -rn -- sh -c "$inner" sh "$@"
fi
echo "netns.sh: no private network namespace here (not root, no user" \
	"namespaces): running in the host's; use ctest -j1" >&2
exec "$@"
