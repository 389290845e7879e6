#!/bin/sh
# SPDX-License-Identifier: MIT
# libnbd's tools against `xmem blk serve` with three exports (raw namespace
# images, 512- and 4096-byte sectors): nbdinfo lists
# the exports and shows their block sizes; nbdcopy copies a random image
# in and out with several connections and requests in flight; several
# nbdcopy clients run at once.
. "$(dirname "$0")/lib.sh"
need nbdinfo nbdcopy cmp timeout

make_btt a.img 48M 4096
make_btt b.img 48M 512
make_btt ro.img 20M 4096
head -c 24M /dev/urandom >"$T/rand.img" || fail "random image"
serve --raw "$T/a.img" --raw "$T/b.img" --raw "$T/ro.img"

timeout 30 nbdinfo --list "nbd+unix:///?socket=$SOCK" >"$T/list" 2>&1 ||
	fail "nbdinfo --list: $(cat $T/list)"
for e in a.img b.img ro.img; do
	grep -q "export=\"$e\"" "$T/list" || fail "nbdinfo --list lacks $e"
done
timeout 30 nbdinfo --json "$(uri b.img)" >"$T/info" 2>&1 || fail "nbdinfo b.img"
grep -q '"block_size_minimum": 512' "$T/info" || fail "b.img minimum block: $(cat $T/info)"
grep -q '"block_size_preferred": 4096' "$T/info" || fail "preferred block"
grep -q '"block_size_maximum": 33554432' "$T/info" || fail "maximum block"
grep -q '"can_multi_conn": true' "$T/info" || fail "multi-conn"
timeout 30 nbdinfo --json "$(uri a.img)" >"$T/info" 2>&1 || fail "nbdinfo a.img"
grep -q '"block_size_minimum": 4096' "$T/info" || fail "a.img minimum block"
timeout 30 nbdinfo --json "nbd://127.0.0.1:$PORT/ro.img" >"$T/info" 2>&1 ||
	fail "nbdinfo over TCP"

for e in a.img b.img; do
	timeout 120 nbdcopy -C 4 -R 16 "$T/rand.img" "$(uri $e)" ||
		fail "nbdcopy into $e"
	timeout 120 nbdcopy -C 4 -R 16 "$(uri $e)" "$T/out.$e" ||
		fail "nbdcopy out of $e"
	head -c 24M "$T/out.$e" | cmp - "$T/rand.img" || fail "$e differs"
done
# Two clients with four connections each, at once, on both exports.
timeout 120 nbdcopy -C 4 "$(uri a.img)" "$(uri b.img)" &
P1=$!
timeout 120 nbdcopy -C 4 "$(uri b.img)" "$T/out2" &
P2=$!
wait $P1 || fail "concurrent nbdcopy 1"
wait $P2 || fail "concurrent nbdcopy 2"
head -c 24M "$T/out2" | cmp - "$T/rand.img" || fail "concurrent copy differs"
timeout 120 nbdcopy "$(uri b.img)" "$T/out3" || fail "copy b"
head -c 24M "$T/out3" | cmp - "$T/rand.img" || fail "a -> b copy differs"
stop_server
for f in a.img b.img ro.img; do
	"$XMEM" blk check --raw "$T/$f" >/dev/null || fail "check $f"
done
echo PASS
