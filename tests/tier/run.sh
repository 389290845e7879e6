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
time.sleep(3)
assert all(b[i] == (i // 4096) & 0xff for i in range(0, len(b), 4096))
print("python ok", flush=True)
' >"$out" &
	job=$!
	pid=
	for i in $(seq 1 200); do
		pid=$(head -n1 "$out")
		[ -n "$pid" ] && break
		sleep 0.1
	done
	# The statistics are published ten times a second: look until both
	# tiers show up (python sleeps 3 s after its fill).
	for i in $(seq 1 20); do
		list=$("$XMEM" tier list "$pid" 2>&1)
		echo "$list" | grep -q '"device_bytes": *[1-9]' && break
		sleep 0.1
	done
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
	# Device memory from a range of a region on a shmem file, shared by
	# stress-ng's worker processes (each claims extents of its own).
	dev="/dev/shm/xmem-test-tier-run.$$"
	rm -f "$dev"
	"$XMEM" region create -d "$dev" -s 160M >/dev/null &&
		"$XMEM" range create cxl -d "$dev" -s 128M -a 2M -m tier >/dev/null ||
		{ echo "FAIL: region/range setup"; rm -f "$dev"; exit 1; }
	"$XMEM" tier run --dram 32M --device "$dev:cxl" --threshold 8M -- \
		stress-ng --vm 2 --vm-bytes 96M --verify --timeout 3s --quiet ||
		{ echo "FAIL: stress-ng on a range"; rm -f "$dev"; exit 1; }
	"$XMEM" tier run --device "$dev:nope" -- true 2>/dev/null &&
		{ echo "FAIL: a missing range was accepted"; rm -f "$dev"; exit 1; }
	rm -f "$dev"
	echo "stress-ng on a range ok"
	ran=1
fi
[ $ran = 1 ] || { echo "SKIP: neither python3 nor stress-ng is installed"; exit 77; }
exit 0
