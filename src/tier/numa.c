/* SPDX-License-Identifier: MIT */
/*
 * numa.c - the NUMA-node backend. When the device memory is a CPU-less
 * NUMA node (device DAX in kmem mode, as CXL memory usually appears), a
 * unit is ordinary anonymous memory and moving it is mbind(MPOL_MF_MOVE):
 * the kernel migrates the pages itself, so no write can be lost. First
 * touches still come through userfaultfd, so placement follows the budget:
 * the unit's policy is bound to the chosen node, then the zero page is
 * installed (writes allocate on that node). Hotness sampling is not done
 * in this mode (a placeholder would discard anonymous pages): placement is
 * by first touch, advice and explicit migration.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "tier_internal.h"

#define MPOL_BIND_ 2
#define MPOL_MF_STRICT_ (1 << 0)
#define MPOL_MF_MOVE_ (1 << 1)
#define MAX_NODES 1024

/* Reads a small sysfs file into buf; 0 or -errno. */
static int read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
	return 0;
}

/* Does node n have CPUs (1), none (0), or not exist (-1)? */
static int node_has_cpus(int n)
{
	char path[96], buf[256];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist",
		 n);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	return buf[0] != '\n' && buf[0] != 0;
}

/* Finds the first CPU-less NUMA node with memory. O(nodes). */
XMEM_EXPORT int xmem_tier_numa_find_node(int *node)
{
	for (int n = 0; n < MAX_NODES; n++) {
		char path[96], buf[4096];
		unsigned long long kb = 0;
		char *m;

		if (node_has_cpus(n) != 0)
			continue;
		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%d/meminfo", n);
		if (read_small(path, buf, sizeof(buf)) < 0)
			continue;
		m = strstr(buf, "MemTotal:");
		if (m && sscanf(m, "MemTotal: %llu", &kb) == 1 && kb > 0) {
			*node = n;
			return 0;
		}
	}
	return xmem__err(-ENODEV, "tier: no CPU-less NUMA node with memory");
}

/* Sets the node mask of unit i's target: the device node, or every node
 * with CPUs for DRAM. */
static void target_mask(struct xmem_tier *t, unsigned to, unsigned long *m)
{
	memset(m, 0, MAX_NODES / 8);
	if (to == XMEM_TIER_DEVICE) {
		m[t->cfg.numa_node / 64] |= 1ul << (t->cfg.numa_node % 64);
		return;
	}
	for (int n = 0; n < MAX_NODES; n++) {
		int r = node_has_cpus(n);

		if (r < 0 && n > 64)
			break;
		if (r > 0)
			m[n / 64] |= 1ul << (n % 64);
	}
}

/* Binds (and, if placed, moves) unit i to `to`; a first touch installs
 * the zero page and wakes. */
int xmem__tier_numa_move(struct xmem_tier *t, uint64_t i, unsigned to)
{
	unsigned long mask[MAX_NODES / 64];
	uint64_t off = i * t->unit;
	uint32_t where = atomic_load(&t->u[i].st) & U_WHERE;
	unsigned flags =
		where == XMEM_TIER_NONE ? 0 : MPOL_MF_MOVE_ | MPOL_MF_STRICT_;

	target_mask(t, to, mask);
	/* With MPOL_MF_STRICT the kernel answers EIO when some page could not
	 * be isolated this time (still on a per-CPU LRU list, briefly pinned);
	 * a fresh attempt moves it, so a few are made before giving up. */
	for (int tries = 0;; tries++) {
		if (syscall(SYS_mbind, t->base + off, t->unit, MPOL_BIND_, mask,
			    MAX_NODES, flags) == 0)
			break;
		if (errno != EIO || tries == 3)
			return xmem__err(-errno, "tier: mbind unit %llu: %s",
					 (unsigned long long)i,
					 strerror(errno));
		sched_yield();
	}
	if (where == XMEM_TIER_NONE) {
		struct uffdio_zeropage z = {
			.range = { .start = (uintptr_t)t->base + off,
				   .len = t->unit },
		};
		if (ioctl(t->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST)
			return xmem__err(-errno, "tier: UFFDIO_ZEROPAGE: %s",
					 strerror(errno));
	}
	return 0;
}

/* Sets up a NUMA-backed tier: anonymous base registered for first
 * touches. */
int xmem__tier_numa_setup(struct xmem_tier *t)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	if (t->cfg.numa_node < 0 || t->cfg.numa_node >= MAX_NODES ||
	    node_has_cpus(t->cfg.numa_node) < 0)
		return xmem__err(-EINVAL, "tier: NUMA node %d does not exist",
				 t->cfg.numa_node);
	t->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (t->uffd < 0 || ioctl(t->uffd, UFFDIO_API, &api) < 0)
		return xmem__err(-errno, "tier: userfaultfd: %s",
				 strerror(errno));
	t->base = xmem__tier_mmap(NULL, t->size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				  -1, 0);
	if (t->base == MAP_FAILED) {
		t->base = NULL;
		return xmem__err(-errno, "tier: reserving: %s",
				 strerror(errno));
	}
	reg.range.start = (uintptr_t)t->base;
	reg.range.len = t->size;
	if (ioctl(t->uffd, UFFDIO_REGISTER, &reg) < 0)
		return xmem__err(-errno, "tier: UFFDIO_REGISTER: %s",
				 strerror(errno));
	t->memfd = -1;
	t->devfd = -1;
	return 0;
}
