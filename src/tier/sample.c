/* SPDX-License-Identifier: MIT */
/*
 * sample.c - hinting faults and the fault thread.
 *
 * A sample fences sample_bytes of a placed unit (xmem__tier_block); the
 * first access sleeps in the kernel and the fault thread lifts the fence,
 * wakes the thread and records how long the unit went untouched. Cost per
 * sample: register + madvise, then unregister + wake in the engine, plus
 * the hinting fault's round trip to the one thread that hits it and the
 * page faults that map the piece back (see bench_tier for measured
 * figures). Bounded by sample_per_sec and max_samples.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "tier_internal.h"

/* Arms a sample on placed unit i. 1 if armed, 0 if the unit is not
 * eligible now, negative on error. */
int xmem__tier_sample_arm(struct xmem_tier *t, uint64_t i)
{
	struct tier_unit *u = &t->u[i];
	uint32_t old, where;
	uint64_t pages, off;
	int rc;

	if (xmem__tier_claim(t, i, &old) < 0)
		return 0;
	where = old & U_WHERE;
	if ((old & U_SAMPLED) ||
	    (where != XMEM_TIER_DRAM && where != XMEM_TIER_DEVICE)) {
		xmem__tier_publish(t, i, old);
		return 0;
	}
	pages = (t->unit - t->cfg.sample_bytes) / 4096 + 1;
	u->sample_off = (uint32_t)(tier_rand(&t->rng) % pages * 4096);
	off = i * t->unit + u->sample_off;
	rc = xmem__tier_block(t, off, t->cfg.sample_bytes);
	if (rc < 0) {
		xmem__tier_publish(t, i, old);
		return rc;
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

/* Folds one observation into unit i's heat (log2 of accesses/s). */
static void heat_update(struct xmem_tier *t, uint64_t i, uint64_t dt_ns,
			int accessed)
{
	struct tier_unit *u = &t->u[i];
	double scale = (double)t->unit / t->cfg.sample_bytes;
	double win = t->cfg.sample_window_ms * 1e6, est;
	float h = atomic_load(&u->heat);

	if (accessed)
		est = 1e9 / (double)(dt_ns < 1000 ? 1000 : dt_ns);
	else
		est = 0.5e9 / (dt_ns > win ? (double)dt_ns : win);
	est = fast_log2(est * scale);
	atomic_store(&u->heat, (float)(0.5 * h + 0.5 * est));
}

/*
 * Ends the sample on unit i: accessed (a hinting fault) or expired.
 * Restores the mapping and wakes the sleepers.
 */
void xmem__tier_sample_hit(struct xmem_tier *t, uint64_t i, int accessed)
{
	struct tier_unit *u = &t->u[i];
	uint32_t old, where;
	uint64_t off;

	if (xmem__tier_claim(t, i, &old) < 0)
		return;
	if (!(old & U_SAMPLED)) {
		xmem__tier_publish(t, i, old);
		return;
	}
	where = old & U_WHERE;
	off = i * t->unit + u->sample_off;
	heat_update(t, i, xmem__tier_now_ns() - u->sample_t0, accessed);
	/* On failure the fence stays; a later expiry retries. */
	if (xmem__tier_unblock(t, off, t->cfg.sample_bytes) < 0) {
		xmem__tier_publish(t, i, old);
		return;
	}
	atomic_fetch_sub(&t->armed, 1);
	if (accessed)
		atomic_fetch_add(&t->c.hint_faults, 1);
	xmem__tier_publish(t, i, where);
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
	} else if (s & U_SAMPLED) {
		xmem__tier_sample_hit(t, i, 1);
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

/* The fault thread: first touches and hinting faults, never blocking on a
 * migration (faults on BUSY units are deferred and re-checked). */
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
