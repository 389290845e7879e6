/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the policy thread: arms hotness samples, expires them, and
 * promotes hot units / demotes cold ones.
 *
 * Guarantees:
 *   - DRAM use never exceeds the group's budget: a promotion reserves its
 *     unit of budget before any page is allocated, and when the budget is
 *     full the policy first demotes (freeing a unit) and then promotes;
 *   - at most migrate_per_sec units move per second (a token bucket);
 *   - ping-pong is damped three ways: a unit stays min_residency_ms after
 *     a move, a swap needs the hot unit to be at least 2x (one log2 step)
 *     hotter than the cold one, and that margin grows by half a step with
 *     every recent move of either unit.
 * Each rebalance is O(nunits of the group) for the scan plus O(n k) to keep
 * the k best candidates it may move; rebalances that move nothing back
 * off to one in IDLE_MAX ticks. Measured in bench_tier (2048 units, 50
 * rebalances/s before the back-off): the scans take ~0.2% of a core;
 * the engine's CPU goes to the moves themselves (~0.5 ms of CPU per
 * promotion, ~0.7 ms per demotion, mostly the zap and copy) and to
 * sampling (~25 us per sample, mostly the madvise zap of its 64 pages).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>

#include "tier_internal.h"

#define MAX_PER_TICK 64

/*
 * When the next rebalance is due. A rebalance that moved nothing doubles
 * the wait before the next one (up to IDLE_MAX ticks): with no candidate
 * worth a move, heat changes slowly (each unit is sampled about once per
 * nunits/sample_per_sec seconds), so frequent scans find the same answer.
 * A move resets the wait to one tick, so a moving hot set is followed at
 * full rate after at most IDLE_MAX ticks.
 */
#define IDLE_MAX 8

/* Samples armed together (they then end together): one wake-up to arm a
 * batch and one to collect it, instead of two per sample. */
#define ARM_BATCH 16

struct cand {
	struct xmem_tier *t;
	uint64_t i;
	float heat;
};

/* Effective heat of unit i: measured heat biased by advice. */
static float eff_heat(struct xmem_tier *t, uint64_t i)
{
	float h = atomic_load(&t->u[i].heat);
	uint8_t adv = atomic_load(&t->u[i].advice);

	if (adv == XMEM_TIER_ADV_HOT)
		h += 16;
	else if (adv == XMEM_TIER_ADV_COLD)
		h -= 16;
	return h;
}

/* May unit i move now (not pinned, not busy, resident long enough)? */
static int movable(struct xmem_tier *t, uint64_t i, uint64_t now)
{
	uint8_t adv = atomic_load(&t->u[i].advice);
	uint32_t s = atomic_load(&t->u[i].st);

	if (s & U_BUSY)
		return 0;
	if (adv == XMEM_TIER_ADV_PIN_DRAM || adv == XMEM_TIER_ADV_PIN_DEVICE)
		return 0;
	return now - t->u[i].moved_ns >=
	       (uint64_t)t->cfg.min_residency_ms * 1000000ull;
}

/* Keeps the k best candidates in c[] (hottest if hot, else coldest). */
static void keep_best(struct cand *c, int *n, int k, struct cand x, int hot)
{
	int j;

	if (*n == k) {
		struct cand *w = &c[*n - 1];
		if (hot ? x.heat <= w->heat : x.heat >= w->heat)
			return;
		(*n)--;
	}
	for (j = *n;
	     j > 0 && (hot ? c[j - 1].heat < x.heat : c[j - 1].heat > x.heat);
	     j--)
		c[j] = c[j - 1];
	c[j] = x;
	(*n)++;
}

/* Scans one tier for promotion (hot, on the device) and demotion (cold,
 * in DRAM) candidates. */
