/* SPDX-License-Identifier: MIT */
/*
 * stress.c - no write is lost while units move.
 *
 * Two writer threads store checksummed 64-byte records into random slots
 * of random units (each writer owns every other slot and remembers what it
 * last wrote there; before overwriting a slot it checks that the slot
 * still holds that record). Meanwhile the policy thread (aggressive
 * settings: fast sampling, no residency) and an explicit migrator move
 * units both ways, and a budget thread samples the DRAM the group holds
 * (its counter and the memfd's real pages) against the budget. At the end
 * every slot is verified.
 *
 * Usage: tier_stress [SECONDS] (default 3; longer runs are the benchmark's
 * share of the migration count).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xmem.h>

#include "core/checksum.h"
#include "tier/tier_internal.h"
#include "test.h"

#define UNIT (64 * 1024ull)
#define NUNITS 256ull
#define BUDGET (64 * UNIT)
#define SLOT 64
#define SLOTS (NUNITS * UNIT / SLOT)

struct rec {
	uint64_t seq;
	uint32_t writer, unit;
	uint64_t slot;
	uint8_t payload[36];
	uint32_t crc;
};
_Static_assert(sizeof(struct rec) == SLOT, "record size");

static struct xmem_tier *t;
static char *base;
static _Atomic int stop;
static _Atomic uint64_t writes, bad, budget_bad, budget_samples;
static _Atomic uint64_t explicit_moves, explicit_calls, explicit_nospc;

/* splitmix64: every bit of every draw independent enough that a unit's
 * number does not decide its direction (xorshift's low bits would). */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void make(struct rec *r, uint64_t seq, uint32_t w, uint64_t slot)
{
	r->seq = seq;
	r->writer = w;
	r->unit = (uint32_t)(slot * SLOT / UNIT);
	r->slot = slot;
	for (unsigned k = 0; k < sizeof(r->payload); k++)
		r->payload[k] = (uint8_t)(seq * 31 + k + w);
	r->crc = xmem__crc32c(0, r, offsetof(struct rec, crc));
}

/* Writer w owns slots with slot % 2 == w; last[] is its shadow. */
static void *writer(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)arg;
	uint64_t *last = calloc(SLOTS / 2, sizeof(uint64_t));
	uint64_t s = 0x9e3779b97f4a7c15ull * (w + 1), seq = 0;

	REQUIRE(last);
	while (!atomic_load(&stop)) {
		uint64_t k = rnd(&s) % (SLOTS / 2);
		uint64_t slot = k * 2 + w;
		struct rec *p = (struct rec *)(base + slot * SLOT), r;

		if (last[k]) {
			make(&r, last[k], w, slot);
			if (memcmp(p, &r, sizeof(r)) != 0) {
				if (atomic_fetch_add(&bad, 1) < 5)
					fprintf(stderr,
						"slot %llu unit %llu: expected "
						"seq %llu, found %llu\n",
						(unsigned long long)slot,
						(unsigned long long)(slot *
								     SLOT /
								     UNIT),
						(unsigned long long)last[k],
						(unsigned long long)p->seq);
			}
		} else if (p->seq != 0) {
			atomic_fetch_add(&bad, 1);
		}
		make(&r, ++seq, w, slot);
		memcpy(p, &r, sizeof(r));
		last[k] = seq;
		atomic_fetch_add(&writes, 1);
	}
	/* Final check of every slot this writer owns. */
	for (uint64_t k = 0; k < SLOTS / 2; k++) {
		struct rec r;

		if (!last[k])
			continue;
		make(&r, last[k], w, k * 2 + w);
		if (memcmp(base + (k * 2 + w) * SLOT, &r, sizeof(r)))
			atomic_fetch_add(&bad, 1);
	}
	free(last);
	return NULL;
}

