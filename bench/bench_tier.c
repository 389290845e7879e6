/* SPDX-License-Identifier: MIT */
/*
 * bench_tier.c - placement quality and costs of the tiering engine.
 *
 * Workload: a read/write mix (70/30, 8-byte accesses at random 64-byte
 * lines) whose unit is drawn from a Zipf distribution (theta 0.99) over
 * the units of a 4 GiB tier with a 512 MiB DRAM budget. Ranks are mapped
 * to units by a random permutation; the first touch is a sequential fill,
 * so static first-touch placement (what memkind does) holds the first
 * 512 MiB by address. Both tiers are DRAM here, so quality is the DRAM
 * hit ratio: the fraction of accesses that found their unit in DRAM.
 * Measured on the same access stream, in the same run:
 *   xmem    the engine's placement, read at each access;
 *   oracle  the truly hottest budget-many units of the current phase;
 *   static  first-touch placement, never migrated.
 * Phase 1 runs to steady state; in phase 2 the hot set moves (a new
 * permutation) and the hit ratio is tracked every 0.5 s.
 *
 * The engine's CPU (the thread CPU clocks of its fault and policy
 * threads) is reported per phase: the first touch (a sequential fill),
 * phase 1's first half (converging from first-touch placement), its
 * second half (steady state) and phase 2; and for its busiest 0.5 s.
 *
 * Also: migration throughput against memcpy in the same run, and the cost
 * of a first-touch fault, a hinting fault and a 2 MiB migration. The
 * memcpy baseline copies the same bytes in the same pieces (2 MiB, cold
 * source, destination already populated, as a migration's after a unit's
 * first move) with both kinds of stores, and in one 256 MiB call; the
 * fastest of the three is the baseline.
 *
 * Memory: the tier's DRAM and device memory together hold its size (4 GiB
 * by default); the throughput part, after it, 1 GiB. --size/--budget
 * scale it down (say so when reporting).
 *
 * Usage: bench_tier [--size SIZE] [--budget SIZE] [--steady SECONDS]
 *                   [--after SECONDS] [--samples PER_SEC]
 *                   [--sample-bytes BYTES]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <xmem.h>

#include "core/util.h"
#include "tier/tier_internal.h"

#define MiB (1ull << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64: independent bits in every draw. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* x^y for x >= 1, without libm: exp(y ln x) by series (1e-12). */
static double powd(double x, double y)
{
	union {
		double d;
		uint64_t u;
	} v = { x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023, k;
	double m, z, z2, ln = 0, term, r, ex = 1;

	v.u = (v.u & ~(0x7ffull << 52)) | (1023ull << 52);
	m = v.d;
	z = (m - 1) / (m + 1);
	z2 = z * z;
	term = z;
	for (int i = 1; i < 60; i += 2, term *= z2)
		ln += term / i;
	ln = 2 * ln + e * 0.6931471805599453;
	r = y * ln;
	k = (int)(r / 0.6931471805599453);
	r -= k * 0.6931471805599453;
	term = 1;
	for (int i = 1; i < 30; i++) {
		term *= r / i;
		ex += term;
	}
	while (k-- > 0)
		ex *= 2;
	return ex;
}

/* Walker's alias table for O(1) Zipf draws over n items. */
struct alias {
	uint32_t n;
	double *prob;
	uint32_t *alias;
	double *p; /* the distribution itself */
};

static void zipf_init(struct alias *a, uint32_t n, double theta)
{
	double sum = 0;
	uint32_t *small = malloc(n * sizeof(uint32_t));
	uint32_t *large = malloc(n * sizeof(uint32_t));
	double *q = malloc(n * sizeof(double));
	uint32_t ns = 0, nl = 0;

	a->n = n;
	a->prob = malloc(n * sizeof(double));
	a->alias = malloc(n * sizeof(uint32_t));
	a->p = malloc(n * sizeof(double));
	for (uint32_t i = 0; i < n; i++)
		sum += a->p[i] = 1.0 / powd(i + 1.0, theta);
	for (uint32_t i = 0; i < n; i++) {
		a->p[i] /= sum;
		q[i] = a->p[i] * n;
		if (q[i] < 1)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns && nl) {
		uint32_t s = small[--ns], l = large[nl - 1];

		a->prob[s] = q[s];
		a->alias[s] = l;
		q[l] -= 1 - q[s];
		if (q[l] < 1) {
			nl--;
			small[ns++] = l;
		}
	}
	while (nl)
		a->prob[large[--nl]] = 1;
	while (ns)
		a->prob[small[--ns]] = 1;
	free(small);
	free(large);
	free(q);
}

static uint32_t zipf_draw(const struct alias *a, uint64_t *s)
{
	uint64_t r = rnd(s);
	uint32_t i = (uint32_t)((r >> 32) % a->n);
	double u = (double)(r & 0xffffffffu) / 4294967296.0;

	return u < a->prob[i] ? i : a->alias[i];
}

static void shuffle(uint32_t *perm, uint32_t n, uint64_t *s)
{
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(s) % (i + 1)), x = perm[i];
		perm[i] = perm[j];
		perm[j] = x;
	}
}

