/* SPDX-License-Identifier: MIT */
/*
 * bench_heap.c - xmem's persistent heap beside libpmemobj, same work,
 * interleaved in one run, on /dev/shm with cache-line granularity forced
 * for both (XMEM_FORCE_GRANULARITY=cacheline, PMEM_IS_PMEM_FORCE=1; the
 * program re-executes itself to set them).
 *
 * Rows (ops/s, median over repetitions; ratio = xmem / libpmemobj):
 *   atomic alloc+free 64 B       pmemobj_alloc/free vs xmem_heap_alloc/free
 *     128 live, 4 classes        128 objects of 64-256 B allocated, each
 *                                published into its own line, then freed
 *   tx alloc 64 B                one allocation per transaction
 *   tx 8 B snapshot + store      add_range of 8 bytes, a store, commit
 *   hashmap insert / lookup      PMDK's hashmap_tx algorithm, written for
 *                                each library: chained buckets, grows 2x
 *                                when count > 10 x buckets (rebuild in one
 *                                transaction), 1,000,000 keys
 *   2 threads atomic alloc+free  aggregate ops/s of 2 x 2N pairs, and scaling
 *                                over 4N pairs on 1 thread (N = 100,000 ops,
 *                                20,000 with -q)
 *   create 1 GiB                 seconds (ratio: xmem time / pmemobj time)
 *   open 1 GiB with 1M objects   seconds, and xmem's open of an empty heap
 * The fences column is xmem's fences per operation (from its counters).
 *
 * Usage: bench_heap [-r REPS] [-n HASHMAP_KEYS] [-q] (-q: a quick run)
 */
#include <libpmemobj.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xmem.h>

#define POOL_SIZE (512ull << 20)
#define BIG_POOL (1ull << 30)
#define NSLOT 1024

static int reps = 5;
static uint64_t hm_keys = 1000000;
static uint64_t nops = 100000;
static const char *xpath = "/dev/shm/xmem-bench-heap.x";
static const char *ppath = "/dev/shm/xmem-bench-heap.p";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_heap: %s: %s\n", what, xmem_errormsg());
	exit(1);
}

/* --- xmem side ------------------------------------------------------ */

struct xroot {
	xmem_oid slot[NSLOT];
	uint64_t x;
	xmem_oid map;
};

struct xh {
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct xroot *r;
};

static void x_up(struct xh *x, uint64_t size, int create)
{
	xmem_oid root;

	if (xmem_device_open(&x->dev, xpath, size,
			     create ? XMEM_F_CREATE : 0) ||
	    xmem_device_map(x->dev, 0, size, 0, 0, &x->m))
		die("device");
	if ((create ? xmem_heap_create_map(x->m, 0, &x->h)
		    : xmem_heap_open_map(x->m, 0, &x->h)))
		die("heap");
	if (xmem_heap_root(x->h, sizeof(struct xroot), 1, &root))
		die("root");
	x->r = xmem_heap_ptr(x->h, root);
}

static void x_down(struct xh *x)
{
	xmem_heap_close(&x->h);
	xmem_map_delete(&x->m);
	xmem_device_close(&x->dev);
}

static uint64_t x_fences(struct xh *x)
{
	struct xmem_heap_stats st;

	xmem_heap_stats(x->h, &st);
	return st.fences;
}

/* --- libpmemobj side ------------------------------------------------ */

struct proot {
	PMEMoid slot[NSLOT];
	uint64_t x;
	PMEMoid map;
};

struct ph {
	PMEMobjpool *pop;
	struct proot *r;
	PMEMoid root;
};

static void p_up(struct ph *p, uint64_t size, int create)
{
	if (create) {
		p->pop = pmemobj_create(ppath, "bench", size, 0600);
	} else {
		p->pop = pmemobj_open(ppath, "bench");
	}
	if (!p->pop) {
		fprintf(stderr, "pmemobj: %s\n", pmemobj_errormsg());
		exit(1);
	}
	p->root = pmemobj_root(p->pop, sizeof(struct proot));
	p->r = pmemobj_direct(p->root);
}

