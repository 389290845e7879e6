/* SPDX-License-Identifier: MIT */
/*
 * heap_txset - words set at commit (xmem_tx_set64):
 *
 *   1. misuse is refused: outside a transaction, a misaligned word, a
 *      word outside the data area;
 *   2. a set word keeps its old value until commit; a second set of it
 *      wins; abort drops the sets; a word in a new object or in
 *      snapshotted bytes is stored at once (and abort restores it);
 *   3. an add_range over a set word (also one covering only part of it)
 *      stores the set then, so a later direct store wins, and abort
 *      restores the word; with hundreds of words set several times,
 *      the last value of each wins, at commit and at an add_range;
 *   4. a transaction setting 20,000 words (more than a lane's list of
 *      user words holds) commits them all; a later transaction puts
 *      every word back to its old value through a large snapshot; an
 *      image taken then (a crash: recovery replays what is live) holds
 *      the old values, and checks clean. Without the commit retiring
 *      the lane's log, recovery replays the sets over them.
 */
#include <errno.h>
#include <string.h>

#include <xmem.h>
#include "heap_test.h"

#define SIZE (64ull << 20)
#define N 20000

struct root {
	uint64_t a, b, c;
	uint64_t pad[5];
	uint64_t d; /* own line */
	xmem_oid big, obj;
};

static char path[256], img[256];

static void test_misuse(struct xmem_heap *h, struct root *r)
{
	CHECK(xmem_tx_set64(h, &r->a, 1) == XMEM_E_TXSTATE);
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK(xmem_tx_set64(h, (uint64_t *)(void *)((uint8_t *)&r->a + 4), 1) ==
	      -EINVAL);
	CHECK(xmem_tx_set64(h, (uint64_t *)xmem_heap_base(h), 1) == -EINVAL);
	CHECK_OK(xmem_tx_commit(h));
}

static void test_semantics(struct xmem_heap *h, struct root *r)
{
	xmem_oid o;
	uint64_t *p;

	r->a = r->b = r->c = r->d = 0;
	xmem_heap_persist(h, r, sizeof(*r));
	/* pending until commit; the last set wins */
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_set64(h, &r->a, 7));
	CHECK_OK(xmem_tx_set64(h, &r->a, 8));
	CHECK_OK(xmem_tx_set64(h, &r->b, 9));
	CHECK(r->a == 0 && r->b == 0);
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->a == 8 && r->b == 9);
	/* abort drops them */
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_set64(h, &r->a, 100));
	CHECK_OK(xmem_tx_abort(h));
	CHECK(r->a == 8);
	/* stored at once in a new object and in snapshotted bytes */
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_alloc(h, 64, 3, XMEM_F_HEAP_ZERO, &o));
	p = xmem_heap_ptr(h, o);
	CHECK_OK(xmem_tx_set64(h, &p[2], 33));
	CHECK(p[2] == 33);
	CHECK_OK(xmem_tx_add_range(h, &r->c, 8));
	CHECK_OK(xmem_tx_set64(h, &r->c, 44));
	CHECK(r->c == 44);
	CHECK_OK(xmem_tx_abort(h));
	CHECK(r->c == 0);
	/* a set, then a snapshot of the word, then a direct store */
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_set64(h, &r->c, 55));
	CHECK_OK(xmem_tx_add_range(h, &r->c, 8));
	CHECK(r->c == 55);
	r->c = 66;
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->c == 66);
	/* the snapshot of part of a set word takes all of it: abort
	 * restores the whole word */
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_set64(h, &r->d, 0x1111111111111111ull));
	CHECK_OK(xmem_tx_add_range(h, (uint8_t *)&r->d + 3, 2));
	CHECK(r->d == 0x1111111111111111ull);
	((uint8_t *)&r->d)[3] = 0x22;
	CHECK_OK(xmem_tx_abort(h));
	CHECK(r->d == 0);
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_set64(h, &r->d, 0x1111111111111111ull));
	CHECK_OK(xmem_tx_add_range(h, (uint8_t *)&r->d + 3, 2));
	((uint8_t *)&r->d)[3] = 0x22;
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->d == 0x1111111122111111ull);
	/* nested levels share the sets */
	REQUIRE_OK(xmem_tx_begin(h));
	REQUIRE_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_set64(h, &r->a, 9));
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->a == 8);
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->a == 9);
}

/* Past the first words a transaction sets, repeats are dropped when the
 * commit or an add_range indexes them: the last value must win. */
