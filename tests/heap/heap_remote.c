/* SPDX-License-Identifier: MIT */
/*
 * heap_remote - a run's owner updates its bitmap words without locked
 * instructions while other lanes free into the same words. A producer
 * allocates 2 KiB objects (128 to a run) into a small queue (and allocates and
 * frees objects of its own in between, so its plain updates keep coming); a
 * consumer frees them as soon as they appear, in the words the producer
 * is still filling. Runs fill and are taken again, so they go from
 * private to shared many times. A lost update would leave a freed object
 * marked live or a live one marked free: at the end the queue is
 * drained, and the heap must hold exactly the root and the producer's
 * own live objects, check clean, and reopen with the same count. Four
 * rounds, each on a new heap.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <xmem.h>
#include "test.h"

#define QLEN 16
#define NOWN 64
#define ROUNDS 60000

struct root {
	_Atomic uint64_t head, tail; /* produced, consumed */
	xmem_oid q[QLEN];
	xmem_oid own[NOWN];
};

static struct xmem_heap *heap;
static struct root *root;
static int failed;

static void *producer(void *arg)
{
	unsigned seed = 11;

	(void)arg;
	for (uint64_t i = 0; i < ROUNDS && !failed; i++) {
		xmem_oid *own =
			&root->own[(seed = seed * 1103515245u + 12345u) % NOWN];

		while (atomic_load(&root->head) - atomic_load(&root->tail) >=
			       QLEN &&
		       !failed)
			sched_yield();
		if (xmem_heap_alloc(heap, &root->q[i % QLEN], 2048, 2, 0, NULL,
				    NULL) ||
		    (*own ? xmem_heap_free(heap, own)
			  : xmem_heap_alloc(heap, own, 64, 3, 0, NULL, NULL))) {
			fprintf(stderr, "producer %llu: %s\n",
				(unsigned long long)i, xmem_errormsg());
			failed = 1;
		}
		atomic_store(&root->head, i + 1);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < ROUNDS && !failed; i++) {
		while (atomic_load(&root->head) <= i && !failed)
			sched_yield();
		if (xmem_heap_free(heap, &root->q[i % QLEN])) {
			fprintf(stderr, "consumer %llu: %s\n",
				(unsigned long long)i, xmem_errormsg());
			failed = 1;
		}
		atomic_store(&root->tail, i + 1);
	}
	return NULL;
}

static int count_fn(xmem_oid oid, uint64_t size, uint32_t type, void *arg)
{
	(void)oid;
	(void)size;
	((uint64_t *)arg)[type == 2]++;
	return 0;
}

static void problem_fn(const struct xmem_check_problem *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s @%llu: %s\n", p->structure,
		(unsigned long long)p->offset, p->what);
}

/* One heap, one producer and one consumer. */
static void run_once(int rep)
{
	char path[256];
	struct xmem_device *dev;
	struct xmem_map *m;
	pthread_t tp, tc;
	xmem_oid r;
	uint64_t n[2] = { 0, 0 }, own = 0;
	unsigned np;

	test_path(path, sizeof(path), "heap-remote");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 64ull << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, 64ull << 20, 0, 0, &m));
	REQUIRE_OK(xmem_heap_create_map(m, 0, &heap));
	REQUIRE_OK(xmem_heap_root(heap, sizeof(struct root), 1, &r));
	root = xmem_heap_ptr(heap, r);
	REQUIRE(pthread_create(&tp, NULL, producer, NULL) == 0);
	REQUIRE(pthread_create(&tc, NULL, consumer, NULL) == 0);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	CHECK(!failed);
	for (int i = 0; i < QLEN; i++)
		CHECK(root->q[i] == 0);
	for (int i = 0; i < NOWN; i++)
		own += root->own[i] != 0;
	CHECK_OK(xmem_heap_foreach(heap, XMEM_HEAP_ANY_TYPE, count_fn, n));
	if (n[1] || n[0] != own + 1)
		fprintf(stderr,
			"%llu queue objects live, %llu others (want 0, "
			"%llu)\n",
			(unsigned long long)n[1], (unsigned long long)n[0],
			(unsigned long long)own + 1);
	CHECK(n[1] == 0 && n[0] == own + 1);
	CHECK_OK(xmem_heap_check(heap, 0, problem_fn, NULL, &np));
	CHECK(np == 0);
	xmem_heap_close(&heap);
	REQUIRE_OK(xmem_heap_open_map(m, 0, &heap));
	n[0] = n[1] = 0;
	CHECK_OK(xmem_heap_foreach(heap, XMEM_HEAP_ANY_TYPE, count_fn, n));
	CHECK(n[1] == 0 && n[0] == own + 1);
	xmem_heap_close(&heap);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
	printf("round %d: %d objects passed through the queue; %llu own "
	       "live\n",
	       rep, ROUNDS, (unsigned long long)own);
}

int main(void)
{
	/* a lost update needs the two threads to meet on one word inside
	 * a few nanoseconds: one round shows it about half the time */
	for (int rep = 0; rep < 4; rep++)
		run_once(rep);
	return test_result();
}
