/* SPDX-License-Identifier: MIT */
/*
 * heap_basic - the heap's API on a file mapping: root, atomic alloc/free/
 * realloc, checked references, transactions (commit, abort, nesting,
 * merged snapshots, a 64 MiB snapshot), iteration, statistics, reopen,
 * check, and ownership through a range (a second open gets EBUSY).
 */
#include <string.h>
#include <sys/wait.h>

#include <xmem.h>
#include "test.h"

#define T_NODE 7
#define T_BLOB 9

struct root {
	xmem_oid a, b, big;
	uint64_t counter;
	uint64_t arr[64];
	xmem_oid list[128];
};

static int count_fn(xmem_oid oid, uint64_t size, uint32_t type, void *arg)
{
	(void)oid;
	(void)size;
	(void)type;
	(*(int *)arg)++;
	return 0;
}

static int ctor_fill(void *obj, size_t size, void *arg)
{
	memset(obj, *(int *)arg, size);
	return 0;
}

/* Atomic operations and checked references. */
static void test_atomic(struct xmem_heap *h, struct root *r)
{
	void *p;
	uint64_t sz;
	uint32_t ty;
	int fill = 0xab;

	CHECK_OK(xmem_heap_alloc(h, &r->a, 100, T_NODE, XMEM_F_HEAP_ZERO, NULL,
				 NULL));
	CHECK(r->a != 0);
	CHECK_OK(xmem_heap_get(h, r->a, T_NODE, &p));
	CHECK(((uint8_t *)p)[99] == 0);
	CHECK(xmem_heap_get(h, r->a, T_BLOB, &p) == XMEM_E_BADOID);
	CHECK(xmem_heap_get(h, r->a + 8, T_NODE, &p) == XMEM_E_BADOID);
	CHECK(xmem_heap_get(h, 12345, XMEM_HEAP_ANY_TYPE, &p) == XMEM_E_BADOID);
	CHECK_OK(xmem_heap_object_info(h, r->a, &sz, &ty));
	CHECK(sz >= 100 && ty == T_NODE);
	CHECK_OK(xmem_heap_alloc(h, &r->b, 64, T_BLOB, 0, ctor_fill, &fill));
	CHECK(((uint8_t *)xmem_heap_ptr(h, r->b))[63] == 0xab);
	CHECK_OK(xmem_heap_realloc(h, &r->b, 5000, T_BLOB, XMEM_F_HEAP_ZERO));
	CHECK(((uint8_t *)xmem_heap_ptr(h, r->b))[63] == 0xab);
	CHECK(((uint8_t *)xmem_heap_ptr(h, r->b))[4999] == 0);
	xmem_oid old = r->a;
	CHECK_OK(xmem_heap_free(h, &r->a));
	CHECK(r->a == 0);
	CHECK(xmem_heap_get(h, old, XMEM_HEAP_ANY_TYPE, &p) == XMEM_E_BADOID);
	/* a large object: an extent of several chunks */
	CHECK_OK(xmem_heap_alloc(h, &r->big, 3u << 20, T_BLOB, 0, NULL, NULL));
	CHECK_OK(xmem_heap_object_info(h, r->big, &sz, &ty));
	CHECK(sz >= (3u << 20));
	CHECK(xmem_heap_free(h, &old) == -EINVAL); /* dest not in heap */
	for (int i = 0; i < 128; i++)
		CHECK_OK(xmem_heap_alloc(h, &r->list[i], 64 + i * 8, T_NODE, 0,
					 NULL, NULL));
	for (int i = 0; i < 128; i += 2)
		CHECK_OK(xmem_heap_free(h, &r->list[i]));
}

