/* SPDX-License-Identifier: MIT */
/*
 * test_btt_threads.c - writers and readers on the same few sectors at
 * once. Blocks are recycled constantly (each write frees one), so a reader
 * that could see a reused block would read a sector of another LBA or a
 * half-written one; every read must be a whole sector written for its own
 * LBA. Bounded by an iteration count. Run with byte granularity (plain
 * stores) and with cache-line granularity (the non-temporal write path).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "test.h"

#define NS (20ull << 20)
#define NSECT 2
#define WRITERS 2
#define READERS 2
#define ITERS 100000

static struct xmem_blk *blk;
static int bad;

/* A sector stamped with (lba, writer, n) in every word. */
static void stamp(uint64_t *w, uint64_t lba, uint64_t id, uint64_t n)
{
	for (int i = 0; i < 512; i++)
		w[i] = lba << 48 | id << 40 | n;
}

static int sector_ok(const uint64_t *w, uint64_t lba)
{
	if (w[0] == 0) { /* never written: all zero */
		for (int i = 1; i < 512; i++)
			if (w[i])
				return 0;
		return 1;
	}
	if (w[0] >> 48 != lba)
		return 0;
	for (int i = 1; i < 512; i++)
		if (w[i] != w[0])
			return 0;
	return 1;
}

/* Writer 0 writes one sector per call; the others write every sector in
 * one call (a batch, one lane per sector). */
static void *writer(void *arg)
{
	uint64_t id = (uintptr_t)arg, w[512 * NSECT];

	for (uint64_t n = 1; n <= ITERS; n++) {
		uint64_t lba = (n * 7 + id) % NSECT;
		int rc;

		if (id == 0) {
			stamp(w, lba, id, n);
			rc = xmem_blk_write(blk, lba, w, 1);
		} else {
			for (uint64_t s = 0; s < NSECT; s++)
				stamp(w + 512 * s, s, id, n);
			rc = xmem_blk_write(blk, 0, w, NSECT);
		}
		if (rc != 0)
			__atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *reader(void *arg)
{
	uint64_t w[512];

	for (uint64_t n = 0; n < ITERS; n++) {
		uint64_t lba = (n * 5 + (uintptr_t)arg) % NSECT;

		if (xmem_blk_read(blk, lba, w, 1) != 0 || !sector_ok(w, lba))
			__atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* One run on a fresh BTT with the operations of granularity g. */
static void run(enum xmem_granularity g)
{
	uint8_t *ns = aligned_alloc(4096, NS);
	const struct xmem_persist_ops *ops = xmem_persist_ops(g);
	pthread_t t[WRITERS + READERS];
	unsigned np = 0;

	REQUIRE(ns);
	memset(ns, 0, NS);
	REQUIRE_OK(xmem_blk_format_mem(
		ns, NS, ops,
		&(struct xmem_blk_format_opts){
			/* long copies widen any race window */
			.lbasize = 4096 }));
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &blk));
	for (uintptr_t i = 0; i < WRITERS; i++)
		REQUIRE(pthread_create(&t[i], NULL, writer, (void *)i) == 0);
	for (uintptr_t i = 0; i < READERS; i++)
		REQUIRE(pthread_create(&t[WRITERS + i], NULL, reader,
				       (void *)i) == 0);
	for (int i = 0; i < WRITERS + READERS; i++)
		pthread_join(t[i], NULL);
	CHECK(!bad);
	xmem_blk_close(&blk);
	/* Every block still owned exactly once after all the recycling. */
	CHECK_OK(xmem_blk_check_mem(ns, NS, NULL, NULL, &np));
	CHECK(np == 0);
	free(ns);
}

int main(void)
{
	run(XMEM_GRAN_BYTE);
	run(XMEM_GRAN_CACHELINE);
	return test_result();
}
