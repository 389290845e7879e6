/* SPDX-License-Identifier: MIT */
/*
 * region_crash - a crash at every fence of range create, resize (grow and
 * shrink), destroy (plain and scrubbing), region create and region
 * destroy, with and without torn write-back of the lines flushed since the
 * previous fence; check --repair of a damaged superblock copy or
 * label index; and range changes that start from one invalid index block,
 * from the state a crash between an update's two index writes leaves, and
 * through the path that first copies the active index to free the slots
 * the other block holds. After each crash the durable image must open
 * with exactly the old or the new set of ranges (or no region, where that
 * is the old or new state); check must report it clean, or (after a crash
 * between the commit write and its copy) report only non-fatal problems
 * that --repair, tried on a copy, fixes without changing the ranges; and
 * a further range create on it must succeed and leave it clean.
 *
 * Each crash point runs in a forked child under the crash simulator
 * (xmem/persist.h), driven by tests/common/crashtest.h (every fence, plain
 * and with three torn seeds); the parent inspects the image the child
 * left, and then makes one more change on a copy of it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/wait.h>
#include <xmem.h>

#include "core/checksum.h"
#include "crashtest.h"
#include "region/region_layout.h"
#include "test.h"

#define MiB (1ull << 20)
#define DEV_SIZE (8 * MiB)
#define MAXR 16
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A set of ranges, or no region at all. */
struct state {
	int noregion;
	int fixable; /* check found only non-fatal problems (not compared) */
	size_t n;
	struct {
		char name[XMEM_RANGE_NAME_MAX + 1];
		uint64_t offset, size;
	} r[MAXR];
};

typedef int (*op_fn)(struct xmem_device *dev);

struct scenario {
	const char *name;
	const char *base_ranges; /* names to create, 1 MiB each */
	int base_region;	 /* base image holds a region */
	op_fn op;
	int allow_empty; /* an empty region is also acceptable */
	uint64_t damage; /* non-zero: byte at this offset damaged first */
	int old_corrupt; /* the damage makes the old state corrupt */
	int base_fix;	 /* how the base is prepared, BASE_* */
};

enum {
	BASE_PLAIN = 0,
	BASE_WINDOW = 1,    /* the last base range's index copy undone */
	BASE_FULL_OTHER = 2 /* the other index block lists every slot */
};

static int corrupt_ok; /* a corrupt region is an acceptable state */

static char base_path[256], work_path[256], img_path[256], post_path[256];
static char fix_path[256];
static unsigned total_points, total_fences, n_old, n_new, n_empty, n_fixable;

static void copy_file(const char *from, const char *to)
{
	static uint8_t buf[DEV_SIZE];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	REQUIRE(in >= 0);
	n = pread(in, buf, sizeof(buf), 0);
	REQUIRE(n == (ssize_t)DEV_SIZE);
	close(in);
	out = open(to, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(out >= 0 && pwrite(out, buf, (size_t)n, 0) == n);
	close(out);
}

static int state_eq(const struct state *a, const struct state *b);

static void count_fatal(const struct xmem_check_problem *p, void *arg)
{
	*(unsigned *)arg += !!p->fatal;
}

static void read_state(const char *path, struct state *st, int strict);

/* Non-fatal problems only (an index block to copy): --repair on a copy of
 * the image must make it clean and leave the same ranges. */
static void check_fixable(const char *path, const struct state *st)
{
	struct xmem_device *dev;
	struct state fixed;

	copy_file(path, fix_path);
	REQUIRE_OK(xmem_device_open(&dev, fix_path, 0, 0));
	CHECK_OK(xmem_region_check(dev, XMEM_F_REPAIR, NULL, NULL, NULL));
	xmem_device_close(&dev);
	read_state(fix_path, &fixed, 1);
	CHECK(state_eq(st, &fixed));
}

/* Reads the state of the region on path. Check must find it clean; unless
 * !strict, when it may also find non-fatal problems that --repair fixes. */
static void read_state(const char *path, struct state *st, int strict)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info *v;
	unsigned np = 99, nfatal = 0;
	size_t n;
	int rc;

	memset(st, 0, sizeof(*st));
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	rc = xmem_region_open(dev, &reg);
	if (rc == XMEM_E_NOREGION) {
		st->noregion = 1;
		CHECK(xmem_region_check(dev, 0, NULL, NULL, &np) ==
		      XMEM_E_NOREGION);
		CHECK(np == 0);
		xmem_device_close(&dev);
		return;
	}
	if (rc == XMEM_E_CORRUPT && corrupt_ok) {
		st->noregion = -1; /* the damaged state before a repair */
		CHECK(xmem_region_check(dev, 0, NULL, NULL, &np) ==
		      XMEM_E_CORRUPT);
		xmem_device_close(&dev);
		return;
	}
	if (rc) {
		fprintf(stderr, "open of %s: %s\n", path, xmem_errormsg());
		CHECK(0);
		st->noregion = -2;
		xmem_device_close(&dev);
		return;
	}
	REQUIRE_OK(xmem_range_list(reg, &v, &n));
	REQUIRE(n <= MAXR);
	st->n = n;
	for (size_t i = 0; i < n; i++) {
		memcpy(st->r[i].name, v[i].name, sizeof(st->r[i].name));
		st->r[i].offset = v[i].offset;
		st->r[i].size = v[i].size;
	}
	free(v);
	xmem_region_close(&reg);
	rc = xmem_region_check(dev, 0, count_fatal, &nfatal, &np);
	xmem_device_close(&dev);
	if (!strict && rc == XMEM_E_CORRUPT && np && !nfatal) {
		st->fixable = 1;
		check_fixable(path, st);
	} else if (rc || np) {
		fprintf(stderr, "check of %s: %d, %u problems: %s\n", path, rc,
			np, xmem_errormsg());
		CHECK(0);
	}
}

