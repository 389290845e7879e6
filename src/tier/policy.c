/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the policy thread: arms hotness samples, expires them, and
 * promotes hot units / demotes cold ones.
 *
 * Guarantees:
 *   - DRAM use never exceeds the group's budget: a promotion reserves its
 *     unit of budget before any page is allocated, and when the budget is
 *     full the policy first demotes (freeing a unit) and then promotes;
 *   - the engine's CPU stays at cpu_percent of one core on average (a
 *     token bucket in CPU time, cpu_budget below): moves wait for credit,
 *     sampling slows when even it would overdraw;
 *   - at most migrate_per_sec units move per second (a token bucket);
 *   - ping-pong is damped four ways: a unit stays min_residency_ms after
 *     a move; a unit never sampled is neither promoted nor demoted; a
 *     swap needs the hot unit to be SWAP_MARGIN log2 steps (5.7x) hotter
 *     than the cold one; and that margin grows by MOVE_DAMP steps with
 *     every recent move of either unit.
 * Each rebalance is O(nunits of the group) for the scan plus O(n k) to keep
 * the k best candidates it may move; rebalances that move nothing back
 * off to one in IDLE_MAX ticks. Measured in bench_tier (2048 units): the
 * scans take ~0.2% of a core; the engine's CPU goes to sampling (25-70 us
 * per sample, mostly the TLB shootdown of its zap, which waits for every
 * CPU running the program and so grows with the machine's load) and to
 * the moves (0.3-0.5 ms of CPU each; 1-2 ms for the first move into
 * memory never used before, which allocates it).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>

#include "tier_internal.h"

#define MAX_PER_TICK 64
#define SWAP_MARGIN 2.5f
#define MOVE_DAMP 1.0f /* margin added per recent move of a unit */

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
#define ARM_BATCH_MAX 64 /* a batch armed with one zap */

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

/* Is unit i's heat known (sampled at least once, or advised)? A unit
 * never sampled is neither promoted nor demoted: after a first fill most
 * units are unsampled, and moving them on a guess is churn. */
static int heat_known(struct xmem_tier *t, uint64_t i)
{
	uint8_t adv = atomic_load(&t->u[i].advice);

	return atomic_load(&t->u[i].known) || adv == XMEM_TIER_ADV_HOT ||
	       adv == XMEM_TIER_ADV_COLD;
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
		    !movable(t, i, now) || !heat_known(t, i))
			continue;
		x.heat = eff_heat(t, i);
		if (w == XMEM_TIER_DEVICE && want_hot) {
			x.heat -= MOVE_DAMP * t->u[i].moves;
			keep_best(hot, nh, k, x, 1);
		} else if (w == XMEM_TIER_DRAM) {
			x.heat += MOVE_DAMP * t->u[i].moves;
			keep_best(cold, nc, k, x, 0);
		}
	}
}

/* Promotes hot device units, demoting colder DRAM units of the group to
 * make room. Returns the number of units moved. */
