#!/bin/sh
# Installs the Debian packages that building and testing xmem need, as
# root, skipping the ones already present. Usage: scripts/deps.sh [test]
set -e
pkgs="meson ninja-build pkg-config"
if [ "$1" = test ]; then
	pkgs="$pkgs clang clang-format libclang-rt-14-dev \
		libpmem-dev libpmemobj-dev libpmemblk-dev \
		qemu-utils libnbd-bin nbdkit python3-libnbd qemu-system-x86 \
		busybox-static ndctl e2fsprogs xfsprogs kmod cpio xz-utils \
		stress-ng"
fi
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "xmem: these Debian packages are needed:$missing (run as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing >/dev/null