static void p_down(struct ph *p)
{
	pmemobj_close(p->pop);
}

/* --- the cost of one fence ------------------------------------------ */

/* ns per fence on the heap's mapping (median of 5 runs of 20000): a
 * store to a line, its write-back and a fence ("clwb"), and 128 bytes of
 * non-temporal stores and a fence ("nt"): the two shapes of xmem's
 * fences. */
static double fence_ns(struct xh *x, int nt)
{
	const struct xmem_persist_ops *ops = xmem_map_ops(x->m);
	_Alignas(64) uint8_t buf[128] = { 0 };
	uint8_t *p = (uint8_t *)&x->r->slot[0];
	double v[5];

	for (int r = 0; r < 5; r++) {
		double t = now();

		for (int i = 0; i < 20000; i++) {
			if (nt) {
				buf[0] = (uint8_t)i;
				ops->memcpy(p, buf, sizeof(buf),
					    XMEM_F_MEM_NONTEMPORAL |
						    XMEM_F_MEM_NODRAIN);
			} else {
				p[0] = (uint8_t)i;
				ops->flush(p, 1);
			}
			ops->drain();
		}
		v[r] = (now() - t) / 20000 * 1e9;
	}
	memset(p, 0, sizeof(buf));
	ops->persist(p, sizeof(buf));
	return median(v, 5);
}

static double fence_cost; /* ns, the cheaper of the two shapes */

/* A row's fence estimate: xmem's fences per unit at fence_cost against
 * libpmemobj's time per unit, i.e. about the best ratio xmem could reach
 * if everything but its fences took no time (fence_cost is measured back
 * to back; inside an operation other work overlaps a fence's wait, so
 * this is an estimate, not a strict bound). */
static void floor_line(double fences_per_unit, double pm_units_per_s)
{
	double fl = fences_per_unit * fence_cost, pns = 1e9 / pm_units_per_s;

	printf("%-34s %12.0fns %12.0fns %8.2fx %8s  xmem as fences only: %.2f "
	       "x %.0f ns, vs libpmemobj's time\n",
	       "  fence estimate", fl, pns, pns / fl, "-", fences_per_unit,
	       fence_cost);
}

/* --- rows: small operations ---------------------------------------- */

static double x_atomic(struct xh *x, uint64_t n)
{
	double t = now();

	for (uint64_t i = 0; i < n; i++) {
		xmem_oid *d = &x->r->slot[i % NSLOT];
		if (xmem_heap_alloc(x->h, d, 64, 2, 0, NULL, NULL) ||
		    xmem_heap_free(x->h, d))
			die("alloc/free");
	}
	return (double)n / (now() - t);
}

static double p_atomic(struct ph *p, uint64_t n)
{
	double t = now();

	for (uint64_t i = 0; i < n; i++) {
		PMEMoid *d = &p->r->slot[i % NSLOT];
		if (pmemobj_alloc(p->pop, d, 64, 2, NULL, NULL))
			die("pmemobj_alloc");
		pmemobj_free(d);
	}
	return (double)n / (now() - t);
}

/* The spread row: SPREAD objects of 64-256 bytes (4 classes) are
 * allocated, each published into a destination of its own cache line,
 * then all freed; so consecutive operations change different lines
 * (bitmap words of 4 runs, 128 destination lines). */
#define SPREAD 128
#define align_up(n, a) (((n) + (a)-1) / (a) * (a))

static double x_spread(struct xh *x, uint64_t n)
{
	double t = now();

	n = align_up(n, 2 * SPREAD);
	for (uint64_t i = 0; i < n; i += 2 * SPREAD) {
		for (unsigned j = 0; j < SPREAD; j++)
			if (xmem_heap_alloc(x->h, &x->r->slot[j * 8],
					    64 + (j % 4) * 64, 2, 0, NULL,
					    NULL))
				die("alloc");
		for (unsigned j = 0; j < SPREAD; j++)
			if (xmem_heap_free(x->h, &x->r->slot[j * 8]))
				die("free");
	}
	return (double)n / 2 / (now() - t);
}