/* The engine's counters at one instant. */
struct snap {
	double t;
	uint64_t engine, fault, sample, move; /* CPU ns */
	uint64_t prom, dem, samples, first_touch;
};

static void snap_take(struct xmem_tier *t, struct snap *s)
{
	s->t = now_s();
	s->engine = atomic_load(&t->c.engine_cpu_ns);
	s->fault = atomic_load(&t->c.fault_cpu_ns);
	s->sample = atomic_load(&t->c.sample_cpu_ns);
	s->move = atomic_load(&t->c.move_cpu_ns);
	s->prom = atomic_load(&t->c.promotions);
	s->dem = atomic_load(&t->c.demotions);
	s->samples = atomic_load(&t->c.samples);
	s->first_touch = atomic_load(&t->c.first_touch);
}

struct window {
	uint64_t n, xmem, oracle, stat;
	struct snap end; /* the engine's counters at the window's end */
};

/* Runs the workload for secs, filling windows of win seconds. */
static void run_phase(struct xmem_tier *t, const struct alias *z,
		      const uint32_t *perm, uint64_t budget_units, double secs,
		      double win, struct window *w, int nw, uint64_t *seed)
{
	char *base = xmem_tier_addr(t);
	uint64_t unit = xmem_tier_unit(t);
	double t0 = now_s(), tw = t0 + win;
	int k = 0;
	volatile uint64_t sink = 0;

	memset(w, 0, sizeof(*w) * nw);
	while (k < nw) {
		for (int j = 0; j < 4096; j++) {
			uint32_t r = zipf_draw(z, seed);
			uint32_t u = perm[r];
			uint64_t line = rnd(seed) % (unit / 64);
			uint64_t *p = (uint64_t *)(base + u * unit + line * 64);
			uint32_t st = atomic_load(&t->u[u].st) & U_WHERE;

			if (line % 10 < 3)
				*p += 1;
			else
				sink += *p;
			w[k].n++;
			w[k].xmem += st == XMEM_TIER_DRAM;
			w[k].oracle += r < budget_units;
			w[k].stat += u < budget_units;
		}
		if (now_s() >= tw) {
			snap_take(t, &w[k].end);
			k++;
			tw += win;
			if (now_s() - t0 > secs + win)
				break;
		}
	}
	(void)sink;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / b : 0;
}

/* One row of the engine-cost table: what the engine did from a to b. */
static void cost_row(const char *name, const struct snap *a,
		     const struct snap *b)
{
	double wall = b->t - a->t, pct = wall > 0 ? 100 / wall / 1e9 : 0;

	printf("%-26s %6.1f %7.2f%% %7.2f%% %7.2f%% %7.2f%% %6llu %8.0f\n",
	       name, wall, (b->engine - a->engine) * pct,
	       (b->fault - a->fault) * pct, (b->sample - a->sample) * pct,
	       (b->move - a->move) * pct,
	       (unsigned long long)(b->prom - a->prom),
	       wall > 0 ? (b->samples - a->samples) / wall : 0);
}

