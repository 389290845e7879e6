/* SPDX-License-Identifier: MIT */
/*
 * region_msync - on a page-granularity device the metadata is made durable
 * with msync, and a failed msync fails the change: a label that could not
 * be made durable is never committed (the index is not written), a failed
 * commit write is an error, and a failed msync in create leaves no region.
 * The failures come from a test hook of the region layer
 * (xmem__region_msync_fail), since a real msync rarely fails.
 */
#include <stdint.h>
#include <unistd.h>
#include <xmem.h>

#include "region/region_int.h"
#include "test.h"

#define MiB (1ull << 20)

/* The number of ranges a fresh open of the device lists. */
static size_t count(struct xmem_device *dev)
{
	struct xmem_region *reg;
	struct xmem_range_info *v;
	size_t n = 0;

	REQUIRE_OK(xmem_region_open(dev, &reg));
	REQUIRE_OK(xmem_range_list(reg, &v, &n));
	free(v);
	xmem_region_close(&reg);
	return n;
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	char path[256];
	int rc;

	test_path(path, sizeof(path), "region-msync");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 8 * MiB, XMEM_F_CREATE));
	if (xmem_device_granularity(dev) != XMEM_GRAN_PAGE) {
		printf("SKIP: %s is not of page granularity\n", path);
		xmem_device_close(&dev);
		unlink(path);
		return 77;
	}
	/* create: every msync of it fails in turn, and leaves no region */
	for (int n = 1; n <= 5; n++) {
		xmem__region_msync_fail = n;
		rc = xmem_region_create(dev, &reg);
		if (rc == 0)
			fprintf(stderr, "create with msync %d failing: ok\n",
				n);
		CHECK(rc == -EIO);
		xmem__region_msync_fail = 0;
		rc = xmem_region_open(dev, &reg);
		/* up to superblock 1 nothing counts; a failed msync of
		 * superblock 0 leaves it in the page cache, as a region */
		CHECK(rc == (n < 5 ? XMEM_E_NOREGION : 0));
		xmem_region_close(&reg);
		REQUIRE(xmem_region_destroy(dev, XMEM_F_FORCE) == 0 || n < 5);
	}
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "a", 4096, XMEM_ALIGN_4K, 0, NULL));

	/* the label's msync fails: no index lists it */
	xmem__region_msync_fail = 1;
	rc = xmem_range_create(reg, "b", 4096, XMEM_ALIGN_4K, 0, NULL);
	CHECK(rc == -EIO);
	printf("label write: %s\n", xmem_errormsg());
	CHECK(xmem__region_msync_fail == 0);
	CHECK(count(dev) == 1);

	/* the commit write's msync fails: the caller hears of it */
	xmem__region_msync_fail = 2;
	CHECK(xmem_range_create(reg, "c", 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      -EIO);
	printf("index write: %s\n", xmem_errormsg());
	xmem__region_msync_fail = 0;

	/* without failures, changes go on and the region is clean */
	REQUIRE_OK(xmem_range_create(reg, "d", 4096, XMEM_ALIGN_4K, 0, NULL));
	CHECK(xmem_region_check(dev, XMEM_F_REPAIR, NULL, NULL, NULL) == 0);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
