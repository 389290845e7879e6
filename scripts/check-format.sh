#!/bin/sh
# Checks that every C file in the tree is formatted as .clang-format says.
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "format: $f differs from .clang-format (run clang-format -i $f)"
		bad=1
	fi
done
[ $bad = 0 ] && echo "format: all C files match .clang-format"
exit $bad
