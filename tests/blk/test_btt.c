/* SPDX-License-Identifier: MIT */
/*
 * test_btt.c - the BTT on plain memory: format geometry as the kernel
 * computes it, fresh sectors read zero, writes, write-zeroes, trim, error
 * marks, several arenas, both versions and sector sizes, flog recovery and
 * the old (0,2) flog slot scheme.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "blk/btt.h"
#include "core/checksum.h"
#include "test.h"

#define NS (40ull << 20)

static const struct xmem_persist_ops *ops;

static void fill(uint8_t *buf, uint32_t len, uint64_t lba, uint32_t ver)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t v = lba << 20 | ver << 8 | (i / 8 & 0xff);

		memcpy(buf + i, &v, 8);
	}
}

static int is_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The kernel's alloc_arena, written out again from the specification of
 * the layout, for one arena of `size` bytes. */
static void expect_geometry(uint64_t size, uint32_t lbasize,
			    struct btt_info *ib)
{
	uint64_t avail = (size & ~4095ull) - 2 * 4096;
	uint64_t logsz = (256 * 64 + 4095) & ~4095ull;
	uint32_t in = (lbasize + 63) & ~63u;
	uint64_t mapsz;

	avail -= logsz;
	ib->internal_nlba = (uint32_t)((avail - 4096) / (in + 4));
	ib->external_nlba = ib->internal_nlba - 256;
	mapsz = ((uint64_t)ib->external_nlba * 4 + 4095) & ~4095ull;
	ib->dataoff = 4096;
	ib->mapoff = 4096 + avail - mapsz;
	ib->logoff = ib->mapoff + mapsz;
	ib->info2off = ib->logoff + logsz;
	ib->internal_lbasize = in;
}

static void test_geometry(uint8_t *ns, uint32_t lbasize, uint16_t major)
{
	struct xmem_blk_format_opts o = { .lbasize = lbasize,
					  .version_major = major,
					  .version_minor = major == 1 };
	uint64_t off = major == 1 ? 4096 : 0;
	const struct btt_info *ib = (const void *)(ns + off);
	struct btt_info want;

	REQUIRE_OK(xmem_blk_format_mem(ns, NS, ops, &o));
	expect_geometry(NS - off, lbasize, &want);
	CHECK(memcmp(ib->sig, "BTT_ARENA_INFO\0", 16) == 0);
	CHECK(ib->version_major == major && ib->version_minor == (major == 1));
	CHECK(ib->external_lbasize == lbasize);
	CHECK(ib->internal_lbasize == want.internal_lbasize);
	CHECK(ib->internal_nlba == want.internal_nlba);
	CHECK(ib->external_nlba == want.external_nlba);
	CHECK(ib->nfree == 256 && ib->infosize == 4096 && ib->nextoff == 0);
	CHECK(ib->dataoff == want.dataoff && ib->mapoff == want.mapoff);
	CHECK(ib->logoff == want.logoff && ib->info2off == want.info2off);
	CHECK(ib->checksum == xmem__fletcher64(ib, 4096, 4088));
	CHECK(memcmp(ns + off + ib->info2off, ib, 4096) == 0);
	/* Initial flog as the kernel's btt_log_init writes it. */
	const struct btt_flog_group *g = (const void *)(ns + off + ib->logoff);
	CHECK(g[5].ent[0].lba == 5 && g[5].ent[0].seq == 1);
	CHECK(g[5].ent[0].old_map == ib->external_nlba + 5);
	CHECK(g[5].ent[0].new_map == ib->external_nlba + 5);
	CHECK(is_zero((const uint8_t *)&g[5].ent[1], 48));
}

