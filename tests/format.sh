#!/bin/sh
# Every C source and header follows the checked-in .clang-format.
# Usage: format.sh SOURCE_DIR
set -eu
cd "$1"
if ! command -v clang-format >/dev/null 2>&1; then
	echo "SKIPPED: clang-format is not installed"
	exit 77
fi
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
# shellcheck disable=SC2086
if ! clang-format --dry-run -Werror $files; then
	echo "run: clang-format -i \$(git ls-files '*.c' '*.h')" >&2
	exit 1
fi
echo "$(echo "$files" | wc -w) files formatted"
