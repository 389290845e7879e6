/* SPDX-License-Identifier: MIT */
/*
 * region_basic - region create/open/info/destroy and range create, list,
 * info, resize, destroy (with scrub), placement and alignment errors.
 */
#include <inttypes.h>
#include <stdint.h>
#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct xmem_device *dev_open(const char *path, uint64_t size, int create)
{
	struct xmem_device *dev;

	REQUIRE_OK(
		xmem_device_open(&dev, path, size, create ? XMEM_F_CREATE : 0));
	return dev;
}

/* Create, reopen, info, and the errors around region lifetime. */
static void test_region_lifetime(const char *path)
{
	struct xmem_device *dev = dev_open(path, 64 * MiB, 1);
	struct xmem_region *reg, *reg2;
	struct xmem_region_info in;

	CHECK(xmem_region_open(dev, &reg) == XMEM_E_NOREGION);
	CHECK(xmem_region_destroy(dev, 0) == XMEM_E_NOREGION);
	REQUIRE_OK(xmem_region_create(dev, &reg));
	CHECK(xmem_region_create(dev, &reg2) == -EEXIST);
	REQUIRE_OK(xmem_region_info(reg, &in));
	CHECK(in.device_size == 64 * MiB);
	CHECK(in.data_offset == XMEM_REGION_DATA_OFFSET);
	CHECK(in.data_size == 62 * MiB);
	CHECK(in.free == 62 * MiB && in.used == 0);
	CHECK(in.largest_free == 62 * MiB);
	CHECK(in.nranges == 0 && in.label_slots == XMEM_RANGE_MAX);
	CHECK(in.created > 0);
	CHECK(xmem_region_device(reg) == dev);
	xmem_region_close(&reg);
	CHECK(reg == NULL);

	REQUIRE_OK(xmem_region_open(dev, &reg));
	struct xmem_region_info in2;
	REQUIRE_OK(xmem_region_info(reg, &in2));
	CHECK(!memcmp(in.uuid, in2.uuid, 16));
	REQUIRE_OK(xmem_range_create(reg, "a", 4 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_RAW, NULL));
	CHECK(xmem_region_destroy(dev, 0) == -ENOTEMPTY);
	CHECK(strstr(xmem_errormsg(), "1 range") != NULL);
	xmem_region_close(&reg);
	CHECK_OK(xmem_region_destroy(dev, XMEM_F_FORCE));
	CHECK(xmem_region_open(dev, &reg) == XMEM_E_NOREGION);
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_region_info(reg, &in2));
	CHECK(in2.nranges == 0);
	CHECK(memcmp(in.uuid, in2.uuid, 16) != 0);
	xmem_region_close(&reg);
	CHECK_OK(xmem_region_destroy(dev, 0));
	xmem_device_close(&dev);

	/* too small for a region */
	dev = dev_open("anon", 2 * MiB, 0);
	CHECK(xmem_region_create(dev, &reg) == -ENOSPC);
	xmem_device_close(&dev);
}

