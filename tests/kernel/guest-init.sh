#!/bin/sh
# SPDX-License-Identifier: MIT
#
# guest-init.sh - /init of the kernel-device guest.
#
# Loads the NVDIMM, DAX, BTT and file system drivers, then turns the one
# emulated NVDIMM namespace into each kind of device in turn and runs the
# xmem checks on it:
#
#   devdax (2 MiB)  -> /dev/dax0.0: devdax checks
#   fsdax           -> /dev/pmem0: ext4 and xfs, with and without -o dax,
#                      PMD faults from the fs_dax trace events; the crash
#                      tests on ext4 -o dax
#   raw             -> /dev/pmem0: region on the block device
#   sector (4 KiB)  -> /dev/pmem0s: the kernel's BTT, read and written by xmem
#
# Before that, the tier's NUMA backend runs against node 1, which has
# memory and no CPUs. With xmem.mode=crash-run on the kernel command line
# the guest instead runs a region and heap workload on /dev/dax0.0 until
# the host kills it; xmem.mode=crash-verify (and xmem.ack=N) checks the
# result on the next boot.
#
# Every check prints one line "PASS|SKIP|FAIL <check>: <detail>"; the host
# collects them from the serial console. XMEM-GUEST-DONE marks the end.
PATH=/sbin:/bin
export PATH

echo # the firmware leaves the cursor mid-line
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

pass() { echo "PASS $1: $2"; }
stamp() { echo "# $(cut -d' ' -f1 /proc/uptime) s: $*"; }
skip() { echo "SKIP $1: $2"; }
fail() { echo "FAIL $1: $2"; }

# Runs a command quietly; on failure prints a FAIL line with its output.
step() {
	name=$1
	shift
	if ! out=$("$@" 2>&1); then
		fail "$name" "'$*' failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		return 1
	fi
	return 0
}

# Runs /checks/<prog> if it was built, for at most 120 s; a check program
# prints its own lines, so only a crash, a hang or a silent non-zero exit
# is reported here.
check() {
	name=$1
	prog=$2
	shift 2
	if [ ! -x "/checks/$prog" ]; then
		skip "$name" "/checks/$prog was not built"
		return 77
	fi
	stamp "check $name"
	timeout 120 "/checks/$prog" "$@" >/tmp/check.out 2>&1
	rc=$?
	grep -E '^(PASS|SKIP|FAIL) ' /tmp/check.out
	if [ $rc -eq 143 ]; then
		fail "$name" "$prog did not finish in 120 s"
	elif [ $rc -ne 0 ] && [ $rc -ne 77 ] && ! grep -q '^FAIL ' /tmp/check.out; then
		fail "$name" "$prog exited with status $rc: $(grep -vE '^(PASS|SKIP|FAIL) ' /tmp/check.out | tail -n 3 | tr '\n' ' ')"
	fi
	grep -vE '^(PASS|SKIP|FAIL) ' /tmp/check.out | sed 's/^/# /' | tail -n 20
	return $rc
}

# Reconfigures namespace0.0 into a mode: ndctl create-namespace args.
namespace() {
	name=$1
	shift
	stamp "namespace $name"
	step "ndctl-$name" ndctl create-namespace -f -e namespace0.0 "$@"
}

finish() {
	stamp "done"
	sync
	echo "XMEM-GUEST-DONE"
	poweroff -f
}

for m in $(cat /etc/modules); do
	/sbin/modprobe "$m" || fail "modules" "modprobe $m failed"
done

# Wait for the NFIT to produce region0 (at most ~10 s).
i=0
while [ ! -e /sys/bus/nd/devices/region0 ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ ! -e /sys/bus/nd/devices/region0 ]; then
	fail "nvdimm" "no region0 in /sys/bus/nd/devices: $(ls /sys/bus/nd/devices | tr '\n' ' ')"
	finish
fi
pass "nvdimm" "region0 size $(cat /sys/bus/nd/devices/region0/size) persistence_domain '$(cat /sys/bus/nd/devices/region0/persistence_domain 2>/dev/null)'"

