/* SPDX-License-Identifier: MIT */
/*
 * guest_devdax.c - xmem on the kernel's device DAX (/dev/daxX.Y).
 *
 *   guest_devdax /dev/dax0.0
 *
 * Checks that xmem reads the device's size and alignment as sysfs states
 * them, detects cache-line granularity, creates a region and ranges that
 * survive a reopen, gets PMD (2 MiB) mappings as /proc/self/smaps shows
 * them, and refuses alignments smaller than the device's with a message
 * that says so.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "guest.h"
#include "guest_util.h"

#define RANGE_A_SIZE (64ull << 20)
#define RANGE_B_SIZE (6ull << 20)

/* Checks size and alignment against /sys/bus/dax/devices/<name>. */
static void check_open(struct xmem_device *dev, const char *name)
{
	char path[256];
	uint64_t size = 0, align = 0;

	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/size", name);
	if (guest_read_u64(path, &size)) {
		GUEST_FAIL("devdax-open", "cannot read %s", path);
		return;
	}
	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/align", name);
	if (guest_read_u64(path, &align)) {
		GUEST_FAIL("devdax-open", "cannot read %s", path);
		return;
	}
	if (xmem_device_kind(dev) != XMEM_DEVICE_DAX ||
	    xmem_device_size(dev) != size || xmem_device_align(dev) != align)
		GUEST_FAIL("devdax-open",
			   "kind %s size %" PRIu64 " align %" PRIu64
			   ", sysfs says size %" PRIu64 " align %" PRIu64,
			   xmem_device_kind_name(xmem_device_kind(dev)),
			   xmem_device_size(dev), xmem_device_align(dev), size,
			   align);
	else
		GUEST_PASS("devdax-open",
			   "kind devdax, size %" PRIu64 " align %" PRIu64
			   " (as in sysfs)",
			   size, align);
}

/* Granularity must be cache line unless the region says cpu_cache. */
static void check_granularity(struct xmem_device *dev)
{
	char domain[64];
	enum xmem_granularity g = xmem_device_granularity(dev);
	enum xmem_granularity want;

	guest_persistence_domain("region0", domain, sizeof(domain));
	want = strcmp(domain, "cpu_cache") == 0 ? XMEM_GRAN_BYTE
						: XMEM_GRAN_CACHELINE;
	if (g != want)
		GUEST_FAIL("devdax-granularity",
			   "detected %s, expected %s (persistence_domain '%s')",
			   xmem_granularity_name(g),
			   xmem_granularity_name(want), domain);
	else
		GUEST_PASS("devdax-granularity", "%s (persistence_domain '%s')",
			   xmem_granularity_name(g), domain);
}

/* Creates (or recreates) the region with ranges "a" and "b". */
static int make_region(struct xmem_device *dev, struct xmem_region **reg)
{
	struct xmem_range_info ia, ib;
	int rc = xmem_region_create(dev, reg);

	if (rc == -EEXIST) {
		rc = xmem_region_destroy(dev, XMEM_F_FORCE);
		if (!rc)
			rc = xmem_region_create(dev, reg);
	}
	if (rc) {
		GUEST_FAIL_RC("devdax-region", "xmem_region_create", rc);
		return rc;
	}
	rc = xmem_range_create(*reg, "a", RANGE_A_SIZE, XMEM_ALIGN_2M,
			       XMEM_RANGE_RAW, &ia);
	if (!rc)
		rc = xmem_range_create(*reg, "b", RANGE_B_SIZE, XMEM_ALIGN_2M,
				       XMEM_RANGE_RAW, &ib);
	if (rc) {
		GUEST_FAIL_RC("devdax-region", "xmem_range_create", rc);
		return rc;
	}
	if (ia.offset % XMEM_ALIGN_2M || ib.offset % XMEM_ALIGN_2M) {
		GUEST_FAIL("devdax-region",
			   "range offsets %" PRIu64 " and %" PRIu64
			   " are not 2 MiB-aligned",
			   ia.offset, ib.offset);
		return -1;
	}
	return 0;
}

