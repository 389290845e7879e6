/* SPDX-License-Identifier: MIT */
/*
 * test_blk_range.c - the BTT on a range in mode blk: format and open
 * through the range (its uuid becomes the parent uuid), data survives a
 * reopen of device, region and range, a range of another mode is refused,
 * and a BTT whose parent uuid names another range is refused. Also a raw
 * image formatted the way the kernel's nd_btt leaves it (an all-zero map:
 * identity mappings) opens and reads each sector from its own block.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "blk/btt.h"
#include "test.h"

#define MiB (1ull << 20)

static void fill(uint8_t *b, uint32_t n, uint64_t lba)
{
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)(lba * 31 + i / 8);
}

/* Undoes the map store of the last write of sector lba in a v1.1 BTT
 * image, as a crash between the flog and the map stores leaves it: 0, or
 * -1 if no lane's newest entry is that write. */
static int pending_make(uint8_t *ns, uint32_t lba)
{
	struct btt_info *ib = (struct btt_info *)(ns + 4096);
	uint32_t *map = (uint32_t *)(ns + 4096 + ib->mapoff);
	struct btt_flog_group *fl =
		(struct btt_flog_group *)(ns + 4096 + ib->logoff);

	for (uint32_t i = 0; i < ib->nfree; i++)
		for (int j = 0; j < 2; j++) {
			const struct btt_flog_ent *e = &fl[i].ent[j];
			const struct btt_flog_ent *o = &fl[i].ent[1 - j];

			if (e->seq && o->seq && e->seq != o->seq % 3 + 1)
				continue; /* not the newest of the pair */
			if (e->lba != lba || e->old_map == e->new_map ||
			    map[lba] != (BTT_MAP_NORMAL | e->new_map))
				continue;
			map[lba] = BTT_MAP_Z | (e->old_map & BTT_MAP_LBA_MASK);
			return 0;
		}
	return -1;
}

static void on_range(const char *path)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r, *r2;
	struct xmem_range_info ri, ri2;
	struct xmem_blk *b;
	struct xmem_blk_info bi;
	uint8_t buf[4096], rd[4096];

	REQUIRE_OK(xmem_device_open(&dev, path, 96 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "disk", 32 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_BLK, &ri));
	REQUIRE_OK(xmem_range_create(reg, "other", 32 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_BLK, &ri2));
	REQUIRE_OK(xmem_range_create(reg, "raw", 2 * MiB, XMEM_ALIGN_2M,
				     XMEM_RANGE_RAW, NULL));
	REQUIRE_OK(xmem_range_open(reg, "disk", 0, &r));
	REQUIRE_OK(xmem_blk_format(r, NULL));
	REQUIRE_OK(xmem_blk_open(r, 0, &b));
	xmem_blk_get_info(b, &bi);
	CHECK(memcmp(bi.parent_uuid, ri.uuid, 16) == 0);
	CHECK(bi.btt_offset == 4096 && bi.lbasize == 4096);
	fill(buf, 4096, 77);
	CHECK_OK(xmem_blk_write(b, 77, buf, 1));
	xmem_blk_close(&b);
	xmem_range_close(&r);

	/* A raw range is refused. */
	REQUIRE_OK(xmem_range_open(reg, "raw", 0, &r));
	CHECK(xmem_blk_format(r, NULL) == XMEM_E_MODE);
	CHECK(xmem_blk_open(r, 0, &b) == XMEM_E_MODE);
	xmem_range_close(&r);

	/* The BTT of "disk" copied into "other": its parent uuid names
	 * "disk", so "other" refuses it. */
	REQUIRE_OK(xmem_range_open(reg, "disk", 0, &r));
	REQUIRE_OK(xmem_range_open(reg, "other", 0, &r2));
	{
		struct xmem_map *m1, *m2;
		uint8_t *ns, *copy = malloc(32 * MiB);

		REQUIRE(copy);
		REQUIRE_OK(xmem_range_map(r, 0, &m1));
		REQUIRE_OK(xmem_range_map(r2, 0, &m2));
		ns = xmem_map_addr(m2);
		memcpy(ns, xmem_map_addr(m1), 32 * MiB);
		xmem_map_delete(&m1);
		/* ... with sector 77's write left unfinished (the map names
		 * its old block): open must not finish it there, since the
		 * BTT is not this range's; nothing at all may be written */
		CHECK(pending_make(ns, 77) == 0);
		memcpy(copy, ns, 32 * MiB);
		CHECK(xmem_blk_open(r2, 0, &b) == XMEM_E_CORRUPT);
		CHECK(strstr(xmem_errormsg(), "parent uuid") != NULL);
		CHECK(strstr(xmem_errormsg(), "range 'other'") != NULL);
		CHECK(memcmp(copy, ns, 32 * MiB) == 0);
		free(copy);
		xmem_map_delete(&m2);
	}
	xmem_range_close(&r2);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	xmem_device_close(&dev);

	/* Everything reopened: the sector is there. */
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	REQUIRE_OK(xmem_region_open(dev, &reg));
	REQUIRE_OK(xmem_range_open(reg, "disk", 0, &r));
	REQUIRE_OK(xmem_blk_open(r, 0, &b));
	CHECK_OK(xmem_blk_read(b, 77, rd, 1));
	CHECK(memcmp(rd, buf, 4096) == 0);
	CHECK_OK(xmem_blk_read(b, 78, rd, 1));
	CHECK(rd[0] == 0 && rd[4095] == 0);
	xmem_blk_close(&b);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
}

