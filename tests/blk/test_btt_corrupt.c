/* SPDX-License-Identifier: MIT */
/*
 * test_btt_corrupt.c - every info block field, flog group and map entry
 * damaged in turn: open fails with XMEM_E_CORRUPT (or XMEM_E_VERSION /
 * XMEM_E_NOREGION where that is the truth) and a message naming the
 * structure and its offset, check reports the problem, and nothing
 * crashes. Also duplicate and lost blocks, found only by check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "blk/btt.h"
#include "core/checksum.h"
#include "test.h"

#define NS (20ull << 20)

static uint8_t *ns, *pristine;
static const struct xmem_persist_ops *ops;

static struct btt_info *info(void)
{
	return (struct btt_info *)(ns + 4096);
}

static void reseal(struct btt_info *ib)
{
	ib->checksum = xmem__fletcher64(ib, 4096, 4088);
}

/* Opens and checks the damaged namespace; both must fail as expected. */
static void expect(const char *what, int want, const char *msg_part)
{
	struct xmem_blk *b = NULL;
	unsigned np = 0;
	int rc = xmem_blk_open_mem(ns, NS, ops, XMEM_F_BLK_RDONLY, &b);

	if (rc != want || (msg_part && !strstr(xmem_errormsg(), msg_part))) {
		fprintf(stderr,
			"%s: open returned %d (%s), wanted %d with "
			"'%s'\n",
			what, rc, xmem_errormsg(), want,
			msg_part ? msg_part : "");
		test_failures++;
	}
	CHECK(b == NULL);
	if (b)
		xmem_blk_close(&b);
	rc = xmem_blk_check_mem(ns, NS, NULL, NULL, &np);
	if (want == XMEM_E_NOREGION && msg_part && strstr(msg_part, "backup") &&
	    (rc != XMEM_E_NOREGION || np != 1)) {
		fprintf(stderr,
			"%s: check returned %d with %u problems, "
			"wanted the backup reported\n",
			what, rc, np);
		test_failures++;
	}
	if (want != XMEM_E_NOREGION && (rc != XMEM_E_CORRUPT || np == 0)) {
		fprintf(stderr, "%s: check returned %d with %u problems\n",
			what, rc, np);
		test_failures++;
	}
	memcpy(ns, pristine, NS);
}

#define FIELD(name, stmt, want, msg)                                           \
	do {                                                                   \
		struct btt_info *ib = info();                                  \
		stmt;                                                          \
		reseal(ib);                                                    \
		expect(name, want, msg);                                       \
	} while (0)

static void info_fields(void)
{
	const char *at = "info block at offset 0x1000";

	FIELD("signature", ib->sig[3] ^= 1, XMEM_E_NOREGION,
	      "backup info block at offset");
	info()->padding[7] ^= 1; /* no reseal: checksum */
	expect("checksum", XMEM_E_CORRUPT, "checksum");
	FIELD("version", ib->version_major = 3, XMEM_E_VERSION, at);
	FIELD("v2.0 at 4 KiB", (ib->version_major = 2, ib->version_minor = 0),
	      XMEM_E_VERSION, at);
	FIELD("infosize", ib->infosize = 512, XMEM_E_CORRUPT, "infosize");
	FIELD("external_lbasize", ib->external_lbasize = 1000, XMEM_E_CORRUPT,
	      "external_lbasize");
	FIELD("internal_lbasize", ib->internal_lbasize = 4160, XMEM_E_CORRUPT,
	      "internal_lbasize");
	FIELD("nfree 0", ib->nfree = 0, XMEM_E_CORRUPT, "nfree");
	FIELD("nfree huge", ib->nfree = 100000, XMEM_E_CORRUPT, "nfree");
	FIELD("external_nlba", ib->external_nlba += 1, XMEM_E_CORRUPT,
	      "disagree");
	FIELD("internal_nlba", ib->internal_nlba = 1u << 31, XMEM_E_CORRUPT,
	      "disagree");
	FIELD("dataoff", ib->dataoff = 0, XMEM_E_CORRUPT, "dataoff");
	FIELD("dataoff unaligned", ib->dataoff = 4097, XMEM_E_CORRUPT,
	      "multiple of 4096");
	FIELD("mapoff", ib->mapoff = ib->dataoff + 4096, XMEM_E_CORRUPT,
	      "mapoff");
	FIELD("logoff", ib->logoff = ib->mapoff, XMEM_E_CORRUPT, "logoff");
	FIELD("info2off", ib->info2off = ib->logoff, XMEM_E_CORRUPT,
	      "info2off");
	FIELD("info2off past end", ib->info2off = 1ull << 38, XMEM_E_CORRUPT,
	      "past the end");
	FIELD("nextoff inside", ib->nextoff = 4096, XMEM_E_CORRUPT, "nextoff");
	FIELD("nextoff past end", ib->nextoff = NS, XMEM_E_CORRUPT, "nextoff");
	FIELD("nextoff near the end", ib->nextoff = NS - 8192, XMEM_E_CORRUPT,
	      "no room for the next arena");
	FIELD("offsets wrap", ib->dataoff = UINT64_MAX - 4095, XMEM_E_CORRUPT,
	      at);
}

