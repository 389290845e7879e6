/* SPDX-License-Identifier: MIT */
/*
 * heap_crash - a crash at every fence of every kind of heap operation,
 * plain and with torn write-back: atomic alloc and free, realloc, a
 * transaction with add-range, alloc and free, a transaction that aborts,
 * a nested transaction, transactions too large for a lane's ring,
 * transactions that set words at commit, and a crash during recovery
 * itself.
 *
 * Each operation kind is a list of steps (each step one atomic operation
 * or one whole transaction). The parent computes the application-visible
 * state after every step on a scratch copy; after a crash at fence N the
 * image is opened (running recovery), must check clean, must hold no
 * dangling reference, and its state must equal the state at one step
 * boundary: every step happened entirely or not at all. It must also be
 * durable: a crash at a fence after a step returned (the fence counts at
 * each step's return are taken in the counting run) must leave that
 * step's state or a later one. The heap is opened and closed inside the
 * operation, so recovery of the previous state and the closing
 * checkpoint are cut at every fence too.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <xmem.h>

#include "core/checksum.h"
#include "core/util.h"
#include "crashtest.h"
#include "test.h"

#define HEAP_SIZE (8ull << 20)
#define NSLOT 16
#define MAXSTEP 12

struct root {
	uint64_t counter;
	xmem_oid slot[NSLOT];
	uint8_t blob[3000];
};

struct state {
	uint32_t root_crc;
	uint32_t objs_crc;
	unsigned nobjs;
};

typedef int (*step_fn)(struct xmem_heap *h, struct root *r);

struct kind {
	const char *name;
	step_fn steps[MAXSTEP];
	int nsteps;
};

static char dev_path[256], img_path[256], scratch_path[256];
/* fences completed when step i returned (shared with the children) */
static uint64_t *step_fences;
static int any_final; /* any step boundary, also for a completed run */
static const struct kind *cur;
static struct state states[MAXSTEP + 1];
static int nstates;

static int ctor_pat(void *obj, size_t size, void *arg)
{
	memset(obj, (int)(uintptr_t)arg, size);
	return 0;
}

/* --- the steps ---------------------------------------------------- */

static int s_alloc_ctor(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[0], 64, 3, 0, ctor_pat,
			       (void *)(uintptr_t)0x5a);
}

static int s_alloc_plain(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[1], 1000, 4, 0, NULL, NULL);
}

static int s_free_small(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_free(h, &r->slot[2]);
}

static int s_alloc_extent(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[3], 600 << 10, 5, XMEM_F_HEAP_ZERO,
			       NULL, NULL);
}

static int s_free_extent(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_free(h, &r->slot[4]);
}

static int s_realloc_grow(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_realloc(h, &r->slot[5], 3000, 6, XMEM_F_HEAP_ZERO);
}

static int s_realloc_shrink(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_realloc(h, &r->slot[6], 64, 6, 0);
}

/* add-range (small and large), alloc and free in one transaction */
static int s_tx_mixed(struct xmem_heap *h, struct root *r)
{
	xmem_oid o;
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, &r->counter, 8)))
		goto fail;
	r->counter++;
	if ((rc = xmem_tx_alloc(h, 128, 7, 0, &o)))
		goto fail;
	memset(xmem_heap_ptr(h, o), 0x77, 128);
	if ((rc = xmem_tx_add_range(h, &r->slot[7], 16)))
		goto fail;
	r->slot[7] = o;
	if ((rc = xmem_tx_free(h, r->slot[8])))
		goto fail;
	r->slot[8] = 0;
	if ((rc = xmem_tx_add_range(h, r->blob, sizeof(r->blob))))
		goto fail;
	memset(r->blob, (int)r->counter, sizeof(r->blob));
	return xmem_tx_commit(h);
fail:
	xmem_tx_abort(h);
	return rc;
}

/* a small transaction: the one-fence commit with inline words */
static int s_tx_small(struct xmem_heap *h, struct root *r)
{
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, &r->counter, 8))) {
		xmem_tx_abort(h);
		return rc;
	}
	r->counter += 10;
	return xmem_tx_commit(h);
}