/* Maps range `name`, fills it with a pattern seeded by `seed`. */
static int fill_range(struct xmem_region *reg, const char *name, uint64_t seed,
		      struct xmem_range **r, struct xmem_map **map)
{
	int rc = xmem_range_open(reg, name, 0, r);

	if (!rc)
		rc = xmem_range_map(*r, 0, map);
	if (rc) {
		GUEST_FAIL_RC("devdax-region", "open and map a range", rc);
		return rc;
	}
	if ((uintptr_t)xmem_map_addr(*map) % XMEM_ALIGN_2M) {
		GUEST_FAIL("devdax-region",
			   "range '%s' mapped at %p, not "
			   "2 MiB-aligned",
			   name, xmem_map_addr(*map));
		return -1;
	}
	guest_pattern_fill(xmem_map_addr(*map), xmem_map_size(*map), seed);
	xmem_map_persist(*map, xmem_map_addr(*map), xmem_map_size(*map));
	return 0;
}

/*
 * The mapping of range "a" must be PMD-mapped throughout. Device DAX
 * shows it in smaps as KernelPageSize 2048 kB (with a 2 MiB alignment the
 * driver refuses 4 KiB faults) rather than as FilePmdMapped; the check
 * reads smaps itself and compares with the library's answer.
 */
static void check_pmd(struct xmem_map *map)
{
	struct xmem_map_pmd st;
	uint64_t rss = 0, kps = 0, fpmd = 0;
	void *addr = xmem_map_addr(map);
	int rc = xmem_map_pmd_status(map, &st);

	if (rc) {
		GUEST_FAIL_RC("devdax-pmd", "xmem_map_pmd_status", rc);
		return;
	}
	if (guest_smaps_field(addr, "Rss:", &rss) ||
	    guest_smaps_field(addr, "KernelPageSize:", &kps) ||
	    guest_smaps_field(addr, "FilePmdMapped:", &fpmd)) {
		GUEST_FAIL("devdax-pmd", "no smaps entry for %p", addr);
		return;
	}
	if (st.pmd_mapped != xmem_map_size(map) || rss != xmem_map_size(map) ||
	    (kps < XMEM_ALIGN_2M && fpmd != rss))
		GUEST_FAIL("devdax-pmd",
			   "xmem: %" PRIu64 " of %" PRIu64 " bytes PMD-mapped "
			   "(%s); smaps: Rss %" PRIu64
			   " KernelPageSize %" PRIu64 " FilePmdMapped %" PRIu64,
			   st.pmd_mapped, xmem_map_size(map), st.reason, rss,
			   kps, fpmd);
	else
		GUEST_PASS("devdax-pmd",
			   "%" PRIu64 " MiB of %" PRIu64 " MiB PMD-mapped "
			   "(smaps: Rss %" PRIu64 " kB, KernelPageSize %" PRIu64
			   " kB, FilePmdMapped %" PRIu64 " kB)",
			   st.pmd_mapped >> 20, xmem_map_size(map) >> 20,
			   rss >> 10, kps >> 10, fpmd >> 10);
}

