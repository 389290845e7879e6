/* SPDX-License-Identifier: MIT */
/*
 * heap_threads - two threads (or XMEM_TEST_THREADS) mixing atomic alloc,
 * free, realloc and transactions (publishing through a snapshot or a
 * word set at commit) on one heap, each on its own slots, and
 * some frees of the other thread's objects (cross-thread frees go to a
 * run another lane caches). Afterwards the heap must check clean, every
 * published reference must be live, and the object count must match.
 * Meant for ASan/UBSan and TSan builds too.
 */
#include <pthread.h>
#include <string.h>

#include <xmem.h>
#include "test.h"

#define NSLOTS 256
#define ITERS 4000

struct root {
	uint64_t counters[8];
	xmem_oid slots[8][NSLOTS];
	xmem_oid shared[64];
	pthread_mutex_t dummy; /* unused; keeps the layout honest */
};

static struct xmem_heap *heap;
static struct root *root;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static int nthreads = 2;

static unsigned next_rand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* One thread's mix of operations on its own slots. */
static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg, bad = 0;
	unsigned seed = 7u + (unsigned)id * 31u;
	xmem_oid *slots = root->slots[id];

	for (int i = 0; i < ITERS; i++) {
		unsigned r = next_rand(&seed);
		xmem_oid *s = &slots[r % NSLOTS];
		size_t size = 16 + (r >> 8) % 3000;

		switch ((r >> 4) % 6) {
		case 0:
		case 1:
			if (!*s)
				bad |= xmem_heap_alloc(heap, s, size, 1 + id, 0,
						       NULL, NULL) != 0;
			else
				bad |= xmem_heap_free(heap, s) != 0;
			break;
		case 2:
			bad |= xmem_heap_realloc(heap, s, size, 1 + id, 0) != 0;
			break;
		case 3: { /* transaction: counter, alloc, maybe free */
			xmem_oid o;
			int rc = xmem_tx_begin(heap);
			if (!rc)
				rc = xmem_tx_add_range(heap,
						       &root->counters[id], 8);
			if (!rc) {
				root->counters[id]++;
				rc = xmem_tx_alloc(heap, size, 1 + id, 0, &o);
			}
			if (!rc && *s)
				rc = xmem_tx_free(heap, *s);
			if (!rc && (r >> 14) % 2) /* set at commit */
				rc = xmem_tx_set64(heap, s, o);
			else if (!rc && !(rc = xmem_tx_add_range(heap, s, 8)))
				*s = o;
			if (rc) {
				xmem_tx_abort(heap);
				bad = 1;
			} else if ((r >> 12) % 4 == 0) {
				xmem_tx_abort(heap);
				root->counters[id]++; /* the tx's ++ undone */
				xmem_heap_persist(heap, &root->counters[id], 8);
			} else {
				bad |= xmem_tx_commit(heap) != 0;
			}
			break;
		}
		default: { /* shared slots: frees of the other's objects */
			xmem_oid *sh = &root->shared[r % 64];
			pthread_mutex_lock(&shared_lock);
			if (*sh)
				bad |= xmem_heap_free(heap, sh) != 0;
			else
				bad |= xmem_heap_alloc(heap, sh, 64, 50, 0,
						       NULL, NULL) != 0;
			pthread_mutex_unlock(&shared_lock);
		}
		}
		if (bad) {
			fprintf(stderr, "thread %d op %d: %s\n", id, i,
				xmem_errormsg());
			return (void *)1;
		}
	}
	return NULL;
}

static int count_fn(xmem_oid oid, uint64_t size, uint32_t type, void *arg)
{
	(void)oid;
	(void)size;
	(void)type;
	(*(uint64_t *)arg)++;
	return 0;
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
	pthread_t th[8];
	xmem_oid r;
	uint64_t live = 0, n = 0;
	unsigned np;
	void *ret, *p;

	if (getenv("XMEM_TEST_THREADS"))
		nthreads = atoi(getenv("XMEM_TEST_THREADS"));
	if (nthreads < 1 || nthreads > 8)
		nthreads = 2;
	test_path(path, sizeof(path), "heap-threads");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 128ull << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, 128ull << 20, 0, 0, &m));
	REQUIRE_OK(xmem_heap_create_map(m, 0, &heap));
	REQUIRE_OK(xmem_heap_root(heap, sizeof(struct root), 1, &r));
	root = xmem_heap_ptr(heap, r);
	for (int i = 0; i < nthreads; i++)
		REQUIRE(pthread_create(&th[i], NULL, worker,
				       (void *)(intptr_t)i) == 0);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], &ret);
		CHECK(ret == NULL);
	}
	for (int t = 0; t < nthreads; t++)
		for (int i = 0; i < NSLOTS; i++)
			if (root->slots[t][i]) {
				live++;
				CHECK(xmem_heap_get(heap, root->slots[t][i],
						    (uint32_t)t + 1, &p) == 0);
			}
	for (int i = 0; i < 64; i++)
		live += root->shared[i] != 0;
	CHECK_OK(xmem_heap_foreach(heap, XMEM_HEAP_ANY_TYPE, count_fn, &n));
	CHECK(n == live + 1); /* + the root */
	CHECK_OK(xmem_heap_check(heap, 0, problem_fn, NULL, &np));
	xmem_heap_close(&heap);
	/* reopen: recovery is a no-op, the same objects */
	REQUIRE_OK(xmem_heap_open_map(m, 0, &heap));
	n = 0;
	CHECK_OK(xmem_heap_foreach(heap, XMEM_HEAP_ANY_TYPE, count_fn, &n));
	CHECK(n == live + 1);
	xmem_heap_close(&heap);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
	printf("%d threads x %d ops: %llu live objects\n", nthreads, ITERS,
	       (unsigned long long)live);
	return test_result();
}