static void scan(struct xmem_tier *t, uint64_t now, struct cand *hot, int *nh,
		 struct cand *cold, int *nc, int k, int want_hot)
{
	for (uint64_t i = 0; i < t->nunits; i++) {
		uint32_t w = atomic_load(&t->u[i].st) & U_WHERE;
		struct cand x = { t, i, 0 };

		if ((w != XMEM_TIER_DRAM && w != XMEM_TIER_DEVICE) ||
		    !movable(t, i, now))
			continue;
		x.heat = eff_heat(t, i);
		if (w == XMEM_TIER_DEVICE && want_hot) {
			x.heat -= 0.5f * t->u[i].moves;
			keep_best(hot, nh, k, x, 1);
		} else if (w == XMEM_TIER_DRAM) {
			x.heat += 0.5f * t->u[i].moves;
			keep_best(cold, nc, k, x, 0);
		}
	}
}

/* Promotes hot device units, demoting colder DRAM units of the group to
 * make room. Returns the number of units moved. */
static int rebalance(struct xmem_tier *t, int allowance, uint64_t now)
{
	struct xmem_tier_group *g = t->group;
	struct cand hot[MAX_PER_TICK], cold[MAX_PER_TICK];
	int nh = 0, nc = 0, moved = 0, ci = 0;
	int k = allowance < MAX_PER_TICK ? allowance : MAX_PER_TICK;

	if (k <= 0)
		return 0;
	pthread_mutex_lock(&g->lock);
	scan(t, now, hot, &nh, cold, &nc, k, 1);
	for (struct xmem_tier *o = g->members; o; o = o->next_in_group)
		if (o != t && !o->numa)
			scan(o, now, hot, &nh, cold, &nc, k, 0);
	for (int hi = 0; hi < nh && moved < allowance; hi++) {
		struct cand *h = &hot[hi];
		float hh = h->heat;

		if (atomic_load(&g->used) + t->unit > g->budget) {
			struct cand *c;
			float margin;

			if (ci >= nc)
				break;
			c = &cold[ci];
			margin = 1.5f;
			if (hh < c->heat + margin)
				break;
			ci++;
			if (xmem__tier_move(c->t, c->i, XMEM_TIER_DEVICE, 0) >
			    0)
				moved++;
		}
		if (xmem__tier_move(t, h->i, XMEM_TIER_DRAM, 0) > 0)
			moved++;
	}
	pthread_mutex_unlock(&g->lock);
	return moved;
}

/* Collects the samples whose window is over (the queue is in arming
 * order, and every sample of a tier has the same window when armed). */
static void collect_samples(struct xmem_tier *t, uint64_t now)
{
	while (t->qhead != t->qtail) {
		struct tier_sample *q = &t->q[t->qhead % t->cfg.max_samples];

		if (now - q->t0 < q->win)
			break;
		xmem__tier_sample_collect(t, q->unit, q->t0);
		t->qhead++;
	}
}

/* Arms up to n samples, round robin over the units. */
static int arm_samples(struct xmem_tier *t, int n)
{
	uint64_t tries = t->nunits;
	int armed = 0;

	while (n > 0 && tries-- && t->qtail - t->qhead < t->cfg.max_samples) {
		uint64_t i = t->cursor++ % t->nunits;
		uint8_t adv = atomic_load(&t->u[i].advice);
		struct tier_sample *q;

		if (adv == XMEM_TIER_ADV_PIN_DRAM ||
		    adv == XMEM_TIER_ADV_PIN_DEVICE)
			continue;
		if (xmem__tier_sample_arm(t, i) <= 0)
			continue;
		q = &t->q[t->qtail++ % t->cfg.max_samples];
		q->unit = (uint32_t)i;
		q->t0 = atomic_load(&t->u[i].sample_t0);
		q->win = atomic_load(&t->win_ns);
		n--;
		armed++;
	}
	return armed;
}

/* Sleeps until `until` (ns, monotonic) or until stopped. */
static void sleep_until(struct xmem_tier *t, uint64_t until)
{
	struct pollfd p = { .fd = t->stopfd, .events = POLLIN };
	uint64_t now = xmem__tier_now_ns();
	uint64_t d = until > now ? until - now : 0;
	struct timespec ts = { (time_t)(d / 1000000000ull),
			       (long)(d % 1000000000ull) };

	ppoll(&p, 1, &ts, NULL);
}

/* One policy period: migrations (if `rebal`), statistics, CPU
 * accounting. Returns the number of units moved. */
