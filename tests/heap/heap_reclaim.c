/* SPDX-License-Identifier: MIT */
/*
 * heap_reclaim - chunks used as runs come back: a heap filled with small
 * objects, then emptied, must hold one object nearly as large as the
 * heap; it must check clean before and after.
 */
#include <xmem.h>
#include "test.h"

#define SIZE (64ull << 20)
#define MAXOBJ 4096

static void problem_fn(const struct xmem_check_problem *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s @%llu: %s\n", p->structure,
		(unsigned long long)p->offset, p->what);
}

int main(void)
{
	static xmem_oid objs[MAXOBJ];
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct xmem_heap_stats st;
	char path[256];
	xmem_oid ro, *root;
	unsigned np;
	int n = 0, rc = 0;

	test_path(path, sizeof(path), "heap-reclaim");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, SIZE, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, SIZE, 0, 0, &m));
	REQUIRE_OK(xmem_heap_create_map(m, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, 64, 1, &ro));
	root = xmem_heap_ptr(h, ro);
	/* fill: objects of two classes, in transactions of 16 */
	while (!rc && n < MAXOBJ) {
		int before = n;

		REQUIRE_OK(xmem_tx_begin(h));
		for (int i = 0; i < 16 && !rc && n < MAXOBJ; i++) {
			rc = xmem_tx_alloc(h, n % 2 ? 100000 : 20000, 2, 0,
					   &objs[n]);
			n += !rc;
		}
		if (rc) {
			CHECK(rc == XMEM_E_NOSPACE);
			xmem_tx_abort(h);
			n = before; /* the aborted transaction's objects */
		} else {
			CHECK_OK(xmem_tx_commit(h));
		}
	}
	CHECK(n > 100);
	CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, &np));
	CHECK(xmem_heap_alloc(h, root, 48ull << 20, 3, 0, NULL, NULL) ==
	      XMEM_E_NOSPACE);
	for (int i = 0; i < n; i += 16) {
		REQUIRE_OK(xmem_tx_begin(h));
		for (int j = i; j < i + 16 && j < n; j++)
			CHECK_OK(xmem_tx_free(h, objs[j]));
		CHECK_OK(xmem_tx_commit(h));
	}
	/* every run is empty now: a 48 MiB object must fit */
	CHECK_OK(xmem_heap_alloc(h, root, 48ull << 20, 3, 0, NULL, NULL));
	CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, &np));
	CHECK(np == 0);
	CHECK_OK(xmem_heap_stats(h, &st));
	printf("%d objects filled the heap; after freeing them a 48 MiB "
	       "object fits (%llu objects live)\n",
	       n, (unsigned long long)st.objects);
	xmem_heap_close(&h);
	REQUIRE_OK(xmem_heap_open_map(m, 0, &h));
	CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, &np));
	CHECK(np == 0);
	xmem_heap_close(&h);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
