/* SPDX-License-Identifier: MIT */
/*
 * btt_io.c - sector reads and writes through the BTT.
 *
 * A write goes to the lane's free block, then a flog entry records
 * (lba, old block, new block, seq), then one 4-byte map store publishes the
 * new block; the old block becomes the lane's free block. A reader
 * publishes the block it copies in the read-tracking table (RTT), and a
 * writer waits until no reader holds its free block before reusing it.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <string.h>

#include "blk/btt.h"
#include "core/error.h"
#include "core/util.h"

static uint32_t lane_next;
static __thread uint32_t lane_hint = UINT32_MAX;

/* Takes a lane for the calling thread: its usual one if free, else the
 * next free one. */
static uint32_t lane_acquire(struct xmem_blk *b)
{
	uint32_t n = b->nlanes, i;

	if (lane_hint == UINT32_MAX)
		lane_hint = __atomic_fetch_add(&lane_next, 1, __ATOMIC_RELAXED);
	for (unsigned spins = 0;; spins++) {
		for (uint32_t k = 0; k < n; k++) {
			i = (lane_hint + k) % n;
			if (!__atomic_exchange_n(&b->lanes[i * 16], 1,
						 __ATOMIC_ACQUIRE))
				return i;
		}
		if (spins > 64)
			sched_yield();
	}
}

static void lane_release(struct xmem_blk *b, uint32_t lane)
{
	__atomic_store_n(&b->lanes[lane * 16], 0, __ATOMIC_RELEASE);
}

/* The arena holding external lba; *premap is its index there. */
static struct btt_arena *lba_arena(struct xmem_blk *b, uint64_t lba,
				   uint32_t *premap)
{
	struct btt_arena *ar = b->arenas;

	while (lba >= ar->lba_start + ar->ext_nlba)
		ar++;
	*premap = (uint32_t)(lba - ar->lba_start);
	return ar;
}

static pthread_spinlock_t *map_lock(struct btt_arena *ar, uint32_t premap)
{
	return &ar->maplocks[(premap * BTT_MAP_ENT_SIZE / 64) % ar->nfree];
}

static int io_check(struct xmem_blk *b, uint64_t lba, uint64_t count, int wr)
{
	if (wr && (b->flags & XMEM_F_BLK_RDONLY))
		return xmem__err(-EROFS, "BTT: opened read-only");
	if (!range_fits(lba, count, b->nlba))
		return xmem__err(-EINVAL,
				 "BTT: sectors %" PRIu64 "+%" PRIu64
				 " out of range (%" PRIu64 " sectors)",
				 lba, count, b->nlba);
	return 0;
}

static int bad_block(struct xmem_blk *b, struct btt_arena *ar, uint32_t premap,
		     uint32_t block)
{
	return xmem__err(XMEM_E_CORRUPT,
			 "BTT arena %u map entry %u at offset %#" PRIx64
			 ": block %u out of range (%u blocks)",
			 (unsigned)(ar - b->arenas), premap,
			 (uint64_t)((uint8_t *)&ar->map[premap] - b->base),
			 block, ar->int_nlba);
}

/* Reads one sector under the RTT protocol. */
static int sector_read(struct xmem_blk *b, uint32_t lane, uint64_t lba,
		       uint8_t *buf)
{
	uint32_t premap, e, e2, block;
	struct btt_arena *ar = lba_arena(b, lba, &premap);

	for (;;) {
		e = __atomic_load_n(&ar->map[premap], __ATOMIC_SEQ_CST);
		if ((e & BTT_MAP_NORMAL) == BTT_MAP_Z) {
			memset(buf, 0, b->lbasize);
			return 0;
		}
		if ((e & BTT_MAP_NORMAL) == BTT_MAP_E)
			return xmem__err(XMEM_E_MEDIA,
					 "BTT: sector %" PRIu64
					 " is marked as a media error",
					 lba);
		block = (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK) : premap;
		if (block >= ar->int_nlba)
			return bad_block(b, ar, premap, block);
		/* Publish the block before re-reading the map: a writer
		 * that freed it either sees us or we see its new entry. */
		__atomic_store_n(&ar->rtt[lane], BTT_RTT_VALID | block,
				 __ATOMIC_SEQ_CST);
		e2 = __atomic_load_n(&ar->map[premap], __ATOMIC_SEQ_CST);
		if (e2 == e)
			break;
	}
	memcpy(buf, ar->data + (uint64_t)block * b->int_lbasize, b->lbasize);
	__atomic_store_n(&ar->rtt[lane], 0, __ATOMIC_RELEASE);
	return 0;
}