/* The engine's CPU in its busiest window of a phase (% of one core). */
static double worst_window(const struct snap *prev, const struct window *w,
			   int nw)
{
	double worst = 0;

	for (int k = 0; k < nw; k++) {
		const struct snap *a = k ? &w[k - 1].end : prev;
		double wall = w[k].end.t - a->t;
		double c = wall > 0 ? (w[k].end.engine - a->engine) / wall / 1e7
				    : 0;

		worst = c > worst ? c : worst;
	}
	return worst;
}

/* Placement quality: steady state, then the hot set moves. */
static uint32_t opt_samples, opt_sample_bytes;

/* Prints the per-phase cost of the engine, with what counts as its CPU. */
static void print_costs(const struct snap *fill0, const struct snap *fill1,
			const struct window *w1, int nw1,
			const struct window *w2, int nw2)
{
	printf("\nengine CPU (%% of one core; all the engine's threads)\n");
	printf("%-26s %6s %8s %8s %8s %8s %6s %8s\n", "phase", "s", "engine",
	       "fault", "sampling", "moving", "promo", "samples/s");
	cost_row("first touch (fill)", fill0, fill1);
	cost_row("phase 1, converging", fill1, &w1[nw1 / 2 - 1].end);
	cost_row("phase 1, steady state", &w1[nw1 / 2 - 1].end,
		 &w1[nw1 - 1].end);
	cost_row("phase 2, hot set moved", &w1[nw1 - 1].end, &w2[nw2 - 1].end);
	printf("%-26s %6s %7.2f%% (phase 1) %7.2f%% (phase 2)\n",
	       "busiest 0.5 s window", "", worst_window(fill1, w1, nw1),
	       worst_window(&w1[nw1 - 1].end, w2, nw2));
	printf("%-34s %10.1f\n", "engine CPU per first touch (us)",
	       fill1->first_touch > fill0->first_touch
		       ? (fill1->fault - fill0->fault) / 1e3 /
				 (double)(fill1->first_touch -
					  fill0->first_touch)
		       : 0);
	const struct snap *a = &w1[nw1 - 1].end, *b = &w2[nw2 - 1].end;
	printf("%-34s %10.1f\n", "engine CPU per move, phase 2 (us)",
	       b->prom + b->dem > a->prom + a->dem
		       ? (b->move - a->move) / 1e3 /
				 (double)(b->prom + b->dem - a->prom - a->dem)
		       : 0);
	printf("  engine = the fault thread (first touches, faults on moving\n"
	       "  units) + the policy thread (sampling, decisions, and every\n"
	       "  migration: fence, copy, remap), by their thread CPU clocks.\n"
	       "  In it too: the engine's first copy into memory never used\n"
	       "  before (its allocation). Not in it: the program's own page\n"
	       "  faults, which its threads take in the kernel: hinting\n"
	       "  faults (cost per fault below), refaults of a unit's pages\n"
	       "  after it moved, and the first use of the pages it touches.\n"
	       "  The engine holds itself to 8%% of a core (cpu_percent).\n");
}