static void test_repeats(struct xmem_heap *h, struct root *r)
{
	xmem_oid *o = &r->obj;
	uint64_t *w;
	int ok = 1;

	REQUIRE_OK(xmem_heap_alloc(h, o, 400 * 8, 5, XMEM_F_HEAP_ZERO, NULL,
				   NULL));
	w = xmem_heap_ptr(h, *o);
	REQUIRE_OK(xmem_tx_begin(h));
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 200; i++)
			REQUIRE_OK(xmem_tx_set64(h, &w[i * 2],
						 (uint64_t)round * 1000 + i));
	REQUIRE_OK(xmem_tx_commit(h));
	for (int i = 0; i < 200; i++)
		ok &= w[i * 2] == 2000 + (uint64_t)i && w[i * 2 + 1] == 0;
	CHECK(ok);
	/* an add_range over repeated words stores their last values, and
	 * a direct store after it wins */
	REQUIRE_OK(xmem_tx_begin(h));
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 200; i++)
			REQUIRE_OK(xmem_tx_set64(h, &w[i * 2],
						 (uint64_t)round * 10 + i));
	REQUIRE_OK(xmem_tx_add_range(h, &w[100], 40 * 8));
	CHECK(w[100] == 10 + 50 && w[138] == 10 + 69);
	w[100] = 7;
	REQUIRE_OK(xmem_tx_commit(h));
	ok = w[100] == 7;
	for (int i = 0; i < 200; i++)
		if (i != 50)
			ok &= w[i * 2] == 10 + (uint64_t)i;
	CHECK(ok);
	/* and abort undoes what the add_range stored */
	REQUIRE_OK(xmem_tx_begin(h));
	for (int i = 0; i < 200; i++)
		REQUIRE_OK(xmem_tx_set64(h, &w[i * 2], 99));
	REQUIRE_OK(xmem_tx_add_range(h, w, 400 * 8));
	CHECK(w[0] == 99 && w[398] == 99);
	REQUIRE_OK(xmem_tx_abort(h));
	CHECK(w[0] == 10 && w[100] == 7 && w[398] == 10 + 199);
	CHECK_OK(xmem_heap_free(h, o));
}

static void test_many(struct test_heap *t, struct root *r)
{
	struct xmem_heap *h = t->h;
	uint64_t *w;
	unsigned np = 0;

	REQUIRE_OK(xmem_heap_alloc(h, &r->big, N * 8, 4, XMEM_F_HEAP_ZERO, NULL,
				   NULL));
	w = xmem_heap_ptr(h, r->big);
	REQUIRE_OK(xmem_heap_checkpoint(h));
	REQUIRE_OK(xmem_tx_begin(h));
	for (int i = 0; i < N; i++)
		REQUIRE_OK(xmem_tx_set64(h, &w[i], 5000 + (uint64_t)i));
	CHECK(w[0] == 0 && w[N - 1] == 0);
	REQUIRE_OK(xmem_tx_commit(h));
	int ok = 1;
	for (int i = 0; i < N; i++)
		ok &= w[i] == 5000 + (uint64_t)i;
	CHECK(ok);
	/* back to the old values, through a snapshot flushed at commit */
	REQUIRE_OK(xmem_tx_begin(h));
	REQUIRE_OK(xmem_tx_add_range(h, w, N * 8));
	memset(w, 0, N * 8);
	REQUIRE_OK(xmem_tx_commit(h));
	test_file_copy(path, img);

	struct test_heap c;
	REQUIRE_OK(test_heap_open(&c, img, SIZE));
	xmem_oid ro;
	REQUIRE_OK(xmem_heap_root(c.h, sizeof(struct root), 1, &ro));
	struct root *cr = xmem_heap_ptr(c.h, ro);
	uint64_t *cw = xmem_heap_ptr(c.h, cr->big);
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += cw[i] != 0;
	if (bad)
		fprintf(stderr,
			"recovery replayed %d set words over newer "
			"values\n",
			bad);
	CHECK(bad == 0);
	CHECK_OK(xmem_heap_check(c.h, 0, test_on_problem, NULL, &np));
	CHECK(np == 0);
	xmem_heap_close(&c.h);
	xmem_map_delete(&c.map);
	xmem_device_close(&c.dev);
}

int main(void)
{
	struct test_heap t;
	struct root *r;

	test_path(path, sizeof(path), "heap-txset");
	test_path(img, sizeof(img), "heap-txset-img");
	r = test_heap_create(&t, path, SIZE, sizeof(*r));
	test_misuse(t.h, r);
	test_semantics(t.h, r);
	test_repeats(t.h, r);
	test_many(&t, r);
	xmem_heap_close(&t.h);
	xmem_map_delete(&t.map);
	xmem_device_close(&t.dev);
	unlink(path);
	unlink(img);
	return test_result();
}
