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
#include "persist/nt_store.h"

static uint32_t lane_next;
static __thread uint32_t lane_hint = UINT32_MAX;

/* The k-th lane to hand out: the even ones first, so that threads with
 * consecutive hints do not write neighbouring flog groups (64 bytes each
 * on media, paired by the adjacent-line prefetcher). */
static uint32_t lane_spread(uint32_t k, uint32_t n)
{
	k %= n;
	if (n % 2)
		return k;
	return k < n / 2 ? 2 * k : 2 * (k - n / 2) + 1;
}

/* Takes a lane for the calling thread: its usual one if free, else the
 * next free one. */
static uint32_t lane_acquire(struct xmem_blk *b)
{
	uint32_t n = b->nlanes, i;

	if (lane_hint == UINT32_MAX)
		lane_hint = __atomic_fetch_add(&lane_next, 1, __ATOMIC_RELAXED);
	for (unsigned spins = 0;; spins++) {
		for (uint32_t k = 0; k < n; k++) {
			i = lane_spread(lane_hint + k, n);
			if (!__atomic_load_n(&b->lanes[i].v,
					     __ATOMIC_RELAXED) &&
			    !__atomic_exchange_n(&b->lanes[i].v, 1,
						 __ATOMIC_ACQUIRE))
				return i;
		}
		if (spins >= 4) /* every lane busy: let their holders run */
			sched_yield();
	}
}