static struct btt_flog_group *flog(void)
{
	return (struct btt_flog_group *)(ns + 4096 + info()->logoff);
}

static void flog_groups(void)
{
	flog()[3].ent[0].seq = 0;
	expect("flog seq both zero", XMEM_E_CORRUPT, "flog group 3");
	flog()[3].ent[0].seq = 7;
	expect("flog seq 7", XMEM_E_CORRUPT, "sequence numbers");
	flog()[3].ent[1] = flog()[3].ent[0];
	expect("flog seq equal", XMEM_E_CORRUPT, "flog group 3");
	flog()[4].ent[1] = (struct btt_flog_ent){ 1, 2, 3, 2 };
	flog()[4].ent[2] = (struct btt_flog_ent){ 1, 2, 3, 3 };
	expect("flog third slot", XMEM_E_CORRUPT, "flog group 4");
	flog()[5].ent[3] = (struct btt_flog_ent){ 1, 2, 3, 2 };
	expect("flog slot (0,3)", XMEM_E_CORRUPT, "slot scheme");
	flog()[6].ent[1] = (struct btt_flog_ent){ 1u << 29, 2, 3, 2 };
	expect("flog lba", XMEM_E_CORRUPT, "out of range");
	flog()[6].ent[1] = (struct btt_flog_ent){ 1, 2, 0x3fffffff, 2 };
	expect("flog new_map", XMEM_E_CORRUPT, "out of range");
}

/* Damage that open cannot see (it does not scan the map): reads of the
 * entry fail cleanly, and check finds it. */
static void map_entries(void)
{
	uint32_t *map = (uint32_t *)(ns + 4096 + info()->mapoff);
	struct xmem_blk *b;
	uint8_t buf[4096];
	unsigned np = 0;

	map[9] = BTT_MAP_NORMAL | 0x3ffffff0;
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	CHECK(xmem_blk_read(b, 9, buf, 1) == XMEM_E_CORRUPT);
	CHECK(strstr(xmem_errormsg(), "map entry 9") != NULL);
	CHECK(xmem_blk_write(b, 9, buf, 1) == XMEM_E_CORRUPT);
	CHECK_OK(xmem_blk_read(b, 10, buf, 1));
	xmem_blk_close(&b);
	CHECK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np) == XMEM_E_CORRUPT);
	CHECK(np >= 2); /* the entry, and its block 9 lost */
	memcpy(ns, pristine, NS);

	map[20] = BTT_MAP_NORMAL | 21; /* block 21 owned twice, 20 lost */
	CHECK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np) == XMEM_E_CORRUPT);
	CHECK(np == 2);
	memcpy(ns, pristine, NS);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
}

/* Open must refuse, without writing, and check must report: wants every
 * part of the message. */