static double p_spread(struct ph *p, uint64_t n)
{
	double t = now();

	n = align_up(n, 2 * SPREAD);
	for (uint64_t i = 0; i < n; i += 2 * SPREAD) {
		for (unsigned j = 0; j < SPREAD; j++)
			if (pmemobj_alloc(p->pop, &p->r->slot[j * 8],
					  64 + (j % 4) * 64, 2, NULL, NULL))
				die("pmemobj_alloc");
		for (unsigned j = 0; j < SPREAD; j++)
			pmemobj_free(&p->r->slot[j * 8]);
	}
	return (double)n / 2 / (now() - t);
}

static xmem_oid *xoids;
static PMEMoid *poids;

static double x_txalloc(struct xh *x, uint64_t n)
{
	double t = now(), r;

	for (uint64_t i = 0; i < n; i++) {
		if (xmem_tx_begin(x->h) ||
		    xmem_tx_alloc(x->h, 64, 3, 0, &xoids[i]) ||
		    xmem_tx_commit(x->h))
			die("tx alloc");
	}
	r = (double)n / (now() - t);
	for (uint64_t i = 0; i < n; i += 1000) { /* not timed */
		xmem_tx_begin(x->h);
		for (uint64_t j = i; j < n && j < i + 1000; j++)
			xmem_tx_free(x->h, xoids[j]);
		xmem_tx_commit(x->h);
	}
	return r;
}

/* One libpmemobj transaction allocating 64 bytes. */
static void p_txalloc_one(struct ph *p, PMEMoid *out)
{
	TX_BEGIN(p->pop)
	{
		*out = pmemobj_tx_alloc(64, 3);
	}
	TX_ONABORT
	{
		die("pmemobj tx alloc");
	}
	TX_END
}

static double p_txalloc(struct ph *p, uint64_t n)
{
	double t = now(), r;

	for (uint64_t i = 0; i < n; i++)
		p_txalloc_one(p, &poids[i]);
	r = (double)n / (now() - t);
	for (uint64_t i = 0; i < n; i++)
		pmemobj_free(&poids[i]);
	return r;
}

static double x_tx8(struct xh *x, uint64_t n)
{
	double t = now();

	for (uint64_t i = 0; i < n; i++) {
		if (xmem_tx_begin(x->h) || xmem_tx_add_range(x->h, &x->r->x, 8))
			die("tx");
		x->r->x = i;
		if (xmem_tx_commit(x->h))
			die("commit");
	}
	return (double)n / (now() - t);
}

/* One libpmemobj transaction: an 8-byte snapshot and a store. */
static void p_tx8_one(struct ph *p, uint64_t v)
{
	TX_BEGIN(p->pop)
	{
		pmemobj_tx_add_range_direct(&p->r->x, 8);
		p->r->x = v;
	}
	TX_END
}

static double p_tx8(struct ph *p, uint64_t n)
{
	double t = now();

	for (uint64_t i = 0; i < n; i++)
		p_tx8_one(p, i);
	return (double)n / (now() - t);
}

/* --- 2 threads ------------------------------------------------------ */

struct thr {
	struct xh *x;
	struct ph *p;
	int id;
	uint64_t n;
};

static void *x_thr(void *arg)
{
	struct thr *t = arg;

	for (uint64_t i = 0; i < t->n; i++) {
		xmem_oid *d = &t->x->r->slot[t->id * 512 + i % 512];
		if (xmem_heap_alloc(t->x->h, d, 64, 2, 0, NULL, NULL) ||
		    xmem_heap_free(t->x->h, d))
			die("alloc/free");
	}
	return NULL;
}

static void *p_thr(void *arg)
{
	struct thr *t = arg;

	for (uint64_t i = 0; i < t->n; i++) {
		PMEMoid *d = &t->p->r->slot[t->id * 512 + i % 512];
		if (pmemobj_alloc(t->p->pop, d, 64, 2, NULL, NULL))
			die("pmemobj_alloc");
		pmemobj_free(d);
	}
	return NULL;
}

