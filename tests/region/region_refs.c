/* SPDX-License-Identifier: MIT */
/*
 * region_refs - a region closed while ranges opened from it are still
 * open: the ranges stay usable (info, map, ownership) and the last close
 * frees the region object. Meant to run under AddressSanitizer, which
 * reports a use after free if the region goes with its opener's close.
 */
#include <string.h>
#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg, *reg2;
	struct xmem_range *r1, *r2, *other;
	struct xmem_map *m;

	REQUIRE_OK(xmem_device_open(&dev, "memfd:region-refs", 8 * MiB, 0));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "a", 4096, XMEM_ALIGN_4K, 0, NULL));
	REQUIRE_OK(xmem_range_create(reg, "b", 8192, XMEM_ALIGN_4K, 0, NULL));
	REQUIRE_OK(xmem_range_open(reg, "a", 0, &r1));
	REQUIRE_OK(xmem_range_open(reg, "b", 0, &r2));
	xmem_region_close(&reg);
	CHECK(reg == NULL);

	/* both ranges still work and still own their extents */
	CHECK(strcmp(xmem_range_get_info(r1)->name, "a") == 0);
	REQUIRE_OK(xmem_range_map(r2, 0, &m));
	memset(xmem_map_addr(m), 0x5a, 8192);
	xmem_map_delete(&m);
	REQUIRE_OK(xmem_region_open(dev, &reg2));
	CHECK(xmem_range_open(reg2, "a", 0, &other) == -EBUSY);
	CHECK(xmem_range_destroy(reg2, "b", 0) == -EBUSY);

	xmem_range_close(&r1); /* the region object is still referenced */
	CHECK(r1 == NULL);
	REQUIRE_OK(xmem_range_open(reg2, "a", 0, &other));
	xmem_range_close(&other);
	xmem_range_close(&r2); /* the last reference: frees it */
	REQUIRE_OK(xmem_range_destroy(reg2, "b", 0));
	xmem_region_close(&reg2);
	xmem_device_close(&dev);
	return test_result();
}
