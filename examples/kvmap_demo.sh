#!/bin/sh
# kvmap_demo.sh KVMAP - the key-value map survives a crash in the middle
# of a change: put, get, delete, scan, growth past many bucket doublings,
# then a SIGKILL inside a transaction, after which the map is intact.
set -e
kv=$1
f=${XMEM_TEST_DIR:-/dev/shm}/xmem-kvmap-demo.$$
trap 'rm -f "$f"' EXIT
rm -f "$f"

"$kv" "$f" put alpha 1
"$kv" "$f" put beta 2
"$kv" "$f" put alpha 3
test "$("$kv" "$f" get alpha)" = 3
"$kv" "$f" del beta
if "$kv" "$f" get beta; then echo "beta still there"; exit 1; fi
"$kv" "$f" fill 2000
test "$("$kv" "$f" scan | wc -l)" -eq 2001
"$kv" "$f" check

# a crash in the middle of the 5th insert: that insert is rolled back
if "$kv" "$f" --crash-at 5 fill 10 crash; then
	echo "the simulated crash did not happen"; exit 1
fi
"$kv" "$f" check
test "$("$kv" "$f" scan | grep -c '^crash')" -eq 4
if "$kv" "$f" get crash4; then echo "crash4 survived"; exit 1; fi
# a crash while replacing a value keeps the old value
if "$kv" "$f" --crash-at 1 put alpha 99; then exit 1; fi
test "$("$kv" "$f" get alpha)" = 3
"$kv" "$f" check
echo "kvmap demo: ok"