static int state_eq(const struct state *a, const struct state *b)
{
	if (a->noregion != b->noregion || a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->r[i].name, b->r[i].name) ||
		    a->r[i].offset != b->r[i].offset ||
		    a->r[i].size != b->r[i].size)
			return 0;
	return 1;
}

/* After the crash the region (if any) still takes a change cleanly. */
static void post_change(const char *path)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct state st;

	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	if (corrupt_ok)
		(void)xmem_region_check(dev, XMEM_F_REPAIR, NULL, NULL, NULL);
	if (xmem_region_open(dev, &reg) == 0) {
		CHECK_OK(xmem_range_create(reg, "post", 4096, XMEM_ALIGN_4K, 0,
					   NULL));
		xmem_region_close(&reg);
	} else {
		CHECK_OK(xmem_region_create(dev, &reg));
		xmem_region_close(&reg);
	}
	xmem_device_close(&dev);
	read_state(path, &st, 1);
	CHECK(st.noregion == 0);
}

struct run {
	const struct scenario *sc;
	struct state old, new;
	unsigned points;
};

/* In the child, under the simulator: the operation on the device. */
static int crash_op(void *arg)
{
	const struct run *r = arg;
	struct xmem_device *dev;
	int rc;

	rc = xmem_device_open(&dev, work_path, 0, 0);
	if (rc)
		return rc;
	rc = r->sc->op(dev);
	xmem_device_close(&dev);
	return rc;
}

/* The image of crash point n must hold the old or the new state. */
static int crash_verify(const char *img, uint64_t n, void *arg)
{
	struct run *r = arg;
	struct state now, empty = { 0 };
	int fails = test_failures;

	read_state(img, &now, n == 0);
	if (n == 0) {
		/* the operation finished: the image holds the new state */
		if (!state_eq(&now, &r->new))
			return 1;
		return test_failures != fails;
	}
	total_points++;
	r->points++;
	n_fixable += (unsigned)now.fixable;
	if (state_eq(&now, &r->old)) {
		n_old++;
	} else if (state_eq(&now, &r->new)) {
		n_new++;
	} else if (r->sc->allow_empty && state_eq(&now, &empty)) {
		n_empty++;
	} else {
		fprintf(stderr,
			"%s: crash at fence %" PRIu64 " (torn seed %" PRIu64
			"): neither the old nor the new state\n",
			r->sc->name, n, crashtest_torn_seed());
		return 1;
	}
	copy_file(img, post_path);
	post_change(post_path);
	return test_failures != fails;
}

/* Index block i of the file at fd. */
static void index_io(int fd, int i, struct xmem_index_layout *ix, int write)
{
	off_t off = (off_t)XMEM_INDEX_OFF(i);
	ssize_t n = write ? pwrite(fd, ix, sizeof(*ix), off)
			  : pread(fd, ix, sizeof(*ix), off);

	REQUIRE(n == (ssize_t)sizeof(*ix));
}

/* BASE_FULL_OTHER: the block below the active one lists every slot, so
 * the next create must first copy the active bitmap over it. */