/* The kernel's format leaves the map zeroed (identity) and the data as it
 * was: sector n reads block n. */
static void kernel_style(const char *path)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_blk *b;
	struct btt_info *ib;
	uint8_t *ns, buf[512], rd[512];

	REQUIRE_OK(xmem_device_open(&dev, path, 20 * MiB, XMEM_F_CREATE));
	xmem_device_close(&dev);
	REQUIRE_OK(xmem_blk_format_raw(
		path, 0, 0, &(struct xmem_blk_format_opts){ .lbasize = 512 }));
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	REQUIRE_OK(xmem_device_map(dev, 0, 20 * MiB, 0, 0, &m));
	ns = xmem_map_addr(m);
	ib = (struct btt_info *)(ns + 4096);
	memset(ns + 4096 + ib->mapoff, 0, ib->external_nlba * 4ull);
	for (uint64_t lba = 0; lba < 64; lba++) {
		fill(buf, 512, lba);
		memcpy(ns + 4096 + ib->dataoff + lba * 512, buf, 512);
	}
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	REQUIRE_OK(xmem_blk_open_raw(path, 0, 0, 0, &b));
	for (uint64_t lba = 0; lba < 64; lba++) {
		fill(buf, 512, lba);
		CHECK_OK(xmem_blk_read(b, lba, rd, 1));
		CHECK(memcmp(rd, buf, 512) == 0);
	}
	fill(buf, 512, 1000);
	for (int i = 0; i < 300; i++)
		CHECK_OK(xmem_blk_write(b, 5, buf, 1));
	CHECK_OK(xmem_blk_read(b, 5, rd, 1));
	CHECK(memcmp(rd, buf, 512) == 0);
	fill(buf, 512, 6);
	CHECK_OK(xmem_blk_read(b, 6, rd, 1));
	CHECK(memcmp(rd, buf, 512) == 0);
	xmem_blk_close(&b);
	CHECK_OK(xmem_blk_check_raw(path, 0, 0, NULL, NULL, NULL));
}

int main(void)
{
	char p1[256], p2[256];

	test_path(p1, sizeof(p1), "blkrange");
	test_path(p2, sizeof(p2), "blkkernel");
	on_range(p1);
	kernel_style(p2);
	unlink(p1);
	unlink(p2);
	return test_result();
}
