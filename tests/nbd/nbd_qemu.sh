#!/bin/sh
# SPDX-License-Identifier: MIT
# qemu-img and qemu-io against `xmem blk serve`: a random image converted
# into the export and back out (compared equal, over the Unix socket and
# over TCP), and qemu-io pattern writes and reads at aligned and unaligned
# offsets, with FUA, discard (trim) and write-zeroes, on 512- and
# 4096-byte sectors. The data is checked again after a server restart.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io timeout

make_btt a.img 40M 4096
make_btt b.img 40M 512
head -c 16M /dev/urandom >"$T/rand.img" || fail "random image"
serve --raw "$T/a.img" --raw "$T/b.img"

for e in a.img b.img; do
	timeout 120 qemu-img convert -n -f raw -O raw "$T/rand.img" "$(uri $e)" ||
		fail "convert into $e"
	timeout 120 qemu-img compare -f raw -F raw "$T/rand.img" "$(uri $e)" ||
		fail "compare with $e"
done
timeout 120 qemu-img convert -f raw -O raw "nbd://127.0.0.1:$PORT/a.img" \
	"$T/out.img" || fail "convert out over TCP"
timeout 120 qemu-img compare -f raw -F raw "$T/rand.img" "$T/out.img" ||
	fail "compare after the round trip"

for e in a.img b.img; do
	u=$(uri $e)
	timeout 60 qemu-io -f raw \
		-c "write -P 0x11 0 64k" \
		-c "write -P 0x22 513 1000" \
		-c "write -f -P 0x33 4095 8194" \
		-c "write -P 0x44 1m 1m" \
		-c "write -z 1m 4096" \
		-c "write -z 1100000 333" \
		-c "discard 1200k 64k" \
		-c "aio_write -P 0x55 2097152 4k" \
		-c "aio_write -f -P 0x56 2105344 4k" \
		-c "aio_flush" -c "flush" \
		"$u" >"$T/io.log" 2>&1 || fail "qemu-io writes on $e: $(cat $T/io.log)"
	grep -q "invalid\|error\|failed\|Parsing" "$T/io.log" &&
		fail "qemu-io writes on $e: $(cat $T/io.log)"
	timeout 60 qemu-io -f raw -r \
		-c "read -P 0x11 0 513" \
		-c "read -P 0x22 513 1000" \
		-c "read -P 0x11 1513 2582" \
		-c "read -P 0x33 4095 8194" \
		-c "read -P 0x11 12289 53247" \
		-c "read -P 0 1m 4096" \
		-c "read -P 0x44 1052672 47328" \
		-c "read -P 0 1100000 333" \
		-c "read -P 0x44 1100333 128467" \
		-c "read -P 0x44 1294336 802816" \
		-c "read -P 0x55 2097152 4k" -c "read -P 0x56 2105344 4k" \
		"$u" >"$T/io.log" 2>&1
	grep -q "Pattern verification failed\|invalid\|error\|failed\|Parsing" \
		"$T/io.log" && fail "qemu-io reads on $e: $(cat $T/io.log)"
	[ "$(grep -c '^read ' "$T/io.log")" = 12 ] ||
		fail "qemu-io reads on $e: $(cat $T/io.log)"
done

stop_server
"$XMEM" blk check --raw "$T/a.img" >/dev/null || fail "check a.img after serving"
"$XMEM" blk check --raw "$T/b.img" >/dev/null || fail "check b.img after serving"
serve --raw "$T/a.img" --read-only
timeout 60 qemu-io -f raw -r -c "read -P 0x22 513 1000" "$(uri a.img)" \
	>"$T/io.log" 2>&1
grep -q "Pattern verification failed\|error" "$T/io.log" &&
	fail "data after restart: $(cat $T/io.log)"
timeout 60 qemu-io -f raw -c "write -P 1 0 4096" "$(uri a.img)" >"$T/io.log" 2>&1
grep -qi "wrote" "$T/io.log" && fail "a read-only export took a write"
stop_server
echo "PASS"