static void fill_other(const char *path)
{
	struct xmem_index_layout ix[2];
	int fd = open(path, O_RDWR), a;

	REQUIRE(fd >= 0);
	index_io(fd, 0, &ix[0], 0);
	index_io(fd, 1, &ix[1], 0);
	a = ix[1].seq > ix[0].seq;
	ix[!a] = ix[a];
	ix[!a].seq = ix[a].seq - 1;
	memset(ix[!a].used, 0xff, sizeof(ix[!a].used));
	ix[!a].nused = XMEM_LABEL_SLOTS;
	ix[!a].csum =
		xmem__csum_struct(&ix[!a], sizeof(ix[!a]),
				  offsetof(struct xmem_index_layout, csum));
	index_io(fd, !a, &ix[!a], 1);
	close(fd);
}

/* The device before the operation: a region with base_ranges, or none. */
static void make_base(const struct scenario *sc)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_index_layout ix[2];
	char names[64], *save = NULL, *t, *next;
	int a = 0;

	unlink(base_path);
	REQUIRE_OK(xmem_device_open(&dev, base_path, DEV_SIZE, XMEM_F_CREATE));
	if (sc->base_region) {
		REQUIRE_OK(xmem_region_create(dev, &reg));
		snprintf(names, sizeof(names), "%s", sc->base_ranges);
		for (t = strtok_r(names, " ", &save); t; t = next) {
			next = strtok_r(NULL, " ", &save);
			if (!next && sc->base_fix == BASE_WINDOW) {
				/* the active block before the last change */
				index_io(xmem_device_fd(dev), 0, &ix[0], 0);
				index_io(xmem_device_fd(dev), 1, &ix[1], 0);
				a = ix[1].seq > ix[0].seq;
			}
			REQUIRE_OK(xmem_range_create(reg, t, 1 * MiB,
						     XMEM_ALIGN_4K, 0, NULL));
		}
		xmem_region_close(&reg);
		/* a crash after the commit write, before the copy */
		if (sc->base_fix == BASE_WINDOW)
			index_io(xmem_device_fd(dev), a, &ix[a], 1);
	}
	xmem_device_close(&dev);
	if (sc->base_fix == BASE_FULL_OTHER)
		fill_other(base_path);
}

static int op_repair(struct xmem_device *d);

static void run_scenario(const struct scenario *sc)
{
	struct run r = { .sc = sc };
	struct crashtest ct = {
		.name = sc->name,
		.device_path = work_path,
		.image_path = img_path,
		.op = crash_op,
		.verify = crash_verify,
		.arg = &r,
		.torn_seeds = 3,
	};
	struct crashtest_result res = { 0, 0, 0, 0 };
	struct xmem_device *dev;

	make_base(sc);
	if (sc->damage) {
		uint8_t b;
		int fd = open(base_path, O_RDWR);

		REQUIRE(fd >= 0 && pread(fd, &b, 1, (off_t)sc->damage) == 1);
		b ^= 0x40;
		REQUIRE(pwrite(fd, &b, 1, (off_t)sc->damage) == 1);
		close(fd);
	}
	corrupt_ok = sc->old_corrupt;
	read_state(base_path, &r.old, 0);
	copy_file(base_path, work_path);
	REQUIRE_OK(xmem_device_open(&dev, work_path, 0, 0));
	REQUIRE_OK(sc->op(dev));
	xmem_device_close(&dev);
	read_state(work_path, &r.new, 1);
	/* a repaired index changes no range */
	CHECK(!state_eq(&r.old, &r.new) ||
	      (sc->op == op_repair && !sc->old_corrupt));

	copy_file(base_path, work_path);
	CHECK(crashtest_run(&ct, &res) == 0);
	CHECK(res.fences > 0 && res.failures == 0);
	CHECK(r.points == res.runs - 1);
	total_fences += (unsigned)res.fences;
}

/* The operations, each on a freshly opened device. */
static int with_region(struct xmem_device *dev,
		       int (*fn)(struct xmem_region *reg))
{
	struct xmem_region *reg;
	int rc = xmem_region_open(dev, &reg);

	if (rc)
		return rc;
	rc = fn(reg);
	xmem_region_close(&reg);
	return rc;
}

static int r_create(struct xmem_region *reg)
{
	return xmem_range_create(reg, "new", 2 * MiB, XMEM_ALIGN_2M,
				 XMEM_RANGE_HEAP, NULL);
}
static int r_grow(struct xmem_region *reg)
{
	return xmem_range_resize(reg, "b", 2 * MiB);
}
static int r_shrink(struct xmem_region *reg)
{
	return xmem_range_resize(reg, "a", 4096);
}
static int r_destroy(struct xmem_region *reg)
{
	return xmem_range_destroy(reg, "a", 0);
}
static int r_scrub(struct xmem_region *reg)
{
	return xmem_range_destroy(reg, "b", XMEM_F_SCRUB);
}