static void test_io(uint8_t *ns, uint32_t lbasize, uint16_t major)
{
	struct xmem_blk_format_opts o = { .lbasize = lbasize,
					  .version_major = major,
					  .version_minor = major == 1 };
	struct xmem_blk *b;
	struct xmem_blk_info in;
	uint8_t *buf = malloc(4 * lbasize), *rd = malloc(4 * lbasize);
	uint64_t n;

	memset(ns, 0xa5, NS); /* stale data must not show through */
	REQUIRE_OK(xmem_blk_format_mem(ns, NS, ops, &o));
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	xmem_blk_get_info(b, &in);
	n = xmem_blk_nlba(b);
	CHECK(in.lbasize == lbasize && in.nlba == n && in.narenas == 1);
	CHECK(in.version_major == major);
	CHECK_OK(xmem_blk_read(b, n - 4, rd, 4));
	CHECK(is_zero(rd, 4 * lbasize));
	for (uint32_t v = 1; v <= 600; v++) { /* > nfree: blocks recycle */
		uint64_t lba = (v * 7919ull) % (n - 4);

		for (int k = 0; k < 4; k++)
			fill(buf + k * lbasize, lbasize, lba + k, v);
		CHECK_OK(xmem_blk_write(b, lba, buf, 4));
		CHECK_OK(xmem_blk_read(b, lba, rd, 4));
		CHECK(memcmp(buf, rd, 4 * lbasize) == 0);
	}
	fill(buf, lbasize, 3, 9);
	CHECK_OK(xmem_blk_write(b, 3, buf, 1));
	CHECK_OK(xmem_blk_write_zeroes(b, 3, 1));
	CHECK_OK(xmem_blk_read(b, 3, rd, 1));
	CHECK(is_zero(rd, lbasize));
	CHECK_OK(xmem_blk_write(b, 3, buf, 1));
	CHECK_OK(xmem_blk_trim(b, 3, 1));
	CHECK_OK(xmem_blk_read(b, 3, rd, 1));
	CHECK(is_zero(rd, lbasize));
	CHECK_OK(xmem_blk_set_error(b, 4));
	CHECK(xmem_blk_read(b, 4, rd, 1) == XMEM_E_MEDIA);
	CHECK_OK(xmem_blk_clear_error(b, 4));
	CHECK_OK(xmem_blk_read(b, 4, rd, 1));
	CHECK(is_zero(rd, lbasize));
	CHECK_OK(xmem_blk_set_error(b, 5));
	CHECK_OK(xmem_blk_write(b, 5, buf, 1)); /* a write clears it */
	CHECK_OK(xmem_blk_read(b, 5, rd, 1));
	CHECK(memcmp(rd, buf, lbasize) == 0);
	CHECK(xmem_blk_read(b, n, rd, 1) == -EINVAL);
	CHECK(xmem_blk_write(b, n - 1, buf, 2) == -EINVAL);
	CHECK(xmem_blk_read(b, UINT64_MAX, rd, 2) == -EINVAL);
	xmem_blk_close(&b);
	CHECK(b == NULL);
	unsigned np = 99;
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
	CHECK(np == 0);
	/* Reopened, everything reads back; read-only refuses writes. */
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, XMEM_F_BLK_RDONLY, &b));
	CHECK_OK(xmem_blk_read(b, 5, rd, 1));
	CHECK(memcmp(rd, buf, lbasize) == 0);
	CHECK(xmem_blk_write(b, 5, buf, 1) == -EROFS);
	xmem_blk_close(&b);
	free(buf);
	free(rd);
}

static void test_arenas(uint8_t *ns)
{
	struct xmem_blk *b;
	struct xmem_blk_info in;
	uint8_t buf[512], rd[512];
	uint64_t n;

	xmem__btt_arena_max = 16ull << 20;
	REQUIRE_OK(xmem_blk_format_mem(
		ns, NS, ops, &(struct xmem_blk_format_opts){ .lbasize = 512 }));
	xmem__btt_arena_max = BTT_ARENA_MAX;
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	xmem_blk_get_info(b, &in);
	CHECK(in.narenas == 2); /* 40 MiB - 4 KiB: 16 + 16, tail unused */
	n = xmem_blk_nlba(b);
	for (uint64_t lba = 0; lba < n; lba += n / 97) {
		fill(buf, 512, lba, 1);
		CHECK_OK(xmem_blk_write(b, lba, buf, 1));
	}
	for (uint64_t lba = 0; lba < n; lba += n / 97) {
		fill(buf, 512, lba, 1);
		CHECK_OK(xmem_blk_read(b, lba, rd, 1));
		CHECK(memcmp(rd, buf, 512) == 0);
	}
	xmem_blk_close(&b);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, NULL));
}

