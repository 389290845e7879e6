/* SPDX-License-Identifier: MIT */
/*
 * blk_crash - a crash at every fence of BTT sector writes (one sector,
 * twenty in one call (two batches), one sector rewritten until the flog
 * sequence wraps, both sector sizes), of write-zeroes and error marking,
 * of format, and of the repair of a lane whose free block a sector owns,
 * each also with torn write-back of the lines flushed since the previous
 * fence. After each crash:
 *   - `check` on the durable image is clean (pending flog updates count);
 *   - after open (which runs recovery) every sector reads entirely old or
 *     entirely new (the sectors of one multi-sector call are batched, one
 *     lane each, so each turns new on its own), and where one call's
 *     operations are ordered (write-zeroes, then set-error) they turn
 *     new in order;
 *   - new writes to every sector read back and leave the BTT clean.
 */
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdint.h>
#include <xmem.h>

#include "blk/btt.h"
#include "crashtest.h"
#include "test.h"

#define DEV_SIZE ((17ull << 20) + 4096)
#define V_ZERO 0u
#define V_ERR 99u
#define MAXS 20

struct sector {
	uint64_t lba;
	uint32_t base_ver;   /* version written before the operation */
	uint32_t allowed[6]; /* versions acceptable after a crash */
	unsigned nallowed;
};

struct scenario {
	const char *name;
	uint32_t lbasize;
	int (*op)(struct xmem_blk *b);
	int format; /* the operation formats the namespace again */
	struct sector s[MAXS];
	unsigned ns;
	int ordered; /* sectors become new in order (one call) */
	int repair;  /* base_setup damages lane 7; the operation repairs */
};

static char dev_path[256], img_path[256], work_path[256];
static uint64_t total_points, total_runs;

static void fill(uint8_t *buf, uint32_t len, uint64_t lba, uint32_t ver)
{
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t v = lba << 24 | (uint64_t)ver << 16 | (i / 8);

		memcpy(buf + i, &v, 8);
	}
}

/* Which version a sector holds: V_ZERO, V_ERR, a version, or -1 for
 * anything else (a torn or foreign sector). */
static int64_t sector_version(struct xmem_blk *b, uint64_t lba, uint32_t maxver)
{
	uint32_t lbs = xmem_blk_lbasize(b);
	uint8_t buf[4096], want[4096];
	int rc = xmem_blk_read(b, lba, buf, 1);

	if (rc == XMEM_E_MEDIA)
		return V_ERR;
	if (rc)
		return -1;
	memset(want, 0, lbs);
	if (memcmp(buf, want, lbs) == 0)
		return V_ZERO;
	for (uint32_t v = 1; v <= maxver; v++) {
		fill(want, lbs, lba, v);
		if (memcmp(buf, want, lbs) == 0)
			return v;
	}
	return -1;
}

static int write_ver(struct xmem_blk *b, uint64_t lba, uint32_t ver)
{
	uint8_t buf[4096];

	fill(buf, xmem_blk_lbasize(b), lba, ver);
	return xmem_blk_write(b, lba, buf, 1);
}

static int op_one(struct xmem_blk *b)
{
	return write_ver(b, 5, 2);
}

static int op_twenty(struct xmem_blk *b)
{
	uint8_t buf[20 * 512];

	for (int i = 0; i < 20; i++)
		fill(buf + i * 512, 512, 10 + i, 2);
	return xmem_blk_write(b, 10, buf, 20);
}

static int op_wrap(struct xmem_blk *b)
{
	int rc = 0;

	for (uint32_t v = 2; v <= 5 && rc == 0; v++)
		rc = write_ver(b, 20, v);
	return rc;
}

struct lane_write {
	struct xmem_blk *b;
	uint32_t ver;
	int rc;
};

static void *lane_writer(void *arg)
{
	struct lane_write *w = arg;

	w->rc = write_ver(w->b, 40, w->ver);
	return NULL;
}

/* Three writes of one sector from three threads, one after the other:
 * each thread takes its own lane, so recovery sees the sector in the
 * flog of several lanes. */
static int op_lanes(struct xmem_blk *b)
{
	for (uint32_t v = 2; v <= 4; v++) {
		struct lane_write w = { b, v, 0 };
		pthread_t t;

		if (pthread_create(&t, NULL, lane_writer, &w))
			return -1;
		pthread_join(t, NULL);
		if (w.rc)
			return w.rc;
	}
	return 0;
}

static int op_zero_err(struct xmem_blk *b)
{
	int rc = xmem_blk_write_zeroes(b, 30, 1);

	return rc ? rc : xmem_blk_set_error(b, 31);
}