static int s_tx_abort(struct xmem_heap *h, struct root *r)
{
	xmem_oid o;
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if (!(rc = xmem_tx_add_range(h, r, sizeof(*r)))) {
		r->counter = 999;
		memset(r->blob, 0xee, sizeof(r->blob));
		r->slot[9] = 0;
	}
	if (!rc && !(rc = xmem_tx_alloc(h, 5000, 8, 0, &o)))
		r->slot[10] = o;
	if (!rc)
		rc = xmem_tx_free(h, r->slot[9] ? r->slot[9] : r->slot[11]);
	xmem_tx_abort(h);
	return rc == 0 || rc == XMEM_E_TXABORTED ? 0 : rc;
}

static int s_tx_nested(struct xmem_heap *h, struct root *r)
{
	xmem_oid o;
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, &r->counter, 8)))
		goto fail;
	r->counter *= 3;
	if ((rc = xmem_tx_begin(h)))
		goto fail;
	if ((rc = xmem_tx_alloc(h, 300, 9, XMEM_F_HEAP_ZERO, &o)) ||
	    (rc = xmem_tx_add_range(h, &r->slot[12], 8)))
		goto fail;
	r->slot[12] = o;
	if ((rc = xmem_tx_commit(h)))
		goto fail;
	if ((rc = xmem_tx_free(h, r->slot[11])) ||
	    (rc = xmem_tx_add_range(h, &r->slot[11], 8)))
		goto fail;
	r->slot[11] = 0;
	return xmem_tx_commit(h);
fail:
	while (xmem_tx_depth(h))
		xmem_tx_abort(h);
	return rc;
}

/* frees of the base's small objects, one step each: their runs become
 * empty */
#define FREE_STEP(n)                                                           \
	static int s_free_##n(struct xmem_heap *h, struct root *r)             \
	{                                                                      \
		return xmem_heap_free(h, &r->slot[n]);                         \
	}
FREE_STEP(0)
FREE_STEP(2)
FREE_STEP(5)
FREE_STEP(6)
FREE_STEP(8)
FREE_STEP(9)
FREE_STEP(11)
FREE_STEP(13)
FREE_STEP(14)

/* an object larger than the largest run of free chunks: allocating it
 * returns the empty runs to the free chunks first (one more record) */
static int s_alloc_reclaim(struct xmem_heap *h, struct root *r)
{
	struct xmem_heap_stats st;
	int rc = xmem_heap_stats(h, &st);

	return rc ? rc
		  : xmem_heap_alloc(h, &r->slot[3],
				    st.largest_free + st.chunk_size, 5, 0, NULL,
				    NULL);
}

/* A reference published by an atomic alloc (its record still live),
 * then cleared by a transaction whose snapshot is too large to ride in
 * the COMMIT record (its data is flushed instead), which frees the
 * object: recovery must not replay the publication over the clear. */
static int s_pub(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[0], 64, 3, 0, ctor_pat,
			       (void *)(uintptr_t)0x3c);
}

static int s_tx_unpub_big(struct xmem_heap *h, struct root *r)
{
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, r, sizeof(*r))) ||
	    (rc = xmem_tx_free(h, r->slot[0]))) {
		xmem_tx_abort(h);
		return rc;
	}
	r->slot[0] = 0;
	memset(r->blob, 0x42, sizeof(r->blob));
	return xmem_tx_commit(h);
}

/* Space freed while a record that wrote into it is live: an object Y
 * published into a field of X, both freed by a transaction that leaves
 * the field as it is, then a new zeroed object Z. Z must not take X's
 * place before the publication is retired, or recovery writes Y's
 * reference into Z. */
static int s_alloc_x(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[0], 64, 3, XMEM_F_HEAP_ZERO, NULL,
			       NULL);
}

static int s_alloc_into_x(struct xmem_heap *h, struct root *r)
{
	xmem_oid *x = xmem_heap_ptr(h, r->slot[0]);

	return xmem_heap_alloc(h, &x[1], 64, 3, 0, ctor_pat,
			       (void *)(uintptr_t)0x11);
}

