/* SPDX-License-Identifier: MIT */
/*
 * persist_bench.c - xmem's memcpy-with-persist and persist beside
 * libpmem's pmem_memcpy_persist and pmem_persist, in one run.
 *
 * Both write the same destination (a /dev/shm file mapped through xmem's
 * device layer, cache-line granularity forced with
 * XMEM_FORCE_GRANULARITY=cacheline; libpmem gets PMEM_IS_PMEM_FORCE=1)
 * from the same warmed source. A raw non-temporal store loop (AVX-512
 * streaming stores of a register, then sfence; no loads, no edge
 * handling) measured in the same run is the bandwidth ceiling.
 *
 * Every repetition runs each method once, in a random order, so that
 * noise from other processes falls on all of them alike; the table shows
 * medians over the repetitions.
 *
 *   memcpy rows: a batch of back-to-back copies, timed as a whole.
 *   persist rows: the range is dirtied with ordinary stores (not timed),
 *     then the persist call alone is timed with the TSC; xmem's and
 *     libpmem's calls alternate op by op.
 *
 * Usage: persist_bench [-r REPS] [-t]   (-t: the non-temporal threshold
 * study: xmem_memcpy with the TEMPORAL flag against NONTEMPORAL).
 */
#include <immintrin.h>
#include <libpmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xmem.h>

#define MAXSZ (2u << 20)
#define MAP_SIZE (4u << 20)

enum { X_CPY, P_CPY, RAW_NT, RAW_CPY, X_PER, P_PER, NMETH };

static const struct xmem_persist_ops *ops;
static char *dst;
static char *src;
static double ns_per_tick;

static inline uint64_t ticks(void)
{
	uint64_t t;

	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return t;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
	uint64_t n0 = now_ns(), t0 = ticks(), n1, t1;

	do {
		n1 = now_ns();
	} while (n1 - n0 < 50000000ull);
	t1 = ticks();
	ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
}

/* The ceiling: streaming stores of one register over [d, d+len). */
__attribute__((target("avx512f"), noinline)) static void
raw_nt_store(char *d, size_t len)
{
	__m512i v = _mm512_set1_epi8(0x5a);

	for (size_t i = 0; i < len; i += 256) {
		_mm512_stream_si512((void *)(d + i), v);
		_mm512_stream_si512((void *)(d + i + 64), v);
		_mm512_stream_si512((void *)(d + i + 128), v);
		_mm512_stream_si512((void *)(d + i + 192), v);
	}
	/* The streaming stores are complete before the clock stops. */
	_mm_sfence();
}

/* Streaming copy of aligned whole lines; no edges, no dispatch. */
__attribute__((target("avx512f"), noinline)) static void
raw_nt_copy(char *d, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i += 256) {
		__m512i a = _mm512_load_si512((const void *)(s + i));
		__m512i b = _mm512_load_si512((const void *)(s + i + 64));
		__m512i c = _mm512_load_si512((const void *)(s + i + 128));
		__m512i e = _mm512_load_si512((const void *)(s + i + 192));

		_mm512_stream_si512((void *)(d + i), a);
		_mm512_stream_si512((void *)(d + i + 64), b);
		_mm512_stream_si512((void *)(d + i + 128), c);
		_mm512_stream_si512((void *)(d + i + 192), e);
	}
	/* As above: the copy is complete when the call returns. */
	_mm_sfence();
}

/* One op of persist method m on a freshly dirtied range, in ticks. */
static uint64_t persist_once(int m, size_t sz, int val)
{
	uint64_t t0;

	memset(dst, val, sz);
	/* The dirtying stores are in the cache before the clock starts, so
	 * a store still waiting for its line is not billed to the flush. */
	_mm_mfence();
	t0 = ticks();
	if (m == X_PER)
		ops->persist(dst, sz);
	else
		pmem_persist(dst, sz);
	return ticks() - t0;
}

/*
 * Persist is timed per call, and xmem's and libpmem's calls alternate
 * op by op (the order flipping every op), so that both see the same
 * cache and write-back state: the cost of a write-back here depends on
 * what the memory system did just before, not only on the code.
 * Returns ns per op of each in px (X_PER) and pp (P_PER).
 */