/* Waits until no reader copies `block` of the arena. */
static void rtt_wait(struct xmem_blk *b, struct btt_arena *ar, uint32_t block)
{
	/* The map store that freed `block` (this lane's previous write) is
	 * ordered before these loads: a reader that published `block` after
	 * it re-reads the map and retries. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < b->nlanes; i++)
		while (__atomic_load_n(&ar->rtt[i], __ATOMIC_SEQ_CST) ==
		       (BTT_RTT_VALID | block))
			sched_yield();
}

/* Writes one flog entry in two halves; the half holding seq is durable
 * last, so a torn entry is never taken as the newest. */
static void flog_write(struct xmem_blk *b, struct btt_flog_ent *dst,
		       const struct btt_flog_ent *src)
{
	const struct xmem_persist_ops *ops = b->ops;

	memcpy(dst, src, 8);
	ops->flush(dst, 8);
	/* The data block and (lba, old_map) are durable before new_map and
	 * seq make the entry the lane's newest. */
	ops->drain();
	memcpy((uint8_t *)dst + 8, (const uint8_t *)src + 8, 8);
	ops->flush((uint8_t *)dst + 8, 8);
	/* The flog entry is durable before the map points at new_map. */
	ops->drain();
}

/* Writes one sector atomically. */
static int sector_write(struct xmem_blk *b, uint32_t lane, uint64_t lba,
			const uint8_t *buf)
{
	uint32_t premap, e, oldb;
	struct btt_arena *ar = lba_arena(b, lba, &premap);
	struct btt_free *fr = &ar->free[lane];
	struct btt_flog_ent ent;
	pthread_spinlock_t *lk;

	if (fr->block >= ar->int_nlba)
		return bad_block(b, ar, premap, fr->block);
	rtt_wait(b, ar, fr->block);
	b->ops->memcpy(ar->data + (uint64_t)fr->block * b->int_lbasize, buf,
		       b->lbasize, XMEM_F_MEM_NODRAIN);
	lk = map_lock(ar, premap);
	pthread_spin_lock(lk);
	e = le32(ar->map[premap]);
	oldb = (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK) : premap;
	if (oldb >= ar->int_nlba) {
		pthread_spin_unlock(lk);
		return bad_block(b, ar, premap, oldb);
	}
	ent.lba = le32(premap);
	ent.old_map = le32((e & BTT_MAP_NORMAL) == BTT_MAP_E ? oldb | BTT_MAP_E
							     : oldb);
	ent.new_map = le32(fr->block);
	ent.seq = le32(fr->seq);
	flog_write(b, &ar->flog[lane].ent[ar->idx[fr->sub]], &ent);
	__atomic_store_n(&ar->map[premap], le32(BTT_MAP_NORMAL | fr->block),
			 __ATOMIC_RELEASE);
	/* The map entry is durable before the lock lets another writer of
	 * this sector read it (its flog entry will name our block as the
	 * old one, which recovery must find in the map), and before the
	 * write is acknowledged. */
	b->ops->persist(&ar->map[premap], sizeof(uint32_t));
	pthread_spin_unlock(lk);
	fr->sub = 1 - fr->sub;
	fr->seq = btt_seq_next(fr->seq);
	fr->block = oldb;
	return 0;
}

XMEM_EXPORT int xmem_blk_read(struct xmem_blk *b, uint64_t lba, void *buf,
			      uint64_t count)
{
	uint32_t lane;
	int rc = io_check(b, lba, count, 0);

	if (rc || !count)
		return rc;
	lane = lane_acquire(b);
	for (uint64_t i = 0; rc == 0 && i < count; i++)
		rc = sector_read(b, lane, lba + i,
				 (uint8_t *)buf + i * b->lbasize);
	lane_release(b, lane);
	return rc;
}

XMEM_EXPORT int xmem_blk_write(struct xmem_blk *b, uint64_t lba,
			       const void *buf, uint64_t count)
{
	uint32_t lane;
	int rc = io_check(b, lba, count, 1);

	if (rc || !count)
		return rc;
	lane = lane_acquire(b);
	for (uint64_t i = 0; rc == 0 && i < count; i++)
		rc = sector_write(b, lane, lba + i,
				  (const uint8_t *)buf + i * b->lbasize);
	lane_release(b, lane);
	return rc;
}

/* Rewrites the flags of a map entry in place (one atomic 4-byte store),
 * keeping its block: zero (Z), error (E). */
static int map_set_flags(struct xmem_blk *b, uint64_t lba, uint32_t flags)
{
	uint32_t premap, e, block;
	struct btt_arena *ar = lba_arena(b, lba, &premap);
	pthread_spinlock_t *lk = map_lock(ar, premap);

	pthread_spin_lock(lk);
	e = le32(ar->map[premap]);
	block = (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK) : premap;
	if (block >= ar->int_nlba) {
		pthread_spin_unlock(lk);
		return bad_block(b, ar, premap, block);
	}
	__atomic_store_n(&ar->map[premap], le32(flags | block),
			 __ATOMIC_RELEASE);
	/* The new flags are durable before another writer of this sector
	 * can read them, and before the call returns. */
	b->ops->persist(&ar->map[premap], sizeof(uint32_t));
	pthread_spin_unlock(lk);
	return 0;
}

XMEM_EXPORT int xmem_blk_write_zeroes(struct xmem_blk *b, uint64_t lba,
				      uint64_t count)
{
	int rc = io_check(b, lba, count, 1);

	for (uint64_t i = 0; rc == 0 && i < count; i++)
		rc = map_set_flags(b, lba + i, BTT_MAP_Z);
	return rc;
}

XMEM_EXPORT int xmem_blk_trim(struct xmem_blk *b, uint64_t lba, uint64_t count)
{
	return xmem_blk_write_zeroes(b, lba, count);
}

XMEM_EXPORT int xmem_blk_set_error(struct xmem_blk *b, uint64_t lba)
{
	int rc = io_check(b, lba, 1, 1);

	return rc ? rc : map_set_flags(b, lba, BTT_MAP_E);
}

XMEM_EXPORT int xmem_blk_clear_error(struct xmem_blk *b, uint64_t lba)
{
	int rc = io_check(b, lba, 1, 1);

	return rc ? rc : map_set_flags(b, lba, BTT_MAP_Z);
}

XMEM_EXPORT int xmem_blk_flush(struct xmem_blk *b)
{
	/* Every write persisted itself at the mapping's granularity; this
	 * fence orders anything still pending before the flush returns. */
	b->ops->drain();
	return 0;
}
