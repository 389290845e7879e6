/* SPDX-License-Identifier: MIT */
/*
 * sample.c - hotness by sampled hinting faults, and the fault thread.
 *
 * Like the kernel's NUMA balancing, a sample takes away the page-table
 * entries of a piece of a placed unit (madvise(MADV_DONTNEED) on the
 * shared mapping: the data stays in its file). The program's next access
 * to the piece takes an ordinary minor fault that maps the page again (a
 * hinting fault: the kernel handles it, no thread waits for the engine).
 * When the window ends, /proc/self/pagemap tells which pages came back,
 * i.e. which parts of the piece were touched. A read fault maps the whole
 * 64 KiB around it (fault-around), so the piece is judged in 64 KiB
 * blocks: a block counts as touched if any of its pages is present.
 * The fraction p of blocks touched in a window w gives the block's access
 * rate as -ln(1-p)/w (a Poisson process); counts are pooled over the last
 * few samples of the unit.
 *
 * Cost per sample: one madvise over sample_bytes and one pread of
 * pagemap in the engine (see bench_tier for measured figures), and one
 * minor fault per touched block in the program. Bounded by sample_per_sec
 * and max_samples. The fences of xmem__tier_block() are only for moves.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tier_internal.h"

#define BLOCK (64u * 1024u)

/* Bytes judged together: fault-around maps 64 KiB at once. */
static uint32_t block_bytes(const struct xmem_tier *t)
{
	return t->cfg.sample_bytes < BLOCK ? t->cfg.sample_bytes : BLOCK;
}

/*
 * Which blocks of the piece at p hold data (at least half their pages in
 * the page cache, by mincore)? Only those are judged: a block the program
 * has not written yet would be "touched" by its first fill, which says
 * nothing about how hot it will be.
 */
static uint32_t filled_blocks(struct xmem_tier *t, char *p)
{
	uint32_t blk = block_bytes(t), ppb = blk / 4096, mask = 0;
	uint32_t nb = t->cfg.sample_bytes / blk;
	unsigned char vec[512];

	if (nb > 32)
		nb = 32;
	if (mincore(p, (size_t)nb * blk, vec) < 0)
		return 0;
	for (uint32_t b = 0; b < nb; b++) {
		uint32_t res = 0;

		for (uint32_t k = 0; k < ppb; k++)
			res += vec[b * ppb + k] & 1;
		if (2 * res >= ppb)
			mask |= 1u << b;
	}
	return mask;
}

/* Arms a sample on placed unit i. 1 if armed, 0 if the unit is not
 * eligible now, negative on error. */
int xmem__tier_sample_arm(struct xmem_tier *t, uint64_t i)
{
	struct tier_unit *u = &t->u[i];
	uint32_t old, where, blk = block_bytes(t);
	uint64_t slots, off;

	if (t->pagemap_fd < 0 || xmem__tier_claim(t, i, &old) < 0)
		return 0;
	where = old & U_WHERE;
	if ((old & U_SAMPLED) ||
	    (where != XMEM_TIER_DRAM && where != XMEM_TIER_DEVICE)) {
		xmem__tier_publish(t, i, old);
		return 0;
	}
	slots = (t->unit - t->cfg.sample_bytes) / blk + 1;
	u->sample_off = (uint32_t)(tier_rand(&t->rng) % slots * blk);
	off = i * t->unit + u->sample_off;
	u->sample_mask = filled_blocks(t, t->base + off);
	if (!u->sample_mask) { /* nothing there yet to judge by */
		xmem__tier_publish(t, i, old);
		return 0;
	}
	if (xmem__tier_madvise(t->base + off, t->cfg.sample_bytes,
			       MADV_DONTNEED) < 0) {
		xmem__tier_publish(t, i, old);
		return -errno;
	}
	u->sample_t0 = xmem__tier_now_ns();
	atomic_fetch_add(&t->armed, 1);
	atomic_fetch_add(&t->c.samples, 1);
	xmem__tier_publish(t, i, old | U_SAMPLED);
	return 1;
}

