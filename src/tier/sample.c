/* SPDX-License-Identifier: MIT */
/*
 * sample.c - hotness by sampled hinting faults, and the fault thread.
 *
 * Like the kernel's NUMA balancing, a sample takes away page-table
 * entries of a placed unit (MADV_DONTNEED on the shared mapping: the data
 * stays in its file). The program's next access to such a page takes an
 * ordinary minor fault that maps it again (a hinting fault: the kernel
 * handles it, no thread waits for the engine). When the window ends,
 * /proc/self/pagemap tells which pages came back, i.e. were touched.
 *
 * A sample is a piece of sample_bytes at a random offset of the unit, cut
 * in blocks of 64 KiB; in each block that holds data, one page (the same
 * random index in every block) is the probe, and only the probes are
 * zapped. Fault-around cannot hide a touch: it maps only pages whose
 * entries are empty, and around a probe every other entry is present.
 * The fraction p of probes touched in a window w gives a page's access
 * rate as -ln(1-p)/w (a Poisson process), times the pages of a unit;
 * counts are pooled over the last few samples of the unit. Zapping one
 * page per block instead of the whole block costs a sixteenth of the
 * page-table work for the same number of observations; the window is
 * longer instead (adapt_window steers it).
 *
 * Cost per sample: its share of one process_madvise for a batch of
 * samples, and one pread of pagemap in the engine (see bench_tier for
 * measured figures); one minor fault per touched probe in the program.
 * Bounded by sample_per_sec and max_samples. The fences of
 * xmem__tier_block() are only for moves.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

/* The judged-block mask of the armed piece at offset off of unit i:
 * blocks known to hold data come from the unit's cache (data never
 * leaves a placed unit), the others are asked of mincore, once each
 * until they hold data. Units of more than 32 blocks ask every time. */
static uint32_t piece_mask(struct xmem_tier *t, uint64_t i, uint32_t off)
{
	struct tier_unit *u = &t->u[i];
	uint32_t blk = block_bytes(t), nb = t->cfg.sample_bytes / blk;
	uint32_t b0 = off / blk, all, m;
	int cache = t->unit / blk <= 32;

	if (nb > 32)
		nb = 32;
	all = nb == 32 ? ~0u : (1u << nb) - 1;
	if (cache && ((u->filled >> b0) & all) == all)
		return all;
	m = filled_blocks(t, t->base + i * t->unit + off);
	if (cache)
		u->filled |= m << b0;
	return m;
}

/*
 * Claims placed unit i and picks the piece to sample. 1 with the unit
 * claimed (*old its state before), 0 if it is not eligible now.
 */
static int sample_prepare(struct xmem_tier *t, uint64_t i, uint32_t *old)
{
	struct tier_unit *u = &t->u[i];
	uint32_t where, blk = block_bytes(t);
	uint64_t slots;

	if (t->pagemap_fd < 0 || xmem__tier_claim(t, i, old) < 0)
		return 0;
	where = *old & U_WHERE;
	if ((*old & U_SAMPLED) ||
	    (where != XMEM_TIER_DRAM && where != XMEM_TIER_DEVICE)) {
		xmem__tier_publish(t, i, *old);
		return 0;
	}
	slots = (t->unit - t->cfg.sample_bytes) / blk + 1;
	u->sample_off = (uint32_t)(tier_rand(&t->rng) % slots * blk);
	u->sample_page = (uint8_t)(tier_rand(&t->rng) % (blk / 4096));
	u->sample_mask = piece_mask(t, i, u->sample_off);
	if (!u->sample_mask) { /* nothing there yet to judge by */
		xmem__tier_publish(t, i, *old);
		return 0;
	}
	return 1;
}

/*
 * Zaps the page-table entries of n ranges of base (the data stays in its
 * file): one process_madvise(2) for all of them, so the kernel walks them
 * in one call and shoots down the other CPUs' TLBs once, not once per
 * range (each shootdown interrupts every CPU running the program). Falls
 * back to one madvise per range where process_madvise cannot do it.
 */
int xmem__tier_zap(struct xmem_tier *t, const struct iovec *iov, int n)
{
	size_t total = 0;

	if (n <= 0)
		return 0;
	for (int k = 0; k < n; k++)
		total += iov[k].iov_len;
#ifdef SYS_process_madvise
	if (n > 1 && t->pidfd >= 0 &&
	    syscall(SYS_process_madvise, t->pidfd, iov, (size_t)n,
		    MADV_DONTNEED, 0u) == (long)total)
		return 0;
#endif
	for (int k = 0; k < n; k++)
		if (xmem__tier_madvise(iov[k].iov_base, iov[k].iov_len,
				       MADV_DONTNEED) < 0)
			return -errno;
	return 0;
}

#define ARM_MAX 64
#define ZAP_MAX 1024 /* UIO_MAXIOV */

