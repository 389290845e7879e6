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
		-Dtests=false >/dev/null
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