# A second and third boot test a crash on device DAX (see run.sh).
mode=$(sed -n 's/.*xmem\.mode=\([a-z-]*\).*/\1/p' /proc/cmdline)
case $mode in
crash-run)
	# Label-less: the devdax info block alone keeps the namespace's
	# mode across the boots.
	namespace crash-devdax -m devdax -a 2M &&
		/checks/guest_devdax_crash prepare /dev/dax0.0 &&
		/checks/guest_devdax_crash run /dev/dax0.0
	echo "# the workload ended before qemu was killed"
	finish
	;;
crash-verify)
	ack=$(sed -n 's/.*xmem\.ack=\([0-9]*\).*/\1/p' /proc/cmdline)
	i=0
	while [ ! -e /dev/dax0.0 ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	check crash-devdax guest_devdax_crash verify /dev/dax0.0 "$ack"
	finish
	;;
esac

check smoke guest_smoke
# The second, CPU-less node stands for CXL memory.
check numa-tier guest_numa

# Labels make sector mode possible; without them the region is label-less.
step labels ndctl disable-region all &&
	step labels ndctl init-labels -f all &&
	step labels ndctl enable-region all || finish
step labels ndctl create-namespace -r region0 -m raw || finish

if namespace devdax -m devdax -a 2M; then
	check devdax guest_devdax /dev/dax0.0
	# The crash tests take files (XMEM_TEST_DIR), and the crash simulator
	# sizes its image by st_size and fills it with read(): a character
	# device has st_size 0 and device DAX has no read(). So they run on a
	# DAX file system below.
	err=$(dd if=/dev/dax0.0 of=/dev/null bs=4096 count=1 2>&1 >/dev/null | head -n 1)
	skip crashsim-devdax "the crash simulator copies its device by st_size (0 for /dev/dax0.0) with read() ($err), so its crash tests run on ext4 -o dax; crash-devdax kills the whole machine instead"
fi

# Runs every crash test (/checks/guest_crash_*) with its files in $1, all
# at once (one per vCPU, more or less), each for at most 150 s. They print
# no verdict lines of their own: exit 0 passes, 77 skips.
crash_tests() {
	stamp "crash tests"
	t0=$(date +%s)
	for prog in /checks/guest_crash_*; do
		[ -x "$prog" ] || continue
		(
			XMEM_TEST_DIR=$1 timeout 150 "$prog" >"/tmp/$(basename "$prog").out" 2>&1
			echo $? >"/tmp/$(basename "$prog").rc"
		) &
	done
	wait
	for prog in /checks/guest_crash_*; do
		[ -x "$prog" ] || continue
		name=crash-$(basename "$prog" | sed 's/^guest_crash_//; s/_crash$//')-$2
		out=/tmp/$(basename "$prog").out
		rc=$(cat "/tmp/$(basename "$prog").rc")
		last=$(grep -v '^$' "$out" | tail -n 1)
		case $rc in
		0) pass "$name" "$last (files in $1)" ;;
		77) skip "$name" "$last" ;;
		143) fail "$name" "did not finish in 150 s" ;;
		*) fail "$name" "exit $rc: $(tail -n 3 "$out" | tr '\n' ' ')" ;;
		esac
	done
	echo "# crash tests took $(($(date +%s) - t0)) s together"
	rm -f "$1"/xmem-test-*
}

# PMD faults on DAX files, from the kernel's fs_dax trace events: smaps
# does not count DAX PMD mappings of files (KernelPageSize stays 4 kB), so
# the trace is the kernel's own account of which faults got a 2 MiB entry.
trace=/sys/kernel/tracing
pmd_trace_start() {
	[ -e $trace/trace ] || mount -t tracefs tracefs $trace 2>/dev/null
	echo >$trace/trace 2>/dev/null
	echo 1 >$trace/events/fs_dax/dax_pmd_fault_done/enable 2>/dev/null
}

