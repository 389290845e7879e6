/* SPDX-License-Identifier: MIT */
/*
 * region_corrupt - each metadata structure damaged in turn: open fails
 * with the exact error naming the structure and offset, writes nothing,
 * and check (with --repair where a good copy exists) reports and fixes it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <xmem.h>

#include "core/checksum.h"
#include "region/region_layout.h"
#include "test.h"

#define MiB (1ull << 20)
#define META XMEM_META_END

static char path[256];
static uint8_t orig[META]; /* metadata of the healthy region */

static void img_read(uint8_t *buf)
{
	int fd = open(path, O_RDONLY);
	ssize_t got;

	REQUIRE(fd >= 0);
	memset(buf, 0, META);
	got = pread(fd, buf, META, 0);
	REQUIRE(got >= 0);
	close(fd);
}

static void img_write(const uint8_t *buf)
{
	int fd = open(path, O_RDWR);

	REQUIRE(fd >= 0 && pwrite(fd, buf, META, 0) == (ssize_t)META);
	close(fd);
}

static void fix_csum(uint8_t *buf, uint64_t off, size_t len, size_t csum_off)
{
	uint32_t c = xmem__csum_struct(buf + off, len, csum_off);

	memcpy(buf + off + csum_off, &c, 4);
}

struct seen {
	unsigned fatal, notes, repaired;
	char first[256];
};

static void on_problem(const struct xmem_check_problem *p, void *arg)
{
	struct seen *s = arg;

	printf("  check: %s at %" PRIu64 ": %s%s%s%s\n", p->structure,
	       p->offset, p->what, p->fatal ? " [fatal]" : "",
	       p->note ? " [note]" : "", p->repaired ? " [repaired]" : "");
	s->fatal += !!p->fatal;
	s->notes += p->note && !p->repaired;
	s->repaired += !!p->repaired;
	if (!s->first[0])
		snprintf(s->first, sizeof(s->first), "%s at %" PRIu64,
			 p->structure, p->offset);
}

/* Non-fatal problems check must find when the open succeeds. */
static unsigned expect_np;

/* Opens the damaged image: expect `err` with `msg` in the message, and
 * no byte changed. Returns the ranges seen if the open succeeded. */
static size_t expect_open(int err, const char *msg)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	uint8_t before[META], after[META];
	size_t n = SIZE_MAX;
	int rc;

	img_read(before);
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	rc = xmem_region_open(dev, &reg);
	printf("open: %d %s\n", rc, rc ? xmem_errormsg() : "");
	CHECK(rc == err);
	if (msg && rc && !strstr(xmem_errormsg(), msg)) {
		fprintf(stderr, "message lacks '%s'\n", msg);
		CHECK(0);
	}
	if (rc == 0) {
		struct xmem_range_info *v;
		REQUIRE_OK(xmem_range_list(reg, &v, &n));
		free(v);
		xmem_region_close(&reg);
	}
	unsigned np = 99;
	struct seen s = { 0 };
	rc = xmem_region_check(dev, 0, on_problem, &s, &np);
	CHECK(err == 0 ? (rc == (expect_np ? XMEM_E_CORRUPT : 0) &&
			  np == expect_np)
		       : rc == err);
	xmem_device_close(&dev);
	img_read(after);
	CHECK(memcmp(before, after, META) == 0);
	return n;
}

/* check --repair: returns its result; the repaired image must open. */
static int repair(unsigned *fatal, unsigned *repaired)
{
	struct xmem_device *dev;
	struct seen s = { 0 };
	unsigned np = 0;
	int rc;

	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	rc = xmem_region_check(dev, XMEM_F_REPAIR, on_problem, &s, &np);
	printf("repair: %d (%u problems) %s\n", rc, np,
	       rc ? xmem_errormsg() : "");
	xmem_device_close(&dev);
	*fatal = s.fatal;
	*repaired = s.repaired;
	return rc;
}

static void case_superblock(int copy, int field_off)
{
	uint8_t img[META];
	unsigned fatal, rep;
	char msg[64];

	printf("-- superblock %d, byte %d\n", copy, field_off);
	memcpy(img, orig, META);
	img[XMEM_SB_OFF(copy) + field_off] ^= 0x5a;
	img_write(img);
	snprintf(msg, sizeof(msg), "superblock %d at offset %d: %s", copy,
		 copy * 4096, field_off < 8 ? "bad magic" : "bad checksum");
	expect_open(XMEM_E_CORRUPT, msg);
	expect_open(XMEM_E_CORRUPT, "run `xmem region check --repair`");
	CHECK(repair(&fatal, &rep) == 0);
	CHECK(fatal == 1 && rep == 1);
	img_read(img);
	CHECK(memcmp(img, orig, META) == 0);
	CHECK(expect_open(0, NULL) == 3);
}

