#!/bin/sh
# run.sh - `xmem tier run` with real unmodified programs: python3 filling a
# large bytearray (its data on both tiers, seen by `xmem tier list` while
# it runs) and stress-ng --vm with verification. Skips what is missing.
set -u
XMEM="$XMEM_TEST_BUILD/tools/xmem/xmem"
[ -x "$XMEM" ] || { echo "SKIP: $XMEM not built"; exit 77; }
ran=0
case "${XMEM_TEST_SANITIZE:-none}" in
none | "") ;;
*) echo "SKIP: the preload module is built with a sanitizer; unmodified programs cannot load it"; exit 77 ;;
esac

if command -v python3 >/dev/null; then
	out=$(mktemp)
	"$XMEM" tier run --dram 32M --threshold 8M -- python3 -c '
import os, sys, time
b = bytearray(96 * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = (i // 4096) & 0xff
print(os.getpid(), flush=True)
time.sleep(1.5)
assert all(b[i] == (i // 4096) & 0xff for i in range(0, len(b), 4096))
print("python ok", flush=True)
' >"$out" &
	job=$!
	sleep 1
	pid=$(head -n1 "$out")
	list=$("$XMEM" tier list "$pid" 2>&1)
	wait $job || { echo "FAIL: python3 under xmem tier run"; cat "$out"; exit 1; }
	grep -q "python ok" "$out" || { echo "FAIL: python3 output"; exit 1; }
	echo "$list"
	echo "$list" | grep -q '"dram_bytes": *[1-9]' || { echo "FAIL: nothing in DRAM"; exit 1; }
	echo "$list" | grep -q '"device_bytes": *[1-9]' || { echo "FAIL: nothing on the device"; exit 1; }
	rm -f "$out"
	ran=1
fi

if command -v stress-ng >/dev/null; then
	"$XMEM" tier run --dram 32M --threshold 8M -- stress-ng --vm 2 \
		--vm-bytes 96M --verify --timeout 3s --quiet ||
		{ echo "FAIL: stress-ng --vm --verify under xmem tier run"; exit 1; }
	echo "stress-ng ok"
	ran=1
fi
[ $ran = 1 ] || { echo "SKIP: neither python3 nor stress-ng is installed"; exit 77; }
exit 0