static struct scenario scenarios[] = {
	{ "blk write 1 sector",
	  512,
	  op_one,
	  0,
	  { { 5, 1, { 1, 2 }, 2 } },
	  1,
	  0,
	  0 },
	{ "blk write 1 sector 4K",
	  4096,
	  op_one,
	  0,
	  { { 5, 1, { 1, 2 }, 2 } },
	  1,
	  0,
	  0 },
	/* sectors 10..29, filled in by main() */
	{ "blk write 20 sectors (batches of 16, 4)",
	  512,
	  op_twenty,
	  0,
	  { { 0 } },
	  20,
	  0,
	  0 },
	{ "blk rewrite until the flog seq wraps",
	  512,
	  op_wrap,
	  0,
	  { { 20, 1, { 1, 2, 3, 4, 5 }, 5 } },
	  1,
	  0,
	  0 },
	{ "blk one sector from three lanes",
	  512,
	  op_lanes,
	  0,
	  { { 40, 1, { 1, 2, 3, 4 }, 4 } },
	  1,
	  0,
	  0 },
	{ "blk write-zeroes and set-error",
	  512,
	  op_zero_err,
	  0,
	  { { 30, 1, { 1, V_ZERO }, 2 }, { 31, 1, { 1, V_ERR }, 2 } },
	  2,
	  1,
	  0 },
	{ "blk format", 512, NULL, 1, { { 5, 1, { 1, V_ZERO }, 2 } }, 1, 0, 0 },
	{ "blk repair of a lane",
	  512,
	  NULL,
	  0,
	  /* 0 and 7: sectors a torn or misordered flog entry of lane 7
	   * would move (its stale half, or the lba repair writes) */
	  { { 5, 1, { 1 }, 1 },
	    { 0, V_ZERO, { V_ZERO }, 1 },
	    { 7, V_ZERO, { V_ZERO }, 1 } },
	  3,
	  0,
	  1 },
};

static struct scenario *cur;

/* The child: open the device's BTT (tracked by the simulator), run the
 * operation, close. */
static int child_op(void *arg)
{
	struct xmem_blk *b;
	int rc;

	(void)arg;
	if (cur->repair)
		return xmem_blk_repair_raw(dev_path, 0, 0, NULL);
	if (cur->format)
		return xmem_blk_format_raw(dev_path, 0, 0,
					   &(struct xmem_blk_format_opts){
						   .lbasize = cur->lbasize });
	rc = xmem_blk_open_raw(dev_path, 0, 0, 0, &b);
	if (rc)
		return rc;
	rc = cur->op(b);
	xmem_blk_close(&b);
	return rc;
}

static int allowed(const struct sector *s, int64_t v)
{
	for (unsigned i = 0; i < s->nallowed; i++)
		if (v == s->allowed[i])
			return 1;
	return 0;
}

/* Reads every sector of the scenario; 0 when each is acceptable. */
static int verify_sectors(struct xmem_blk *b, uint64_t n)
{
	int bad = 0, seen_old = 0;

	for (unsigned i = 0; i < cur->ns; i++) {
		const struct sector *s = &cur->s[i];
		int64_t v = sector_version(b, s->lba, 5);

		if (!allowed(s, v)) {
			fprintf(stderr,
				"%s: crash %" PRIu64 ": sector %" PRIu64
				" holds version %" PRId64 "\n",
				cur->name, n, s->lba, v);
			bad = 1;
		}
		/* One call's sectors turn new in order. */
		if (cur->ordered && v == s->base_ver)
			seen_old = 1;
		else if (cur->ordered && seen_old) {
			fprintf(stderr,
				"%s: crash %" PRIu64 ": sector %" PRIu64
				" new after an old one\n",
				cur->name, n, s->lba);
			bad = 1;
		}
	}
	return bad;
}

/* After the crash image was checked and read: the BTT must keep working. */
static int verify_usable(struct xmem_blk *b, uint64_t n)
{
	int bad = 0;

	for (unsigned r = 0; r < 3; r++)
		for (unsigned i = 0; i < cur->ns; i++)
			bad |= write_ver(b, cur->s[i].lba, 3 + r) != 0;
	for (unsigned i = 0; i < cur->ns; i++)
		bad |= sector_version(b, cur->s[i].lba, 5) != 5;
	if (bad)
		fprintf(stderr,
			"%s: crash %" PRIu64 ": writes after "
			"recovery failed\n",
			cur->name, n);
	return bad;
}