/* Gives the lane back; its free block and flog slot stay with it. */
static void lane_release(struct xmem_blk *b, uint32_t lane)
{
	__atomic_store_n(&b->lanes[lane].v, 0, __ATOMIC_RELEASE);
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

/* The lock of a map entry: one per 16 entries (a cache line of the map),
 * striped over nfree locks, as the kernel does. */
static int *map_lock(struct btt_arena *ar, uint32_t premap)
{
	return &ar->maplocks[(premap * BTT_MAP_ENT_SIZE / 64) % ar->nfree].l;
}

/* Takes a map stripe lock: test-and-test-and-set, yielding after a
 * short spin. */
static void lock_take(int *l)
{
	for (unsigned spins = 0;; spins++) {
		if (!__atomic_load_n(l, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
			return;
		if (spins >= 100)
			sched_yield();
	}
}

static void lock_drop(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* Refuses writes to a read-only BTT and sectors past its end. */
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

/* The error for a map entry or free block naming no data block. */
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

/* Claims an RTT slot of the arena for the calling thread's read and
 * publishes `val` (RTT_VALID | block) in it with one seq_cst CAS: the
 * thread's usual slot, else the next free one. Readers take no lane and
 * no lock; a slot is only busy while another read copies a block. */
static struct btt_slot *rtt_claim(struct xmem_blk *b, struct btt_arena *ar,
				  uint32_t val)
{
	uint32_t n = b->nslots;

	if (lane_hint == UINT32_MAX)
		lane_hint = __atomic_fetch_add(&lane_next, 1, __ATOMIC_RELAXED);
	for (unsigned spins = 0;; spins++) {
		for (uint32_t k = 0; k < n; k++) {
			struct btt_slot *s =
				&ar->rtt[lane_spread(lane_hint + k, n)];
			uint32_t z = 0;

			if (!__atomic_load_n(&s->v, __ATOMIC_RELAXED) &&
			    __atomic_compare_exchange_n(&s->v, &z, val, 0,
							__ATOMIC_SEQ_CST,
							__ATOMIC_RELAXED))
				return s;
		}
		if (spins >= 4) /* every slot busy: let their readers run */
			sched_yield();
	}
}

/* The data block a map entry names, or an error for a zero, error or
 * out-of-range entry (1: zero, the caller fills the buffer). */
static int map_block(struct xmem_blk *b, struct btt_arena *ar, uint64_t lba,
		     uint32_t premap, uint32_t e, uint32_t *block)
{
	if ((e & BTT_MAP_NORMAL) == BTT_MAP_Z)
		return 1;
	if ((e & BTT_MAP_NORMAL) == BTT_MAP_E)
		return xmem__err(XMEM_E_MEDIA,
				 "BTT: sector %" PRIu64
				 " is marked as a media error",
				 lba);
	*block = (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK) : premap;
	if (*block >= ar->int_nlba)
		return bad_block(b, ar, premap, *block);
	return 0;
}

/*
 * Reads one sector under the RTT protocol, without a lock: publish the
 * block in an RTT slot (seq_cst), re-read the map entry, and copy only if
 * it still names that block. A writer that freed the block either sees
 * the slot (and waits) or the reader sees its new entry (and retries).
 */
static int sector_read(struct xmem_blk *b, uint64_t lba, uint8_t *buf)
{
	uint32_t premap, e, e2, block = 0;
	struct btt_arena *ar = lba_arena(b, lba, &premap);
	struct btt_slot *slot;
	int rc;

	e = __atomic_load_n(&ar->map[premap], __ATOMIC_ACQUIRE);
	rc = map_block(b, ar, lba, premap, e, &block);
	if (rc)
		goto unmapped;
	slot = rtt_claim(b, ar, BTT_RTT_VALID | block);
	for (;;) {
		e2 = __atomic_load_n(&ar->map[premap], __ATOMIC_SEQ_CST);
		if (e2 == e)
			break;
		e = e2;
		rc = map_block(b, ar, lba, premap, e, &block);
		if (rc) {
			__atomic_store_n(&slot->v, 0, __ATOMIC_RELEASE);
			goto unmapped;
		}
		__atomic_store_n(&slot->v, BTT_RTT_VALID | block,
				 __ATOMIC_SEQ_CST);
	}
	memcpy(buf, ar->data + (uint64_t)block * b->int_lbasize, b->lbasize);
	__atomic_store_n(&slot->v, 0, __ATOMIC_RELEASE);
	return 0;
unmapped:
	if (rc == 1)
		memset(buf, 0, b->lbasize);
	return rc == 1 ? 0 : rc;
}

/* Waits until no reader copies `block` of the arena. The caller has
 * issued rtt_fence() since the map store that freed the block. */
static void rtt_wait(struct xmem_blk *b, struct btt_arena *ar, uint32_t block)
{
	for (uint32_t i = 0; i < b->nslots; i++)
		while (__atomic_load_n(&ar->rtt[i].v, __ATOMIC_SEQ_CST) ==
		       (BTT_RTT_VALID | block))
			sched_yield();
}

/* Orders the map stores that freed this thread's free blocks (its lanes'
 * previous writes) before the RTT loads of rtt_wait(): a reader that
 * published such a block after them re-reads the map and retries. */
static void rtt_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#define BTT_BATCH 16 /* sectors written together, one lane each */

/* One sector of a batch. */
struct wsec {
	struct btt_free *fr;
	struct btt_flog_ent ent;
	struct btt_flog_ent *dst;
	uint32_t premap, oldb;
};

/* Locks the map stripes of premaps [p0, p0+m) in ascending order (every
 * writer does, so no two deadlock); returns how many distinct ones. */
static unsigned stripes_lock(struct btt_arena *ar, uint32_t p0, uint32_t m,
			     int **lk)
{
	unsigned n = 0;

	for (uint32_t j = 0; j < m; j++) {
		int *l = map_lock(ar, p0 + j);
		unsigned k = n;

		for (unsigned i = 0; i < n; i++)
			if (lk[i] == l)
				k = UINT32_MAX;
		if (k == UINT32_MAX)
			continue;
		while (k > 0 && lk[k - 1] > l) { /* insertion sort */
			lk[k] = lk[k - 1];
			k--;
		}
		lk[k] = l;
		n++;
	}
	for (unsigned i = 0; i < n; i++)
		lock_take(lk[i]);
	return n;
}

static void stripes_unlock(int **lk, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		lock_drop(lk[i]);
}

/* Under the stripe locks: reads each sector's old block and fills its
 * flog entry. */
static int batch_entries(struct xmem_blk *b, struct btt_arena *ar,
			 const uint32_t *lanes, struct wsec *w, uint32_t m)
{
	for (uint32_t j = 0; j < m; j++) {
		uint32_t e = le32(ar->map[w[j].premap]);

		w[j].oldb = (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK)
						 : w[j].premap;
		if (w[j].oldb >= ar->int_nlba)
			return bad_block(b, ar, w[j].premap, w[j].oldb);
		w[j].ent.lba = le32(w[j].premap);
		w[j].ent.old_map = le32((e & BTT_MAP_NORMAL) == BTT_MAP_E
						? w[j].oldb | BTT_MAP_E
						: w[j].oldb);
		w[j].ent.new_map = le32(w[j].fr->block);
		w[j].ent.seq = le32(w[j].fr->seq);
		w[j].dst = &ar->flog[lanes[j]].ent[ar->idx[w[j].fr->sub]];
	}
	return 0;
}

/* One 8-byte half of a flog entry (nt: a non-temporal store, else a
 * store and a flush); durable at the caller's next drain. */
static void half_store(const struct xmem_persist_ops *ops, int nt, void *dst,
		       const void *src)
{
	uint64_t v;

	memcpy(&v, src, 8);
	if (nt) {
		xmem__nt_store64(dst, v);
		return;
	}
	memcpy(dst, &v, 8);
	ops->flush(dst, 8);
}

/* Publishes a map entry (readers load it concurrently: one atomic store
 * either way); durable at the caller's next drain. */
static void map_store(const struct xmem_persist_ops *ops, int nt, uint32_t *dst,
		      uint32_t v)
{
	if (nt) {
		xmem__nt_store32(dst, v);
		return;
	}
	__atomic_store_n(dst, v, __ATOMIC_RELEASE);
	ops->flush(dst, sizeof(uint32_t));
}

/*
 * The three ordering points of a batch, the fewest a sector write can have
 * with 8-byte failure atomicity: (data, each entry's lba/old_map half),
 * then (new_map, seq), then the map entries. Each is one drain; what it
 * waits for is written with non-temporal stores where it can be (the data
 * by the ops' memcpy, the 8- and 4-byte stores by xmem__nt_store*), so no line
 * is written back by a flush on this path.
 */
static void batch_commit(struct xmem_blk *b, struct btt_arena *ar,
			 struct wsec *w, uint32_t m)
{
	const struct xmem_persist_ops *ops = b->ops;
	int nt = b->nt;

	for (uint32_t j = 0; j < m; j++)
		half_store(ops, nt, w[j].dst, &w[j].ent);
	/* The data blocks and each entry's (lba, old_map) half are durable
	 * before new_map and seq make the entries their lanes' newest: a
	 * torn entry is never taken as the newest. */
	ops->drain();
	for (uint32_t j = 0; j < m; j++)
		half_store(ops, nt, (uint8_t *)w[j].dst + 8,
			   (const uint8_t *)&w[j].ent + 8);
	/* The flog entries are durable before the map points at new_map. */
	ops->drain();
	for (uint32_t j = 0; j < m; j++)
		map_store(ops, nt, &ar->map[w[j].premap],
			  le32(BTT_MAP_NORMAL | w[j].fr->block));
	/* The map entries are durable (and, non-temporal ones, visible)
	 * before the locks let another writer of these sectors read them
	 * (its flog entry will name our block as the old one, which
	 * recovery must find in the map), and before the write is
	 * acknowledged. */
	ops->drain();
}

/*
 * Writes m consecutive sectors of one arena, sector j through lanes[j]:
 * each sector is atomic on its own (its own free block and flog entry),
 * and the batch shares three fences instead of three per sector.
 */
static int batch_write(struct xmem_blk *b, struct btt_arena *ar,
		       const uint32_t *lanes, uint32_t m, uint32_t p0,
		       const uint8_t *buf)
{
	struct wsec w[BTT_BATCH];
	int *lk[BTT_BATCH];
	unsigned nlk;
	int rc;

	/* The map entries are read after the data copy (and may have been
	 * evicted by earlier non-temporal stores): start their cache misses
	 * now, to overlap the copy. The flog groups are only written. */
	for (uint32_t j = 0; j < m; j++)
		__builtin_prefetch(&ar->map[p0 + j], 0);
	/* A single sector takes its lock first: a locked instruction waits
	 * for every earlier store and flush, and here none of this write's
	 * are pending yet, so its data copy and first flog half drain
	 * together at the first fence instead of one after the other. A
	 * batch copies first: holding a lock across a long copy would make
	 * a preempted holder stall the writers of its stripes. */
	nlk = m == 1 ? stripes_lock(ar, p0, m, lk) : 0;
	rtt_fence();
	rc = 0;
	for (uint32_t j = 0; j < m; j++) {
		w[j].fr = &ar->free[lanes[j]];
		w[j].premap = p0 + j;
		if (w[j].fr->block >= ar->int_nlba) {
			rc = bad_block(b, ar, p0 + j, w[j].fr->block);
			break;
		}
		rtt_wait(b, ar, w[j].fr->block);
		b->ops->memcpy(ar->data + (uint64_t)w[j].fr->block *
						  b->int_lbasize,
			       buf + (size_t)j * b->lbasize, b->lbasize,
			       XMEM_F_MEM_NODRAIN);
	}
	if (m > 1)
		nlk = stripes_lock(ar, p0, m, lk);
	if (rc == 0)
		rc = batch_entries(b, ar, lanes, w, m);
	if (rc == 0)
		batch_commit(b, ar, w, m);
	stripes_unlock(lk, nlk);
	for (uint32_t j = 0; rc == 0 && j < m; j++) {
		w[j].fr->sub = 1 - w[j].fr->sub;
		w[j].fr->seq = btt_seq_next(w[j].fr->seq);
		w[j].fr->block = w[j].oldb;
	}
	return rc;
}

/* Reads count sectors; takes no lane and no lock. */
XMEM_EXPORT int xmem_blk_read(struct xmem_blk *b, uint64_t lba, void *buf,
			      uint64_t count)
{
	int rc = io_check(b, lba, count, 0);

	for (uint64_t i = 0; rc == 0 && i < count; i++)
		rc = sector_read(b, lba + i, (uint8_t *)buf + i * b->lbasize);
	return rc;
}

/* Takes up to want - 1 more lanes, without waiting for any. */
static uint32_t lanes_try_more(struct xmem_blk *b, uint32_t *lanes,
			       uint32_t want)
{
	uint32_t n = 1;

	for (uint32_t k = 1; k < b->nlanes && n < want; k++) {
		uint32_t i = lane_spread(lane_hint + k, b->nlanes);

		if (!__atomic_load_n(&b->lanes[i].v, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(&b->lanes[i].v, 1, __ATOMIC_ACQUIRE))
			lanes[n++] = i;
	}
	return n;
}

/* Writes count sectors, each atomically: in batches of up to BTT_BATCH,
 * one lane per sector of a batch (as many lanes as are free). */
XMEM_EXPORT int xmem_blk_write(struct xmem_blk *b, uint64_t lba,
			       const void *buf, uint64_t count)
{
	uint32_t lanes[BTT_BATCH], nl;
	int rc = io_check(b, lba, count, 1);

	if (rc || !count)
		return rc;
	lanes[0] = lane_acquire(b);
	nl = count > 1
		     ? lanes_try_more(b, lanes, (uint32_t)MIN(count, BTT_BATCH))
		     : 1;
	for (uint64_t i = 0; rc == 0 && i < count;) {
		uint32_t premap;
		struct btt_arena *ar = lba_arena(b, lba + i, &premap);
		uint32_t m = (uint32_t)MIN(MIN((uint64_t)nl, count - i),
					   ar->ext_nlba - premap);

		rc = batch_write(b, ar, lanes, m, premap,
				 (const uint8_t *)buf + i * b->lbasize);
		i += m;
	}
	for (uint32_t j = 0; j < nl; j++)
		lane_release(b, lanes[j]);
	return rc;
}

/* Rewrites the flags of a map entry in place (one atomic 4-byte store),
 * keeping its block: zero (Z), error (E). */
static int map_set_flags(struct xmem_blk *b, uint64_t lba, uint32_t flags)
{
	uint32_t premap, e, block;
	struct btt_arena *ar = lba_arena(b, lba, &premap);
	int *lk = map_lock(ar, premap);

	lock_take(lk);
	e = le32(ar->map[premap]);
	block = (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK) : premap;
	if (block >= ar->int_nlba) {
		lock_drop(lk);
		return bad_block(b, ar, premap, block);
	}
	map_store(b->ops, b->nt, &ar->map[premap], le32(flags | block));
	/* The new flags are durable before another writer of this sector
	 * can read them, and before the call returns. */
	b->ops->drain();
	lock_drop(lk);
	return 0;
}

/* Sets the zero flag of each sector: reads return zeroes. */
XMEM_EXPORT int xmem_blk_write_zeroes(struct xmem_blk *b, uint64_t lba,
				      uint64_t count)
{
	int rc = io_check(b, lba, count, 1);

	for (uint64_t i = 0; rc == 0 && i < count; i++)
		rc = map_set_flags(b, lba + i, BTT_MAP_Z);
	return rc;
}

/* Trim is write-zeroes here: the block stays owned by its sector. */
XMEM_EXPORT int xmem_blk_trim(struct xmem_blk *b, uint64_t lba, uint64_t count)
{
	return xmem_blk_write_zeroes(b, lba, count);
}

/* Sets the error flag: reads fail until a write or clear. */
XMEM_EXPORT int xmem_blk_set_error(struct xmem_blk *b, uint64_t lba)
{
	int rc = io_check(b, lba, 1, 1);

	return rc ? rc : map_set_flags(b, lba, BTT_MAP_E);
}

/* Clears the error flag; the sector then reads as zeroes. */
XMEM_EXPORT int xmem_blk_clear_error(struct xmem_blk *b, uint64_t lba)
{
	int rc = io_check(b, lba, 1, 1);

	return rc ? rc : map_set_flags(b, lba, BTT_MAP_Z);
}

/* A fence: every write was persisted before it returned. */
XMEM_EXPORT int xmem_blk_flush(struct xmem_blk *b)
{
	/* Every write persisted itself at the mapping's granularity; this
	 * fence orders anything still pending before the flush returns. */
	b->ops->drain();
	return 0;
}
