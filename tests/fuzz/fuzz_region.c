/* SPDX-License-Identifier: MIT */
/*
 * fuzz_region - the region metadata parser (open, list, check, repair) on
 * metadata patched by the fuzz input.
 *
 * The input patches a healthy region of three ranges (kept on a memfd
 * device), so that mutations start from a structure worth parsing:
 *
 *   byte 0     flags: 1 recompute both superblock checksums, 2 both index
 *              checksums, 4 the checksums of label slots 0..7, 8 start
 *              from zeroed metadata instead, 16 also run check --repair
 *              and open again, 32 the next byte picks a device size
 *              (sizes[] below, many smaller than the metadata area): the
 *              patched metadata is copied to a device of that size, which
 *              is opened, checked, repaired and destroyed with force
 *   then       patches: 3-byte little-endian offset (taken modulo the
 *              metadata size), 1-byte length, that many bytes
 *
 * With the checksums recomputed, the fuzzer reaches the semantic checks
 * (geometry, sequence numbers, bitmaps, extents, overlaps, names).
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <xmem.h>

#include "core/checksum.h"
#include "region/region_layout.h"

#define MiB (1ull << 20)

static struct xmem_device *dev;
static struct xmem_map *map;
static uint8_t *meta;
static uint8_t base[XMEM_META_END];

static void die(const char *what)
{
	fprintf(stderr, "fuzz_region setup: %s: %s\n", what, xmem_errormsg());
	abort();
}

/* Builds the healthy region once. */
static void setup(void)
{
	struct xmem_region *reg;

	if (xmem_device_open(&dev, "memfd:fuzz-region", 8 * MiB, 0))
		die("device");
	if (xmem_region_create(dev, &reg) ||
	    xmem_range_create(reg, "a", 2 * MiB, XMEM_ALIGN_2M, 0, NULL) ||
	    xmem_range_create(reg, "b", 4096, XMEM_ALIGN_4K, 1, NULL) ||
	    xmem_range_create(reg, "c", 8192, XMEM_ALIGN_4K, 3, NULL))
		die("region");
	xmem_region_close(&reg);
	if (xmem_device_map(dev, 0, XMEM_META_END, 0, 0, &map))
		die("map");
	meta = xmem_map_addr(map);
	memcpy(base, meta, sizeof(base));
}

/* Device sizes flag 32 picks from: inside, at and past the metadata. */
static const uint64_t sizes[] = {
	4096,	 8192,		 12288,	  16384,	  20480,  24576,
	65536,	 262144,	 528384,  XMEM_META_END,  536576, 1 * MiB,
	2 * MiB, 2 * MiB + 4096, 4 * MiB, 8 * MiB - 4096,
};

static void fix(uint64_t off, size_t len, size_t csum_off)
{
	uint32_t c = xmem__csum_struct(meta + off, len, csum_off);

	memcpy(meta + off + csum_off, &c, 4);
}

/* Applies the input's patches and checksum fix-ups to the metadata. */
static void apply(const uint8_t *data, size_t size)
{
	uint8_t flags = size ? data[0] : 0;
	size_t i = (flags & 32) ? 2 : 1;

	if (flags & 8)
		memset(meta, 0, XMEM_META_END);
	else
		memcpy(meta, base, XMEM_META_END);
	while (i + 4 <= size) {
		uint32_t off = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 |
			       (uint32_t)data[i + 2] << 16;
		size_t len = data[i + 3];

		i += 4;
		off %= XMEM_META_END;
		if (len > size - i)
			len = size - i;
		if (len > XMEM_META_END - off)
			len = XMEM_META_END - off;
		memcpy(meta + off, data + i, len);
		i += len;
	}
	for (int c = 0; c < 2; c++) {
		if (flags & 1)
			fix(XMEM_SB_OFF(c), sizeof(struct xmem_sb_layout), 12);
		if (flags & 2)
			fix(XMEM_INDEX_OFF(c), sizeof(struct xmem_index_layout),
			    12);
	}
	if (flags & 4)
		for (uint32_t s = 0; s < 8; s++)
			fix(XMEM_SLOT_OFF(s), XMEM_LABEL_SIZE, 12);
}

static void count(const struct xmem_check_problem *p, void *arg)
{
	/* touch every field, as a caller printing them would */
	*(size_t *)arg += strlen(p->structure) + strlen(p->what) +
			  (size_t)p->offset + (size_t)p->fatal;
}

/* Opens and lists; a successful open must give a sane listing. */
static void open_list(struct xmem_device *d)
{
	struct xmem_region *reg;
	struct xmem_range_info *v;
	struct xmem_region_info in;
	size_t n;

	if (xmem_region_open(d, &reg))
		return;
	if (xmem_range_list(reg, &v, &n) == 0) {
		for (size_t i = 1; i < n; i++)
			if (v[i - 1].offset + v[i - 1].size > v[i].offset)
				abort(); /* overlap passed validation */
		free(v);
	}
	if (xmem_region_info(reg, &in) == 0 && in.used > in.data_size)
		abort();
	xmem_region_close(&reg);
}

/* The patched metadata on a device of another size: every operation gives
 * a clean result, and a forced destroy leaves no region. */
static void other_size(uint64_t dsize, int repair)
{
	struct xmem_device *small;
	size_t sink = 0;
	unsigned np;
	uint64_t n = dsize < XMEM_META_END ? dsize : XMEM_META_END;

	if (xmem_device_open(&small, "memfd:fuzz-region-size", dsize, 0))
		die("sized device");
	if (pwrite(xmem_device_fd(small), meta, n, 0) != (ssize_t)n)
		die("sized copy");
	open_list(small);
	(void)xmem_region_check(small, 0, count, &sink, &np);
	if (repair) {
		(void)xmem_region_check(small, XMEM_F_REPAIR, count, &sink,
					&np);
		open_list(small);
	}
	(void)xmem_region_destroy(small, 0);
	if (xmem_region_destroy(small, XMEM_F_FORCE) == 0 &&
	    xmem_region_check(small, 0, NULL, NULL, &np) != XMEM_E_NOREGION)
		abort(); /* a forced destroy left a region behind */
	xmem_device_close(&small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sink = 0;
	unsigned np;

	if (!dev)
		setup();
	apply(data, size);
	if (size >= 2 && (data[0] & 32)) {
		other_size(sizes[data[1] % (sizeof(sizes) / sizeof(sizes[0]))],
			   data[0] & 16);
		return 0;
	}
	open_list(dev);
	(void)xmem_region_check(dev, 0, count, &sink, &np);
	if (size && (data[0] & 16)) {
		(void)xmem_region_check(dev, XMEM_F_REPAIR, count, &sink, &np);
		open_list(dev);
	}
	return 0;
}
