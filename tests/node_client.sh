#!/bin/sh
# The Node client's tests (node --test) against the portd of this build.
# Usage: node_client.sh PORTD CLIENT-DIR
# Exits 77 (skipped) only when no Node.js >= 18 is installed.
set -eu
portd=$1
dir=$2
if ! command -v node >/dev/null 2>&1; then
	echo "SKIPPED: node is not installed (scripts/deps.sh test installs nodejs)" >&2
	exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
	echo "SKIPPED: node $(node --version) is older than 18" >&2
	exit 77
fi
cd "$dir"
PORTD_BIN=$portd exec node --test
