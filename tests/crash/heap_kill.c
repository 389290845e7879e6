/* SPDX-License-Identifier: MIT */
/*
 * heap_kill - kill -9 stress with real processes, in a loop for a few
 * seconds (XMEM_KILL_SECONDS, default 3): a child mixes atomic alloc,
 * free, realloc and transactions on a heap in a /dev/shm file; the parent
 * kills it with SIGKILL after a random delay, then opens the heap (which
 * recovers), checks it clean and verifies the invariants the child keeps:
 *   - every published slot names a live object of the slot's type whose
 *     contents are its own tag (written before publication);
 *   - two counters moved only by transactions always sum to 1000.
 * A killed process loses no store (the page cache keeps them), so this
 * exercises recovery at arbitrary instruction boundaries rather than
 * lost write-backs; the crash simulator covers those.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <xmem.h>
#include "test.h"

#define SIZE (32ull << 20)
#define NSLOT 64

struct root {
	uint64_t a, b;
	xmem_oid slot[NSLOT];
};

static char path[256];

static int open_heap(struct xmem_device **dev, struct xmem_map **m,
		     struct xmem_heap **h, struct root **r, int create)
{
	xmem_oid ro;
	int rc;

	if ((rc = xmem_device_open(dev, path, SIZE,
				   create ? XMEM_F_CREATE : 0)) ||
	    (rc = xmem_device_map(*dev, 0, SIZE, 0, 0, m)))
		return rc;
	rc = create ? xmem_heap_create_map(*m, 0, h)
		    : xmem_heap_open_map(*m, 0, h);
	if (rc || (rc = xmem_heap_root(*h, sizeof(struct root), 1, &ro)))
		return rc;
	*r = xmem_heap_ptr(*h, ro);
	return 0;
}

static int tag_ctor(void *obj, size_t size, void *arg)
{
	uint64_t tag = (uint64_t)(uintptr_t)arg;

	for (size_t i = 0; i + 8 <= size; i += 8)
		memcpy((uint8_t *)obj + i, &tag, 8);
	return 0;
}

/* The child's endless mix of operations. */
static void child(unsigned seed)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct root *r;

	if (open_heap(&dev, &m, &h, &r, 0))
		_exit(1);
	for (;;) {
		unsigned x = (seed = seed * 1103515245u + 12345u) >> 8;
		unsigned s = x % NSLOT;
		size_t size = 8 + (x >> 8) % 2000;
		uint64_t tag = ((uint64_t)s << 32) | 0xabcd;

		switch ((x >> 16) % 4) {
		case 0:
			if (r->slot[s])
				xmem_heap_free(h, &r->slot[s]);
			else
				xmem_heap_alloc(h, &r->slot[s], size, 100 + s,
						0, tag_ctor,
						(void *)(uintptr_t)tag);
			break;
		case 1:
			if (r->slot[s])
				xmem_heap_realloc(h, &r->slot[s], size, 100 + s,
						  0);
			break;
		default: {
			xmem_oid o;
			uint64_t amt = x % 50;

			if (xmem_tx_begin(h))
				_exit(2);
			if (xmem_tx_add_range(h, &r->a, 16) ||
			    xmem_tx_alloc(h, size, 100 + s, 0, &o)) {
				xmem_tx_abort(h);
				break;
			}
			r->a -= amt;
			r->b += amt;
			tag_ctor(xmem_heap_ptr(h, o), size,
				 (void *)(uintptr_t)tag);
			if (r->slot[s] && xmem_tx_free(h, r->slot[s])) {
				xmem_tx_abort(h);
				break;
			}
			xmem_tx_add_range(h, &r->slot[s], 8);
			r->slot[s] = o;
			if ((x >> 20) % 5 == 0)
				xmem_tx_abort(h);
			else
				xmem_tx_commit(h);
		}
		}
	}
}

static void problem_fn(const struct xmem_check_problem *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s @%llu: %s\n", p->structure,
		(unsigned long long)p->offset, p->what);
}

/* Opens after a kill and checks every invariant. */
static int verify(void)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct root *r;
	unsigned np = 0;
	int bad = 0;

	if (open_heap(&dev, &m, &h, &r, 0)) {
		fprintf(stderr, "open after kill: %s\n", xmem_errormsg());
		return 1;
	}
	if (xmem_heap_check(h, 0, problem_fn, NULL, &np) || np)
		bad = 1;
	if (r->a + r->b != 1000) {
		fprintf(stderr, "counters %llu + %llu != 1000\n",
			(unsigned long long)r->a, (unsigned long long)r->b);
		bad = 1;
	}
	for (unsigned s = 0; s < NSLOT; s++) {
		uint64_t size, tag = ((uint64_t)s << 32) | 0xabcd, v;
		uint32_t type;

		if (!r->slot[s])
			continue;
		if (xmem_heap_object_info(h, r->slot[s], &size, &type) ||
		    type != 100 + s) {
			fprintf(stderr, "slot %u: dangling or mistyped\n", s);
			bad = 1;
			continue;
		}
		memcpy(&v, xmem_heap_ptr(h, r->slot[s]), 8);
		if (v != tag) {
			fprintf(stderr, "slot %u: contents %#llx\n", s,
				(unsigned long long)v);
			bad = 1;
		}
	}
	xmem_heap_close(&h);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	return bad;
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct root *r;
	double secs = getenv("XMEM_KILL_SECONDS")
			      ? atof(getenv("XMEM_KILL_SECONDS"))
			      : 3.0;
	struct timespec t0, t;
	unsigned iters = 0, seed = 12345;

	test_path(path, sizeof(path), "heap-kill");
	unlink(path);
	REQUIRE_OK(open_heap(&dev, &m, &h, &r, 1));
	r->a = 1000;
	xmem_heap_persist(h, &r->a, 8);
	xmem_heap_close(&h);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		pid_t pid;
		int st;

		seed = seed * 1103515245u + 12345u;
		fflush(NULL);
		if ((pid = fork()) == 0)
			child(seed);
		REQUIRE(pid > 0);
		usleep(1000 + (seed >> 8) % 20000);
		kill(pid, SIGKILL);
		REQUIRE(waitpid(pid, &st, 0) == pid);
		if (!WIFSIGNALED(st)) {
			fprintf(stderr, "child exited early (%d)\n",
				WEXITSTATUS(st));
			CHECK(0);
			break;
		}
		iters++;
		if (verify()) {
			fprintf(stderr, "kill %u left a bad heap\n", iters);
			CHECK(0);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) +
			 (double)(t.tv_nsec - t0.tv_nsec) * 1e-9 <
		 secs);
	printf("heap kill -9 stress: %u kills, every heap recovered clean\n",
	       iters);
	unlink(path);
	return test_result();
}
