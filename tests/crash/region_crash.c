/* SPDX-License-Identifier: MIT */
/*
 * region_crash - a crash at every fence of range create, resize (grow and
 * shrink), destroy (plain and scrubbing), region create and region
 * destroy, with and without torn write-back of the lines flushed since the
 * previous fence; and check --repair of a damaged superblock copy or
 * label index. After each crash the durable image must open with
 * exactly the old or the new set of ranges (or no region, where that is
 * the old or new state), check must report it clean, and a further range
 * create on it must succeed and leave it clean.
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

#include "crashtest.h"
#include "test.h"

#define MiB (1ull << 20)
#define DEV_SIZE (8 * MiB)
#define MAXR 16
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A set of ranges, or no region at all. */
struct state {
	int noregion;
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
};

static int corrupt_ok; /* a corrupt region is an acceptable state */

static char base_path[256], work_path[256], img_path[256], post_path[256];
static unsigned total_points, total_fences, n_old, n_new, n_empty;

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

/* Reads the state of the region on path; check must find it clean. */
static void read_state(const char *path, struct state *st)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info *v;
	unsigned np = 99;
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
	rc = xmem_region_check(dev, 0, NULL, NULL, &np);
	if (rc || np) {
		fprintf(stderr, "check of %s: %d, %u problems: %s\n", path, rc,
			np, xmem_errormsg());
		CHECK(0);
	}
	xmem_device_close(&dev);
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
	read_state(path, &st);
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

	read_state(img, &now);
	if (n == 0) {
		/* the operation finished: the image holds the new state */
		if (!state_eq(&now, &r->new))
			return 1;
		return test_failures != fails;
	}
	total_points++;
	r->points++;
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

/* The device before the operation: a region with base_ranges, or none. */
static void make_base(const struct scenario *sc)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	char names[64], *save = NULL;

	unlink(base_path);
	REQUIRE_OK(xmem_device_open(&dev, base_path, DEV_SIZE, XMEM_F_CREATE));
	if (sc->base_region) {
		REQUIRE_OK(xmem_region_create(dev, &reg));
		snprintf(names, sizeof(names), "%s", sc->base_ranges);
		for (char *t = strtok_r(names, " ", &save); t;
		     t = strtok_r(NULL, " ", &save))
			REQUIRE_OK(xmem_range_create(reg, t, 1 * MiB,
						     XMEM_ALIGN_4K, 0, NULL));
		xmem_region_close(&reg);
	}
	xmem_device_close(&dev);
}

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
	read_state(base_path, &r.old);
	copy_file(base_path, work_path);
	REQUIRE_OK(xmem_device_open(&dev, work_path, 0, 0));
	REQUIRE_OK(sc->op(dev));
	xmem_device_close(&dev);
	read_state(work_path, &r.new);
	/* a repaired inactive index changes no range */
	CHECK(!state_eq(&r.old, &r.new) || (sc->damage && !sc->old_corrupt));

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
		{ "range create", "a b", 1, op_create, 0, 0, 0 },
		{ "range resize (grow)", "a b", 1, op_grow, 0, 0, 0 },
		{ "range resize (shrink)", "a b", 1, op_shrink, 0, 0, 0 },
		{ "range destroy", "a b", 1, op_destroy, 0, 0, 0 },
		{ "range destroy (scrub)", "a b", 1, op_scrub, 0, 0, 0 },
		{ "region create", "", 0, op_region_create, 0, 0, 0 },
		{ "region destroy (empty)", "", 1, op_region_destroy, 0, 0, 0 },
		{ "region destroy (force)", "a b", 1, op_region_destroy, 1, 0,
		  0 },
		{ "check --repair (superblock 0)", "a b", 1, op_repair, 0, 30,
		  1 },
		{ "check --repair (superblock 1)", "a b", 1, op_repair, 0,
		  4096 + 30, 1 },
		{ "check --repair (label index)", "a b", 1, op_repair, 0,
		  8192 + 100, 0 },
	};

	test_path(base_path, sizeof(base_path), "region-crash-base");
	test_path(work_path, sizeof(work_path), "region-crash-work");
	test_path(img_path, sizeof(img_path), "region-crash-img");
	test_path(post_path, sizeof(post_path), "region-crash-post");
	for (size_t i = 0; i < ARRAY_LEN(sc); i++)
		run_scenario(&sc[i]);
	printf("%u crash points (every fence), %u crashed runs: %u left the "
	       "old state, %u the new, %u an empty region (forced destroy)\n",
	       total_fences, total_points, n_old, n_new, n_empty);
	unlink(base_path);
	unlink(work_path);
	unlink(img_path);
	unlink(post_path);
	return test_result();
}