static int tick(struct xmem_tier *t, uint64_t now, double dt,
		double *move_credit, uint64_t *cpu, int rebal)
{
	uint64_t c;
	int moved = 0;

	*move_credit += dt * t->cfg.migrate_per_sec;
	if (*move_credit > MAX_PER_TICK)
		*move_credit = MAX_PER_TICK;
	c = xmem__tier_thread_cpu_ns();
	if (rebal && t->cfg.policy != XMEM_TIER_POLICY_STATIC)
		moved = rebalance(t, (int)*move_credit, now);
	*move_credit -= moved;
	atomic_fetch_add(&t->c.move_cpu_ns, xmem__tier_thread_cpu_ns() - c);
	if (*move_credit < 0)
		*move_credit = 0;
	c = xmem__tier_thread_cpu_ns();
	atomic_fetch_add(&t->c.engine_cpu_ns, c - *cpu);
	atomic_fetch_add(&t->c.policy_cpu_ns, c - *cpu);
	*cpu = c;
	if (t->pub && now - t->pub_ns >= 100000000ull) {
		t->pub_ns = now; /* ten updates a second are enough to watch */
		xmem__tier_pub_update(t);
	}
	return moved;
}

/*
 * The policy thread's loop: it wakes for the end of the oldest sample's
 * window and to arm a batch of samples at sample_per_sec; rebalances run
 * at those wake-ups once due, so they cost no wake-up of their own (with
 * sampling off it wakes every tick_ms). Wake-ups per second: about
 * 2 * sample_per_sec / ARM_BATCH (125 at the default 1000/s).
 */
void *xmem__tier_policy_main(void *arg)
{
	struct xmem_tier *t = arg;
	uint64_t now = xmem__tier_now_ns(), cpu = xmem__tier_thread_cpu_ns();
	uint64_t tick_ns = (uint64_t)t->cfg.tick_ms * 1000000ull;
	uint64_t last_tick = now, last_arm = now, last_rebal = now;
	uint64_t wait = tick_ns; /* between rebalances, see IDLE_MAX */
	double sample_credit = 0, move_credit = 0;
	int sampling =
		!t->numa && t->cfg.sample_per_sec > 0 && t->pagemap_fd >= 0;
	uint64_t arm_every =
		sampling ? 1000000000ull / t->cfg.sample_per_sec : tick_ns;

	arm_every *= ARM_BATCH;
	if (arm_every < 1000000)
		arm_every = 1000000;
	if (sampling && arm_every > tick_ns)
		arm_every = tick_ns; /* rebalances ride on these wake-ups */
	while (!atomic_load(&t->stop)) {
		uint64_t next =
			sampling ? last_arm + arm_every : last_tick + tick_ns;

		if (sampling && t->qhead != t->qtail) {
			struct tier_sample *q =
				&t->q[t->qhead % t->cfg.max_samples];
			if (q->t0 + q->win < next)
				next = q->t0 + q->win;
		}
		sleep_until(t, next);
		now = xmem__tier_now_ns();
		uint64_t c0 = xmem__tier_thread_cpu_ns();
		if (sampling) {
			collect_samples(t, now);
			if (now >= last_arm + arm_every) {
				sample_credit += (now - last_arm) / 1e9 *
						 t->cfg.sample_per_sec;
				last_arm = now;
				if (sample_credit > t->cfg.max_samples)
					sample_credit = t->cfg.max_samples;
				arm_samples(t, (int)sample_credit);
				sample_credit -= (int)sample_credit;
			}
		}
		atomic_fetch_add(&t->c.sample_cpu_ns,
				 xmem__tier_thread_cpu_ns() - c0);
		if (now >= last_tick + tick_ns) {
			int rebal = now >= last_rebal + wait;
			int moved = tick(t, now, (now - last_tick) / 1e9,
					 &move_credit, &cpu, rebal);

			last_tick = now;
			if (rebal) {
				last_rebal = now;
				if (moved)
					wait = tick_ns;
				else if (wait < IDLE_MAX * tick_ns)
					wait *= 2;
			}
		}
	}
	return NULL;
}