/* Adds the probes of prepared unit i to iov[*n..). */
static void add_probes(struct xmem_tier *t, uint64_t i, struct iovec *iov,
		       int *n)
{
	struct tier_unit *u = &t->u[i];
	uint32_t blk = block_bytes(t), mask = u->sample_mask;
	char *p = t->base + i * t->unit + u->sample_off +
		  (uint64_t)u->sample_page * 4096;

	for (uint32_t b = 0; mask; b++, mask >>= 1)
		if (mask & 1) {
			iov[*n].iov_base = p + (uint64_t)b * blk;
			iov[*n].iov_len = 4096;
			(*n)++;
		}
}

/*
 * Arms samples on the eligible units among units[0..n) (n <= ARM_MAX),
 * with one zap for all their probes. The units armed are stored in
 * armed[] (they share one t0); returns their count, or a negative error.
 */
int xmem__tier_sample_arm_batch(struct xmem_tier *t, const uint32_t *units,
				int n, uint32_t *armed)
{
	static _Thread_local struct iovec iov[ZAP_MAX];
	uint32_t old[ARM_MAX];
	uint64_t t0;
	int k = 0, niov = 0, rc = 0;

	for (int j = 0; j < n && j < ARM_MAX; j++) {
		if (!sample_prepare(t, units[j], &old[k]))
			continue;
		if (niov + 32 > ZAP_MAX) { /* full: zap what is there */
			rc = rc ? rc : xmem__tier_zap(t, iov, niov);
			niov = 0;
		}
		add_probes(t, units[j], iov, &niov);
		armed[k++] = units[j];
	}
	if (k == 0)
		return 0;
	if (rc == 0)
		rc = xmem__tier_zap(t, iov, niov);
	t0 = xmem__tier_now_ns();
	for (int j = 0; j < k; j++) {
		if (rc < 0) {
			xmem__tier_publish(t, armed[j], old[j]);
			continue;
		}
		atomic_store(&t->u[armed[j]].sample_t0, t0);
		atomic_fetch_add(&t->armed, 1);
		atomic_fetch_add(&t->c.samples, 1);
		xmem__tier_publish(t, armed[j], old[j] | U_SAMPLED);
	}
	return rc < 0 ? rc : k;
}

/* Arms a sample on placed unit i. 1 if armed, 0 if the unit is not
 * eligible now, negative on error. */
int xmem__tier_sample_arm(struct xmem_tier *t, uint64_t i)
{
	uint32_t unit = (uint32_t)i, armed;

	return xmem__tier_sample_arm_batch(t, &unit, 1, &armed);
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

/* Counts the probes of the armed sample of unit i whose page is present
 * again (one pread of the piece's pagemap entries). */
static int touched_blocks(struct xmem_tier *t, uint64_t i, int *nblocks)
{
	uint32_t blk = block_bytes(t), ppb = blk / 4096;
	uint32_t mask = t->u[i].sample_mask, pg = t->u[i].sample_page;
	uint64_t va = (uintptr_t)t->base + i * t->unit + t->u[i].sample_off;
	uint64_t pm[512], npages = t->cfg.sample_bytes / 4096;
	ssize_t r;
	int touched = 0;

	if (npages > 512)
		npages = 512;
	*nblocks = __builtin_popcount(mask);
	r = pread(t->pagemap_fd, pm, npages * 8, (off_t)(va / 4096 * 8));
	for (uint32_t b = 0; b < npages / ppb && b < 32; b++) {
		uint64_t k = (uint64_t)b * ppb + pg;

		if ((mask >> b & 1) && (ssize_t)((k + 1) * 8) <= r &&
		    pm[k] >> 63)
			touched++;
	}
	return touched;
}

/*
 * Folds a sample (k of n probes touched in dt) into unit i's heat, the
 * log2 of its estimated accesses per second. Older counts keep a quarter
 * of their weight per sample (HEAT_DECAY), so a hot set that moves is
 * seen in one sample of each unit (bench_tier: recovery 2.5-3.5 s with a
 * quarter, 4.5 s with a half); the noise that lets through is what the
 * policy's swap margin absorbs. A weak prior keeps an untouched unit cold
 * but finite.
 */
#define HEAT_DECAY 0.25f
static void heat_update(struct xmem_tier *t, uint64_t i, int k, int n,
			uint64_t dt_ns)
{
	struct tier_unit *u = &t->u[i];
	double p, w, rate;

	u->ev = HEAT_DECAY * u->ev + (float)k;
	u->ex = HEAT_DECAY * u->ex + (float)n;
	u->ew = HEAT_DECAY * u->ew + (float)(n * (dt_ns / 1e9));
	p = (u->ev + 0.05) / (u->ex + 0.1);
	if (p > 1 - 0.5 / (u->ex + 1))
		p = 1 - 0.5 / (u->ex + 1);
	w = u->ew / u->ex;
	/* -ln(1-p)/w per probed page, times the pages of a unit */
	rate = -fast_log2(1 - p) * 0.6931471805599453 / w *
	       ((double)t->unit / 4096);
	atomic_store(&u->heat, (float)fast_log2(rate));
	atomic_store(&u->known, 1);
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
	if ((old & U_WHERE) == XMEM_TIER_DRAM) { /* policy.c's surprise */
		t->dram_cold += ((k == 0) - t->dram_cold) / 16;
		t->dram_cold_avg += ((k == 0) - t->dram_cold_avg) / 256;
	}
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
