/* SPDX-License-Identifier: MIT */
/*
 * guest_block.c - xmem on the kernel's pmem block device (/dev/pmemN).
 *
 *   guest_block /dev/pmem0
 *
 * A region on the raw block device: kind block, page granularity, a range
 * written through its mapping and persisted (msync), then read back twice:
 * through the block device itself with pread, bypassing the mapping, and
 * through a reopened region.
 */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "guest.h"
#include "guest_util.h"

#define RANGE_SIZE (8ull << 20)
#define CHECK "pmem-block"

/* Reads the range's bytes from the device with O_DIRECT pread, so that
 * they come from the device, not from the page cache the mapping used. */
static int check_pread(const char *path, uint64_t off)
{
	void *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	size_t bad;
	ssize_t n = -1;

	if (posix_memalign(&buf, 4096, RANGE_SIZE))
		buf = NULL;
	if (buf && fd >= 0)
		n = pread(fd, buf, RANGE_SIZE, (off_t)off);
	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)RANGE_SIZE) {
		GUEST_FAIL(CHECK, "pread of %s at %" PRIu64 ": %zd (%s)", path,
			   off, n, strerror(errno));
		free(buf);
		return -1;
	}
	bad = guest_pattern_check(buf, RANGE_SIZE, 11);
	free(buf);
	if (bad != (size_t)-1) {
		GUEST_FAIL(CHECK,
			   "pread sees different data at byte %zu of "
			   "the range",
			   bad);
		return -1;
	}
	return 0;
}

/* Creates the region and range "blk", fills it and persists it. */
static int write_range(struct xmem_device *dev, uint64_t *off)
{
	struct xmem_region *reg = NULL;
	struct xmem_range *r = NULL;
	struct xmem_map *map = NULL;
	struct xmem_range_info info;
	int rc = xmem_region_create(dev, &reg);

	if (rc == -EEXIST) {
		rc = xmem_region_destroy(dev, XMEM_F_FORCE);
		if (!rc)
			rc = xmem_region_create(dev, &reg);
	}
	if (!rc)
		rc = xmem_range_create(reg, "blk", RANGE_SIZE, XMEM_ALIGN_2M,
				       XMEM_RANGE_RAW, &info);
	if (!rc)
		rc = xmem_range_open(reg, "blk", 0, &r);
	if (!rc)
		rc = xmem_range_map(r, 0, &map);
	if (rc) {
		GUEST_FAIL_RC(CHECK, "region, range and map", rc);
	} else {
		*off = info.offset;
		guest_pattern_fill(xmem_map_addr(map), RANGE_SIZE, 11);
		xmem_map_persist(map, xmem_map_addr(map), RANGE_SIZE);
	}
	xmem_map_delete(&map);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	return rc;
}

/* Reopens the region and checks the range through a new mapping. */
static int check_reopen(struct xmem_device *dev)
{
	struct xmem_region *reg = NULL;
	struct xmem_range *r = NULL;
	struct xmem_map *map = NULL;
	int rc = xmem_region_open(dev, &reg);

	if (!rc)
		rc = xmem_range_open(reg, "blk", 0, &r);
	if (!rc)
		rc = xmem_range_map(r, XMEM_F_MAP_RDONLY, &map);
	if (rc)
		GUEST_FAIL_RC(CHECK, "reopen", rc);
	else if (guest_pattern_check(xmem_map_addr(map), RANGE_SIZE, 11) !=
		 (size_t)-1)
		rc = -1, GUEST_FAIL(CHECK, "reopened range differs");
	xmem_map_delete(&map);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/pmem0";
	struct xmem_device *dev = NULL;
	enum xmem_granularity g;
	uint64_t off = 0;
	int rc = xmem_device_open(&dev, path, 0, 0);

	if (rc) {
		GUEST_FAIL_RC(CHECK, "xmem_device_open", rc);
		return guest_exit();
	}
	g = xmem_device_granularity(dev);
	if (xmem_device_kind(dev) != XMEM_DEVICE_BLOCK || g != XMEM_GRAN_PAGE)
		GUEST_FAIL(CHECK, "kind %s granularity %s, expected block page",
			   xmem_device_kind_name(xmem_device_kind(dev)),
			   xmem_granularity_name(g));
	else if (write_range(dev, &off) == 0 && check_pread(path, off) == 0 &&
		 check_reopen(dev) == 0)
		GUEST_PASS(CHECK,
			   "kind block, size %" PRIu64 ", granularity %s; "
			   "8 MiB range at %" PRIu64 " written through its "
			   "mapping reads back by O_DIRECT pread and after "
			   "reopen",
			   xmem_device_size(dev), xmem_granularity_name(g),
			   off);
	xmem_device_close(&dev);
	return guest_exit();
}