static void case_index(void)
{
	uint8_t img[META];
	unsigned fatal, rep;
	struct xmem_index_layout ix[2];
	int active;

	memcpy(&ix[0], orig + XMEM_INDEX_OFF(0), sizeof(ix[0]));
	memcpy(&ix[1], orig + XMEM_INDEX_OFF(1), sizeof(ix[1]));
	active = ix[1].seq > ix[0].seq;

	/* either block damaged: the other holds the current state, so the
	 * region opens with all three ranges; check notes it and
	 * --repair copies the good block over the bad one */
	for (int b = 0; b < 2; b++) {
		int blk = b ? active : !active;

		printf("-- %s label index %d\n", b ? "active" : "inactive",
		       blk);
		memcpy(img, orig, META);
		img[XMEM_INDEX_OFF(blk) + (b ? 20 : 100)] ^= 1;
		img_write(img);
		/* a note, not a problem: the other block is current */
		expect_np = 0;
		CHECK(expect_open(0, NULL) == 3);
		expect_np = 0;
		CHECK(repair(&fatal, &rep) == 0 && fatal == 0 && rep == 1);
		CHECK(expect_open(0, NULL) == 3);
	}

	/* both damaged: corrupt, nothing to repair from */
	printf("-- both label indexes\n");
	memcpy(img, orig, META);
	img[XMEM_INDEX_OFF(0) + 30] ^= 1;
	img[XMEM_INDEX_OFF(1) + 30] ^= 1;
	img_write(img);
	expect_open(XMEM_E_CORRUPT,
		    "label index 0 at offset 8192 and label index 1 at offset "
		    "12288: neither is valid");
	CHECK(repair(&fatal, &rep) == XMEM_E_CORRUPT && rep == 0);

	/* a bitmap whose count disagrees, checksum fixed up */
	printf("-- index count\n");
	memcpy(img, orig, META);
	img[XMEM_INDEX_OFF(active) + 28] ^= 4; /* nused */
	img[XMEM_INDEX_OFF(!active) + 0] ^= 4; /* magic */
	fix_csum(img, XMEM_INDEX_OFF(active), sizeof(ix[0]), 12);
	img_write(img);
	expect_open(XMEM_E_CORRUPT, "slots marked, count says");
}

/* The slot of the label listed first by the active index. */
static uint32_t first_used_slot(const uint8_t *img)
{
	struct xmem_index_layout ix[2];
	int a;

	memcpy(&ix[0], img + XMEM_INDEX_OFF(0), sizeof(ix[0]));
	memcpy(&ix[1], img + XMEM_INDEX_OFF(1), sizeof(ix[1]));
	a = ix[1].seq > ix[0].seq;
	for (uint32_t s = 0; s < XMEM_LABEL_SLOTS; s++)
		if (ix[a].used[s / 8] & (1u << (s % 8)))
			return s;
	REQUIRE(0);
	return 0;
}

static void case_label(void)
{
	uint8_t img[META];
	unsigned fatal, rep;
	uint32_t s = first_used_slot(orig);
	uint64_t off = XMEM_SLOT_OFF(s);
	struct xmem_label_layout l;
	char msg[80];

	printf("-- label slot %u\n", s);
	memcpy(img, orig, META);
	img[off + 40] ^= 0x10;
	img_write(img);
	snprintf(msg, sizeof(msg),
		 "label slot %u at offset %" PRIu64 ": bad checksum", s, off);
	expect_open(XMEM_E_CORRUPT, msg);
	CHECK(repair(&fatal, &rep) == XMEM_E_CORRUPT && fatal == 1);

	/* valid checksums, overlapping extents */
	printf("-- overlapping labels\n");
	memcpy(img, orig, META);
	memcpy(&l, img + off, sizeof(l));
	l.size = 8 * MiB; /* range 'a' at 2 MiB now runs over 'b' */
	memcpy(img + off, &l, sizeof(l));
	fix_csum(img, off, sizeof(l), 12);
	img_write(img);
	expect_open(XMEM_E_CORRUPT, "overlaps");

	/* outside the data area */
	printf("-- label outside the data area\n");
	memcpy(&l, orig + off, sizeof(l));
	memcpy(img, orig, META);
	l.offset = 0;
	memcpy(img + off, &l, sizeof(l));
	fix_csum(img, off, sizeof(l), 12);
	img_write(img);
	expect_open(XMEM_E_CORRUPT, "outside the data area");
}

/* The state an update interrupted after its commit write leaves: the
 * other index block still holds the previous bitmap. Built by putting
 * back the block that was active before destroying range c. */
static void window_state(uint32_t *slotp, uint8_t *img)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info ri;
	struct xmem_index_layout ix[2];
	int a;

	img_write(orig);
	memcpy(&ix[0], orig + XMEM_INDEX_OFF(0), sizeof(ix[0]));
	memcpy(&ix[1], orig + XMEM_INDEX_OFF(1), sizeof(ix[1]));
	a = ix[1].seq > ix[0].seq;
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	REQUIRE_OK(xmem_region_open(dev, &reg));
	REQUIRE_OK(xmem_range_info(reg, "c", &ri));
	REQUIRE_OK(xmem_range_destroy(reg, "c", 0));
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	img_read(img);
	memcpy(img + XMEM_INDEX_OFF(a), &ix[a], sizeof(ix[a]));
	*slotp = ri.slot;
}