static int quality(uint64_t size, uint64_t budget, double steady, double after)
{
	struct xmem_tier_config cfg;
	struct xmem_tier_stats s1;
	struct xmem_tier *t;
	struct alias z;
	uint64_t seed = 88172645463325252ull, unit = 2 * MiB;
	uint32_t n = (uint32_t)(size / unit), *perm = malloc(n * 4);
	uint64_t bu = budget / unit;
	int nw1 = (int)(steady / 0.5), nw2 = (int)(after / 0.5);
	struct window *w1 = calloc(nw1, sizeof(*w1)),
		      *w2 = calloc(nw2, sizeof(*w2));
	struct window ss = { 0 };
	struct snap fill0, fill1;
	int rc;

	xmem_tier_config_init(&cfg);
	cfg.size = size;
	cfg.dram_budget = budget;
	cfg.name = "bench";
	cfg.sample_per_sec = opt_samples;
	cfg.sample_bytes = opt_sample_bytes;
	cfg.flags = XMEM_F_TIER_PUBLISH;
	rc = xmem_tier_new(&cfg, &t);
	if (rc) {
		fprintf(stderr, "xmem_tier_new: %s\n", xmem_errormsg());
		return 1;
	}
	zipf_init(&z, n, 0.99);
	shuffle(perm, n, &seed);
	/* First touch: a sequential fill, as a program initialising. */
	snap_take(t, &fill0);
	for (uint64_t off = 0; off < size; off += 4096)
		((char *)xmem_tier_addr(t))[off] = 1;
	snap_take(t, &fill1);
	run_phase(t, &z, perm, bu, steady, 0.5, w1, nw1, &seed);
	/* steady state: the last half of phase 1 (the first half includes
	 * the convergence from the sequential first touch) */
	for (int k = nw1 / 2; k < nw1; k++) {
		ss.n += w1[k].n;
		ss.xmem += w1[k].xmem;
		ss.oracle += w1[k].oracle;
		ss.stat += w1[k].stat;
	}
	if (getenv("BENCH_TIER_DEBUG")) {
		for (uint32_t r = 0; r < n; r += (r < 16    ? 1
						  : r < 128 ? 8
							    : 64)) {
			uint32_t u = perm[r];
			printf("rank %4u unit %4u heat %6.2f ev %5.2f ex %7.4f "
			       "%s moves %u\n",
			       r, u, atomic_load(&t->u[u].heat), t->u[u].ev,
			       t->u[u].ex,
			       (atomic_load(&t->u[u].st) & 3) == 1 ? "DRAM"
								   : "dev",
			       atomic_load(&t->u[u].moves));
		}
	}
	if (getenv("BENCH_TIER_DEBUG"))
		printf("DRAM samples empty: recent %.2f, long run %.2f\n",
		       t->dram_cold, t->dram_cold_avg);
	printf("phase 1 (%.0f s, hit ratio per 0.5 s):", steady);
	for (int k = 0; k < nw1; k++)
		printf(" %.2f", ratio(w1[k].xmem, w1[k].n));
	printf("\n");
	/* the hot set moves */
	shuffle(perm, n, &seed);
	run_phase(t, &z, perm, bu, after, 0.5, w2, nw2, &seed);
	printf("phase 2 (hot set moved, per 0.5 s):");
	double target = 0.9 * ratio(ss.xmem, ss.n), rec = -1;
	for (int k = 0; k < nw2; k++) {
		double r = ratio(w2[k].xmem, w2[k].n);
		printf(" %.2f", r);
		if (rec < 0 && r >= target)
			rec = (k + 1) * 0.5;
	}
	printf("\n\n");
	xmem_tier_stats(t, &s1);
	printf("%-34s %10s %10s %10s %8s\n", "placement quality", "xmem",
	       "oracle", "static", "ratio");
	printf("%-34s %10.3f %10.3f %10.3f %7.0f%%\n", "steady DRAM hit ratio",
	       ratio(ss.xmem, ss.n), ratio(ss.oracle, ss.n),
	       ratio(ss.stat, ss.n), 100 * ratio(ss.xmem, ss.oracle));
	if (rec >= 0)
		printf("%-34s %10.1f\n", "recovery to 90% of steady (s)", rec);
	else
		printf("%-34s %10s\n", "recovery to 90% of steady (s)",
		       "> window");
	print_costs(&fill0, &fill1, w1, nw1, w2, nw2);
	printf("\n%-34s %10.1f\n", "engine us per sample (phase 1)",
	       w1[nw1 - 1].end.samples > fill1.samples
		       ? (w1[nw1 - 1].end.sample - fill1.sample) / 1e3 /
				 (double)(w1[nw1 - 1].end.samples -
					  fill1.samples)
		       : 0);
	printf("%-34s %10.2f\n", "sample window at end (ms)",
	       atomic_load(&t->win_ns) / 1e6);
	printf("%-34s %10.1f\n", "accesses (M/s), phase 1",
	       ss.n * 2 / (steady) / 1e6);
	printf("%-34s %10llu %10llu\n", "promotions / demotions",
	       (unsigned long long)s1.promotions,
	       (unsigned long long)s1.demotions);
	printf("%-34s %10llu %10llu\n", "hinting faults / samples",
	       (unsigned long long)s1.hint_faults,
	       (unsigned long long)s1.samples);
	printf("%-34s %10llu %10llu\n", "DRAM peak / budget (MiB)",
	       (unsigned long long)(s1.dram_peak / MiB),
	       (unsigned long long)(budget / MiB));
	xmem_tier_delete(&t);
	free(perm);
	free(w1);
	free(w2);
	return 0;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of n doubles (sorts them). */
static double median(double *v, int n)
{
	qsort(v, n, sizeof(double), cmp_dbl);
	return v[n / 2];
}

#define ROUNDS 6

/*
 * One round of the memcpy baseline, the same bytes as a migration round:
 * 128 copies of 2 MiB between two populated 256 MiB buffers (so each
 * source is cold, as a migrating unit's), timed one by one like the
 * migrations, with cached stores (memcpy) and non-temporal ones; and one
 * 256 MiB memcpy (glibc streams it). The direction alternates.
 */
static void memcpy_round(char *x, char *y, uint64_t unit, uint64_t n, int r,
			 double *chunk, double *chunk_nt, double *whole)
{
	char *src = r % 2 ? y : x, *dst = r % 2 ? x : y;
	double t0;

	for (uint64_t i = 0; i < n; i++) {
		t0 = now_s();
		memcpy(dst + i * unit, src + i * unit, unit);
		chunk[i] = now_s() - t0;
	}
	for (uint64_t i = 0; i < n; i++) {
		t0 = now_s();
		xmem_memcpy(src + i * unit, dst + i * unit, unit,
			    XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NOFLUSH);
		atomic_thread_fence(memory_order_seq_cst);
		chunk_nt[i] = now_s() - t0;
	}
	t0 = now_s();
	memcpy(dst, src, n * unit);
	*whole = now_s() - t0;
}

/*
 * Migration throughput vs memcpy, and the per-operation costs. Rounds of
 * migrations and of the memcpy baseline alternate, so that load from
 * elsewhere on the machine weighs on both alike. The baseline is the
 * fastest of the three memcpy figures.
 */
static int costs(void)
{
	uint64_t unit = 2 * MiB, n = 128, sz = n * unit;
	struct xmem_tier_config cfg;
	struct xmem_tier *t;
	static double mig[ROUNDS * 128], chunk[ROUNDS * 128],
		chunk_nt[ROUNDS * 128];
	double ft[128], hint[256], whole[ROUNDS], t0;
	char *b, *x, *y;
	int nh = 0;

	xmem_tier_config_init(&cfg);
	cfg.size = sz;
	cfg.dram_budget = sz;
	cfg.flags = XMEM_F_TIER_NO_POLICY;
	if (xmem_tier_new(&cfg, &t)) {
		fprintf(stderr, "xmem_tier_new: %s\n", xmem_errormsg());
		return 1;
	}
	b = xmem_tier_addr(t);
	x = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	y = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (x == MAP_FAILED || y == MAP_FAILED) {
		fprintf(stderr, "mmap of the memcpy buffers failed\n");
		return 1;
	}
	memset(x, 1, sz);
	memset(y, 2, sz);
	/* first touch: one fault places a unit (engine round trip + mmap) */
	for (uint64_t i = 0; i < n; i++) {
		t0 = now_s();
		b[i * unit] = 1;
		ft[i] = now_s() - t0;
		memset(b + i * unit, (int)i, unit);
	}
	/* 2 MiB migrations, both ways, between rounds of memcpy */
	for (int r = 0; r < ROUNDS; r++) {
		for (uint64_t i = 0; i < n; i++) {
			t0 = now_s();
			xmem_tier_migrate(t, b + i * unit, unit,
					  r % 2 ? XMEM_TIER_DRAM
						: XMEM_TIER_DEVICE,
					  NULL);
			mig[r * n + i] = now_s() - t0;
		}
		memcpy_round(x, y, unit, n, r, chunk + r * n, chunk_nt + r * n,
			     &whole[r]);
	}
	for (uint64_t i = 0; i < n; i++)
		if (b[i * unit + 4096] != (char)i) {
			fprintf(stderr, "data changed by migration\n");
			return 1;
		}
	/* hinting faults: arm a sample, time the first access */
	for (uint64_t i = 0; i < n && nh < 256; i++)
		for (int r = 0; r < 2; r++) {
			uint32_t off;

			pthread_rwlock_rdlock(&t->fork_lock);
			xmem__tier_sample_arm(t, i);
			pthread_rwlock_unlock(&t->fork_lock);
			off = atomic_load(&t->u[i].sample_off) +
			      t->u[i].sample_page * 4096u;
			t0 = now_s();
			((volatile char *)b)[i * unit + off] += 1;
			hint[nh++] = now_s() - t0;
		}
	xmem_tier_delete(&t);
	munmap(x, sz);
	munmap(y, sz);
	double mig_us = median(mig, ROUNDS * n) * 1e6;
	double mig_bw = unit / median(mig, ROUNDS * n) / 1e9;
	double c_bw = unit / median(chunk, ROUNDS * n) / 1e9;
	double cnt_bw = unit / median(chunk_nt, ROUNDS * n) / 1e9;
	double w_bw = sz / median(whole, ROUNDS) / 1e9;
	double mc_bw = c_bw > cnt_bw ? c_bw : cnt_bw;

	mc_bw = w_bw > mc_bw ? w_bw : mc_bw;
	printf("\n%-34s %10s\n", "cost per operation (median)", "us");
	printf("%-34s %10.1f\n", "first-touch fault (2 MiB unit)",
	       median(ft, n) * 1e6);
	printf("%-34s %10.1f\n", "hinting fault (to the thread)",
	       median(hint, nh) * 1e6);
	printf("%-34s %10.1f\n", "2 MiB migration (synchronous)", mig_us);
	printf("\n%-34s %10s %10s %8s\n", "throughput (GB/s, median)", "xmem",
	       "memcpy", "ratio");
	printf("%-34s %10.2f %10.2f %7.0f%%\n", "migration vs memcpy (fastest)",
	       mig_bw, mc_bw, 100 * mig_bw / mc_bw);
	printf("%-34s %10s %10.2f\n", "  memcpy 2 MiB, cold source", "", c_bw);
	printf("%-34s %10s %10.2f\n", "  same, non-temporal stores", "",
	       cnt_bw);
	printf("%-34s %10s %10.2f\n", "  memcpy 256 MiB in one call", "", w_bw);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t size = 4096 * MiB, budget = 512 * MiB;
	double steady = 30, after = 10;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--size"))
			xmem__parse_size(argv[i + 1], &size);
		else if (!strcmp(argv[i], "--budget"))
			xmem__parse_size(argv[i + 1], &budget);
		else if (!strcmp(argv[i], "--steady"))
			steady = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--after"))
			after = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "--samples"))
			opt_samples = (uint32_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--sample-bytes"))
			opt_sample_bytes = (uint32_t)atoi(argv[i + 1]);
	}
	printf("bench_tier: Zipf 0.99 over %llu MiB, DRAM budget %llu MiB, "
	       "2 MiB units\n\n",
	       (unsigned long long)(size / MiB),
	       (unsigned long long)(budget / MiB));
	if (quality(size, budget, steady, after))
		return 1;
	return costs();
}