static void expect_claim(const char *what, const char *m1, const char *m2,
			 unsigned want_np)
{
	struct xmem_blk *b = NULL;
	unsigned np = 0;
	uint8_t *before = malloc(NS);
	int rc;

	REQUIRE(before);
	memcpy(before, ns, NS);
	for (int ro = 0; ro < 2; ro++) {
		rc = xmem_blk_open_mem(ns, NS, ops, ro ? XMEM_F_BLK_RDONLY : 0,
				       &b);
		if (rc != XMEM_E_CORRUPT || !strstr(xmem_errormsg(), m1) ||
		    !strstr(xmem_errormsg(), m2) ||
		    !strstr(xmem_errormsg(), "arena 0")) {
			fprintf(stderr, "%s: open returned %d (%s)\n", what, rc,
				xmem_errormsg());
			test_failures++;
		}
		if (b)
			xmem_blk_close(&b);
	}
	CHECK(memcmp(before, ns, NS) == 0); /* nothing written */
	rc = xmem_blk_check_mem(ns, NS, NULL, NULL, &np);
	if (rc != XMEM_E_CORRUPT || np != want_np) {
		fprintf(stderr, "%s: check returned %d with %u problems\n",
			what, rc, np);
		test_failures++;
	}
	free(before);
	memcpy(ns, pristine, NS);
}

/* A lane's free block that a sector owns, or that two lanes claim, would
 * let two writers share a block: open refuses it (naming arena, lane and
 * block), check reports it, and a genuine unfinished write still opens. */
static void free_blocks(void)
{
	uint32_t ext = info()->external_nlba;
	uint32_t *map = (uint32_t *)(ns + 4096 + info()->mapoff);
	struct btt_flog_ent *e;
	struct xmem_blk *b;
	struct xmem_blk_info bi;
	uint8_t buf[4096];
	unsigned np = 0;

	/* lane 2's free block is 77, which sector 77 owns */
	flog()[2].ent[0].old_map = 77;
	flog()[2].ent[0].new_map = 77;
	expect_claim("free block mapped", "free block of lane 2", "block 77",
		     2);
	/* lanes 3 and 4 both claim lane 4's free block (3's is lost) */
	flog()[3].ent[0].old_map = ext + 4;
	flog()[3].ent[0].new_map = ext + 4;
	expect_claim("free block twice", "lanes 3 and 4", "both claim", 2);
	/* lane 5's unfinished write of sector 10 moves it to block 30,
	 * which sector 30 owns */
	flog()[5].ent[1] = (struct btt_flog_ent){ 10, ext + 5, 30, 2 };
	map[10] = BTT_MAP_NORMAL | (ext + 5);
	expect_claim("pending block mapped", "unfinished write of lane 5",
		     "sector 30", 2);
	/* the same write, genuinely unfinished: data in ext + 5, the map
	 * still names block 10; open finishes it */
	flog()[5].ent[1] = (struct btt_flog_ent){ 10, 10, ext + 5, 2 };
	memset(ns + 4096 + info()->dataoff + (uint64_t)(ext + 5) * 4096, 0xab,
	       4096);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	xmem_blk_get_info(b, &bi);
	CHECK(bi.recovered == 1);
	CHECK(map[10] == (BTT_MAP_NORMAL | (ext + 5)));
	CHECK_OK(xmem_blk_read(b, 10, buf, 1));
	CHECK(buf[0] == 0xab && buf[4095] == 0xab);
	xmem_blk_close(&b);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
	e = &flog()[5].ent[1];
	CHECK(e->new_map == ext + 5);
	memcpy(ns, pristine, NS);
}

/* Repair gives a lane whose free block a sector owns a block nothing
 * owns; the sector's data survives the lane's writes afterwards. */
