#!/bin/sh
# The main job: builds xmem, then runs it on its default device, the file
# xmem.img in the working directory: a region and its ranges are created,
# mapped, written, persisted and listed, and the data read back. It works
# in ./xmem-demo/, so an xmem.img of your own here is left alone.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
if [ ! -f "$top/build-release/build.ninja" ]; then
	meson setup "$top/build-release" "$top" -Dbuildtype=release \
		-Dtests=false -Dexamples=true >/dev/null
fi
ninja -C "$top/build-release" >/dev/null
x() {
	echo "\$ xmem $*"
	"$top/build-release/tools/xmem/xmem" "$@"
	echo
}
mkdir -p xmem-demo
cd xmem-demo
rm -f xmem.img
x region create --size 1G
x device info
x range create db --size 256M --align 2M --mode heap
x range create log --size 64M --align 4K
x range create scratch --size 128M --align 2M
x range write db --offset 4096 --data "hello, persistent world"
printf '$ xmem range read db --offset 4096 --length 23\n'
"$top/build-release/tools/xmem/xmem" range read db --offset 4096 --length 23
printf '\n\n'
x range destroy scratch --scrub
x range resize log --size 96M
x range list
x range list --json
x range info db
x region info
x region check

# A persistent key-value map on an xmem heap (examples/kvmap.c) survives a
# crash in the middle of a transaction.
kv() {
	echo "\$ kvmap $*"
	"$top/build-release/examples/kvmap" "$@"
}
rm -f kv.img
kv kv.img fill 1000
kv kv.img put greeting hello
if kv kv.img --crash-at 3 fill 10 crash; then
	echo "the simulated crash did not happen" >&2
	exit 1
fi
echo "(killed inside its 3rd transaction)"
kv kv.img check
kv kv.img get crash1
kv kv.img get greeting
if kv kv.img get crash2; then
	echo "a rolled-back insert survived" >&2
	exit 1
fi
echo "(crash2 was rolled back; the map is whole)"
echo
x -d kv.img heap info kv
