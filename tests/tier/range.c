/* SPDX-License-Identifier: MIT */
/*
 * range.c - a tier whose device memory is a range (mode tier) of a region
 * on a shmem file: units demoted to the device hold their bytes at the
 * range's offset of the device file; ranges of another mode, or too
 * small, are refused with a clear error.
 */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)
#define UNIT (2 * MiB)

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r, *raw;
	struct xmem_range_info ri;
	struct xmem_tier_config cfg;
	struct xmem_tier *t;
	char path[256], buf[8];
	int rc, fd;

	test_path(path, sizeof(path), "tier-range");
	REQUIRE_OK(xmem_device_open(&dev, path, 64 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "dev", 16 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_TIER, &ri));
	REQUIRE_OK(xmem_range_create(reg, "raw", 4 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_RAW, NULL));
	REQUIRE_OK(xmem_range_open(reg, "dev", 0, &r));
	REQUIRE_OK(xmem_range_open(reg, "raw", 0, &raw));

	xmem_tier_config_init(&cfg);
	cfg.size = 8 * UNIT;
	cfg.dram_budget = 2 * UNIT;
	cfg.flags = XMEM_F_TIER_NO_POLICY;
	CHECK(xmem_tier_new_range(reg, raw, &cfg, &t) == XMEM_E_MODE);
	cfg.size = 32 * MiB;
	CHECK(xmem_tier_new_range(reg, r, &cfg, &t) == -ENOSPC);
	cfg.size = 8 * UNIT;
	rc = xmem_tier_new_range(reg, r, &cfg, &t);
	if (rc == -EPERM)
		SKIP("userfaultfd is not permitted here");
	REQUIRE_OK(rc);
	char *b = xmem_tier_addr(t);
	for (uint64_t u = 0; u < 8; u++)
		memset(b + u * UNIT, 'a' + (int)u, UNIT);
	CHECK_OK(xmem_tier_migrate(t, b, UNIT, XMEM_TIER_DEVICE, NULL));
	/* unit 0 and unit 5 now live in the device file at the range */
	fd = open(path, O_RDONLY);
	REQUIRE(fd >= 0);
	CHECK(pread(fd, buf, 1, (off_t)ri.offset) == 1 && buf[0] == 'a');
	CHECK(pread(fd, buf, 1, (off_t)(ri.offset + 5 * UNIT + 77)) == 1 &&
	      buf[0] == 'f');
	close(fd);
	for (uint64_t u = 0; u < 8; u++)
		CHECK(b[u * UNIT + 4095] == 'a' + (int)u);
	xmem_tier_delete(&t);
	xmem_range_close(&raw);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