/* Argument checks and the alignment messages. */
static void test_range_errors(struct xmem_region *reg)
{
	struct xmem_range_info ri;

	CHECK(xmem_range_create(reg, "", 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      -EINVAL);
	CHECK(xmem_range_create(reg, "bad name", 4096, XMEM_ALIGN_4K, 0,
				NULL) == -EINVAL);
	CHECK(xmem_range_create(reg,
				"n123456789012345678901234567890123456789012345"
				"67",
				4096, XMEM_ALIGN_4K, 0, NULL) == -EINVAL);
	CHECK(xmem_range_create(reg, "x", 4096, 8192, 0, NULL) == -EINVAL);
	CHECK(xmem_range_create(reg, "x", 0, XMEM_ALIGN_4K, 0, NULL) ==
	      -EINVAL);
	CHECK(xmem_range_create(reg, "x", 3 * MiB, XMEM_ALIGN_2M, 0, NULL) ==
	      -EINVAL);
	CHECK(xmem_range_create(reg, "x", 4096, XMEM_ALIGN_4K,
				(enum xmem_range_mode)7, NULL) == -EINVAL);
	/* 1 GiB alignment on a region whose data spans 2 MiB..64 MiB */
	CHECK(xmem_range_create(reg, "db", GiB, XMEM_ALIGN_1G, 0, NULL) ==
	      XMEM_E_ALIGN);
	printf("1 GiB message: %s\n", xmem_errormsg());
	CHECK(strstr(xmem_errormsg(), "range 'db': alignment 1 GiB cannot be "
				      "met") != NULL);
	CHECK(strstr(xmem_errormsg(), "region data spans 2 MiB..64 MiB") !=
	      NULL);
	CHECK(xmem_range_create(reg, "big", 64 * MiB, XMEM_ALIGN_2M, 0, NULL) ==
	      XMEM_E_NOSPACE);
	CHECK(strstr(xmem_errormsg(), "data area is 62 MiB") != NULL);
	CHECK(xmem_range_info(reg, "nope", &ri) == -ENOENT);
	CHECK(xmem_range_resize(reg, "nope", 4096) == -ENOENT);
	CHECK(xmem_range_destroy(reg, "nope", 0) == -ENOENT);
}

static void check_list(struct xmem_region *reg, size_t want)
{
	struct xmem_range_info *v;
	size_t n;

	REQUIRE_OK(xmem_range_list(reg, &v, &n));
	CHECK(n == want);
	for (size_t i = 1; i < n; i++)
		CHECK(v[i - 1].offset + v[i - 1].size <= v[i].offset);
	free(v);
}

/* Best fit, alignment, resize in place, destroy and scrub. */
static void test_ranges(struct xmem_region *reg)
{
	struct xmem_range_info a, b, c, d, ri;
	struct xmem_range *r;
	struct xmem_map *m;

	/* data 2..64 MiB */
	REQUIRE_OK(xmem_range_create(reg, "a", 4 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_RAW, &a));
	CHECK(a.offset == 2 * MiB && a.size == 4 * MiB);
	CHECK(!strcmp(a.name, "a") && a.align == XMEM_ALIGN_2M);
	REQUIRE_OK(xmem_range_create(reg, "b", 4096, XMEM_ALIGN_4K,
				     XMEM_RANGE_HEAP, &b));
	CHECK(b.offset == 6 * MiB);
	REQUIRE_OK(xmem_range_create(reg, "c", 2 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_BLK, &c));
	/* aligned up past b: 8 MiB */
	CHECK(c.offset == 8 * MiB);
	CHECK(xmem_range_create(reg, "a", 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      -EEXIST);
	/* the hole between b and c (6 MiB+4K..8 MiB) is the best fit */
	REQUIRE_OK(xmem_range_create(reg, "d", 8192, XMEM_ALIGN_4K,
				     XMEM_RANGE_TIER, &d));
	CHECK(d.offset == 6 * MiB + 4096);
	check_list(reg, 4);
	REQUIRE_OK(xmem_range_info(reg, "c", &ri));
	CHECK(ri.offset == c.offset && ri.mode == XMEM_RANGE_BLK);
	CHECK(!memcmp(ri.uuid, c.uuid, 16));

	/* destroy a, then a 2 MiB range best-fits into a's 4 MiB hole */
	CHECK_OK(xmem_range_destroy(reg, "a", 0));
	check_list(reg, 3);
	REQUIRE_OK(xmem_range_create(reg, "e", 2 * MiB, XMEM_ALIGN_2M, 0, &ri));
	CHECK(ri.offset == 2 * MiB);
	/* e grows in place into the rest of the hole, not beyond b */
	CHECK_OK(xmem_range_resize(reg, "e", 4 * MiB));
	CHECK(xmem_range_resize(reg, "e", 6 * MiB) == XMEM_E_NOSPACE);
	CHECK(xmem_range_resize(reg, "e", 5 * MiB) == -EINVAL);
	CHECK_OK(xmem_range_resize(reg, "e", 2 * MiB));
	REQUIRE_OK(xmem_range_info(reg, "e", &ri));
	CHECK(ri.size == 2 * MiB && ri.offset == 2 * MiB);
	/* c is last: grows to the end of the data area */
	CHECK_OK(xmem_range_resize(reg, "c", 56 * MiB));
	CHECK(xmem_range_resize(reg, "c", 58 * MiB) == XMEM_E_NOSPACE);
	printf("grow message: %s\n", xmem_errormsg());
	CHECK_OK(xmem_range_resize(reg, "c", 2 * MiB));

	/* scrub: write data, destroy with scrub, the bytes are zero */
	REQUIRE_OK(xmem_range_open(reg, "e", 0, &r));
	CHECK(xmem_range_get_info(r)->offset == 2 * MiB);
	REQUIRE_OK(xmem_range_map(r, 0, &m));
	CHECK(((uintptr_t)xmem_map_addr(m) & (XMEM_ALIGN_2M - 1)) == 0);
	memset(xmem_map_addr(m), 0xab, 2 * MiB);
	xmem_map_persist(m, xmem_map_addr(m), 2 * MiB);
	CHECK(xmem_range_destroy(reg, "e", XMEM_F_SCRUB) == -EBUSY);
	CHECK(xmem_range_resize(reg, "e", 4 * MiB) == -EBUSY);
	xmem_map_delete(&m);
	xmem_range_close(&r);
	CHECK(r == NULL);
	CHECK_OK(xmem_range_destroy(reg, "e", XMEM_F_SCRUB));
	REQUIRE_OK(xmem_device_map(xmem_region_device(reg), 2 * MiB, 2 * MiB, 0,
				   0, &m));
	const uint8_t *p = xmem_map_addr(m);
	size_t nz = 0;
	for (size_t i = 0; i < 2 * MiB; i++)
		nz += p[i] != 0;
	CHECK(nz == 0);
	xmem_map_delete(&m);
	check_list(reg, 3);
}

/* A read-only device: reading works, changes fail with EROFS. */
static void test_rdonly(const char *path)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r;
	struct xmem_map *m;

	REQUIRE_OK(xmem_device_open(&dev, path, 0, XMEM_F_RDONLY));
	REQUIRE_OK(xmem_region_open(dev, &reg));
	check_list(reg, 3);
	CHECK(xmem_range_create(reg, "x", 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      -EROFS);
	CHECK(xmem_range_resize(reg, "b", 8192) == -EROFS);
	CHECK(xmem_range_destroy(reg, "b", 0) == -EROFS);
	CHECK(xmem_range_open(reg, "b", 0, &r) == -EACCES);
	REQUIRE_OK(xmem_range_open(reg, "b", XMEM_F_SHARED, &r));
	REQUIRE_OK(xmem_range_map(r, XMEM_F_MAP_RDONLY, &m));
	xmem_map_delete(&m);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	CHECK(xmem_region_check(dev, XMEM_F_REPAIR, NULL, NULL, NULL) ==
	      -EROFS);
	CHECK(xmem_region_destroy(dev, XMEM_F_FORCE) == -EROFS);
	xmem_device_close(&dev);
}

/* 1 GiB alignment: met on a 3 GiB region, not on a 1.5 GiB one. */
static void test_1g(const char *path)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info ri;

	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 3 * GiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "db", GiB, XMEM_ALIGN_1G, 0, &ri));
	CHECK(ri.offset == GiB);
	REQUIRE_OK(xmem_range_create(reg, "db2", GiB, XMEM_ALIGN_1G, 0, &ri));
	CHECK(ri.offset == 2 * GiB);
	/* 1022 MiB are left below 1 GiB */
	CHECK(xmem_range_create(reg, "db3", GiB, XMEM_ALIGN_1G, 0, NULL) ==
	      XMEM_E_NOSPACE);
	printf("third 1 GiB range: %s\n", xmem_errormsg());
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);

	REQUIRE_OK(xmem_device_open(&dev, path, 3 * GiB / 2, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	CHECK(xmem_range_create(reg, "db", GiB, XMEM_ALIGN_1G, 0, NULL) ==
	      XMEM_E_ALIGN);
	printf("1.5 GiB region: %s\n", xmem_errormsg());
	CHECK(strstr(xmem_errormsg(), "range 'db': alignment 1 GiB cannot be "
				      "met: region data spans 2 MiB..1536 "
				      "MiB") != NULL);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);
}

