#!/bin/sh
# libportd exports nothing but portd_* (and its version node): checks the
# shared library's dynamic symbols and the static library's globals.
#   client_symbols.sh LIBPORTD.so LIBPORTD.a
set -eu
so=$1
ar=$2
bad=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' |
	grep -v -e '^portd_' -e '^PORTD_[0-9]*$' || true)
if [ -n "$bad" ]; then
	echo "libportd.so exports symbols outside portd_:" >&2
	echo "$bad" >&2
	exit 1
fi
nm -D --defined-only "$so" | grep -q ' portd_connect@@PORTD_0$' || {
	echo "portd_connect is not exported (version PORTD_0)" >&2
	exit 1
}
bad=$(nm -g --defined-only "$ar" | awk 'NF == 3 {print $3}' |
	grep -v '^portd_' || true)
if [ -n "$bad" ]; then
	echo "libportd.a defines global symbols outside portd_:" >&2
	echo "$bad" >&2
	exit 1
fi
nm -g --defined-only "$ar" | grep -q ' T portd_lease$' || {
	echo "libportd.a lacks portd_lease" >&2
	exit 1
}
echo "ok: only portd_ symbols exported"