static int s_tx_free_xy(struct xmem_heap *h, struct root *r)
{
	xmem_oid *x = xmem_heap_ptr(h, r->slot[0]);
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, &r->slot[0], 8)) ||
	    (rc = xmem_tx_free(h, x[1])) ||
	    (rc = xmem_tx_free(h, r->slot[0]))) {
		xmem_tx_abort(h);
		return rc;
	}
	r->slot[0] = 0;
	return xmem_tx_commit(h);
}

/* An explicit checkpoint between operations of one lane: it retires
 * the lane's first records while the lane goes on appending after them;
 * recovery must still find the later ones. */
static int s_ckpt(struct xmem_heap *h, struct root *r)
{
	(void)r;
	return xmem_heap_checkpoint(h);
}

static int s_alloc_1(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[1], 64, 3, 0, ctor_pat,
			       (void *)(uintptr_t)0x21);
}

/* A small object allocated in a transaction rides in the COMMIT record
 * (a DATA entry, written back by recovery while the lane's done word is
 * below the record); a later change to it, made durable outside that
 * record, must survive recovery all the same. */
static int s_tx_new_small(struct xmem_heap *h, struct root *r)
{
	xmem_oid o;
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_alloc(h, 64, 12, 0, &o)) ||
	    (rc = xmem_tx_add_range(h, &r->slot[15], 8))) {
		xmem_tx_abort(h);
		return rc;
	}
	memset(xmem_heap_ptr(h, o), 0x31, 64);
	r->slot[15] = o;
	return xmem_tx_commit(h);
}

static int s_persist_new(struct xmem_heap *h, struct root *r)
{
	uint8_t *p = xmem_heap_ptr(h, r->slot[15]);

	memset(p, 0x32, 64);
	xmem_heap_persist(h, p, 64);
	return 0;
}

/* the change made by a transaction whose snapshots are flushed */
static int s_tx_big_new(struct xmem_heap *h, struct root *r)
{
	uint8_t *p = xmem_heap_ptr(h, r->slot[15]);
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, p, 64)) ||
	    (rc = xmem_tx_add_range(h, r->blob, sizeof(r->blob)))) {
		xmem_tx_abort(h);
		return rc;
	}
	memset(p, 0x33, 64);
	memset(r->blob, 0x34, sizeof(r->blob));
	return xmem_tx_commit(h);
}

/* A transaction with more entries than fit in a lane's ring: its COMMIT
 * record names a segment of free chunks holding them. 1500 objects,
 * each linked to the one before (slot 15 holds the last). */
#define BIG_N 1500

static int s_tx_big(struct xmem_heap *h, struct root *r)
{
	xmem_oid prev = 0, o;
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	for (int i = 0; i < BIG_N; i++) {
		if ((rc = xmem_tx_alloc(h, 64, 13, 0, &o)))
			goto fail;
		memset(xmem_heap_ptr(h, o), i & 0xff, 64);
		*(xmem_oid *)xmem_heap_ptr(h, o) = prev;
		prev = o;
	}
	if ((rc = xmem_tx_add_range(h, &r->slot[15], 8)))
		goto fail;
	r->slot[15] = prev;
	return xmem_tx_commit(h);
fail:
	xmem_tx_abort(h);
	return rc;
}

static int s_tx_big_free(struct xmem_heap *h, struct root *r)
{
	xmem_oid o = r->slot[15];
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	while (o) {
		xmem_oid next = *(xmem_oid *)xmem_heap_ptr(h, o);

		if ((rc = xmem_tx_free(h, o)))
			goto fail;
		o = next;
	}
	if ((rc = xmem_tx_add_range(h, &r->slot[15], 8)))
		goto fail;
	r->slot[15] = 0;
	return xmem_tx_commit(h);
fail:
	xmem_tx_abort(h);
	return rc;
}

/* Words set at commit (xmem_tx_set64): existing words, a new object's
 * reference, and a word snapshotted after it was set (partly: the
 * snapshot widens to the whole word). */
