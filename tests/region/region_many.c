/* SPDX-License-Identifier: MIT */
/*
 * region_many - a region with every label slot in use (4032 ranges), and
 * the cost of create, list and reload at two sizes, counted (not timed):
 *   create  writes 128 + 2 x 1024 bytes whatever n is, checksums no label,
 *           scans n + 1 gaps and about n/8 bitmap bytes: O(n);
 *   list    checksums no label: O(n) copy;
 *   reload  (another process changed the region) checksums n labels.
 */
#include <inttypes.h>
#include <stdint.h>
#include <xmem.h>

#include "region/region_int.h"
#include "test.h"

#define MiB (1ull << 20)

struct cost {
	uint64_t written, checked, extents, bitmap;
};

static struct cost delta(const struct xmem__region_stats *a,
			 const struct xmem__region_stats *b)
{
	struct cost c = { b->meta_bytes_written - a->meta_bytes_written,
			  b->labels_checked - a->labels_checked,
			  b->extents_scanned - a->extents_scanned,
			  b->bitmap_bytes - a->bitmap_bytes };
	return c;
}

static void create_n(struct xmem_region *reg, uint32_t from, uint32_t to)
{
	char name[32];

	for (uint32_t i = from; i < to; i++) {
		snprintf(name, sizeof(name), "r%u", i);
		REQUIRE_OK(xmem_range_create(reg, name, 4096, XMEM_ALIGN_4K,
					     XMEM_RANGE_RAW, NULL));
	}
}

/* Measures one create, one list and one reload at n ranges. */
static void measure(struct xmem_region *reg, struct xmem_region *other,
		    uint32_t n, struct cost out[3])
{
	struct xmem__region_stats s0 = reg->stats, s1;
	struct xmem_range_info *v;
	size_t cnt;
	char name[32];

	snprintf(name, sizeof(name), "m%u", n);
	REQUIRE_OK(xmem_range_create(reg, name, 4096, XMEM_ALIGN_4K, 0, NULL));
	s1 = reg->stats;
	out[0] = delta(&s0, &s1);
	REQUIRE_OK(xmem_range_list(reg, &v, &cnt));
	free(v);
	CHECK(cnt == n + 1);
	s0 = reg->stats;
	out[1] = delta(&s1, &s0);
	/* another region object (another process, in effect) changes it */
	snprintf(name, sizeof(name), "x%u", n);
	REQUIRE_OK(
		xmem_range_create(other, name, 4096, XMEM_ALIGN_4K, 0, NULL));
	REQUIRE_OK(xmem_range_list(reg, &v, &cnt));
	free(v);
	CHECK(cnt == n + 2);
	s1 = reg->stats;
	out[2] = delta(&s0, &s1);
}

int main(void)
{
	struct xmem_device *dev, *dev2;
	struct xmem_region *reg, *other;
	struct xmem_region_info in;
	struct cost c[2][3];
	const uint32_t sizes[2] = { 200, 2000 };
	char path[256];
	uint32_t n = 0;

	test_path(path, sizeof(path), "region-many");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 64 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_open(&dev2, path, 0, 0));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_region_open(dev2, &other));
	for (int k = 0; k < 2; k++) {
		create_n(reg, n, sizes[k]);
		n = sizes[k];
		measure(reg, other, n, c[k]);
		n += 2;
	}
	printf("%-8s %8s %10s %10s %10s %10s\n", "op", "ranges", "bytes-wr",
	       "labels-ck", "gaps", "bitmap-B");
	for (int k = 0; k < 2; k++) {
		const char *op[3] = { "create", "list", "reload" };
		for (int j = 0; j < 3; j++)
			printf("%-8s %8u %10" PRIu64 " %10" PRIu64 " %10" PRIu64
			       " %10" PRIu64 "\n",
			       op[j], sizes[k], c[k][j].written,
			       c[k][j].checked, c[k][j].extents,
			       c[k][j].bitmap);
	}
	for (int k = 0; k < 2; k++) {
		/* create: constant writes, no label read, O(n) scans */
		CHECK(c[k][0].written == XMEM_LABEL_SIZE + 2 * 1024);
		CHECK(c[k][0].checked == 0);
		CHECK(c[k][0].extents == sizes[k] + 1);
		CHECK(c[k][0].bitmap <= sizes[k] / 8 + 1);
		/* list: nothing read again */
		CHECK(c[k][1].checked == 0 && c[k][1].written == 0);
		/* reload after a foreign change: every label once */
		CHECK(c[k][2].checked == sizes[k] + 2);
	}

	/* fill every slot, then one more fails */
	create_n(reg, n, XMEM_RANGE_MAX);
	REQUIRE_OK(xmem_region_info(reg, &in));
	CHECK(in.nranges == XMEM_RANGE_MAX);
	CHECK(xmem_range_create(reg, "extra", 4096, XMEM_ALIGN_4K, 0, NULL) ==
	      XMEM_E_LABELFULL);
	printf("full: %s\n", xmem_errormsg());
	/* a slot freed by destroy can be used again at once */
	CHECK_OK(xmem_range_destroy(reg, "r7", 0));
	CHECK_OK(xmem_range_create(reg, "extra", 4096, XMEM_ALIGN_4K, 0, NULL));
	xmem_region_close(&other);
	xmem_region_close(&reg);

	/* open validates all 4032 labels */
	REQUIRE_OK(xmem_region_open(dev2, &reg));
	printf("open of %u ranges checked %" PRIu64 " labels\n", XMEM_RANGE_MAX,
	       reg->stats.labels_checked);
	CHECK(reg->stats.labels_checked == XMEM_RANGE_MAX);
	xmem_region_close(&reg);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	xmem_device_close(&dev2);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
