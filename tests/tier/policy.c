/* SPDX-License-Identifier: MIT */
/*
 * policy.c - the policy thread with a budget group: two tiers share a
 * budget; the units a thread keeps touching end up in DRAM (taking it
 * from the other tier's cold units), and the group's DRAM, sampled
 * throughout, never exceeds the budget.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)
#define UNIT (2 * MiB)

static char *hot;
static _Atomic int stop;

/* Touches 4 units of tier B over and over (reads and writes). */
static void *hammer(void *arg)
{
	uint64_t x = 1;

	(void)arg;
	while (!atomic_load(&stop))
		for (uint64_t i = 0; i < 4 * UNIT; i += 4096 * 7) {
			x = x * 6364136223846793005ull + 1;
			hot[(i + (x >> 40) % 4096) % (4 * UNIT)] += 1;
		}
	return NULL;
}

static int in_dram(struct xmem_tier *t, uint64_t i)
{
	enum xmem_tier_where w = XMEM_TIER_NONE;

	xmem_tier_where(t, (char *)xmem_tier_addr(t) + i * UNIT, &w);
	return w == XMEM_TIER_DRAM;
}

int main(void)
{
	struct xmem_tier_group *g;
	struct xmem_tier_config cfg;
	struct xmem_tier *a, *b;
	pthread_t thr;
	int over = 0, n = 0, rc;

	REQUIRE_OK(xmem_tier_group_new(4 * UNIT, &g));
	xmem_tier_config_init(&cfg);
	cfg.size = 8 * UNIT;
	cfg.group = g;
	cfg.sample_per_sec = 2000;
	cfg.min_residency_ms = 20;
	cfg.name = "a";
	rc = xmem_tier_new(&cfg, &a);
	if (rc == -EPERM)
		SKIP("userfaultfd is not permitted here");
	REQUIRE_OK(rc);
	cfg.name = "b";
	REQUIRE_OK(xmem_tier_new(&cfg, &b));
	CHECK(xmem_tier_group_delete(&g) == -EBUSY);
	memset(xmem_tier_addr(a), 1, 8 * UNIT); /* takes the whole budget */
	memset(xmem_tier_addr(b), 2, 8 * UNIT); /* all on the device */
	CHECK(xmem_tier_group_used(g) == 4 * UNIT);

	hot = xmem_tier_addr(b);
	pthread_create(&thr, NULL, hammer, NULL);
	for (int ms = 0; ms < 8000; ms += 10) {
		struct timespec ts = { 0, 10 * 1000000 };

		nanosleep(&ts, NULL);
		if (xmem_tier_group_used(g) > 4 * UNIT)
			over++;
		n = in_dram(b, 0) + in_dram(b, 1) + in_dram(b, 2) +
		    in_dram(b, 3);
		if (n == 4 && ms > 500)
			break;
	}
	atomic_store(&stop, 1);
	pthread_join(thr, NULL);
	printf("hot units of b in DRAM: %d of 4\n", n);
	CHECK(n >= 3);
	CHECK(over == 0);
	for (uint64_t i = 4 * UNIT; i < 8 * UNIT; i += 4096)
		CHECK(((char *)xmem_tier_addr(b))[i] == 2);
	for (uint64_t i = 0; i < 8 * UNIT; i += 4096)
		CHECK(((char *)xmem_tier_addr(a))[i] == 1);

	struct xmem_tier_stats st;
	xmem_tier_stats(b, &st);
	CHECK(st.promotions >= 3);
	CHECK(st.dram_peak <= 4 * UNIT);
	xmem_tier_delete(&a);
	xmem_tier_delete(&b);
	CHECK(xmem_tier_group_used(g) == 0);
	CHECK_OK(xmem_tier_group_delete(&g));
	return test_result();
}