/* Moves random units to random tiers. */
static void *migrator(void *arg)
{
	uint64_t s = 12345, n = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t u = rnd(&s) % NUNITS, m = 0;
		enum xmem_tier_where to =
			rnd(&s) & 1 ? XMEM_TIER_DRAM : XMEM_TIER_DEVICE;
		int rc = xmem_tier_migrate(t, base + u * UNIT, UNIT, to, &m);

		if (rc != 0 && rc != -ENOSPC)
			atomic_fetch_add(&bad, 1);
		atomic_fetch_add(&explicit_calls, 1);
		if (rc == -ENOSPC)
			atomic_fetch_add(&explicit_nospc, 1);
		n += m;
		atomic_store(&explicit_moves, n);
	}
	return NULL;
}

/* Samples the DRAM held against the budget. */
static void *budget(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct xmem_tier_stats st;

		xmem_tier_stats(t, &st);
		if (st.dram_used > BUDGET || st.dram_resident > BUDGET ||
		    st.dram_bytes > BUDGET)
			atomic_fetch_add(&budget_bad, 1);
		atomic_fetch_add(&budget_samples, 1);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	struct xmem_tier_config cfg;
	struct xmem_tier_stats st;
	pthread_t thr[4];
	int rc;

	xmem_tier_config_init(&cfg);
	cfg.size = NUNITS * UNIT;
	cfg.unit = UNIT;
	cfg.dram_budget = BUDGET;
	cfg.sample_per_sec = 20000;
	cfg.sample_bytes = 4096;
	cfg.sample_window_ms = 2;
	cfg.max_samples = 32;
	cfg.migrate_per_sec = 100000;
	cfg.min_residency_ms = 1;
	cfg.tick_ms = 1;
	cfg.cpu_percent = 100; /* no CPU budget: move as much as it can */
	cfg.name = "stress";
	rc = xmem_tier_new(&cfg, &t);
	if (rc == -EPERM)
		SKIP("userfaultfd is not permitted here");
	REQUIRE_OK(rc);
	base = xmem_tier_addr(t);
	int vmas0 = xmem__tier_vma_count();
	for (int i = 0; i < 2; i++)
		pthread_create(&thr[i], NULL, writer, (void *)(uintptr_t)i);
	pthread_create(&thr[2], NULL, migrator, NULL);
	pthread_create(&thr[3], NULL, budget, NULL);
	/* progress every 10 s on long runs */
	for (double left = secs; left > 0; left -= 10) {
		double d = left < 10 ? left : 10;
		struct timespec ts = { (time_t)d,
				       (long)((d - (time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
		if (secs > 10) {
			xmem_tier_stats(t, &st);
			printf("%4.0f s: migrations %llu, explicit %llu "
			       "(calls %llu, budget full %llu)\n",
			       secs - left + d,
			       (unsigned long long)(st.promotions +
						    st.demotions),
			       (unsigned long long)explicit_moves,
			       (unsigned long long)explicit_calls,
			       (unsigned long long)explicit_nospc);
			fflush(stdout);
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(thr[i], NULL);
	xmem_tier_stats(t, &st);
	int vmas = xmem__tier_vma_count();
	printf("VMAs: %d before, %d after (bound: +%llu)\n", vmas0, vmas,
	       NUNITS + 1);
	CHECK(vmas - vmas0 <= (int)NUNITS + 1);
	printf("writes %llu, migrations %llu (policy+explicit; explicit %llu: "
	       "promotions %llu, demotions %llu), hinting faults %llu, "
	       "samples %llu, budget samples %llu over budget %llu, peak "
	       "%llu of %llu, lost/corrupt %llu\n",
	       (unsigned long long)writes,
	       (unsigned long long)(st.promotions + st.demotions),
	       (unsigned long long)explicit_moves,
	       (unsigned long long)st.promotions,
	       (unsigned long long)st.demotions,
	       (unsigned long long)st.hint_faults,
	       (unsigned long long)st.samples,
	       (unsigned long long)budget_samples,
	       (unsigned long long)budget_bad, (unsigned long long)st.dram_peak,
	       (unsigned long long)BUDGET, (unsigned long long)bad);
	CHECK(bad == 0);
	CHECK(budget_bad == 0);
	CHECK(st.dram_peak <= BUDGET);
	CHECK(st.promotions > 0 && st.demotions > 0);
	CHECK(st.hint_faults > 0);
	CHECK(writes > 0);
	xmem_tier_delete(&t);
	return test_result();
}
