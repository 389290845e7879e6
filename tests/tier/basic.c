/* SPDX-License-Identifier: MIT */
/*
 * basic.c - tier object: first-touch placement under the budget (seen at
 * once by the touching thread), explicit migration both ways with the
 * data intact, advice, budget refusal, stats.
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)

/* Fills unit i with a pattern derived from i and seed. */
static void fill(char *base, uint64_t unit, uint64_t i, uint64_t seed)
{
	uint64_t *p = (uint64_t *)(base + i * unit);

	for (uint64_t k = 0; k < unit / 8; k += 512)
		p[k] = (i << 32) ^ k ^ seed;
}

static int check(char *base, uint64_t unit, uint64_t i, uint64_t seed)
{
	uint64_t *p = (uint64_t *)(base + i * unit);

	for (uint64_t k = 0; k < unit / 8; k += 512)
		if (p[k] != ((i << 32) ^ k ^ seed))
			return 0;
	return 1;
}

static enum xmem_tier_where where(struct xmem_tier *t, uint64_t i)
{
	enum xmem_tier_where w = XMEM_TIER_NONE;
	char *b = xmem_tier_addr(t);

	CHECK_OK(xmem_tier_where(t, b + i * xmem_tier_unit(t), &w));
	return w;
}

/*
 * The thread whose touch placed a unit asks where it went at once: the
 * answer must be the placement, not "none" (the unit used to be
 * published after its sleepers woke; about half of these asks saw it
 * unplaced).
 */
static void touch_then_ask(struct xmem_tier_config *cfg, uint64_t unit,
			   uint64_t n)
{
	struct xmem_tier *t;
	unsigned stale = 0;

	for (int rep = 0; rep < 40; rep++) {
		REQUIRE_OK(xmem_tier_new(cfg, &t));
		char *b = xmem_tier_addr(t);

		for (uint64_t i = 0; i < n; i++) {
			b[i * unit] = 1;
			stale += where(t, i) !=
				 (i < 4 ? XMEM_TIER_DRAM : XMEM_TIER_DEVICE);
		}
		xmem_tier_delete(&t);
	}
	if (stale)
		fprintf(stderr,
			"%u units read as not placed by the thread "
			"that placed them\n",
			stale);
	CHECK(stale == 0);
}

int main(void)
{
	struct xmem_tier_config cfg;
	struct xmem_tier_stats st;
	struct xmem_tier *t;
	uint64_t unit = 2 * MiB, n = 16, moved;
	char *b;

	xmem_tier_config_init(&cfg);
	cfg.size = n * unit - 4096; /* rounded up to the unit */
	cfg.dram_budget = 4 * unit;
	cfg.flags = XMEM_F_TIER_NO_POLICY;
	cfg.name = "basic";
	if (xmem_tier_new(&cfg, &t) == -EPERM)
		SKIP("userfaultfd is not permitted here");
	REQUIRE(t != NULL);
	REQUIRE(xmem_tier_size(t) == n * unit);
	b = xmem_tier_addr(t);
	REQUIRE(((uintptr_t)b & (unit - 1)) == 0);

	/* Untouched units read as zeros and are then placed. */
	CHECK(where(t, 3) == XMEM_TIER_NONE);
	for (uint64_t i = 0; i < n; i++)
		fill(b, unit, i, 1);
	for (uint64_t i = 0; i < n; i++) {
		enum xmem_tier_where w = where(t, i);

		CHECK(check(b, unit, i, 1));
		if (w != (i < 4 ? XMEM_TIER_DRAM : XMEM_TIER_DEVICE))
			fprintf(stderr, "unit %llu placed in %d\n",
				(unsigned long long)i, (int)w);
		CHECK(w == (i < 4 ? XMEM_TIER_DRAM : XMEM_TIER_DEVICE));
	}
	CHECK_OK(xmem_tier_stats(t, &st));
	if (st.dram_used != 4 * unit || st.first_touch != n)
		fprintf(stderr,
			"dram used %llu, first touches %llu, denied %llu\n",
			(unsigned long long)st.dram_used,
			(unsigned long long)st.first_touch,
			(unsigned long long)st.budget_denied);
	CHECK(st.dram_used == 4 * unit);
	CHECK(st.dram_bytes == 4 * unit);
	CHECK(st.device_bytes == 12 * unit);
	CHECK(st.first_touch == n);

	/* The budget refuses a fifth DRAM unit. */
	CHECK(xmem_tier_migrate(t, b + 8 * unit, 1, XMEM_TIER_DRAM, &moved) ==
	      -ENOSPC);
	CHECK(where(t, 8) == XMEM_TIER_DEVICE);

	/* Demote two, promote two; data intact both ways. */
	CHECK_OK(xmem_tier_migrate(t, b, 2 * unit, XMEM_TIER_DEVICE, &moved));
	CHECK(moved == 2);
	CHECK_OK(xmem_tier_migrate(t, b + 8 * unit, 2 * unit, XMEM_TIER_DRAM,
				   &moved));
	CHECK(moved == 2);
	CHECK(where(t, 0) == XMEM_TIER_DEVICE);
	CHECK(where(t, 9) == XMEM_TIER_DRAM);
	for (uint64_t i = 0; i < n; i++)
		CHECK(check(b, unit, i, 1));
	/* Writes after the move land in the new place and stay. */
	fill(b, unit, 9, 2);
	CHECK_OK(xmem_tier_migrate(t, b + 9 * unit, 1, XMEM_TIER_DEVICE, NULL));
	CHECK(check(b, unit, 9, 2));
	CHECK_OK(xmem_tier_stats(t, &st));
	CHECK(st.promotions == 2 && st.demotions == 3);
	CHECK(st.dram_used <= 4 * unit);
	CHECK(st.dram_peak <= 4 * unit);

	/* Advice: pins move at once; a pin beyond the budget is refused. */
	CHECK_OK(xmem_tier_advise(t, b + 12 * unit, unit,
				  XMEM_TIER_ADV_PIN_DRAM));
	CHECK(where(t, 12) == XMEM_TIER_DRAM);
	CHECK_OK(xmem_tier_advise(t, b + 2 * unit, unit,
				  XMEM_TIER_ADV_PIN_DEVICE));
	CHECK(where(t, 2) == XMEM_TIER_DEVICE);
	CHECK(check(b, unit, 12, 1) && check(b, unit, 2, 1));

	/* Bad arguments are errors, not crashes. */
	CHECK(xmem_tier_migrate(t, b - 1, 1, XMEM_TIER_DRAM, NULL) == -EINVAL);
	CHECK(xmem_tier_migrate(t, b, 1, XMEM_TIER_NONE, NULL) == -EINVAL);
	CHECK(xmem_tier_advise(t, b + n * unit, 1, XMEM_TIER_ADV_HOT) ==
	      -EINVAL);
	xmem_tier_delete(&t);
	CHECK(t == NULL);
	touch_then_ask(&cfg, unit, n);

	cfg.dram_budget = unit + 1;
	CHECK(xmem_tier_new(&cfg, &t) == -EINVAL);
	cfg.dram_budget = unit;
	cfg.unit = 3 * MiB;
	CHECK(xmem_tier_new(&cfg, &t) == -EINVAL);
	return test_result();
}