/* Transactions: commit, abort, nesting, merged snapshots. */
static void test_tx(struct xmem_heap *h, struct root *r)
{
	xmem_oid o = 0, o2 = 0;
	void *p;

	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_add_range(h, &r->counter, 8));
	r->counter = 42;
	CHECK_OK(xmem_tx_alloc(h, 200, T_NODE, XMEM_F_HEAP_ZERO, &o));
	CHECK_OK(xmem_tx_add_range(h, &r->a, 8));
	r->a = o;
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->counter == 42);
	CHECK_OK(xmem_heap_get(h, r->a, T_NODE, &p));

	/* abort restores and releases */
	for (int i = 0; i < 64; i++)
		r->arr[i] = (uint64_t)i;
	xmem_heap_persist(h, r->arr, sizeof(r->arr));
	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_add_range(h, &r->arr[4], 80));
	CHECK_OK(xmem_tx_add_range(h, &r->arr[0], 200)); /* overlaps: merged */
	for (int i = 0; i < 25; i++)
		r->arr[i] = 1000;
	CHECK_OK(xmem_tx_alloc(h, 64, T_NODE, 0, &o2));
	CHECK_OK(xmem_tx_free(h, r->a));
	CHECK_OK(xmem_tx_abort(h));
	for (int i = 0; i < 64; i++)
		CHECK(r->arr[i] == (uint64_t)i);
	CHECK(xmem_heap_get(h, o2, XMEM_HEAP_ANY_TYPE, &p) == XMEM_E_BADOID);
	CHECK_OK(xmem_heap_get(h, r->a, T_NODE, &p));
	CHECK(xmem_tx_depth(h) == 0);

	/* nesting flattens; an inner abort aborts all */
	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_add_range(h, &r->counter, 8));
	r->counter = 1;
	CHECK_OK(xmem_tx_begin(h));
	CHECK(xmem_tx_depth(h) == 2);
	CHECK_OK(xmem_tx_add_range(h, &r->counter, 8));
	r->counter = 2;
	CHECK_OK(xmem_tx_abort(h));
	CHECK(r->counter == 42);
	CHECK(xmem_tx_add_range(h, &r->counter, 8) == XMEM_E_TXABORTED);
	CHECK(xmem_tx_commit(h) == XMEM_E_TXABORTED);
	CHECK(xmem_tx_depth(h) == 0);
	CHECK(xmem_tx_commit(h) == XMEM_E_TXSTATE);

	/* nested commit: durable only at the outermost commit */
	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_add_range(h, &r->counter, 8));
	r->counter = 43;
	CHECK_OK(xmem_tx_commit(h));
	CHECK_OK(xmem_tx_free(h, r->a));
	CHECK_OK(xmem_tx_add_range(h, &r->a, 8));
	r->a = 0;
	CHECK_OK(xmem_tx_commit(h));
	CHECK(r->counter == 43 && r->a == 0);
}

/* A 64 MiB snapshot: log space grows past the lane's undo area. */
static void test_big_snapshot(struct xmem_heap *h, struct root *r)
{
	uint8_t *big;
	size_t len = 64u << 20;

	CHECK_OK(xmem_heap_alloc(h, &r->big, len, T_BLOB, 0, NULL, NULL));
	big = xmem_heap_ptr(h, r->big);
	memset(big, 0x11, len);
	xmem_heap_persist(h, big, len);
	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_add_range(h, big, len));
	memset(big, 0x22, len);
	CHECK_OK(xmem_tx_abort(h));
	CHECK(big[0] == 0x11 && big[len - 1] == 0x11 && big[len / 2] == 0x11);
	CHECK_OK(xmem_tx_begin(h));
	CHECK_OK(xmem_tx_add_range(h, big, len));
	memset(big, 0x33, len);
	CHECK_OK(xmem_tx_commit(h));
	CHECK(big[len - 1] == 0x33);
}

/* Transactions that create runs (records inside the transaction) while
 * the lane's ring fills up: commit must not wait on its own transaction. */