static int op_create(struct xmem_device *d)
{
	return with_region(d, r_create);
}
static int op_grow(struct xmem_device *d)
{
	return with_region(d, r_grow);
}
static int op_shrink(struct xmem_device *d)
{
	return with_region(d, r_shrink);
}
static int op_destroy(struct xmem_device *d)
{
	return with_region(d, r_destroy);
}
static int op_scrub(struct xmem_device *d)
{
	return with_region(d, r_scrub);
}
static int op_region_create(struct xmem_device *d)
{
	struct xmem_region *reg;
	int rc = xmem_region_create(d, &reg);

	xmem_region_close(&reg);
	return rc;
}
static int op_repair(struct xmem_device *d)
{
	unsigned np;

	return xmem_region_check(d, XMEM_F_REPAIR, NULL, NULL, &np);
}
static int op_region_destroy(struct xmem_device *d)
{
	return xmem_region_destroy(d, XMEM_F_FORCE);
}

int main(void)
{
	static const struct scenario sc[] = {
		{ "range create", "a b", 1, op_create, 0, 0, 0, BASE_PLAIN },
		{ "range resize (grow)", "a b", 1, op_grow, 0, 0, 0,
		  BASE_PLAIN },
		{ "range resize (shrink)", "a b", 1, op_shrink, 0, 0, 0,
		  BASE_PLAIN },
		{ "range destroy", "a b", 1, op_destroy, 0, 0, 0, BASE_PLAIN },
		{ "range destroy (scrub)", "a b", 1, op_scrub, 0, 0, 0,
		  BASE_PLAIN },
		{ "region create", "", 0, op_region_create, 0, 0, 0,
		  BASE_PLAIN },
		{ "region destroy (empty)", "", 1, op_region_destroy, 0, 0, 0,
		  BASE_PLAIN },
		{ "region destroy (force)", "a b", 1, op_region_destroy, 1, 0,
		  0, BASE_PLAIN },
		{ "check --repair (superblock 0)", "a b", 1, op_repair, 0, 30,
		  1, BASE_PLAIN },
		{ "check --repair (superblock 1)", "a b", 1, op_repair, 0,
		  4096 + 30, 1, BASE_PLAIN },
		{ "check --repair (label index)", "a b", 1, op_repair, 0,
		  8192 + 100, 0, BASE_PLAIN },
		{ "check --repair (label index 1)", "a b", 1, op_repair, 0,
		  12288 + 100, 0, BASE_PLAIN },
		{ "check --repair (interrupted update)", "a b", 1, op_repair, 0,
		  0, 0, BASE_WINDOW },
		{ "range create (index 0 invalid)", "a b", 1, op_create, 0,
		  8192 + 100, 0, BASE_PLAIN },
		{ "range create (index 1 invalid)", "a b", 1, op_create, 0,
		  12288 + 100, 0, BASE_PLAIN },
		{ "range destroy (index 1 invalid)", "a b", 1, op_destroy, 0,
		  12288 + 20, 0, BASE_PLAIN },
		{ "range create (interrupted update)", "a b", 1, op_create, 0,
		  0, 0, BASE_WINDOW },
		{ "range grow (interrupted update)", "a b", 1, op_grow, 0, 0, 0,
		  BASE_WINDOW },
		{ "range create (index copy first)", "a b", 1, op_create, 0, 0,
		  0, BASE_FULL_OTHER },
	};

	test_path(base_path, sizeof(base_path), "region-crash-base");
	test_path(work_path, sizeof(work_path), "region-crash-work");
	test_path(img_path, sizeof(img_path), "region-crash-img");
	test_path(post_path, sizeof(post_path), "region-crash-post");
	test_path(fix_path, sizeof(fix_path), "region-crash-fix");
	for (size_t i = 0; i < ARRAY_LEN(sc); i++)
		run_scenario(&sc[i]);
	printf("%u crash points (every fence), %u crashed runs: %u left the "
	       "old state, %u the new, %u an empty region (forced destroy); "
	       "%u an index block for --repair to copy\n",
	       total_fences, total_points, n_old, n_new, n_empty, n_fixable);
	unlink(base_path);
	unlink(work_path);
	unlink(img_path);
	unlink(post_path);
	unlink(fix_path);
	return test_result();
}