static int s_tx_set_small(struct xmem_heap *h, struct root *r)
{
	uint64_t *w = (uint64_t *)(void *)r->blob;
	xmem_oid o;
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_set64(h, &r->counter, r->counter + 100)) ||
	    (rc = xmem_tx_set64(h, &w[0], 0x1111)) ||
	    (rc = xmem_tx_set64(h, &w[1], 0x2222)) ||
	    (rc = xmem_tx_set64(h, &w[1], 0x3333)) ||
	    (rc = xmem_tx_alloc(h, 64, 14, 0, &o)))
		goto fail;
	memset(xmem_heap_ptr(h, o), 0x44, 64);
	if ((rc = xmem_tx_set64(h, &r->slot[7], o)) ||
	    (rc = xmem_tx_set64(h, &w[2], 0x5555)) ||
	    (rc = xmem_tx_add_range(h, (uint8_t *)&w[2] + 4, 2)))
		goto fail;
	((uint8_t *)&w[2])[4] = 0x66;
	return xmem_tx_commit(h);
fail:
	xmem_tx_abort(h);
	return rc;
}

/* 5000 set words: more user words than a lane's list holds, so the
 * commit retires the lane's log */
#define SET_N 5000

static int s_alloc_words(struct xmem_heap *h, struct root *r)
{
	return xmem_heap_alloc(h, &r->slot[12], SET_N * 8, 15, XMEM_F_HEAP_ZERO,
			       NULL, NULL);
}

static int s_tx_set_big(struct xmem_heap *h, struct root *r)
{
	uint64_t *w = xmem_heap_ptr(h, r->slot[12]);
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	for (int i = 0; i < SET_N && !rc; i++)
		rc = xmem_tx_set64(h, &w[i], 1000 + (uint64_t)i);
	if (!rc)
		rc = xmem_tx_set64(h, &r->counter, r->counter + 1);
	if (rc) {
		xmem_tx_abort(h);
		return rc;
	}
	return xmem_tx_commit(h);
}

/* every set word back to 0 through a snapshot (flushed, not carried in
 * the record): replaying the sets' record would undo this */
static int s_tx_words_back(struct xmem_heap *h, struct root *r)
{
	uint64_t *w = xmem_heap_ptr(h, r->slot[12]);
	int rc;

	if ((rc = xmem_tx_begin(h)))
		return rc;
	if ((rc = xmem_tx_add_range(h, w, SET_N * 8))) {
		xmem_tx_abort(h);
		return rc;
	}
	memset(w, 0, SET_N * 8);
	return xmem_tx_commit(h);
}

static const struct kind kinds[] = {
	{ "atomic alloc and free",
	  { s_alloc_ctor, s_alloc_plain, s_free_small, s_alloc_extent,
	    s_free_extent },
	  5 },
	{ "realloc", { s_realloc_grow, s_realloc_shrink }, 2 },
	{ "tx add-range alloc free", { s_tx_mixed, s_tx_small }, 2 },
	{ "tx abort", { s_tx_abort }, 1 },
	{ "tx nested", { s_tx_nested }, 1 },
	{ "free and reclaim runs",
	  { s_free_2, s_free_5, s_free_6, s_free_8, s_free_9, s_free_11,
	    s_free_13, s_free_14, s_alloc_reclaim },
	  9 },
	{ "publish then large tx clears", { s_pub, s_tx_unpub_big }, 2 },
	{ "republish after a checkpoint, large tx clears",
	  { s_pub, s_ckpt, s_free_0, s_pub, s_tx_unpub_big },
	  5 },
	{ "checkpoint between operations",
	  { s_alloc_ctor, s_ckpt, s_alloc_1, s_free_2, s_tx_small },
	  5 },
	{ "free then reuse",
	  { s_alloc_x, s_alloc_into_x, s_tx_free_xy, s_alloc_x },
	  4 },
	{ "tx new object, then a persisted change",
	  { s_tx_new_small, s_persist_new },
	  2 },
	{ "tx new object, then a large tx changes it",
	  { s_tx_new_small, s_tx_big_new },
	  2 },
	{ "tx of 1500 allocations, then of 1500 frees (segment records)",
	  { s_tx_big, s_tx_big_free },
	  2 },
	{ "tx set words; 5000 set words, then snapshotted back",
	  { s_tx_set_small, s_alloc_words, s_tx_set_big, s_tx_words_back },
	  4 },
};