static double threads2(struct xh *x, struct ph *p, uint64_t n)
{
	pthread_t th[2];
	struct thr a[2] = { { x, p, 0, n }, { x, p, 1, n } };
	double t = now();

	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, x ? x_thr : p_thr, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	return 2.0 * (double)n / (now() - t);
}

/* --- output --------------------------------------------------------- */

static void row(const char *name, double *xv, double *pv, int n, double fences,
		const char *unit)
{
	double xm = median(xv, n), pm = median(pv, n);

	printf("%-34s %14.0f %14.0f %8.2fx %8.2f  %s\n", name, xm, pm, xm / pm,
	       fences, unit);
}

static void row_time(const char *name, double *xv, double *pv, int n)
{
	double xm = median(xv, n), pm = median(pv, n);

	printf("%-34s %13.4fs %13.4fs %8.3fx %8s  time (lower is better)\n",
	       name, xm, pm, xm / pm, "-");
}

#include "bench_heap_map.h"

/* Small-operation rows, interleaved per repetition. */
static void small_rows(void)
{
	double xa[32], pa[32], xt[32], pt[32], x8[32], p8[32], x2[32], p2[32],
		x1[32], p1[32], xs[32], ps[32];
	double fa = 0, ft = 0, f8 = 0, f2 = 0, fs = 0;
	struct xh x;
	struct ph p;
	uint64_t f;

	xoids = calloc(nops, sizeof(*xoids));
	poids = calloc(nops, sizeof(*poids));
	unlink(xpath);
	unlink(ppath);
	x_up(&x, POOL_SIZE, 1);
	p_up(&p, POOL_SIZE, 1);
	x_atomic(&x, 1000); /* warm up both */
	p_atomic(&p, 1000);
	double fc = fence_ns(&x, 0), fn = fence_ns(&x, 1);
	fence_cost = fc < fn ? fc : fn;
	printf("%-34s %12.0fns %12.0fns %9s %8s  one fence: write-back of "
	       "a line / 128 B non-temporal\n",
	       "fence cost (xmem mapping)", fc, fn, "-", "-");
	for (int r = 0; r < reps; r++) {
		f = x_fences(&x);
		xa[r] = x_atomic(&x, nops);
		fa = (double)(x_fences(&x) - f) / (double)nops / 2;
		pa[r] = p_atomic(&p, nops);
		f = x_fences(&x);
		xs[r] = x_spread(&x, nops);
		fs = (double)(x_fences(&x) - f) /
		     (double)align_up(nops, 2 * SPREAD);
		ps[r] = p_spread(&p, nops);
		f = x_fences(&x);
		xt[r] = x_txalloc(&x, nops);
		ft = (double)(x_fences(&x) - f) / (double)nops;
		pt[r] = p_txalloc(&p, nops);
		f = x_fences(&x);
		x8[r] = x_tx8(&x, nops);
		f8 = (double)(x_fences(&x) - f) / (double)nops;
		p8[r] = p_tx8(&p, nops);
		/* scaling: runs long enough (tens of ms per thread) that
		 * thread start and a new lane's first runs do not weigh */
		x1[r] = x_atomic(&x, 4 * nops);
		p1[r] = p_atomic(&p, 4 * nops);
		f = x_fences(&x);
		x2[r] = threads2(&x, NULL, 2 * nops);
		f2 = (double)(x_fences(&x) - f) / (double)nops / 8;
		p2[r] = threads2(NULL, &p, 2 * nops);
	}
	row("atomic alloc+free 64 B (pairs/s)", xa, pa, reps, fa,
	    "fences per alloc or free");
	floor_line(2 * fa, median(pa, reps));
	row("  128 live, 4 classes (pairs/s)", xs, ps, reps, fs,
	    "fences per alloc or free");
	row("tx alloc 64 B (tx/s)", xt, pt, reps, ft, "fences per tx");
	floor_line(ft, median(pt, reps));
	row("tx 8 B snapshot + store (tx/s)", x8, p8, reps, f8,
	    "fences per tx");
	floor_line(f8, median(p8, reps));
	double sx = median(x2, reps) / median(x1, reps);
	double sp = median(p2, reps) / median(p1, reps);
	row("2 threads alloc+free (pairs/s)", x2, p2, reps, f2,
	    "fences per alloc or free");
	printf("%-34s %14.2f %14.2f %8.2fx %8s  2-thread / 1-thread\n",
	       "  scaling 1 -> 2 threads", sx, sp, sx / sp, "-");
	x_down(&x);
	p_down(&p);
	free(xoids);
	free(poids);
}

