/* SPDX-License-Identifier: MIT */
/*
 * region_flip - damage every byte of the superblocks, both label index
 * blocks and the labels in use of a small region (two patterns each), and
 * a sample of single bits across the whole metadata area. Every open gives
 * a clean error or the current set of ranges (never an older one: both
 * index blocks hold the current state at rest), and damage to one index
 * block never stops the open; check and check --repair never crash, and
 * after a repair the region opens or is still reported corrupt. Bounded:
 * about 15,000 opens of a 3-range region.
 */
#include <inttypes.h>
#include <stdint.h>
#include <xmem.h>

#include "region/region_layout.h"
#include "test.h"

#define MiB (1ull << 20)

static struct xmem_device *dev;
static uint8_t *meta; /* the device's metadata, mapped */
static uint8_t orig[XMEM_META_END];
static unsigned n_ok, n_err, n_repaired;

static void quiet(const struct xmem_check_problem *p, void *arg)
{
	(void)p;
	(*(unsigned *)arg)++;
}

/* Opens, checks and repairs the damaged image; verifies the outcomes. */
static void try_image(uint64_t off)
{
	struct xmem_region *reg;
	struct xmem_range_info *v;
	unsigned np, calls = 0;
	size_t n;
	int rc;

	rc = xmem_region_open(dev, &reg);
	if (rc && off >= XMEM_INDEX_OFF(0) && off < XMEM_SLOTS_OFF) {
		/* one index block damaged: the other one serves */
		fprintf(stderr, "offset %" PRIu64 ": open %s\n", off,
			xmem_errormsg());
		CHECK(0);
	}
	if (rc == 0) {
		n_ok++;
		REQUIRE_OK(xmem_range_list(reg, &v, &n));
		/* the current set, whatever byte was hit */
		if (n != 3) {
			fprintf(stderr, "offset %" PRIu64 ": %zu ranges\n", off,
				n);
			CHECK(0);
		}
		for (size_t i = 0; i < n; i++)
			CHECK(strlen(v[i].name) == 1 && v[i].name[0] >= 'a' &&
			      v[i].name[0] <= 'c');
		free(v);
		xmem_region_close(&reg);
	} else {
		n_err++;
		if (rc != XMEM_E_CORRUPT && rc != XMEM_E_NOREGION &&
		    rc != XMEM_E_VERSION) {
			fprintf(stderr, "offset %" PRIu64 ": open %d %s\n", off,
				rc, xmem_errormsg());
			CHECK(0);
		}
		CHECK(xmem_errormsg()[0] != 0);
	}
	rc = xmem_region_check(dev, 0, quiet, &calls, &np);
	CHECK(rc == 0 || rc == XMEM_E_CORRUPT || rc == XMEM_E_NOREGION ||
	      rc == XMEM_E_VERSION);
	rc = xmem_region_check(dev, XMEM_F_REPAIR, quiet, &calls, &np);
	if (rc == 0 && np)
		n_repaired++;
	if (rc == 0) {
		rc = xmem_region_open(dev, &reg);
		if (rc) {
			fprintf(stderr,
				"offset %" PRIu64 ": repaired but "
				"open says %s\n",
				off, xmem_errormsg());
			CHECK(0);
		}
		xmem_region_close(&reg);
	}
	memcpy(meta, orig, sizeof(orig));
}

static void flip_bytes(uint64_t start, uint64_t len)
{
	static const uint8_t pattern[2] = { 0xff, 0x01 };

	for (uint64_t off = start; off < start + len; off++) {
		for (int p = 0; p < 2; p++) {
			meta[off] ^= pattern[p];
			try_image(off);
		}
	}
}

int main(void)
{
	struct xmem_region *reg;
	struct xmem_map *m;
	struct xmem_range_info ri;
	uint64_t slots[3];

	REQUIRE_OK(xmem_device_open(&dev, "memfd:region-flip", 8 * MiB, 0));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "a", 2 * MiB, XMEM_ALIGN_2M, 0, &ri));
	slots[0] = ri.slot;
	REQUIRE_OK(xmem_range_create(reg, "b", 4096, XMEM_ALIGN_4K, 1, &ri));
	slots[1] = ri.slot;
	REQUIRE_OK(xmem_range_create(reg, "c", 8192, XMEM_ALIGN_4K, 2, &ri));
	slots[2] = ri.slot;
	xmem_region_close(&reg);
	REQUIRE_OK(xmem_device_map(dev, 0, XMEM_META_END, 0, 0, &m));
	meta = xmem_map_addr(m);
	memcpy(orig, meta, sizeof(orig));

	for (int i = 0; i < 2; i++)
		flip_bytes(XMEM_SB_OFF(i), sizeof(struct xmem_sb_layout));
	for (int i = 0; i < 2; i++)
		flip_bytes(XMEM_INDEX_OFF(i), sizeof(struct xmem_index_layout));
	for (int i = 0; i < 3; i++)
		flip_bytes(XMEM_SLOT_OFF(slots[i]), XMEM_LABEL_SIZE);
	printf("every byte: %u opens succeeded, %u failed cleanly, %u "
	       "repaired\n",
	       n_ok, n_err, n_repaired);
	/* single bits sampled over the whole metadata area */
	n_ok = n_err = n_repaired = 0;
	for (uint64_t off = 0; off < XMEM_META_END; off += 127) {
		meta[off] ^= (uint8_t)(1u << (off % 8));
		try_image(off);
	}
	printf("sampled bits: %u opens succeeded, %u failed cleanly, %u "
	       "repaired\n",
	       n_ok, n_err, n_repaired);
	CHECK(memcmp(meta, orig, sizeof(orig)) == 0);
	xmem_map_delete(&m);
	REQUIRE_OK(xmem_region_open(dev, &reg));
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	return test_result();
}
