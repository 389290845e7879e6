/* SPDX-License-Identifier: MIT */
/*
 * region_map - a range is mapped at a virtual address aligned to its
 * alignment; a 2 MiB-aligned range on a /dev/shm file is PMD-mapped, or
 * the reason it is not is reported.
 */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>
#include <sys/vfs.h>
#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)

/* On tmpfs (the test directory is /dev/shm) the mapping is PMD-mapped,
 * or the reason names tmpfs and its shmem_enabled setting; with
 * shmem_enabled "[never]" it must not be PMD-mapped at all. Elsewhere a
 * page-cache file is mapped with 4 KiB entries, and the reason says so. */
static void expect_pmd(const char *path, const struct xmem_map_pmd *st)
{
	struct statfs sfs;
	char shm[128] = "";
	FILE *f;

	REQUIRE(statfs(path, &sfs) == 0);
	if ((uint32_t)sfs.f_type != 0x01021994u) { /* TMPFS_MAGIC */
		CHECK(st->pmd_mapped > 0 ||
		      strstr(st->reason, "page-cache mapping") != NULL);
		return;
	}
	f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
	if (f) {
		if (!fgets(shm, sizeof(shm), f))
			shm[0] = 0;
		fclose(f);
	}
	if (strstr(shm, "[never]") || strstr(shm, "[deny]")) {
		CHECK(st->pmd_mapped == 0);
		CHECK(strstr(st->reason, "tmpfs file") != NULL);
		CHECK(strstr(st->reason, "[never]") ||
		      strstr(st->reason, "[deny]"));
	} else if (st->pmd_mapped == 0) {
		CHECK(strstr(st->reason, "tmpfs file") != NULL);
	}
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r;
	struct xmem_map *m;
	struct xmem_map_pmd st;
	char path[256];

	test_path(path, sizeof(path), "region-map");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 64 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(
		xmem_range_create(reg, "small", 4096, XMEM_ALIGN_4K, 0, NULL));
	REQUIRE_OK(xmem_range_create(reg, "huge", 8 * MiB, XMEM_ALIGN_2M, 0,
				     NULL));

	REQUIRE_OK(xmem_range_open(reg, "huge", 0, &r));
	CHECK(xmem_range_get_info(r)->offset % XMEM_ALIGN_2M == 0);
	REQUIRE_OK(
		xmem_range_map(r, XMEM_F_MAP_HUGE | XMEM_F_MAP_POPULATE, &m));
	CHECK((uintptr_t)xmem_map_addr(m) % XMEM_ALIGN_2M == 0);
	CHECK(xmem_map_size(m) == 8 * MiB);
	CHECK(xmem_map_offset(m) == xmem_range_get_info(r)->offset);
	memset(xmem_map_addr(m), 0x5a, 8 * MiB);
	REQUIRE_OK(xmem_map_pmd_status(m, &st));
	printf("2 MiB range on %s: %" PRIu64 " of %" PRIu64
	       " resident bytes PMD-mapped%s%s\n",
	       path, st.pmd_mapped, st.resident, st.pmd_mapped ? "" : ": ",
	       st.pmd_mapped ? "" : st.reason);
	/* every page was touched */
	CHECK(st.resident == 8 * MiB);
	expect_pmd(path, &st);
	xmem_map_delete(&m);
	xmem_range_close(&r);

	REQUIRE_OK(xmem_range_open(reg, "small", XMEM_F_SHARED, &r));
	REQUIRE_OK(xmem_range_map(r, 0, &m));
	CHECK((uintptr_t)xmem_map_addr(m) % 4096 == 0);
	CHECK(xmem_map_size(m) == 4096);
	xmem_map_delete(&m);
	xmem_range_close(&r);

	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