/* --- state ---------------------------------------------------------- */

struct walk {
	uint32_t crc;
	unsigned n;
	struct xmem_heap *h;
};

static int walk_fn(xmem_oid oid, uint64_t size, uint32_t type, void *arg)
{
	struct walk *w = arg;
	uint64_t v[3] = { oid, size, type };

	w->crc = xmem__crc32c(w->crc, v, sizeof(v));
	/* contents of defined objects only (types 4 and 8 stay
	 * uninitialized) */
	if (type != 4 && type != 8)
		w->crc = xmem__crc32c(w->crc, xmem_heap_ptr(w->h, oid),
				      MIN(size, 4096));
	w->n++;
	return 0;
}

/* The application-visible state; also fails on a dangling reference. */
static int read_state(struct xmem_heap *h, struct state *st)
{
	struct walk w = { 0, 0, h };
	xmem_oid root;
	struct root *r;
	void *p;
	int bad = 0;

	if (xmem_heap_root(h, sizeof(struct root), 1, &root))
		return -1;
	r = xmem_heap_ptr(h, root);
	for (int i = 0; i < NSLOT; i++)
		if (r->slot[i] &&
		    xmem_heap_get(h, r->slot[i], XMEM_HEAP_ANY_TYPE, &p)) {
			fprintf(stderr, "slot %d: dangling reference %#llx\n",
				i, (unsigned long long)r->slot[i]);
			bad = 1;
		}
	st->root_crc = xmem__crc32c(0, r, sizeof(*r));
	xmem_heap_foreach(h, XMEM_HEAP_ANY_TYPE, walk_fn, &w);
	st->objs_crc = w.crc;
	st->nobjs = w.n;
	return bad ? -1 : 0;
}

struct mapped {
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct root *r;
};

static int heap_up(const char *path, struct mapped *x, int create)
{
	xmem_oid root;
	int rc;

	memset(x, 0, sizeof(*x));
	if ((rc = xmem_device_open(&x->dev, path, create ? HEAP_SIZE : 0,
				   create ? XMEM_F_CREATE : 0)))
		return rc;
	if ((rc = xmem_device_map(x->dev, 0, HEAP_SIZE, 0, 0, &x->m)))
		return rc;
	rc = create ? xmem_heap_create_map(x->m, 0, &x->h)
		    : xmem_heap_open_map(x->m, 0, &x->h);
	if (rc || (rc = xmem_heap_root(x->h, sizeof(struct root), 1, &root)))
		return rc;
	x->r = xmem_heap_ptr(x->h, root);
	return 0;
}

static void heap_down(struct mapped *x)
{
	xmem_heap_close(&x->h);
	xmem_map_delete(&x->m);
	xmem_device_close(&x->dev);
}

static void copy(const char *from, const char *to)
{
	REQUIRE(xmem__crashsim_copy_file(from, to) == 0);
}

/* The operation, in the crashing child: open (recovery), steps, close. */
static int op(void *arg)
{
	struct mapped x;
	int rc;

	(void)arg;
	if ((rc = heap_up(dev_path, &x, 0)))
		return rc;
	for (int i = 0; i < cur->nsteps; i++) {
		if ((rc = cur->steps[i](x.h, x.r)))
			return rc;
		step_fences[i] = xmem_crashsim_fences();
	}
	heap_down(&x);
	return 0;
}

/* The first state a crash at fence n may leave: every step that had
 * returned before fence n began is durable. */
static int durable_from(uint64_t n)
{
	int k = 0;

	while (n && !any_final && k < cur->nsteps && step_fences[k] < n)
		k++;
	return k;
}

static void problem_fn(const struct xmem_check_problem *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "  check: %s @%llu: %s\n", p->structure,
		(unsigned long long)p->offset, p->what);
}

static unsigned hits[MAXSTEP + 1];

/* Judges a crash image: recovery, clean check, a step-boundary state,
 * and a heap that keeps working. */
