#!/bin/sh
# libportd exports nothing but portd_* (and its version node): checks the
# shared library's dynamic symbols and the static library's globals.
#   client_symbols.sh LIBPORTD.so LIBPORTD.a
set -eu
so=$1
ar=$2
# refuse WHAT BAD: fail, saying what and listing bad, unless bad is empty.
refuse() {
	[ -z "$2" ] && return
	echo "$1" >&2
	echo "$2" >&2
	exit 1
}
refuse "libportd.so exports symbols outside portd_:" \
	"$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' |
		grep -v -e '^portd_' -e '^PORTD_[0-9]*$' || true)"
nm -D --defined-only "$so" | grep -q ' portd_connect@@PORTD_0$' || {
	echo "portd_connect is not exported (version PORTD_0)" >&2
	exit 1
}
refuse "libportd.a defines global symbols outside portd_:" \
	"$(nm -g --defined-only "$ar" | awk 'NF == 3 {print $3}' |
		grep -v '^portd_' || true)"
nm -g --defined-only "$ar" | grep -q ' T portd_lease$' || {
	echo "libportd.a lacks portd_lease" >&2
	exit 1
}
echo "ok: only portd_ symbols exported"