/* An interrupted write whose flog entry is durable but whose map store
 * was lost is finished on open. */
static void test_recovery(uint8_t *ns)
{
	struct btt_info *ib = (void *)(ns + 4096);
	uint8_t *a = ns + 4096, buf[4096], rd[4096];
	struct btt_flog_group *g;
	struct xmem_blk *b;
	struct xmem_blk_info in;
	uint32_t *map, freeb;

	REQUIRE_OK(xmem_blk_format_mem(ns, NS, ops, NULL));
	g = (void *)(a + ib->logoff);
	map = (void *)(a + ib->mapoff);
	freeb = g[7].ent[0].old_map;
	fill(buf, 4096, 42, 3);
	memcpy(a + ib->dataoff + (uint64_t)freeb * 4096, buf, 4096);
	g[7].ent[1] = (struct btt_flog_ent){ 42, map[42] & BTT_MAP_LBA_MASK,
					     freeb, 2 };
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	xmem_blk_get_info(b, &in);
	CHECK(in.recovered == 1);
	CHECK_OK(xmem_blk_read(b, 42, rd, 1));
	CHECK(memcmp(rd, buf, 4096) == 0);
	xmem_blk_close(&b);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, NULL));

	/* The pre-4.15 kernel slot scheme (0, 2) is detected and kept. */
	REQUIRE_OK(xmem_blk_format_mem(ns, NS, ops, NULL));
	g[0].ent[2] = (struct btt_flog_ent){ 1, map[1] & BTT_MAP_LBA_MASK,
					     g[0].ent[0].old_map, 2 };
	map[1] = BTT_MAP_NORMAL | g[0].ent[0].old_map;
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	xmem_blk_get_info(b, &in);
	CHECK(in.flog_slots[0] == 0 && in.flog_slots[1] == 2);
	fill(buf, 4096, 1, 5);
	for (int i = 0; i < 4; i++)
		CHECK_OK(xmem_blk_write(b, 1, buf, 1));
	xmem_blk_close(&b);
	CHECK(is_zero((uint8_t *)&g[0].ent[1], 16));
	CHECK(is_zero((uint8_t *)&g[0].ent[3], 16));
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	CHECK_OK(xmem_blk_read(b, 1, rd, 1));
	CHECK(memcmp(rd, buf, 4096) == 0);
	xmem_blk_close(&b);
}

int main(void)
{
	uint8_t *ns = aligned_alloc(4096, NS);

	REQUIRE(ns);
	ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	memset(ns, 0, NS);
	CHECK(xmem_blk_open_mem(ns, NS, ops, 0, &(struct xmem_blk *){ 0 }) ==
	      XMEM_E_NOREGION);
	test_geometry(ns, 512, 1);
	test_geometry(ns, 4096, 1);
	test_geometry(ns, 4096, 2);
	test_geometry(ns, 520, 1);
	test_io(ns, 512, 1);
	test_io(ns, 4096, 1);
	test_io(ns, 4096, 2);
	test_arenas(ns);
	test_recovery(ns);
	CHECK(xmem_blk_format_mem(ns, 15 << 20, ops, NULL) == -EINVAL);
	CHECK(xmem_blk_format_mem(ns, NS, ops,
				  &(struct xmem_blk_format_opts){
					  .lbasize = 1024 }) == -EINVAL);
	free(ns);
	return test_result();
}