static void test_ring_pressure(struct xmem_heap *h, struct root *r)
{
	for (int round = 0; round < 40; round++) {
		xmem_oid o[XMEM_HEAP_NCLASSES];

		for (int i = 0; i < 300; i++) { /* fill the ring */
			CHECK_OK(xmem_heap_alloc(h, &r->list[0], 64, 1, 0, NULL,
						 NULL));
			CHECK_OK(xmem_heap_free(h, &r->list[0]));
		}
		CHECK_OK(xmem_tx_begin(h));
		CHECK_OK(xmem_tx_add_range(h, &r->counter, 8));
		r->counter++;
		for (int c = 0; c < 20; c++) /* one object per size class */
			CHECK_OK(xmem_tx_alloc(h, 64u << (c / 2), 40 + c, 0,
					       &o[c]));
		for (int c = 0; c < 20; c++)
			CHECK_OK(xmem_tx_free(h, o[c]));
		CHECK_OK(xmem_tx_commit(h));
	}
	/* a transaction whose own records (300 new runs) overflow the
	 * ring: an error, then abort; never a wait on itself */
	static xmem_oid big[600];
	int rc = xmem_tx_begin(h);
	CHECK(rc == 0);
	if (!rc && !(rc = xmem_tx_add_range(h, &r->arr[63], 8)))
		r->arr[63] = 77; /* the transaction has an id now */
	for (int i = 0; i < 600 && !rc; i++)
		rc = xmem_tx_alloc(h, 100000, 60, 0, &big[i]);
	if (!rc)
		rc = xmem_tx_commit(h);
	CHECK(rc == 0 || rc == XMEM_E_NOSPACE);
	if (rc)
		CHECK_OK(xmem_tx_abort(h));
	else
		for (int i = 0; i < 600; i++) {
			CHECK_OK(xmem_tx_begin(h));
			CHECK_OK(xmem_tx_free(h, big[i]));
			CHECK_OK(xmem_tx_commit(h));
		}
	printf("ring overflow inside a transaction: %s\n",
	       rc ? xmem_errormsg() : "fits");
}

static void problem_fn(const struct xmem_check_problem *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s @%llu: %s\n", p->structure,
		(unsigned long long)p->offset, p->what);
}

int main(void)
{
	char path[256];
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct xmem_heap_stats st;
	xmem_oid root;
	struct root *r;
	unsigned np = 0;
	int n = 0;

	test_path(path, sizeof(path), "heap-basic");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 256ull << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, 256ull << 20, 0, 0, &m));
	REQUIRE_OK(xmem_heap_create_map(m, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, sizeof(struct root), 1, &root));
	r = xmem_heap_ptr(h, root);
	CHECK(r->counter == 0);
	test_atomic(h, r);
	test_tx(h, r);
	test_big_snapshot(h, r);
	uint64_t before = r->counter;
	test_ring_pressure(h, r);
	CHECK(r->counter == before + 40);
	r->counter = before;
	xmem_heap_persist(h, &r->counter, 8);
	CHECK_OK(xmem_heap_foreach(h, T_NODE, count_fn, &n));
	CHECK(n == 64); /* list: 64 left */
	CHECK_OK(xmem_heap_stats(h, &st));
	CHECK(st.objects >= 67 && st.used > (64u << 20) && st.fences > 0);
	printf("objects %llu used %llu free %llu frag %.3f fences %llu\n",
	       (unsigned long long)st.objects, (unsigned long long)st.used,
	       (unsigned long long)st.free, st.fragmentation,
	       (unsigned long long)st.fences);
	CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, &np));
	CHECK(np == 0);
	xmem_heap_close(&h);
	CHECK(h == NULL);

	/* reopen: state survives */
	REQUIRE_OK(xmem_heap_open_map(m, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, sizeof(struct root), 1, &root));
	r = xmem_heap_ptr(h, root);
	CHECK(r->counter == 43);
	n = 0;
	CHECK_OK(xmem_heap_foreach(h, T_NODE, count_fn, &n));
	CHECK(n == 64);
	CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, &np));
	CHECK(np == 0);
	for (int i = 1; i < 128; i += 2)
		CHECK_OK(xmem_heap_free(h, &r->list[i]));
	n = 0;
	CHECK_OK(xmem_heap_foreach(h, T_NODE, count_fn, &n));
	CHECK(n == 0);
	xmem_heap_close(&h);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
