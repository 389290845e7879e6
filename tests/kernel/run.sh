#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh - xmem on Linux's own pmem, device-DAX, fsdax and BTT drivers.
#
# Boots Debian's kernel in qemu (TCG, no KVM) with an emulated NVDIMM that
# has a label area and a second, CPU-less NUMA node, runs the static guest
# checks given on the command line, and reads their verdicts from the
# serial console: one line per check, "PASS|SKIP|FAIL <check>: <detail>".
# Two more boots test a crash on device DAX: the first is killed in the
# middle of region and heap updates, the second verifies them.
#
#   run.sh BUILD_DIR GUEST_BINARY...
#
# Packages come from Debian (installed when missing and running as root);
# the kernel package is fetched with apt-get download and unpacked, never
# installed. The unpacked kernel and its modules are cached in
# $XMEM_KERNEL_CACHE (default: $XDG_CACHE_HOME/xmem-kernel, or
# ~/.cache/xmem-kernel) and reused between runs. The NVDIMM backing file
# is sparse, lives in the build directory and is removed after the run.
#
# XMEM_KERNEL_INIT replaces the guest's /init (for debugging).
#
# Exit: 0 all checks passed or skipped, 1 a check failed or the guest did
# not finish, 77 qemu cannot run here (reason printed).
set -u
export PATH="$PATH:/usr/sbin:/sbin"

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR GUEST_BINARY...}" && pwd) || exit 1
shift
guest_bins=("$@")

work="$build/tests/kernel/guest"
cache=${XMEM_KERNEL_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/xmem-kernel}
timeout_s=${XMEM_KERNEL_TIMEOUT:-400}
modules="nfit libnvdimm nd_pmem nd_btt dax_pmem device_dax ext4 xfs crc32c_generic"
tools="busybox kmod ndctl mke2fs mkfs.xfs qemu-system-x86_64"

skip() {
	echo "SKIP kernel: $*"
	exit 77
}
die() {
	echo "FAIL kernel: $*"
	exit 1
}
log() {
	echo "# $*"
}

# Maps a missing tool to the Debian package that ships it.
package_of() {
	case "$1" in
	busybox) echo busybox-static ;;
	kmod) echo kmod ;;
	ndctl) echo ndctl ;;
	mke2fs) echo e2fsprogs ;;
	mkfs.xfs) echo xfsprogs ;;
	qemu-system-x86_64) echo qemu-system-x86 ;;
	esac
}

have() {
	command -v "$1" >/dev/null 2>&1
}

# apt-get with one retry after refreshing the package lists.
apt_retry() {
	DEBIAN_FRONTEND=noninteractive "$@" >>"$work/apt.log" 2>&1 && return 0
	apt-get update >>"$work/apt.log" 2>&1
	DEBIAN_FRONTEND=noninteractive "$@" >>"$work/apt.log" 2>&1
}

install_tools() {
	local missing=() t
	for t in $tools; do
		have "$t" || missing+=("$(package_of "$t")")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ] || ! have apt-get; then
		skip "missing ${missing[*]} and cannot install them (needs root and apt-get)"
	fi
	log "installing ${missing[*]}"
	apt_retry apt-get install -y -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" ||
		skip "apt-get install ${missing[*]} failed (see $work/apt.log)"
	for t in $tools; do
		have "$t" || skip "$t still missing after installing its package"
	done
}

# Extracts the uncompressed vmlinux (an ELF with a PVH entry) from the
# xz stream inside a bzImage.
extract_vmlinux() {
	python3 - "$1" "$2" <<'EOF'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
at = data.find(b'\xfd7zXZ\x00')
if at < 0:
    sys.exit('no xz stream in ' + sys.argv[1])
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if out[:4] != b'\x7fELF':
    sys.exit('the xz stream is not an ELF kernel')
open(sys.argv[2], 'wb').write(out)
EOF
}

