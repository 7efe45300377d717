#!/bin/bash
# The shell completions: bash's, run as bash runs it, against a real portd;
# zsh's, loaded by compinit; both know every command portctl --help lists.
# usage: completion.sh PORTD PORTCTL COMPLETION_DIR
set -eu
portd=$1 portctl=$2 dir=$3
tmp=$(mktemp -d /tmp/portd-completion.XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "completion: $*" >&2; exit 1; }

export PORTD_SOCKET=$tmp/portd.sock PATH=$(dirname "$portctl"):$PATH
"$portd" --socket "$PORTD_SOCKET" --pool 30900-30949 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do [ -S "$PORTD_SOCKET" ] && break; sleep 0.05; done
id=$(portctl lease --name webserver --json | sed 's/.*"id":"\([^"]*\)".*/\1/')
port=$(portctl list --json | grep -o '"ports":\[[0-9]*' | grep -o '[0-9]*$')

# Complete the words as bash would; print COMPREPLY one a line.
complete_bash() {
	bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_portctl
		printf "%s\n" "${COMPREPLY[@]}"' complete "$dir/portctl.bash" "$@"
}
has() { # has WORD -- WORDS...
	local want=$1; shift
	complete_bash "$@" | grep -qx -- "$want" ||
		fail "'$*' does not offer '$want': $(complete_bash "$@" | tr '\n' ' ')"
}

commands=$(portctl --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ "$(echo "$commands" | wc -l)" -ge 9 ] || fail "portctl --help lists: $commands"
for c in $commands; do
	has "$c" portctl ""
	grep -q "'$c:" "$dir/_portctl" || fail "zsh's completion lacks $c"
done
has release portctl rel
has --socket portctl --so
has udp portctl lease --proto ""
has exclusive portctl lease --hold ""
has session portctl lease --scope ""
has --contiguous portctl lease --con
has --all portctl list ""
has --fd portctl exec ""
has bash portctl exec -n 2 -- bas
has status portctl --socket /x st
# Lease references come from the daemon: ID, name and port.
has "$id" portctl release ""
has webserver portctl renew ""
has "$port" portctl claim ""
has --ttl portctl renew --t
[ -z "$(complete_bash portctl lease --port "")" ] || fail "--port offered words"

# zsh: compinit finds the function through fpath and binds it.
out=$(zsh -fc "fpath=('$dir' \$fpath); autoload -U compinit; compinit -u -D; print -r -- \$_comps[portctl]")
[ "$out" = _portctl ] || fail "zsh binds portctl to '$out'"
zsh -n "$dir/_portctl" || fail "zsh: syntax"
echo "completion: ok"
