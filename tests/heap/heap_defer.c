/* SPDX-License-Identifier: MIT */
/*
 * heap_defer - freed space comes back although its reuse waits for a
 * checkpoint: a heap filled by one thread and emptied by another (whose
 * lane never allocates) can be filled again, with small objects and with
 * extents; and inside a transaction, the thread's own earlier frees come
 * back.
 */
#include <pthread.h>
#include <string.h>

#include <xmem.h>
#include "heap_test.h"

#define SIZE (16ull << 20)
#define MAXOBJ 4096

struct root {
	xmem_oid o[MAXOBJ];
};

static struct xmem_heap *h;
static struct root *r;
static unsigned n;

/* Fills the heap with objects of `size` bytes; returns how many. */
static unsigned fill(size_t size)
{
	unsigned k = 0;

	while (k < MAXOBJ &&
	       xmem_heap_alloc(h, &r->o[k], size, 2, 0, NULL, NULL) == 0)
		k++;
	return k;
}

static void *free_all(void *arg)
{
	(void)arg;
	for (unsigned k = 0; k < n; k++)
		if (xmem_heap_free(h, &r->o[k]))
			return (void *)1;
	return NULL;
}

/* Fills, frees from another thread, fills again: the same count. */
static void round_trip(size_t size)
{
	pthread_t t;
	void *ret;
	unsigned again;

	n = fill(size);
	REQUIRE(n > 0 && n < MAXOBJ);
	REQUIRE(pthread_create(&t, NULL, free_all, NULL) == 0);
	REQUIRE(pthread_join(t, &ret) == 0 && ret == NULL);
	again = fill(size);
	printf("%zu-byte objects: %u, then %u after another thread freed "
	       "them\n",
	       size, n, again);
	CHECK(again == n);
	for (unsigned k = 0; k < again; k++)
		CHECK_OK(xmem_heap_free(h, &r->o[k]));
}

int main(void)
{
	struct test_heap t;
	char path[256];
	unsigned k, m;

	test_path(path, sizeof(path), "heap-defer");
	r = test_heap_create(&t, path, SIZE, sizeof(struct root));
	h = t.h;

	round_trip(256u << 10);
	round_trip(4096);

	/* in a transaction: frees committed before it come back */
	m = fill(256u << 10);
	REQUIRE(m > 2);
	for (k = 0; k < m; k++)
		REQUIRE_OK(xmem_heap_free(h, &r->o[k]));
	REQUIRE_OK(xmem_tx_begin(h));
	for (k = 0; k < m; k++)
		if (xmem_tx_alloc(h, 256u << 10, 2, 0, &r->o[k]))
			break;
	printf("in a transaction: %u of %u extents again\n", k, m);
	CHECK(k == m);
	CHECK_OK(xmem_tx_commit(h));

	test_heap_close(&t);
	unlink(path);
	return test_result();
}