/* log2(x) for x > 0, to about 0.01 (no libm). */
static double fast_log2(double x)
{
	union {
		double d;
		uint64_t u;
	} v = { x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	double m;

	v.u = (v.u & ~(0x7ffull << 52)) | (1023ull << 52);
	m = v.d; /* [1, 2) */
	return e + (-0.34484843 * m + 2.02466578) * m - 1.67487759;
}

/* Counts the judged blocks of the armed piece of unit i with a page
 * present (one pread of the piece's pagemap entries). */
static int touched_blocks(struct xmem_tier *t, uint64_t i, int *nblocks)
{
	uint32_t blk = block_bytes(t), ppb = blk / 4096;
	uint32_t mask = t->u[i].sample_mask;
	uint64_t va = (uintptr_t)t->base + i * t->unit + t->u[i].sample_off;
	uint64_t pm[512], npages = t->cfg.sample_bytes / 4096;
	ssize_t r;
	int touched = 0;

	if (npages > 512)
		npages = 512;
	*nblocks = __builtin_popcount(mask);
	r = pread(t->pagemap_fd, pm, npages * 8, (off_t)(va / 4096 * 8));
	for (uint32_t b = 0; b < npages / ppb && b < 32; b++)
		for (uint32_t k = 0; k < ppb && (mask >> b & 1); k++)
			if ((ssize_t)((b * ppb + k + 1) * 8) <= r &&
			    pm[b * ppb + k] >> 63) {
				touched++;
				break;
			}
	return touched;
}

/*
 * Folds a sample (k of n blocks touched in dt) into unit i's heat, the
 * log2 of its estimated accesses per second. Counts decay by half per
 * sample (a hot set that moves is seen in two samples), with a weak prior so
 * that an untouched unit is cold but finite.
 */
static void heat_update(struct xmem_tier *t, uint64_t i, int k, int n,
			uint64_t dt_ns)
{
	struct tier_unit *u = &t->u[i];
	double p, w, rate;

	u->ev = 0.5f * u->ev + (float)k;
	u->ex = 0.5f * u->ex + (float)n;
	u->ew = 0.5f * u->ew + (float)(n * (dt_ns / 1e9));
	p = (u->ev + 0.05) / (u->ex + 0.1);
	if (p > 1 - 0.5 / (u->ex + 1))
		p = 1 - 0.5 / (u->ex + 1);
	w = u->ew / u->ex;
	/* -ln(1-p)/w per block, times the blocks of a unit */
	rate = -fast_log2(1 - p) * 0.6931471805599453 / w *
	       ((double)t->unit / block_bytes(t));
	atomic_store(&u->heat, (float)fast_log2(rate));
}

/*
 * Adapts the window. A sample only tells "hotter or colder than its
 * window": a piece touched everywhere says "hot", one never touched says
 * "cold". The window is right when the units that deserve DRAM (the
 * budget's worth of the hottest) are the ones touched in at least half
 * their blocks, so the fraction of samples that are at least half touched
 * is steered to the fraction of placed units that fit in the budget.
 * Halves or doubles every 64 samples, within 0.2-200 ms.
 */
static void adapt_window(struct xmem_tier *t, int k, int n)
{
	uint64_t w = atomic_load(&t->win_ns), placed;
	double f, target;

	t->adapt_n++;
	t->adapt_k += 2 * k >= n;
	if (t->adapt_n < 64)
		return;
	f = (double)t->adapt_k / (double)t->adapt_n;
	t->adapt_k = t->adapt_n = 0;
	placed = atomic_load(&t->dram_units) + atomic_load(&t->dev_units);
	target = placed ? (double)(t->group->budget / t->unit) / placed : 1;
	if (target > 0.9)
		target = 0.9;
	if (f > 1.5 * target && w > 200000)
		atomic_store(&t->win_ns, w / 2);
	else if (f < target / 1.5 && w < 200000000)
		atomic_store(&t->win_ns, w * 2);
}

/* Ends the sample armed at t0 on unit i: reads which blocks were touched
 * and updates the heat (the policy thread calls it when the window is
 * over). */
void xmem__tier_sample_collect(struct xmem_tier *t, uint64_t i, uint64_t t0)
{
	uint32_t old;
	int k, n;

	if (xmem__tier_claim(t, i, &old) < 0)
		return; /* a mover holds it and clears the sample */
	if (!(old & U_SAMPLED) || atomic_load(&t->u[i].sample_t0) != t0) {
		xmem__tier_publish(t, i, old);
		return;
	}
	k = touched_blocks(t, i, &n);
	heat_update(t, i, k, n, xmem__tier_now_ns() - t0);
	adapt_window(t, k, n);
	atomic_fetch_sub(&t->armed, 1);
	atomic_fetch_add(&t->c.hint_faults, (uint64_t)k);
	xmem__tier_publish(t, i, old & ~U_SAMPLED);
}

/*
 * Handles one fault in unit i. Returns 1 if the unit is BUSY (its claimer
 * will wake; the fault thread re-checks the message later).
 */
static int handle_fault(struct xmem_tier *t, uint64_t i)
{
	uint32_t s = atomic_load(&t->u[i].st), old;
	int rc = 0;

	if (s & U_BUSY)
		return 1;
	pthread_rwlock_rdlock(&t->fork_lock);
	if ((s & U_WHERE) == XMEM_TIER_NONE) {
		if (xmem__tier_claim(t, i, &old) == 0) {
			if ((old & U_WHERE) == XMEM_TIER_NONE)
				xmem__tier_place(t, i, 0);
			else
				xmem__tier_publish(t, i, old);
		} else {
			rc = 1;
		}
	}
	pthread_rwlock_unlock(&t->fork_lock);
	/* A stale message (the unit was restored meanwhile): a wake is
	 * harmless and makes sure nobody sleeps on it. */
	xmem__tier_wake(t, i * t->unit, t->unit);
	return rc;
}

#define FAULT_BATCH 64

/* Re-handles deferred faults; returns how many are still deferred. */
static int retry_deferred(struct xmem_tier *t, uint64_t *def, int n)
{
	int k = 0;

	for (int j = 0; j < n; j++)
		if (handle_fault(t, def[j]))
			def[k++] = def[j];
	return k;
}

/* Adds the thread's CPU time since *last to the engine's counters. */
static void account_cpu(struct xmem_tier *t, uint64_t *last)
{
	uint64_t now = xmem__tier_thread_cpu_ns();

	atomic_fetch_add(&t->c.engine_cpu_ns, now - *last);
	atomic_fetch_add(&t->c.fault_cpu_ns, now - *last);
	*last = now;
}

/* The fault thread: first touches, and threads that touched a unit while
 * it moved. It never blocks on a migration (faults on BUSY units are
 * deferred and re-checked; their mover wakes them). */
void *xmem__tier_fault_main(void *arg)
{
	struct xmem_tier *t = arg;
	struct uffd_msg msg[FAULT_BATCH];
	uint64_t def[FAULT_BATCH * 4];
	uint64_t cpu = xmem__tier_thread_cpu_ns();
	int ndef = 0;

	while (!atomic_load(&t->stop)) {
		struct pollfd p[2] = { { .fd = t->uffd, .events = POLLIN },
				       { .fd = t->stopfd, .events = POLLIN } };
		struct timespec ts = { 0, 200000 };
		ssize_t n;

		if (ppoll(p, 2, ndef ? &ts : NULL, NULL) < 0 && errno != EINTR)
			break;
		ndef = retry_deferred(t, def, ndef);
		n = read(t->uffd, msg, sizeof(msg));
		for (ssize_t j = 0; j < n / (ssize_t)sizeof(msg[0]); j++) {
			uint64_t a = msg[j].arg.pagefault.address;
			uint64_t i;

			if (msg[j].event != UFFD_EVENT_PAGEFAULT)
				continue;
			i = (a - (uintptr_t)t->base) / t->unit;
			if (a < (uintptr_t)t->base || i >= t->nunits)
				continue;
			if (handle_fault(t, i) &&
			    ndef < (int)(sizeof(def) / sizeof(def[0])))
				def[ndef++] = i;
		}
		account_cpu(t, &cpu);
	}
	account_cpu(t, &cpu);
	return NULL;
}