/* Closes and reopens the region: both ranges and their data are there. */
static void check_reopen(struct xmem_device **dev, const char *path)
{
	struct xmem_region *reg = NULL;
	struct xmem_range *r = NULL;
	struct xmem_map *map = NULL;
	struct xmem_range_info *list = NULL;
	size_t n = 0;
	int rc = xmem_device_open(dev, path, 0, 0);

	if (!rc)
		rc = xmem_region_open(*dev, &reg);
	if (!rc)
		rc = xmem_range_list(reg, &list, &n);
	if (rc) {
		GUEST_FAIL_RC("devdax-region", "reopen", rc);
		goto out;
	}
	rc = xmem_range_open(reg, "b", 0, &r);
	if (!rc)
		rc = xmem_range_map(r, XMEM_F_MAP_RDONLY, &map);
	if (rc) {
		GUEST_FAIL_RC("devdax-region", "reopen range b", rc);
		goto out;
	}
	if (n != 2 || strcmp(list[0].name, "a") || strcmp(list[1].name, "b"))
		GUEST_FAIL("devdax-region", "after reopen %zu ranges listed",
			   n);
	else if (guest_pattern_check(xmem_map_addr(map), xmem_map_size(map),
				     2) != (size_t)-1)
		GUEST_FAIL("devdax-region", "range b's data differs after "
					    "reopen");
	else
		GUEST_PASS("devdax-region",
			   "region with ranges a (%" PRIu64 " MiB at %" PRIu64
			   ") and b (%" PRIu64 " MiB at %" PRIu64
			   "), 2 MiB-aligned, data intact after reopen",
			   list[0].size >> 20, list[0].offset,
			   list[1].size >> 20, list[1].offset);
out:
	free(list);
	xmem_map_delete(&map);
	xmem_range_close(&r);
	xmem_region_close(&reg);
}

/* Alignments below the device's are refused, naming the alignment. */
static void check_refused(struct xmem_device *dev, struct xmem_region *reg)
{
	struct xmem_range_info info;
	struct xmem_map *map = NULL;
	char msg[3][200];
	int rc[3];

	rc[0] = xmem_range_create(reg, "small", 4 << 20, XMEM_ALIGN_4K,
				  XMEM_RANGE_RAW, &info);
	snprintf(msg[0], sizeof(msg[0]), "%s", xmem_errormsg());
	rc[1] = xmem_device_map(dev, 4096, 2 << 20, 0, 0, &map);
	snprintf(msg[1], sizeof(msg[1]), "%s", xmem_errormsg());
	if (!rc[1])
		xmem_map_delete(&map);
	rc[2] = xmem_device_map(dev, 0, 2 << 20, 4096, 0, &map);
	snprintf(msg[2], sizeof(msg[2]), "%s", xmem_errormsg());
	if (!rc[2])
		xmem_map_delete(&map);
	for (int i = 0; i < 3; i++) {
		if (rc[i] != XMEM_E_ALIGN || !strstr(msg[i], "align")) {
			GUEST_FAIL("devdax-align-refused",
				   "case %d returned %d (%s): '%s'", i, rc[i],
				   xmem_strerror(rc[i]), msg[i]);
			return;
		}
	}
	GUEST_PASS("devdax-align-refused",
		   "4 KiB range: '%s'; 4 KiB offset: '%s'", msg[0], msg[1]);
}

int main(int argc, char **argv)
{
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = NULL;
	struct xmem_range *ra = NULL, *rb = NULL;
	struct xmem_map *ma = NULL, *mb = NULL;
	const char *path = argc > 1 ? argv[1] : "/dev/dax0.0";
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int rc = xmem_device_open(&dev, path, 0, 0);

	if (rc) {
		GUEST_FAIL_RC("devdax-open", "xmem_device_open", rc);
		return guest_exit();
	}
	check_open(dev, name);
	check_granularity(dev);
	if (make_region(dev, &reg) == 0 &&
	    fill_range(reg, "a", 1, &ra, &ma) == 0 &&
	    fill_range(reg, "b", 2, &rb, &mb) == 0) {
		check_pmd(ma);
		check_refused(dev, reg);
		xmem_map_delete(&ma);
		xmem_map_delete(&mb);
		xmem_range_close(&ra);
		xmem_range_close(&rb);
		xmem_region_close(&reg);
		xmem_device_close(&dev);
		check_reopen(&dev, path);
	}
	xmem_map_delete(&ma);
	xmem_map_delete(&mb);
	xmem_range_close(&ra);
	xmem_range_close(&rb);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	return guest_exit();
}