static int rebalance(struct xmem_tier *t, int allowance, uint64_t now,
		     int64_t cpu_allow, int *spent)
{
	uint64_t cpu0 = xmem__tier_thread_cpu_ns();
	struct xmem_tier_group *g = t->group;
	struct cand hot[MAX_PER_TICK], cold[MAX_PER_TICK];
	int nh = 0, nc = 0, moved = 0, ci = 0;
	int k = allowance < MAX_PER_TICK ? allowance : MAX_PER_TICK;

	*spent = 0;
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

		if (hi &&
		    (int64_t)(xmem__tier_thread_cpu_ns() - cpu0) > cpu_allow) {
			*spent = 1; /* the CPU budget is spent (cpu_budget) */
			break;
		}

		if (atomic_load(&g->used) + t->unit > g->budget) {
			struct cand *c;
			float margin;

			if (ci >= nc)
				break;
			c = &cold[ci];
			margin = SWAP_MARGIN;
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

/* Picks up to n units that may take a sample, round robin from the
 * cursor; *tries bounds the units looked at. */
static int pick_units(struct xmem_tier *t, uint32_t *units, int n,
		      uint64_t *tries)
{
	int k = 0;

	while (k < n && *tries) {
		uint64_t i = t->cursor++ % t->nunits;
		uint8_t adv = atomic_load(&t->u[i].advice);
		uint32_t s = atomic_load(&t->u[i].st), w = s & U_WHERE;

		(*tries)--;
		if (adv == XMEM_TIER_ADV_PIN_DRAM ||
		    adv == XMEM_TIER_ADV_PIN_DEVICE || (s & U_SAMPLED) ||
		    (w != XMEM_TIER_DRAM && w != XMEM_TIER_DEVICE))
			continue;
		units[k++] = (uint32_t)i;
	}
	return k;
}

/* Arms up to n samples, round robin over the units, with one zap per
 * batch (xmem__tier_sample_arm_batch). */
static int arm_samples(struct xmem_tier *t, int n)
{
	uint64_t tries = t->nunits;
	uint32_t units[ARM_BATCH_MAX], armed[ARM_BATCH_MAX];
	uint64_t room = t->cfg.max_samples - (t->qtail - t->qhead);
	int total = 0;

	if ((uint64_t)n > room)
		n = (int)room;
	while (n > 0 && tries) {
		int want = n < ARM_BATCH_MAX ? n : ARM_BATCH_MAX;
		int k = pick_units(t, units, want, &tries);
		int a = xmem__tier_sample_arm_batch(t, units, k, armed);

		for (int j = 0; j < a; j++) {
			struct tier_sample *q =
				&t->q[t->qtail++ % t->cfg.max_samples];

			q->unit = armed[j];
			q->t0 = atomic_load(&t->u[armed[j]].sample_t0);
			q->win = atomic_load(&t->win_ns);
		}
		if (a > 0) {
			n -= a;
			total += a;
		}
	}
	return total;
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

/*
 * The engine's CPU budget: a token bucket in nanoseconds of CPU, filled
 * at cpu_percent of the wall time and drained by the CPU of every engine
 * thread (the fault thread's too). Migrations start only with credit
 * left and stop when a rebalance has spent it; sampling goes on into
 * debt down to -SAMPLE_DEBT_NS, so hotness keeps being measured while
 * moves wait, but sampling that alone costs more than the budget is
 * slowed to fit. The bucket holds at most BURST_NS (a burst of moves
 * after a quiet spell) and forgets debts beyond DEBT_MAX_NS.
 */
#define BURST_NS 10000000ll
#define SAMPLE_DEBT_NS 20000000ll
#define DEBT_MAX_NS 100000000ll

struct cpu_budget {
	int64_t credit;	    /* ns of CPU the engine may still use */
	uint64_t wall, cpu; /* at the last update */
};

/* Refills the bucket for the wall time since the last update and takes
 * out the engine's CPU since then. */
static void budget_update(struct xmem_tier *t, struct cpu_budget *b,
			  uint64_t now)
{
	uint64_t cpu = atomic_load(&t->c.engine_cpu_ns);

	b->credit += (int64_t)((now - b->wall) * t->cfg.cpu_percent / 100);
	b->credit -= (int64_t)(cpu - b->cpu);
	if (b->credit > BURST_NS)
		b->credit = BURST_NS;
	if (b->credit < -DEBT_MAX_NS)
		b->credit = -DEBT_MAX_NS;
	b->wall = now;
	b->cpu = cpu;
}

/* Adds the policy thread's CPU since *cpu to the engine's counters
 * (done at every wake-up, so the figures are never behind by more than
 * one batch of work). */
static void account(struct xmem_tier *t, uint64_t *cpu)
{
	uint64_t c = xmem__tier_thread_cpu_ns();

	atomic_fetch_add(&t->c.engine_cpu_ns, c - *cpu);
	atomic_fetch_add(&t->c.policy_cpu_ns, c - *cpu);
	*cpu = c;
}

/*
 * What the sampling rate follows (samples_due): once BOOST_MOVES units
 * moved within a second, or the recent samples of DRAM units that found
 * none of their probes touched are more than SURPRISE of them and 2.5x
 * their long-run share (a hot set that moved, or a first fill being
 * sorted out: in a steady state DRAM holds the hottest units and few of
 * their samples come back empty, while the swaps that noise lets through
 * come a few a second),
 * sampling runs at the full sample_per_sec for BOOST_NS, to find the
 * rest; otherwise at half of it; and at a quarter while moves wait for
 * the CPU budget (the candidates are known, the moves are what is
 * missing).
 */
#define SURPRISE 0.4f
#define BOOST_NS 3000000000ull
#define BOOST_MOVES 32

struct pace {
	uint64_t boost_until; /* ns */
	uint64_t sec_start;   /* the current second of move counting */
	int sec_moves;	      /* units moved in it */
	int starved;	      /* the last due rebalance lacked CPU budget */
};

/* Counts moves per second and starts a boost when they are many. */
static void pace_moves(struct pace *pc, uint64_t now, int moved)
{
	if (now - pc->sec_start >= 1000000000ull) {
		pc->sec_start = now;
		pc->sec_moves = 0;
	}
	pc->sec_moves += moved;
	if (pc->sec_moves >= BOOST_MOVES)
		pc->boost_until = now + BOOST_NS;
}

/* One policy period: migrations (if `rebal` and the budget has credit),
 * statistics. Returns the number of units moved. */
static int tick(struct xmem_tier *t, uint64_t now, double dt,
		double *move_credit, struct cpu_budget *b, int rebal,
		struct pace *pc)
{
	uint64_t c;
	int moved = 0, spent = 0;

	*move_credit += dt * t->cfg.migrate_per_sec;
	if (*move_credit > MAX_PER_TICK)
		*move_credit = MAX_PER_TICK;
	c = xmem__tier_thread_cpu_ns();
	if (rebal && t->cfg.policy != XMEM_TIER_POLICY_STATIC) {
		if (b->credit > 0)
			moved = rebalance(t, (int)*move_credit, now, b->credit,
					  &spent);
		pc->starved = b->credit <= 0 || spent;
		pace_moves(pc, now, moved);
	}
	*move_credit -= moved;
	atomic_fetch_add(&t->c.move_cpu_ns, xmem__tier_thread_cpu_ns() - c);
	if (*move_credit < 0)
		*move_credit = 0;
	if (t->pub && now - t->pub_ns >= 100000000ull) {
		t->pub_ns = now; /* ten updates a second are enough to watch */
		xmem__tier_pub_update(t);
	}
	return moved;
}

/* Is the program filling the tier: at least 2 units placed by first
 * touch in the last 100 ms? */
struct fill_watch {
	uint64_t ft, ns; /* first touches counted at ns */
	int filling;
};

static int filling(struct xmem_tier *t, struct fill_watch *f, uint64_t now)
{
	uint64_t ft = atomic_load(&t->c.first_touch);

	if (now - f->ns >= 100000000ull) {
		f->filling = ft - f->ft >= 2;
		f->ft = ft;
		f->ns = now;
	}
	return f->filling || ft - f->ft >= 2;
}

/*
 * Samples to arm now for the wall time since the last batch: at the rate
 * `struct pace` sets, at a quarter of sample_per_sec while the program
 * is filling the tier (there is little to learn while everything is new,
 * and a block being filled reads as hot), and none while the CPU budget
 * is in debt beyond SAMPLE_DEBT_NS.
 */
static int samples_due(struct xmem_tier *t, uint64_t now, uint64_t dt_ns,
		       double *credit, struct fill_watch *f,
		       const struct cpu_budget *b, struct pace *pc)
{
	double rate = t->cfg.sample_per_sec;
	int n;

	if (t->dram_cold > SURPRISE && t->dram_cold > 2.5f * t->dram_cold_avg)
		pc->boost_until = now + BOOST_NS;
	if (filling(t, f, now) || pc->starved)
		rate /= 4;
	else if (now >= pc->boost_until)
		rate /= 2;
	if (b->credit < -SAMPLE_DEBT_NS)
		return 0;
	*credit += dt_ns / 1e9 * rate;
	if (*credit > t->cfg.max_samples)
		*credit = t->cfg.max_samples;
	n = (int)*credit;
	*credit -= n;
	return n;
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
	struct fill_watch fw = { 0, now, 0 };
	struct pace pc = { now + BOOST_NS, now, 0, 0 };
	uint64_t wait = tick_ns; /* between rebalances, see IDLE_MAX */
	double sample_credit = 0, move_credit = 0;
	struct cpu_budget b = { 0, now, atomic_load(&t->c.engine_cpu_ns) };
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
				int n = samples_due(t, now, now - last_arm,
						    &sample_credit, &fw, &b,
						    &pc);

				last_arm = now;
				arm_samples(t, n);
			}
		}
		atomic_fetch_add(&t->c.sample_cpu_ns,
				 xmem__tier_thread_cpu_ns() - c0);
		account(t, &cpu);
		budget_update(t, &b, now);
		if (now >= last_tick + tick_ns) {
			int rebal = now >= last_rebal + wait;
			int moved = tick(t, now, (now - last_tick) / 1e9,
					 &move_credit, &b, rebal, &pc);

			account(t, &cpu);
			budget_update(t, &b, xmem__tier_now_ns());
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
	account(t, &cpu);
	return NULL;
}
