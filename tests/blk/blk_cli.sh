#!/bin/sh
# SPDX-License-Identifier: MIT
# `xmem blk` on the command line: format, info (--json), read/write, check
# (clean: exit 0; damaged: exit 1 naming the structure), usage errors
# (exit 2), on a raw image at an offset and on a range in mode blk.
set -u
XMEM="${XMEM_TEST_BUILD:-build}/tools/xmem/xmem"
T="$(mktemp -d "${XMEM_TEST_DIR:-/dev/shm}/xmem-blkcli.XXXXXX")"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A raw image whose namespace starts 1 MiB into the file.
truncate -s 40M "$T/img"
"$XMEM" blk format --raw "$T/img" --offset 1M -s 512 >/dev/null || fail format
"$XMEM" blk info --raw "$T/img" --offset 1M --json >"$T/info" || fail info
grep -q '"sector_size":512' "$T/info" || fail "info: $(cat $T/info)"
grep -q '"btt_offset":4096' "$T/info" || fail "info offset"
grep -q '"version_major":1,"version_minor":1' "$T/info" || fail "info version"
"$XMEM" blk write --raw "$T/img" --offset 1M --lba 9 --count 2 --pattern 0x61 ||
	fail write
"$XMEM" blk read --raw "$T/img" --offset 1M --lba 9 --count 2 >"$T/out" || fail read
[ "$(tr -d a <"$T/out" | wc -c)" = 0 ] && [ "$(wc -c <"$T/out")" = 1024 ] ||
	fail "read back"
"$XMEM" blk check --raw "$T/img" --offset 1M >/dev/null || fail "check clean"
"$XMEM" blk check --raw "$T/img" --offset 1M --json | grep -q '"clean":true' ||
	fail "check json"
# Without the offset there is no BTT.
"$XMEM" blk info --raw "$T/img" 2>"$T/err"
[ $? = 1 ] && grep -q "no BTT" "$T/err" || fail "no BTT at 0: $(cat $T/err)"
# Damage the info block's padding: exit 1, with the structure named.
printf 'X' | dd of="$T/img" bs=1 seek=$((1048576 + 4096 + 1000)) conv=notrunc 2>/dev/null
"$XMEM" blk check --raw "$T/img" --offset 1M >"$T/out" 2>&1
[ $? = 1 ] && grep -q "checksum" "$T/out" || fail "check damaged: $(cat $T/out)"
"$XMEM" blk info --raw "$T/img" --offset 1M 2>"$T/err"
[ $? = 1 ] && grep -q "offset 0x1000" "$T/err" || fail "info damaged: $(cat $T/err)"
# --repair restores the info block from its backup; the data is intact.
"$XMEM" blk check --raw "$T/img" --offset 1M --repair >"$T/out" 2>&1
[ $? = 0 ] && grep -q "repaired 1 structure" "$T/out" || fail "repair: $(cat $T/out)"
"$XMEM" blk read --raw "$T/img" --offset 1M --lba 9 --count 2 >"$T/out" || fail read2
[ "$(tr -d a <"$T/out" | wc -c)" = 0 ] || fail "data after repair"
# A lane whose free block a sector owns (lane 7 claims block 5, sector 5's):
# open refuses it, check reports it (exit 1), --repair gives the lane an
# unowned block.
LOG=$(od -An -t u8 -j $((1048576 + 4096 + 104)) -N 8 "$T/img" | tr -d ' ')
G=$((1048576 + 4096 + LOG + 7 * 64)) # lane 7: unused so far
printf '\005\000\000\000\005\000\000\000' |
	dd of="$T/img" bs=1 seek=$((G + 4)) conv=notrunc 2>/dev/null
"$XMEM" blk check --raw "$T/img" --offset 1M >"$T/out" 2>&1
[ $? = 1 ] && grep -q "block 5 owned twice (again by free block of lane 7)" \
	"$T/out" || fail "check free block: $(cat $T/out)"
"$XMEM" blk info --raw "$T/img" --offset 1M 2>"$T/err"
[ $? = 1 ] && grep -q "free block of lane 7, is also mapped by sector 5" \
	"$T/err" || fail "info free block: $(cat $T/err)"
"$XMEM" blk check --raw "$T/img" --offset 1M --repair >"$T/out" 2>&1
[ $? = 0 ] && grep -q "repaired 1 structure" "$T/out" ||
	fail "repair lane: $(cat $T/out)"
"$XMEM" blk read --raw "$T/img" --offset 1M --lba 9 --count 2 >"$T/out" || fail read3
[ "$(tr -d a <"$T/out" | wc -c)" = 0 ] || fail "data after lane repair"
# Usage errors.
"$XMEM" blk 2>/dev/null; [ $? = 2 ] || fail "no subcommand"
"$XMEM" blk frobnicate x 2>/dev/null; [ $? = 2 ] || fail "bad subcommand"
"$XMEM" blk info 2>/dev/null; [ $? = 2 ] || fail "no target"
"$XMEM" blk format --raw "$T/img" -s 1000 2>/dev/null; [ $? = 1 ] ||
	fail "bad sector size"
# On a range.
D="$T/dev"
"$XMEM" -d "$D" device >/dev/null 2>&1
"$XMEM" region create -d "$D" -s 64M >/dev/null 2>&1 ||
	"$XMEM" region create -d "$D" >/dev/null 2>&1 || fail "region create"
"$XMEM" range create disk -d "$D" -s 32M -m blk >/dev/null || fail "range create"
"$XMEM" blk format disk -d "$D" -s 4096 >/dev/null || fail "format range"
"$XMEM" blk write "$D:disk" --lba 3 --pattern 7 || fail "write range"
"$XMEM" blk info disk -d "$D" --json | grep -q '"sector_size":4096' || fail "range info"
"$XMEM" blk check disk -d "$D" >/dev/null || fail "range check"
echo PASS
