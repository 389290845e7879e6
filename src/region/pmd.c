/* SPDX-License-Identifier: MIT */
/*
 * pmd.c - what the kernel actually gave a mapping: resident bytes and PMD
 * (2 MiB) mapped bytes from /proc/self/smaps, and why there are none.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "core/error.h"
#include "core/util.h"
#include "device_internal.h"

#define TMPFS_MAGIC_ 0x01021994u
#define PMD_SIZE_ (2ull << 20)

/* Sums the smaps fields of every VMA inside [lo, hi). */
static int smaps_scan(uintptr_t lo, uintptr_t hi, struct xmem_map_pmd *st)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[256];
	int inside = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b, kb;

		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			inside = a >= lo && b <= hi;
			continue;
		}
		if (!inside)
			continue;
		if (sscanf(line, "Rss: %llu kB", &kb) == 1)
			st->resident += kb << 10;
		else if (sscanf(line, "FilePmdMapped: %llu kB", &kb) == 1 ||
			 sscanf(line, "ShmemPmdMapped: %llu kB", &kb) == 1 ||
			 sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
			st->pmd_mapped += kb << 10;
		else if (sscanf(line, "KernelPageSize: %llu kB", &kb) == 1)
			st->page_size = MAX(st->page_size, kb << 10);
	}
	fclose(f);
	return 0;
}

/* Reads one line of a sysfs or procfs file. */
static void read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/* Explains a mapping of a tmpfs file that got no PMD entries. */
static void tmpfs_reason(const struct xmem_map *m, char *buf, size_t len)
{
	char shm[128];

	read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled", shm,
		  sizeof(shm));
	snprintf(buf, len,
		 "tmpfs file: huge pages need a huge= mount option or "
		 "shmem_enabled allowing them (shmem_enabled: %s)",
		 shm[0] ? shm : "unknown");
	(void)m;
}

/* Finds the most likely reason a mapping has no PMD entries. */
static void explain(const struct xmem_map *m, const struct xmem_map_pmd *st,
		    char *buf, size_t len)
{
	struct statfs sfs;

	if (m->size < PMD_SIZE_ || ((uintptr_t)m->addr % PMD_SIZE_))
		snprintf(buf, len,
			 "mapping is smaller than 2 MiB or not "
			 "2 MiB-aligned");
	else if (m->offset % PMD_SIZE_)
		snprintf(buf, len, "device offset is not 2 MiB-aligned");
	else if (m->dev->kind == XMEM_DEVICE_FSDAX)
		snprintf(buf, len,
			 "unknown: smaps does not account DAX pages of "
			 "files (the kernel's dax_pmd_fault_done trace "
			 "event shows each fault's size)");
	else if (!st->resident)
		snprintf(buf, len,
			 "nothing resident yet: no page has been "
			 "touched");
	else if (m->dev->kind == XMEM_DEVICE_DAX)
		snprintf(buf, len,
			 "device DAX alignment %" PRIu64 " is below 2 MiB",
			 m->dev->align);
	else if (fstatfs(m->dev->fd, &sfs) == 0 &&
		 (uint32_t)sfs.f_type == TMPFS_MAGIC_)
		tmpfs_reason(m, buf, len);
	else if (m->dev->kind == XMEM_DEVICE_FILE ||
		 m->dev->kind == XMEM_DEVICE_BLOCK)
		snprintf(buf, len,
			 "page-cache mapping: the kernel maps "
			 "shared file pages with 4 KiB entries");
	else
		snprintf(buf, len,
			 "kernel chose 4 KiB pages (fragmented "
			 "memory or huge pages disabled)");
}

XMEM_EXPORT int xmem_map_pmd_status(const struct xmem_map *map,
				    struct xmem_map_pmd *st)
{
	uintptr_t lo = (uintptr_t)map->addr;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = smaps_scan(lo, lo + map->size, st);
	if (rc)
		return xmem__err(rc, "cannot read /proc/self/smaps: %s",
				 strerror(-rc));
	/* Device DAX reports its PMD pages through the VMA's page size. */
	if (st->page_size >= PMD_SIZE_ && st->pmd_mapped < st->resident)
		st->pmd_mapped = st->resident;
	if (!st->pmd_mapped)
		explain(map, st, st->reason, sizeof(st->reason));
	return 0;
}