# Fetches and unpacks Debian's kernel into the cache, keeping only vmlinux
# and the modules the guest needs. Sets kver and kdir.
fetch_kernel() {
	local pkg deb tmp m
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		apt-get update >>"$work/apt.log" 2>&1
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || skip "apt-cache names no linux-image package for linux-image-amd64"
	kver=${pkg#linux-image-}
	kdir="$cache/$kver"
	if [ -f "$kdir/ok" ] && [ "$(cat "$kdir/ok")" = "$modules" ]; then
		log "kernel $kver from cache $kdir"
		return 0
	fi
	log "fetching $pkg into $kdir"
	have python3 || skip "python3 is needed to unpack the kernel"
	rm -rf "$kdir"
	mkdir -p "$kdir" || skip "cannot create the cache directory $kdir"
	tmp="$kdir/tmp"
	mkdir -p "$tmp/deb" "$tmp/un"
	(cd "$tmp/deb" && apt_retry apt-get download "$pkg") ||
		skip "apt-get download $pkg failed (see $work/apt.log)"
	deb=$(ls "$tmp"/deb/*.deb)
	dpkg-deb -x "$deb" "$tmp/un" || die "dpkg-deb -x $deb failed"
	extract_vmlinux "$tmp/un/boot/vmlinuz-$kver" "$kdir/vmlinux" ||
		die "cannot extract vmlinux from vmlinuz-$kver"
	depmod -b "$tmp/un" "$kver" || die "depmod on the unpacked kernel failed"
	# -C /dev/null: the host's modprobe.d rules must not leak in.
	for m in $modules; do
		modprobe -C /dev/null -d "$tmp/un" -S "$kver" --show-depends \
			"$m" >>"$tmp/deps" ||
			die "module $m or a dependency is missing in $pkg"
	done
	awk '$1 == "insmod" {print $2}' "$tmp/deps" | sort -u >"$tmp/list"
	while read -r m; do
		mkdir -p "$kdir/mod/$(dirname "${m#"$tmp"/un/}")"
		cp "$m" "$kdir/mod/${m#"$tmp"/un/}"
	done <"$tmp/list"
	cp "$tmp"/un/lib/modules/"$kver"/modules.order \
		"$tmp"/un/lib/modules/"$kver"/modules.builtin* \
		"$kdir/mod/lib/modules/$kver/" 2>/dev/null
	rm -rf "$tmp"
	echo "$modules" >"$kdir/ok"
	# Kernels of earlier runs are not needed any more.
	for m in "$cache"/*/; do
		[ "${m%/}" != "$kdir" ] && [ -f "${m}vmlinux" ] && rm -rf "${m%/}"
	done
}

# Copies a dynamically linked program and its shared libraries into the
# initramfs at the same paths.
copy_prog() {
	local prog lib
	prog=$(command -v "$1")
	prog=$(readlink -f "$prog")
	install -D -m 755 "$prog" "$root/bin/$(basename "$1")"
	for lib in $(ldd "$prog" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
	done
}

# Builds the initramfs: busybox, kmod, ndctl, mkfs, the modules,
# /init and the guest binaries.
build_initramfs() {
	local b a
	root="$work/root"
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,checks,lib/modules}
	# busybox-static, or busybox with its libraries.
	copy_prog busybox
	for a in $(busybox --list); do
		case "$a" in busybox | modprobe | insmod | rmmod | lsmod | depmod | modinfo) continue ;; esac
		ln -s busybox "$root/bin/$a"
	done
	copy_prog kmod
	for a in modprobe insmod rmmod lsmod depmod modinfo; do
		ln -s ../bin/kmod "$root/sbin/$a"
	done
	for a in ndctl mke2fs mkfs.xfs; do
		copy_prog "$a"
	done
	ln -sf mke2fs "$root/bin/mkfs.ext4"
	cp /etc/mke2fs.conf "$root/etc/" 2>/dev/null
	cp -a "$kdir/mod/lib/modules/$kver" "$root/lib/modules/"
	depmod -b "$root" "$kver" || die "depmod on the initramfs failed"
	for b in "${guest_bins[@]}"; do
		install -m 755 "$b" "$root/checks/$(basename "$b")"
	done
	install -m 755 "${XMEM_KERNEL_INIT:-$here/guest-init.sh}" "$root/init"
	echo "$modules" >"$root/etc/modules"
	(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) \
		>"$work/initramfs.gz" || die "cannot build the initramfs"
}

# Runs the guest on NVDIMM backing file $1 with the serial console in $2
# and $3 added to the kernel command line; qemu's pid goes to $work/qemu.pid.
run_qemu() {
	timeout "$timeout_s" qemu-system-x86_64 \
		-machine pc,nvdimm=on,accel=tcg -cpu max -smp 2 \
		-m 768M,slots=2,maxmem=4G \
		-object memory-backend-ram,id=ram0,size=512M \
		-object memory-backend-ram,id=ram1,size=256M \
		-numa node,nodeid=0,cpus=0-1,memdev=ram0 \
		-numa node,nodeid=1,memdev=ram1 \
		-object memory-backend-file,id=mem1,share=on,mem-path="$1",size=1026M,align=2M \
		-device nvdimm,id=nv1,memdev=mem1,label-size=128K \
		-kernel "$kdir/vmlinux" -initrd "$work/initramfs.gz" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init $3" \
		-nographic -nodefaults -no-reboot -serial stdio \
		-pidfile "$work/qemu.pid" \
		</dev/null >"$2" 2>>"$work/qemu.err"
}

# A fresh sparse NVDIMM backing file: 1026 MiB, of which qemu takes the
# 128 KiB label area from the end and rounds the rest down to 2 MiB,
# leaving a clean 1 GiB region.
new_nvdimm() {
	rm -f "$1"
	truncate -s 1026M "$1" || die "cannot create the NVDIMM backing file"
}

# Boots the guest that runs the checks; console in $work/console.log.
boot() {
	new_nvdimm "$work/nvdimm.img"
	: >"$work/qemu.err"
	log "booting $kver (TCG)"
	run_qemu "$work/nvdimm.img" "$work/console.log" ""
	qrc=$?
	rm -f "$work/nvdimm.img"
}

# A crash on device DAX: one boot runs region and heap updates on
# /dev/dax0.0 and is killed (SIGKILL to qemu) at a random moment after a
# few iterations; the next boot, on the same backing file, verifies.
crash_boots() {
	local img="$work/crash.img" pid ms i=0 ack
	: >"$work/crash-run.log" >"$work/crash-verify.log"
	case " ${guest_bins[*]} " in
	*/guest_devdax_crash" "*) ;;
	*) return 0 ;;
	esac
	new_nvdimm "$img"
	# (stderr: no "Killed" notice from the shell for the killed qemu)
	run_qemu "$img" "$work/crash-run.log" "xmem.mode=crash-run" 2>/dev/null &
	pid=$!
	while ! tr -d '\r' <"$work/crash-run.log" | grep -q '^ACK 3$'; do
		kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ] || break
		sleep 0.2
		i=$((i + 1))
	done
	ms=$((RANDOM % 1000))
	sleep "0.$(printf %03d "$ms")"
	kill -KILL "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null
	wait "$pid" 2>/dev/null
	ack=$(tr -d '\r' <"$work/crash-run.log" | sed -n 's/^ACK \([0-9]*\)$/\1/p' | tail -n 1)
	log "crash run killed $ms ms after ACK 3, last ACK ${ack:-none}"
	if [ -n "$ack" ]; then
		run_qemu "$img" "$work/crash-verify.log" \
			"xmem.mode=crash-verify xmem.ack=$ack"
	else
		echo "FAIL crash-devdax: the workload acknowledged nothing; last console lines:" >"$work/crash-verify.log"
		tail -n 15 "$work/crash-run.log" | sed 's/^/# /' >>"$work/crash-verify.log"
		echo XMEM-GUEST-DONE >>"$work/crash-verify.log"
	fi
	rm -f "$img"
}