/* Free space that is large enough but not aligned enough. */
static void test_misaligned_free(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;

	/* data 2 MiB .. 64 MiB + 4 KiB */
	REQUIRE_OK(xmem_device_open(&dev, "anon", 64 * MiB + 4096, 0));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "p", 4096, XMEM_ALIGN_4K, 0, NULL));
	CHECK(xmem_range_create(reg, "q", 62 * MiB, XMEM_ALIGN_2M, 0, NULL) ==
	      XMEM_E_ALIGN);
	printf("misaligned free space: %s\n", xmem_errormsg());
	CHECK(strstr(xmem_errormsg(), "starts at a multiple of 2 MiB") != NULL);
	/* the same space with 4 KiB alignment is fine */
	CHECK_OK(xmem_range_create(reg, "q", 62 * MiB, XMEM_ALIGN_4K, 0, NULL));
	CHECK(xmem_range_create(reg, "r", 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      XMEM_E_NOSPACE);
	printf("full: %s\n", xmem_errormsg());
	xmem_region_close(&reg);
	xmem_device_close(&dev);
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	enum xmem_range_mode mode;
	char path[256];

	test_path(path, sizeof(path), "region-basic");
	unlink(path);
	test_region_lifetime(path);
	test_misaligned_free();
	test_1g(path);

	dev = dev_open(path, 64 * MiB, 1);
	REQUIRE_OK(xmem_region_create(dev, &reg));
	test_range_errors(reg);
	test_ranges(reg);
	xmem_region_close(&reg);
	/* everything survives a reopen */
	REQUIRE_OK(xmem_region_open(dev, &reg));
	check_list(reg, 3);
	xmem_region_close(&reg);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	xmem_device_close(&dev);
	test_rdonly(path);

	CHECK(!strcmp(xmem_range_mode_name(XMEM_RANGE_TIER), "tier"));
	CHECK(xmem_range_mode_parse("heap", &mode) == 0 &&
	      mode == XMEM_RANGE_HEAP);
	CHECK(xmem_range_mode_parse("bogus", &mode) == -EINVAL);
	unlink(path);
	return test_result();
}
