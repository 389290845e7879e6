/* SPDX-License-Identifier: MIT */
/*
 * region_truncate - a region whose device was truncated afterwards, to
 * sizes inside and just past the metadata area. Open, check, check
 * --repair and destroy (plain and forced) give clean errors or succeed,
 * never touch bytes the device does not have, and a forced destroy leaves
 * no region behind.
 */
#include <inttypes.h>
#include <stdint.h>
#include <unistd.h>
#include <xmem.h>

#include "region/region_layout.h"
#include "test.h"

#define MiB (1ull << 20)

static char path[256];

/* A region with two ranges on an 8 MiB file, then cut to `size`. */
static void make(uint64_t size)
{
	struct xmem_device *dev;
	struct xmem_region *reg;

	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 8 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "a", 4096, XMEM_ALIGN_4K, 0, NULL));
	REQUIRE_OK(xmem_range_create(reg, "b", 8192, XMEM_ALIGN_4K, 0, NULL));
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	REQUIRE(truncate(path, (off_t)size) == 0);
}

static void one(uint64_t size)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	unsigned np = 0;
	int rc;

	make(size);
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	rc = xmem_region_open(dev, &reg);
	CHECK(rc == XMEM_E_CORRUPT || rc == XMEM_E_NOREGION);
	rc = xmem_region_check(dev, 0, NULL, NULL, &np);
	CHECK(rc == XMEM_E_CORRUPT || rc == XMEM_E_NOREGION);
	rc = xmem_region_check(dev, XMEM_F_REPAIR, NULL, NULL, &np);
	CHECK(rc != 0 || size >= XMEM_META_END);
	CHECK(rc == 0 || xmem_errormsg()[0]);
	rc = xmem_region_destroy(dev, 0);
	CHECK(rc != 0);
	rc = xmem_region_destroy(dev, XMEM_F_FORCE);
	if (rc)
		fprintf(stderr, "size %" PRIu64 ": destroy --force: %s\n", size,
			xmem_errormsg());
	CHECK(rc == 0);
	CHECK(xmem_region_open(dev, &reg) == XMEM_E_NOREGION);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, &np) == XMEM_E_NOREGION);
	printf("truncated to %" PRIu64 " bytes: forced destroy wiped it\n",
	       size);
	xmem_device_close(&dev);
}

int main(void)
{
	static const uint64_t sizes[] = { 4096,	   8192,   12288,  16384,
					  20480,   262144, 528384, 532480,
					  1 * MiB, 2 * MiB };

	test_path(path, sizeof(path), "region-truncate");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		one(sizes[i]);
	unlink(path);
	return test_result();
}