/* An interrupted update's remains, and a bad label that only the other
 * (older) index lists. */
static void case_inactive_label(void)
{
	uint8_t img[META];
	unsigned fatal, rep;
	uint32_t slot;

	printf("-- an update interrupted after its commit write\n");
	window_state(&slot, img);
	img_write(img);
	expect_np = 0; /* the older block lists other slots: a note */
	CHECK(expect_open(0, NULL) == 2);
	CHECK(repair(&fatal, &rep) == 0 && rep == 1);
	expect_np = 0;
	CHECK(expect_open(0, NULL) == 2);

	printf("-- label listed only by the inactive index\n");
	window_state(&slot, img);
	img[XMEM_SLOT_OFF(slot) + 50] ^= 0x20;
	img_write(img);
	/* the current state is fine: open works, check finds the damage */
	expect_np = 1; /* the bad label the older block lists (a note) */
	CHECK(expect_open(0, NULL) == 2);
	CHECK(repair(&fatal, &rep) == 0 && rep == 1 && fatal == 0);
	expect_np = 0;
	CHECK(expect_open(0, NULL) == 2);
}

/* Every free slot held by the older index block: create first copies the
 * active bitmap over it, succeeds, and leaves no stale error message. */
static void case_index_copy(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info ri;
	struct xmem_index_layout ix[2];
	uint8_t img[META];
	int a;

	printf("-- every free slot held by the older index block\n");
	memcpy(img, orig, META);
	memcpy(&ix[0], img + XMEM_INDEX_OFF(0), sizeof(ix[0]));
	memcpy(&ix[1], img + XMEM_INDEX_OFF(1), sizeof(ix[1]));
	a = ix[1].seq > ix[0].seq;
	ix[!a] = ix[a];
	ix[!a].seq = ix[a].seq - 1;
	memset(ix[!a].used, 0xff, sizeof(ix[!a].used));
	ix[!a].nused = XMEM_LABEL_SLOTS;
	memcpy(img + XMEM_INDEX_OFF(!a), &ix[!a], sizeof(ix[!a]));
	fix_csum(img, XMEM_INDEX_OFF(!a), sizeof(ix[!a]), 12);
	img_write(img);
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	REQUIRE_OK(xmem_region_open(dev, &reg));
	CHECK(xmem_range_info(reg, "none", &ri) == -ENOENT);
	REQUIRE_OK(xmem_range_create(reg, "d", 4096, XMEM_ALIGN_4K, 0, &ri));
	printf("created in slot %u; last message: %s\n", ri.slot,
	       xmem_errormsg());
	CHECK(strstr(xmem_errormsg(), "label slots are in use") == NULL);
	xmem_region_close(&reg);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	xmem_device_close(&dev);
}

static void case_version_and_truncation(void)
{
	uint8_t img[META];
	uint32_t v = 2;

	printf("-- version 2\n");
	memcpy(img, orig, META);
	for (int i = 0; i < 2; i++) {
		memcpy(img + XMEM_SB_OFF(i) + 8, &v, 4);
		fix_csum(img, XMEM_SB_OFF(i), 256, 12);
	}
	img_write(img);
	expect_open(XMEM_E_VERSION, "unsupported layout version 2");

	printf("-- truncated device\n");
	img_write(orig);
	REQUIRE(truncate(path, 4 * MiB) == 0);
	expect_open(XMEM_E_CORRUPT, "exceeds the device size");
	REQUIRE(truncate(path, 6000) == 0);
	expect_open(XMEM_E_CORRUPT, NULL);
	REQUIRE(truncate(path, 0) == 0);
	REQUIRE(truncate(path, 16 * MiB) == 0);
	expect_open(XMEM_E_NOREGION, "no xmem region");
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;

	test_path(path, sizeof(path), "region-corrupt");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 16 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(
		xmem_range_create(reg, "a", 2 * MiB, XMEM_ALIGN_2M, 0, NULL));
	REQUIRE_OK(xmem_range_create(reg, "b", 4096, XMEM_ALIGN_4K, 0, NULL));
	REQUIRE_OK(xmem_range_create(reg, "c", 4096, XMEM_ALIGN_4K, 0, NULL));
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	img_read(orig);

	CHECK(expect_open(0, NULL) == 3);
	case_superblock(0, 30);
	case_superblock(1, 30);
	case_superblock(1, 2);
	case_superblock(0, 2);
	case_index();
	case_label();
	case_inactive_label();
	case_index_copy();
	case_version_and_truncation();
	unlink(path);
	return test_result();
}