static void free_blocks_repair(void)
{
	uint32_t ext = info()->external_nlba;
	struct xmem_blk *b;
	uint8_t buf[4096], rd[4096], *big;
	unsigned n = 0, np = 0;

	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	memset(buf, 0x77, sizeof(buf));
	CHECK_OK(xmem_blk_write(b, 40, buf, 1)); /* maps some ext + k */
	xmem_blk_close(&b);
	/* lanes 2 and 3 claim sector 40's block: two lanes and a sector */
	for (uint32_t i = 2; i < 4; i++) {
		uint32_t *map = (uint32_t *)(ns + 4096 + info()->mapoff);

		flog()[i].ent[1] =
			(struct btt_flog_ent){ 0, map[40] & BTT_MAP_LBA_MASK,
					       map[40] & BTT_MAP_LBA_MASK, 2 };
	}
	CHECK(xmem_blk_open_mem(ns, NS, ops, 0, &b) == XMEM_E_CORRUPT);
	CHECK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np) == XMEM_E_CORRUPT);
	CHECK_OK(xmem_blk_repair_mem(ns, NS, ops, &n));
	CHECK(n == 2);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
	CHECK(np == 0);
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	/* batches of 16 sectors take 16 lanes each (the even ones first,
	 * lane 2 among them) */
	big = malloc(16 * 4096);
	REQUIRE(big);
	memset(big, 0x11, 16 * 4096);
	for (uint32_t i = 0; i < 64; i++)
		CHECK_OK(xmem_blk_write(b, 41, big, 16));
	free(big);
	CHECK_OK(xmem_blk_read(b, 40, rd, 1));
	CHECK(memcmp(rd, buf, sizeof(buf)) == 0);
	xmem_blk_close(&b);
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
	CHECK_OK(xmem_blk_repair_mem(ns, NS, ops, &n)); /* nothing left */
	CHECK(n == 0);
	(void)ext;
	memcpy(ns, pristine, NS);
}

static void backup(void)
{
	uint8_t *b2 = ns + 4096 + info()->info2off;
	unsigned np = 0;

	b2[100] ^= 1;
	CHECK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np) == XMEM_E_CORRUPT);
	CHECK(np == 1);
	memcpy(ns, pristine, NS);
	/* Both copies gone: no BTT at all. */
	info()->sig[0] = 0;
	b2[0] = 0;
	expect("both info blocks", XMEM_E_NOREGION, "no BTT");
}

/* Repair restores info blocks from their good copies, and only those. */
static void repair(void)
{
	uint8_t *b2 = ns + 4096 + info()->info2off;
	unsigned n = 99;

	CHECK_OK(xmem_blk_repair_mem(ns, NS, ops, &n));
	CHECK(n == 0);
	info()->sig[0] ^= 1; /* first info block gone: from the backup */
	CHECK_OK(xmem_blk_repair_mem(ns, NS, ops, &n));
	CHECK(n == 1 && memcmp(ns, pristine, NS) == 0);
	b2[77] ^= 1; /* a damaged backup: from the info block */
	CHECK_OK(xmem_blk_repair_mem(ns, NS, ops, &n));
	CHECK(n == 1 && memcmp(ns, pristine, NS) == 0);
	info()->padding[9] ^= 1; /* bad checksum: from the backup too */
	CHECK_OK(xmem_blk_repair_mem(ns, NS, ops, &n));
	CHECK(n == 1 && memcmp(ns, pristine, NS) == 0);
	info()->padding[9] ^= 1; /* ... but not from a damaged backup */
	b2[9] ^= 1;
	CHECK(xmem_blk_repair_mem(ns, NS, ops, &n) == XMEM_E_CORRUPT);
	memcpy(ns, pristine, NS);
	info()->sig[0] = 0; /* both gone: nothing to restore from */
	b2[0] = 0;
	CHECK(xmem_blk_repair_mem(ns, NS, ops, &n) == XMEM_E_NOREGION);
	memcpy(ns, pristine, NS);
}

int main(void)
{
	ns = aligned_alloc(4096, NS);
	pristine = malloc(NS);
	REQUIRE(ns && pristine);
	ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	memset(ns, 0, NS);
	REQUIRE_OK(xmem_blk_format_mem(ns, NS, ops, NULL));
	memcpy(pristine, ns, NS);
	info_fields();
	flog_groups();
	map_entries();
	free_blocks();
	free_blocks_repair();
	backup();
	repair();
	/* Every single-byte flip of the info block: open never crashes and
	 * either succeeds (padding is covered by the checksum, so it may
	 * not) or reports an error with a message. */
	for (size_t i = 0; i < 4096; i += 7) {
		struct xmem_blk *b = NULL;
		int rc;

		ns[4096 + i] ^= 0x40;
		rc = xmem_blk_open_mem(ns, NS, ops, XMEM_F_BLK_RDONLY, &b);
		CHECK(rc != 0 && strlen(xmem_errormsg()) > 0);
		if (b)
			xmem_blk_close(&b);
		ns[4096 + i] ^= 0x40;
	}
	free(ns);
	free(pristine);
	return test_result();
}