# Reports the write PMD faults of the 16 MiB range mapping: NOPAGE and
# NEEDDSYNC (finished after the metadata sync) install a PMD, FALLBACK
# means 4 KiB pages.
pmd_trace_report() {
	echo 0 >$trace/events/fs_dax/dax_pmd_fault_done/enable 2>/dev/null
	if [ ! -e $trace/events/fs_dax/dax_pmd_fault_done ]; then
		skip "$1" "no fs_dax trace events in this kernel"
		return
	fi
	grep 'dax_pmd_fault_done:.* WRITE' $trace/trace |
		sed -n 's/.*vm_start \(0x[0-9a-f]*\) vm_end \(0x[0-9a-f]*\) .* \([A-Z_]*\)$/\1 \2 \3/p' |
		while read -r lo hi res; do
			[ $((hi - lo)) -eq $((16 << 20)) ] && echo "$res"
		done >/tmp/pmd.res
	total=$(wc -l </tmp/pmd.res)
	huge=$(grep -cE '^(NOPAGE|NEEDDSYNC)$' /tmp/pmd.res)
	fallback=$(grep -c '^FALLBACK$' /tmp/pmd.res)
	other=$((total - huge - fallback))
	counts=$(sort /tmp/pmd.res | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
	if [ "$total" -eq 0 ]; then
		skip "$1" "no write PMD fault of the 16 MiB range was traced"
	elif [ "$other" -gt 0 ]; then
		fail "$1" "write PMD faults of the range ended: $counts"
	elif [ "$huge" -gt 0 ]; then
		pass "$1" "$huge of $total write PMD faults of the 16 MiB range installed a 2 MiB entry ($counts)"
	else
		skip "$1" "all $total write PMD faults of the 16 MiB range fell back to 4 KiB pages ($counts in the kernel's dax_pmd_fault_done trace)"
	fi
}

# One file system on the fsdax namespace: a region file created on the
# -o dax mount (cache line), then reopened on a dax=never mount (page).
fsdax_fs() {
	fs=$1
	shift
	step "fsdax-$fs" "$@" /dev/pmem0 || return
	if step "fsdax-$fs" mount -o dax "/dev/pmem0" /mnt; then
		pmd_trace_start
		check "fsdax-$fs" guest_fsdax create "fsdax-$fs" /mnt/region cacheline
		pmd_trace_report "fsdax-$fs-pmd"
		[ "$fs" = ext4 ] && crash_tests /mnt "fsdax-$fs"
		umount /mnt
	fi
	if step "fsdax-$fs-nodax" mount -o dax=never /dev/pmem0 /mnt; then
		check "fsdax-$fs-nodax" guest_fsdax reopen "fsdax-$fs-nodax" /mnt/region page
		umount /mnt
	fi
}

if namespace fsdax -m fsdax; then
	# By full path: busybox prefers its own mke2fs applet to a PATH search.
	fsdax_fs ext4 /bin/mke2fs -q -F -t ext4 -b 4096
	# Reflink and DAX do not mix on 6.1's xfs; a 2 MiB stripe unit asks
	# for 2 MiB-aligned allocations.
	fsdax_fs xfs mkfs.xfs -q -f -m reflink=0 -d su=2m,sw=1
fi

if namespace raw -m raw; then
	check pmem-block guest_block /dev/pmem0
fi

# Rebinds namespace0.0 with force_raw set to $1: 1 shows the namespace's
# raw bytes as /dev/pmem0 (the BTT is ignored), 0 lets nd_btt attach.
raw_view() {
	step "$2" ndctl disable-namespace namespace0.0 || return 1
	if ! echo "$1" >/sys/bus/nd/devices/namespace0.0/force_raw; then
		fail "$2" "cannot write $1 to namespace0.0/force_raw"
		return 1
	fi
	step "$2" ndctl enable-namespace namespace0.0
}

# BTT both ways, on a v1.1-labelled sector namespace (BTT 4 KiB in).
if namespace sector -m sector -l 4096 &&
	check btt-kernel-write guest_btt kernel-write /dev/pmem0s &&
	raw_view 1 btt-kernel-to-xmem; then
	check btt-kernel-to-xmem guest_btt xmem-read /dev/pmem0
	uuid=$(cat /sys/bus/nd/devices/namespace0.0/uuid)
	if check btt-xmem-write guest_btt xmem-write /dev/pmem0 "$uuid"; then
		raw_view 0 btt-xmem-to-kernel &&
			check btt-xmem-to-kernel guest_btt kernel-read /dev/pmem0s
	else
		skip btt-xmem-to-kernel "xmem wrote no BTT to attach"
	fi
else
	skip btt-xmem "the kernel's side of the BTT failed above, so xmem's BTT checks did not run"
fi

finish