/* Create, fill and open rows. */
static void pool_rows(void)
{
	double xc[16], pc[16], xo[16], po[16], xe[16];
	int n = reps < 3 ? reps : 3, no = 9;
	struct xh x;
	struct ph p;
	double t;

	for (int r = 0; r < n; r++) {
		unlink(xpath); /* freeing the old file's pages is not timed */
		unlink(ppath);
		t = now();
		x_up(&x, BIG_POOL, 1);
		xc[r] = now() - t;
		x_down(&x);
		t = now();
		p_up(&p, BIG_POOL, 1);
		pc[r] = now() - t;
		p_down(&p);
	}
	row_time("create 1 GiB heap", xc, pc, n);
	/* an empty heap and a heap with 1M objects; their opens are
	 * interleaved with libpmemobj's */
	const char *full = xpath;
	xpath = "/dev/shm/xmem-bench-heap.empty";
	unlink(xpath);
	x_up(&x, BIG_POOL, 1);
	x_down(&x);
	xpath = full;
	unlink(xpath);
	unlink(ppath);
	x_up(&x, BIG_POOL, 1);
	for (int i = 0; i < 1000000; i++)
		if (xmem_heap_alloc(x.h, &x.r->slot[i % NSLOT], 64, 2, 0, NULL,
				    NULL))
			die("fill");
	x_down(&x);
	p_up(&p, BIG_POOL, 1);
	for (int i = 0; i < 1000000; i++)
		if (pmemobj_alloc(p.pop, NULL, 64, 2, NULL, NULL))
			die("pmemobj fill");
	p_down(&p);
	for (int r = 0; r < no; r++) {
		t = now();
		x_up(&x, BIG_POOL, 0);
		xo[r] = now() - t;
		x_down(&x);
		t = now();
		p_up(&p, BIG_POOL, 0);
		po[r] = now() - t;
		p_down(&p);
		xpath = "/dev/shm/xmem-bench-heap.empty";
		t = now();
		x_up(&x, BIG_POOL, 0);
		xe[r] = now() - t;
		x_down(&x);
		xpath = full;
	}
	row_time("open 1 GiB heap, 1M objects", xo, po, no);
	printf("%-34s %13.4fs %14s %8.2fx %8s  full / empty (xmem)\n",
	       "  xmem open: empty heap", median(xe, no), "-",
	       median(xo, no) / median(xe, no), "-");
	unlink(xpath);
	unlink(ppath);
	unlink("/dev/shm/xmem-bench-heap.empty");
}

int main(int argc, char **argv)
{
	int opt;

	if (!getenv("XMEM_FORCE_GRANULARITY") ||
	    !getenv("PMEM_IS_PMEM_FORCE")) {
		setenv("XMEM_FORCE_GRANULARITY", "cacheline", 1);
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execv("/proc/self/exe", argv);
		perror("execv");
		return 1;
	}
	while ((opt = getopt(argc, argv, "r:n:q")) != -1) {
		if (opt == 'r')
			reps = atoi(optarg);
		else if (opt == 'n')
			hm_keys = strtoull(optarg, NULL, 0);
		else if (opt == 'q') {
			reps = 3;
			nops = 20000;
			hm_keys = 100000;
		} else {
			fprintf(stderr, "usage: %s [-r REPS] [-n KEYS] [-q]\n",
				argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > 31)
		reps = 5;
	printf("xmem heap vs libpmemobj %s, /dev/shm, cache-line granularity "
	       "forced; medians of %d repetitions\n",
	       "(Debian)", reps);
	printf("%-34s %14s %14s %9s %8s\n", "row", "xmem", "libpmemobj",
	       "ratio", "fences");
	small_rows();
	map_rows();
	pool_rows();
	return 0;
}