static int verify(const char *img, uint64_t n, void *arg)
{
	struct mapped x;
	struct state st;
	unsigned np = 0;
	int rc, match = -1;

	(void)arg;
	copy(img, scratch_path);
	if ((rc = heap_up(scratch_path, &x, 0))) {
		fprintf(stderr, "fence %llu: open failed: %s\n",
			(unsigned long long)n, xmem_errormsg());
		return 1;
	}
	if (xmem_heap_check(x.h, 0, problem_fn, NULL, &np) || np) {
		fprintf(stderr, "fence %llu: check found %u problems\n",
			(unsigned long long)n, np);
		heap_down(&x);
		return 1;
	}
	rc = read_state(x.h, &st);
	for (int i = 0; i < nstates && !rc; i++)
		if (!memcmp(&st, &states[i], sizeof(st)))
			match = i;
	if (n == 0 && !any_final && match != nstates - 1)
		match = -1; /* the completed run must hold the final state */
	if (match >= 0 && match < durable_from(n)) {
		fprintf(stderr,
			"fence %llu: state of step %d, but step %d had "
			"returned\n",
			(unsigned long long)n, match, durable_from(n));
		match = -1;
	}
	/* the allocator must still work and stay consistent */
	if (match >= 0 &&
	    (xmem_heap_alloc(x.h, &x.r->slot[15], 200, 2, 0, NULL, NULL) ||
	     xmem_heap_free(x.h, &x.r->slot[15]) ||
	     xmem_heap_check(x.h, 0, problem_fn, NULL, &np) || np))
		match = -2;
	heap_down(&x);
	if (match < 0) {
		fprintf(stderr,
			"fence %llu%s: state (root %08x objs %08x n %u) is "
			"no step boundary (%d)\n",
			(unsigned long long)n,
			crashtest_torn_seed() ? " torn" : "", st.root_crc,
			st.objs_crc, st.nobjs, match);
		return 1;
	}
	hits[match]++;
	return 0;
}

/* The base image every kind starts from: objects in the slots the steps
 * free or resize, some pending (unretired) records. */