static int verify(const char *image, uint64_t n, void *arg)
{
	struct xmem_blk *b;
	unsigned np = 0;
	int rc, bad = 0;

	(void)arg;
	REQUIRE(xmem__crashsim_copy_file(image, work_path) == 0);
	rc = xmem_blk_check_raw(work_path, 0, 0, NULL, NULL, &np);
	if (cur->repair && rc == XMEM_E_CORRUPT && np == 2) {
		/* the damage as it was (the repair's entry not yet the
		 * lane's newest): repairing again fixes it */
		rc = xmem_blk_repair_raw(work_path, 0, 0, NULL);
		if (rc == 0)
			rc = xmem_blk_check_raw(work_path, 0, 0, NULL, NULL,
						&np);
	}
	if (rc == XMEM_E_NOREGION && cur->format)
		return 0; /* format cut before its commit: no BTT at all */
	if (rc) {
		fprintf(stderr, "%s: crash %" PRIu64 ": check: %s\n", cur->name,
			n, xmem_errormsg());
		return 1;
	}
	rc = xmem_blk_open_raw(work_path, 0, 0, 0, &b);
	if (rc) {
		fprintf(stderr, "%s: crash %" PRIu64 ": open: %s\n", cur->name,
			n, xmem_errormsg());
		return 1;
	}
	bad |= verify_sectors(b, n);
	bad |= verify_usable(b, n);
	xmem_blk_close(&b);
	if (xmem_blk_check_raw(work_path, 0, 0, NULL, NULL, &np) != 0) {
		fprintf(stderr,
			"%s: crash %" PRIu64 ": not clean after use: "
			"%s\n",
			cur->name, n, xmem_errormsg());
		bad = 1;
	}
	return bad;
}

/* Makes lane `lane`'s newest flog entry claim the block of sector lba
 * (a v1.1 BTT at 4 KiB): two owners, which open refuses. */
static void lane_damage(uint64_t lba, uint32_t lane)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	struct btt_info *ib;
	struct btt_flog_ent *e0, *e1, *e;
	uint8_t *ns;
	uint32_t blk;
	int nw = 0;

	REQUIRE_OK(xmem_device_open(&dev, dev_path, 0, 0));
	REQUIRE_OK(xmem_device_map(dev, 0, DEV_SIZE, 0, 0, &m));
	ns = xmem_map_addr(m);
	ib = (struct btt_info *)(ns + 4096);
	blk = ((uint32_t *)(ns + 4096 + ib->mapoff))[lba] & BTT_MAP_LBA_MASK;
	e0 = &((struct btt_flog_group *)(ns + 4096 + ib->logoff))[lane].ent[0];
	e1 = e0 + 1;
	REQUIRE(xmem__btt_flog_newest(e0, e1, &nw) == 0);
	e = nw ? e1 : e0;
	/* the lane's own free block, which the repair gives back, holds
	 * stale data, as free blocks do: a sector it ended up in by
	 * mistake would read it */
	memset(ns + 4096 + ib->dataoff +
		       (uint64_t)(e->old_map & BTT_MAP_LBA_MASK) *
			       ib->internal_lbasize,
	       0xee, ib->internal_lbasize);
	e->old_map = blk;
	e->new_map = blk;
	xmem_persist(e, sizeof(*e));
	xmem_map_delete(&m);
	xmem_device_close(&dev);
}

/* Formats the device and writes the base versions. */
static void base_setup(const struct scenario *sc)
{
	struct xmem_blk *b;

	REQUIRE_OK(xmem_blk_format_raw(
		dev_path, 0, 0,
		&(struct xmem_blk_format_opts){ .lbasize = sc->lbasize }));
	REQUIRE_OK(xmem_blk_open_raw(dev_path, 0, 0, 0, &b));
	for (unsigned i = 0; i < sc->ns; i++)
		if (sc->s[i].base_ver != V_ZERO) /* else left as formatted */
			REQUIRE_OK(
				write_ver(b, sc->s[i].lba, sc->s[i].base_ver));
	xmem_blk_close(&b);
	if (sc->repair)
		lane_damage(sc->s[0].lba, 7);
}

int main(void)
{
	struct xmem_device *dev;

	test_path(dev_path, sizeof(dev_path), "blkcrash.dev");
	test_path(img_path, sizeof(img_path), "blkcrash.img");
	test_path(work_path, sizeof(work_path), "blkcrash.work");
	for (int i = 0; i < 20; i++) /* the 20-sector write */
		scenarios[2].s[i] = (struct sector){ 10 + i, 1, { 1, 2 }, 2 };
	REQUIRE_OK(xmem_device_open(&dev, dev_path, DEV_SIZE, XMEM_F_CREATE));
	xmem_device_close(&dev);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		struct crashtest ct = { .device_path = dev_path,
					.image_path = img_path,
					.op = child_op,
					.verify = verify };
		struct crashtest_result res;

		cur = &scenarios[i];
		ct.name = cur->name;
		base_setup(cur);
		CHECK(crashtest_run(&ct, &res) == 0);
		CHECK(res.fences > 0);
		total_points += res.points;
		total_runs += res.runs;
	}
	printf("blk crash: %" PRIu64 " crash points, %" PRIu64
	       " runs (plain and torn)\n",
	       total_points, total_runs);
	unlink(dev_path);
	unlink(img_path);
	unlink(work_path);
	return test_result();
}
