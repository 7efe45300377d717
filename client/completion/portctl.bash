# bash completion for portctl(1)
# shellcheck shell=bash

_portctl_leases()
{
	# Your leases' IDs, names and ports, from the daemon (never starting one).
	portctl --no-autostart list --json 2>/dev/null |
		grep -oE '"(id|name)":"[^"]+"|"ports":\[[0-9,]*\]' |
		sed -E 's/^"[a-z]+"://; s/^"//; s/"$//; s/[][]//g' | tr ',' '\n'
}

_portctl()
{
	local cur prev words cword cmd i
	local commands="lease release renew claim list status stop metrics who exec"
	local global="--socket --no-autostart --timeout --help"
	local lease_opts="-n --count --proto --family --port --contiguous --ttl --name --hold --strategy"

	cur=${COMP_WORDS[COMP_CWORD]}
	prev=""
	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD-1]}

	# The command is the first word that is not an option or its value.
	cmd=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket | --timeout) i=$((i + 1)) ;;
		--) break ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done

	case $prev in
	--socket)
		COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--proto)
		COMPREPLY=($(compgen -W "tcp udp both" -- "$cur")); return ;;
	--family)
		COMPREPLY=($(compgen -W "dual ipv4 ipv6" -- "$cur")); return ;;
	--hold)
		COMPREPLY=($(compgen -W "shared exclusive" -- "$cur")); return ;;
	--strategy)
		COMPREPLY=($(compgen -W "pool ephemeral" -- "$cur")); return ;;
	--scope)
		COMPREPLY=($(compgen -W "ttl session" -- "$cur")); return ;;
	--ttl | --timeout)
		COMPREPLY=($(compgen -W "30s 5m 1h 1h30m 1d" -- "$cur")); return ;;
	-n | --count | --port | --name | --env)
		return ;;
	esac

	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$commands $global --version" -- "$cur"))
		return
	fi
	case $cmd in
	lease)
		COMPREPLY=($(compgen -W "$lease_opts --scope --json $global" -- "$cur")) ;;
	exec)
		# After --, complete the command to run.
		for ((i = 1; i < COMP_CWORD; i++)); do
			if [ "${COMP_WORDS[i]}" = -- ]; then
				COMPREPLY=($(compgen -c -- "$cur"))
				return
			fi
		done
		COMPREPLY=($(compgen -W "$lease_opts --fd --env -- $global" -- "$cur")) ;;
	release | renew | claim)
		if [[ $cur == -* ]]; then
			case $cmd in
			renew) COMPREPLY=($(compgen -W "--ttl --json $global" -- "$cur")) ;;
			claim) COMPREPLY=($(compgen -W "--json $global" -- "$cur")) ;;
			*) COMPREPLY=($(compgen -W "$global" -- "$cur")) ;;
			esac
		else
			COMPREPLY=($(compgen -W "$(_portctl_leases)" -- "$cur"))
		fi ;;
	list)
		COMPREPLY=($(compgen -W "--all --json $global" -- "$cur")) ;;
	status | who)
		COMPREPLY=($(compgen -W "--json $global" -- "$cur")) ;;
	stop | metrics)
		COMPREPLY=($(compgen -W "$global" -- "$cur")) ;;
	esac
}

complete -F _portctl portctl