static void make_base(void)
{
	struct mapped x;
	pid_t pid;
	int status;

	unlink(dev_path);
	REQUIRE_OK(heap_up(dev_path, &x, 1));
	for (int i = 2; i < 12; i++)
		if (i != 3 && i != 7 && i != 10)
			REQUIRE_OK(xmem_heap_alloc(
				x.h, &x.r->slot[i], i == 4 ? (300 << 10) : 100,
				10 + i, 0, ctor_pat, (void *)(uintptr_t)i));
	x.r->counter = 5;
	xmem_heap_persist(x.h, &x.r->counter, 8);
	heap_down(&x);
	/* leave a few records pending: a child that exits without close */
	fflush(NULL);
	if ((pid = fork()) == 0) {
		if (heap_up(dev_path, &x, 0) ||
		    xmem_heap_alloc(x.h, &x.r->slot[13], 64, 2, 0, ctor_pat,
				    (void *)(uintptr_t)1) ||
		    xmem_heap_alloc(x.h, &x.r->slot[14], 64, 2, 0, NULL, NULL))
			_exit(1);
		_exit(0);
	}
	REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Computes the state after each step on a scratch copy. */
static void compute_states(const struct kind *k)
{
	struct mapped x;

	copy(dev_path, scratch_path);
	REQUIRE_OK(heap_up(scratch_path, &x, 0));
	REQUIRE(read_state(x.h, &states[0]) == 0);
	for (int i = 0; i < k->nsteps; i++) {
		REQUIRE_OK(k->steps[i](x.h, x.r));
		REQUIRE(read_state(x.h, &states[i + 1]) == 0);
	}
	nstates = k->nsteps + 1;
	heap_down(&x);
}

/* Torn runs per crash point: XMEM_HEAP_CRASH_TORN, default 2. */
static int torn_seeds(void)
{
	const char *v = getenv("XMEM_HEAP_CRASH_TORN");

	return v ? atoi(v) : 0;
}

static int run_kind(const struct kind *k, struct crashtest_result *res)
{
	memset(step_fences, 0xff, MAXSTEP * sizeof(*step_fences));
	struct crashtest ct = { .name = k->name,
				.device_path = dev_path,
				.image_path = img_path,
				.op = op,
				.verify = verify,
				.torn_seeds = torn_seeds() };

	cur = k;
	memset(hits, 0, sizeof(hits));
	compute_states(k);
	return crashtest_run(&ct, res);
}

/* A crash during recovery: the base is an image cut in the middle of a
 * transaction with pending records; the operation is open + close. */
static int noop_kind_step(struct xmem_heap *h, struct root *r)
{
	(void)h;
	(void)r;
	return 0;
}

/* Runs s_tx_mixed under the simulator, crashing at fence `at` (0: count
 * only). Returns the fences counted, or 0 after a crash. */
static uint64_t tx_under_sim(uint64_t at)
{
	struct xmem_crashsim_opts o = { dev_path, img_path, at, 0, 0 };
	int pfd[2], status;
	uint64_t f = 0;
	pid_t pid;

	REQUIRE(pipe(pfd) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct mapped x;

		if (xmem_crashsim_start(&o) || heap_up(dev_path, &x, 0) ||
		    s_tx_mixed(x.h, x.r))
			_exit(2);
		f = xmem_crashsim_fences();
		_exit(write(pfd[1], &f, 8) == 8 ? 0 : 4);
	}
	close(pfd[1]);
	REQUIRE(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	if (!at) {
		REQUIRE(WEXITSTATUS(status) == 0 && read(pfd[0], &f, 8) == 8);
	} else {
		REQUIRE(WEXITSTATUS(status) == XMEM_CRASHSIM_EXIT);
	}
	close(pfd[0]);
	return f;
}

static int run_recovery_kind(struct crashtest_result *res)
{
	static const struct kind mid = { "tx add-range alloc free",
					 { s_tx_mixed },
					 1 };
	static const struct kind rec = { "recovery", { noop_kind_step }, 1 };
	struct crashtest ct = { .name = "crash during recovery",
				.device_path = dev_path,
				.image_path = img_path,
				.op = op,
				.verify = verify,
				.torn_seeds = torn_seeds() };
	struct state pre[2];
	uint64_t f;
	int rc;

	compute_states(&mid);
	memcpy(pre, states, sizeof(pre));
	copy(dev_path, scratch_path);
	f = tx_under_sim(0);
	/* Cut the transaction at its first commit fence: three snapshots
	 * in the undo log, the pending records of the base replayed. */
	copy(scratch_path, dev_path);
	REQUIRE(f > 3);
	tx_under_sim(f - 3);
	copy(img_path, dev_path); /* the crashed image is the new base */
	cur = &rec;
	memset(hits, 0, sizeof(hits));
	memcpy(states, pre, sizeof(pre));
	nstates = 2;
	any_final = 1;
	rc = crashtest_run(&ct, res);
	any_final = 0;
	return rc;
}

int main(void)
{
	struct crashtest_result res;
	unsigned total = 0;
	int fail = 0;

	if (!getenv("XMEM_FORCE_GRANULARITY"))
		setenv("XMEM_FORCE_GRANULARITY", "cacheline", 1);
	step_fences =
		mmap(NULL, MAXSTEP * sizeof(*step_fences),
		     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(step_fences != MAP_FAILED);
	test_path(dev_path, sizeof(dev_path), "heap-crash-dev");
	test_path(img_path, sizeof(img_path), "heap-crash-img");
	test_path(scratch_path, sizeof(scratch_path), "heap-crash-scratch");
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		make_base();
		fail |= run_kind(&kinds[i], &res);
		printf("  %s: %llu crash points; images by step boundary:",
		       kinds[i].name, (unsigned long long)res.points);
		for (int s = 0; s < nstates; s++)
			printf(" %u", hits[s]);
		printf("\n");
		total += (unsigned)res.points;
	}
	make_base();
	fail |= run_recovery_kind(&res);
	printf("  crash during recovery: %llu crash points\n",
	       (unsigned long long)res.points);
	total += (unsigned)res.points;
	printf("heap crash points in total: %u\n", total);
	unlink(dev_path);
	unlink(img_path);
	unlink(scratch_path);
	CHECK(!fail);
	return test_result();
}