static void sample_persist(size_t sz, int k, double *px, double *pp)
{
	static unsigned flip;
	uint64_t sx = 0, sp = 0;

	/* At least 8 pairs, and which one goes first flips each sample. */
	k = k < 8 ? 8 : k;
	flip ^= 1;
	memset(dst, 0, sz);
	pmem_persist(dst, sz);
	for (int i = 0; i < k; i++) {
		if ((i ^ flip) & 1) {
			sp += persist_once(P_PER, sz, 2 * i);
			sx += persist_once(X_PER, sz, 2 * i + 1);
		} else {
			sx += persist_once(X_PER, sz, 2 * i);
			sp += persist_once(P_PER, sz, 2 * i + 1);
		}
	}
	*px = (double)sx * ns_per_tick / k;
	*pp = (double)sp * ns_per_tick / k;
}

/* One timed batch of copy method m at size sz, in ns per operation. */
static double sample(int m, size_t sz, int k)
{
	uint64_t t0;

	t0 = ticks();
	for (int i = 0; i < k; i++) {
		switch (m) {
		case X_CPY:
			ops->memcpy(dst, src, sz, 0);
			break;
		case P_CPY:
			pmem_memcpy_persist(dst, src, sz);
			break;
		case RAW_NT:
			raw_nt_store(dst, sz < 256 ? 256 : sz);
			break;
		case RAW_CPY:
			raw_nt_copy(dst, src, sz < 256 ? 256 : sz);
			break;
		}
	}
	return (double)(ticks() - t0) * ns_per_tick / k;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rng(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* Ops per sample: enough that a sample lasts some microseconds. */
static int batch(size_t sz)
{
	size_t k = (64u << 10) / sz;

	return k < 1 ? 1 : k > 64 ? 64 : (int)k;
}

static void fmt_size(char *b, size_t n, size_t sz)
{
	if (sz >= (1u << 20))
		snprintf(b, n, "%zu MiB", sz >> 20);
	else if (sz >= 1024)
		snprintf(b, n, "%zu KiB", sz >> 10);
	else
		snprintf(b, n, "%zu B", sz);
}

/* Median over the repetitions of a[r] / b[r]: each ratio compares two
 * methods measured moments apart, which cancels slow drifts of the
 * machine's load. */
static double paired_ratio(const double *a, const double *b, int reps)
{
	double *q = malloc(sizeof(double) * (size_t)reps), m;

	for (int r = 0; r < reps; r++)
		q[r] = a[r] / b[r];
	m = median(q, reps);
	free(q);
	return m;
}

struct result {
	double med[NMETH];   /* median ns per op of each method */
	double cpy, pers;    /* paired ratios libpmem / xmem */
	double rawnt, rawcp; /* paired ratios raw loop / xmem memcpy */
};

/* Runs every method interleaved `reps` times at size sz. */
static void measure(size_t sz, int reps, struct result *res)
{
	double *v = malloc(sizeof(double) * (size_t)reps * NMETH);
	int k = batch(sz);
	double px, pp;

	for (int w = 0; w < 10; w++) {
		for (int m = X_CPY; m <= RAW_CPY; m++)
			sample(m, sz, k);
		sample_persist(sz, k, &px, &pp);
	}
	for (int r = 0; r < reps; r++) {
		int order[P_PER], nm = P_PER; /* X_PER runs P_PER too */

		/* A fresh random order each repetition, so that no method
		 * always follows the same other one. */
		for (int j = 0; j < nm; j++)
			order[j] = j;
		for (int j = nm - 1; j > 0; j--) {
			int o = (int)(rng() % (uint64_t)(j + 1)), t = order[j];

			order[j] = order[o];
			order[o] = t;
		}
		for (int j = 0; j < nm; j++) {
			int x = order[j];

			if (x == X_PER)
				sample_persist(sz, k, &v[X_PER * reps + r],
					       &v[P_PER * reps + r]);
			else
				v[x * reps + r] = sample(x, sz, k);
		}
	}
	res->cpy = paired_ratio(v + P_CPY * reps, v + X_CPY * reps, reps);
	res->pers = paired_ratio(v + P_PER * reps, v + X_PER * reps, reps);
	res->rawnt = paired_ratio(v + RAW_NT * reps, v + X_CPY * reps, reps);
	res->rawcp = paired_ratio(v + RAW_CPY * reps, v + X_CPY * reps, reps);
	for (int j = 0; j < NMETH; j++)
		res->med[j] = median(v + j * reps, reps);
	free(v);
}

static void main_table(int reps)
{
	double worst_c = 1e9, worst_p = 1e9, worst_bw = 1e9;
	struct result r;
	char b[32];

	printf("%-8s | %10s %10s %6s %7s %7s | %10s %10s %6s\n", "size",
	       "xmem cpy", "pmem cpy", "ratio", "%rawNT", "%rawCP", "xmem pers",
	       "pmem pers", "ratio");
	printf("%-8s | %10s %10s %6s %7s %7s | %10s %10s %6s\n", "", "ns", "ns",
	       "", "", "", "ns", "ns", "");
	for (size_t sz = 64; sz <= MAXSZ; sz *= 2) {
		measure(sz, reps, &r);
		worst_c = r.cpy < worst_c ? r.cpy : worst_c;
		worst_p = r.pers < worst_p ? r.pers : worst_p;
		fmt_size(b, sizeof(b), sz);
		printf("%-8s | %10.1f %10.1f %6.3f ", b, r.med[X_CPY],
		       r.med[P_CPY], r.cpy);
		if (sz >= (64u << 10)) {
			worst_bw = 100 * r.rawnt < worst_bw ? 100 * r.rawnt
							    : worst_bw;
			printf("%6.1f%% %6.1f%% ", 100 * r.rawnt,
			       100 * r.rawcp);
		} else {
			printf("%7s %7s ", "-", "-");
		}
		printf("| %10.1f %10.1f %6.3f\n", r.med[X_PER], r.med[P_PER],
		       r.pers);
		fflush(stdout);
	}
	printf("\nns: medians per operation. ratio: median over repetitions "
	       "of libpmem time / xmem time\n(>= 1: xmem faster). %%rawNT: "
	       "the same of raw NT store loop time / xmem memcpy time\n"
	       "(xmem's share of the raw store bandwidth); %%rawCP: against "
	       "a raw NT copy loop.\n");
	printf("worst memcpy ratio %.3f, worst persist ratio %.3f, "
	       "worst %%rawNT at >= 64 KiB %.1f%%\n",
	       worst_c, worst_p, worst_bw);
	printf("targets (ratio >= 0.95, %%rawNT >= 90%%): %s\n",
	       worst_c >= 0.95 && worst_p >= 0.95 && worst_bw >= 90.0
		       ? "met"
		       : "NOT met");
}

/* ns per xmem_memcpy with `flags`, over destinations that rotate through
 * a 64 KiB window (distinct lines, as a log or heap writes them); with
 * `readback`, each copy's lines are read again right after it. */
static double xmem_flagged(size_t sz, unsigned flags, int readback)
{
	size_t step = (sz + 127) & ~(size_t)63, pos = 0, win = 64u << 10;
	volatile const char *p;
	uint64_t t0 = ticks();

	for (int i = 0; i < 256; i++) {
		xmem_memcpy(dst + pos, src, sz, flags);
		if (readback) {
			p = (volatile const char *)(dst + pos);
			for (size_t o = 0; o < sz; o += 64)
				(void)p[o];
		}
		pos = pos + 2 * step > win ? 0 : pos + step;
	}
	return (double)(ticks() - t0) * ns_per_tick / 256;
}

/* Where non-temporal stores start to pay: cached stores + clwb against
 * NT stores, each alone and followed by a re-read of what was written
 * (after clwb the lines stay cached; after NT stores they do not). */
static void threshold_table(int reps)
{
	static const size_t sizes[] = { 64,  128, 192,	256,  384,
					512, 768, 1024, 2048, 4096 };
	static const unsigned fl[2] = { XMEM_F_MEM_TEMPORAL,
					XMEM_F_MEM_NONTEMPORAL };
	double *v = malloc(sizeof(double) * (size_t)reps * 4);

	printf("%-6s %10s %10s %7s | %12s %12s\n", "size", "temporal", "NT",
	       "T/NT", "T + re-read", "NT + re-read");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double m[4];

		for (int r = 0; r < reps; r++)
			for (int j = 0; j < 4; j++) {
				int x = (j + r) & 3;

				v[x * reps + r] = xmem_flagged(
					sizes[i], fl[x & 1], x >> 1);
			}
		for (int j = 0; j < 4; j++)
			m[j] = median(v + j * reps, reps);
		printf("%-6zu %10.1f %10.1f %7.3f | %12.1f %12.1f\n", sizes[i],
		       m[0], m[1], m[0] / m[1], m[2], m[3]);
	}
	free(v);
}

/* Both libraries read their environment at load time: set it and
 * start again when it is not what this benchmark needs. */
static void ensure_env(char **argv)
{
	const char *g = getenv("XMEM_FORCE_GRANULARITY");
	const char *p = getenv("PMEM_IS_PMEM_FORCE");

	if (g && !strcmp(g, "cacheline") && p && !strcmp(p, "1"))
		return;
	setenv("XMEM_FORCE_GRANULARITY", "cacheline", 1);
	setenv("PMEM_IS_PMEM_FORCE", "1", 1);
	execv("/proc/self/exe", argv);
	perror("re-exec with the benchmark's environment");
	exit(1);
}

int main(int argc, char **argv)
{
	struct xmem_device *dev = NULL;
	struct xmem_map *map = NULL;
	struct xmem_cpu_info ci;
	char path[128];
	int reps = 1001, thr = 0, opt, rc;

	ensure_env(argv);
	while ((opt = getopt(argc, argv, "r:t")) != -1) {
		if (opt == 'r')
			reps = atoi(optarg) > 0 ? atoi(optarg) : reps;
		else if (opt == 't')
			thr = 1;
		else
			return fprintf(stderr, "usage: %s [-r REPS] [-t]\n",
				       argv[0]),
			       2;
	}
	snprintf(path, sizeof(path), "/dev/shm/xmem-bench-%d", (int)getpid());
	rc = xmem_device_open(&dev, path, MAP_SIZE, XMEM_F_CREATE);
	if (!rc)
		rc = xmem_device_map(dev, 0, MAP_SIZE, 0, XMEM_F_MAP_POPULATE,
				     &map);
	if (rc) {
		fprintf(stderr, "%s: %s\n", path, xmem_errormsg());
		unlink(path);
		return 1;
	}
	unlink(path);
	if (xmem_map_granularity(map) != XMEM_GRAN_CACHELINE) {
		fprintf(stderr, "granularity is %s, not cacheline\n",
			xmem_granularity_name(xmem_map_granularity(map)));
		return 1;
	}
	ops = xmem_map_ops(map);
	dst = xmem_map_addr(map);
	src = aligned_alloc(4096, MAXSZ);
	for (size_t i = 0; i < MAXSZ; i++)
		src[i] = (char)(i * 131 + 7);
	memset(dst, 1, MAP_SIZE);
	xmem_cpu_info(&ci);
	calibrate();
	printf("xmem: flush %s, memcpy %s, NT threshold %zu B; "
	       "libpmem %s, pmem_is_pmem %d; %d repetitions, medians\n\n",
	       ci.flush_insn, ci.memcpy_impl, ci.movnt_threshold,
	       pmem_check_version(PMEM_MAJOR_VERSION, PMEM_MINOR_VERSION)
		       ? "?"
		       : "ok",
	       pmem_is_pmem(dst, MAXSZ), reps);
	if (thr)
		threshold_table(reps);
	else
		main_table(reps);
	xmem_map_delete(&map);
	xmem_device_close(&dev);
	free(src);
	return 0;
}