# Prints the verdict lines and returns the suite's exit code. The crash
# boots contribute their crash-devdax lines and any failure.
verdict() {
	local fails
	{
		tr -d '\r' <"$work/console.log" | grep -E '^(PASS|SKIP|FAIL) [^ ]+:'
		cat "$work/crash-run.log" "$work/crash-verify.log" | tr -d '\r' |
			grep -E '^((PASS|SKIP|FAIL) crash-devdax:|FAIL )'
	} | tee "$work/verdict.txt"
	fails=$(grep -c '^FAIL' "$work/verdict.txt")
	if ! tr -d '\r' <"$work/console.log" | grep -q '^XMEM-GUEST-DONE'; then
		echo "FAIL guest: did not finish (qemu exit $qrc); last console lines:"
		tail -n 25 "$work/console.log" "$work/qemu.err" | sed 's/^/#   /'
		return 1
	fi
	if [ -s "$work/crash-verify.log" ] &&
		! tr -d '\r' <"$work/crash-verify.log" | grep -q '^XMEM-GUEST-DONE'; then
		echo "FAIL crash-devdax: the verifying boot did not finish; last console lines:"
		tail -n 25 "$work/crash-verify.log" | sed 's/^/#   /'
		return 1
	fi
	if [ "$fails" -gt 0 ]; then
		echo "# $fails check(s) failed; console logs in $work"
		return 1
	fi
	return 0
}

mkdir -p "$work" || die "cannot create $work"
trap 'rm -f "$work/nvdimm.img" "$work/crash.img"' EXIT
: >"$work/apt.log"
install_tools
# qemu must at least start before anything big is fetched.
echo quit | timeout 20 qemu-system-x86_64 -M none -accel tcg -nodefaults \
	-display none -monitor stdio >/dev/null 2>"$work/qemu-probe.err" ||
	skip "qemu-system-x86_64 cannot start: $(head -c 300 "$work/qemu-probe.err")"
# Two builds may run the suite at once: one fetches, the other waits.
mkdir -p "$cache" || skip "cannot create the cache directory $cache"
exec 9>"$cache/lock"
flock 9
fetch_kernel
build_initramfs
flock -u 9
start=$(date +%s)
boot
log "guest ran $(($(date +%s) - start)) s"
start=$(date +%s)
crash_boots
log "crash boots ran $(($(date +%s) - start)) s"
verdict
