/* SPDX-License-Identifier: MIT */
/* btt.h - the in-memory state of an open BTT (internal to src/blk). */
#ifndef XMEM_BTT_H
#define XMEM_BTT_H

#include <pthread.h>
#include <stdint.h>

#include <xmem/blk.h>
#include <xmem/device.h>

#include "blk/btt_layout.h"

#define BTT_RTT_VALID (1u << 31)
#define BTT_MAX_LANES 64u

/*
 * Per-lane state that threads write sits 128 bytes apart: two cache
 * lines, since the adjacent-line prefetcher pairs lines and would make
 * neighbours share anyway.
 */
#define BTT_PAD 128

struct btt_slot {
	uint32_t v;
} __attribute__((aligned(BTT_PAD)));

/* A map stripe lock: spins briefly, then yields, so that a holder that
 * was preempted (on a busy machine) does not cost its waiters a whole
 * time slice of spinning. */
struct btt_maplock {
	int l;
} __attribute__((aligned(BTT_PAD)));

/* A lane's free block and the flog slot its next write uses. */
struct btt_free {
	uint32_t block; /* post-map block free for this lane's next write */
	uint32_t sub;	/* position (0/1) in the flog pair to overwrite */
	uint32_t seq;	/* sequence number of that next entry */
	/* open only: the lane's last write left its map update unfinished
	 * (the map names `block` at plba; recovery maps pnew there) */
	uint32_t plba, pnew;
	int pending;
} __attribute__((aligned(BTT_PAD)));

struct btt_arena {
	uint64_t off;	    /* namespace offset of the info block */
	uint64_t size;	    /* bytes, info block to backup info block */
	uint64_t lba_start; /* first external LBA of this arena */
	uint32_t ext_nlba, int_nlba, nfree, flags;
	uint32_t idx[2]; /* flog slots in use */
	uint8_t *data;
	uint32_t *map;
	struct btt_flog_group *flog;
	struct btt_free *free;
	struct btt_slot *rtt;	      /* per reader slot: RTT_VALID | block */
	struct btt_maplock *maplocks; /* nfree locks hashed by premap */
};

struct xmem_blk {
	uint8_t *base; /* namespace start */
	uint64_t len;
	const struct xmem_persist_ops *ops;
	int nt; /* cache-line granularity: small non-temporal stores */
	unsigned flags;
	uint64_t btt_off;
	uint32_t lbasize, int_lbasize;
	uint64_t nlba;
	uint32_t narenas;
	struct btt_arena *arenas;
	uint32_t nlanes;	/* writer lanes (free block + flog group) */
	uint32_t nslots;	/* reader RTT slots per arena */
	struct btt_slot *lanes; /* per lane: 1 while a writer holds it */
	struct xmem_blk_info info;
	/* what the raw and range opens made, released on close */
	struct xmem_device *dev;
	struct xmem_map *map;
};

/* Validates an info block found at namespace offset `off` for an arena
 * that may span at most `space` bytes; 0, or XMEM_E_CORRUPT with the
 * message naming the arena and offset. */
int xmem__btt_info_check(const struct btt_info *ib, unsigned arena,
			 uint64_t off, uint64_t space, uint16_t want_major);

/* The flog pair slots of an arena, detected as the kernel does: (0,1) or
 * (0,2). 0 or XMEM_E_CORRUPT. */
int xmem__btt_flog_slots(const struct btt_flog_group *flog, uint32_t nfree,
			 unsigned arena, uint64_t logoff, uint32_t idx[2]);

/* The newest entry of a flog pair: 0 or 1 in *newp; XMEM_E_CORRUPT when
 * the sequence numbers are not a valid pair. */
int xmem__btt_flog_newest(const struct btt_flog_ent *e0,
			  const struct btt_flog_ent *e1, int *newp);

/* Where the BTT of a namespace of `len` bytes starts and which version it
 * is: 0, XMEM_E_NOREGION if no info block signature is found. */
int xmem__btt_probe(const uint8_t *base, uint64_t len, uint64_t *btt_off,
		    uint16_t *major);

/* Where format puts the backup info block of the first arena of a
 * namespace of len bytes (v1.1 or v2.0 start); 0 if it has no room. */
uint64_t xmem__btt_backup_off(uint64_t len, int v11);

/* With no valid first info block: 1 (and its offset) when the first
 * arena's backup info block is valid and in its place, else 0. The
 * kernel never reads the backup, so this is a hint, not a BTT. */
int xmem__btt_backup_find(const uint8_t *base, uint64_t len, uint64_t *boff);

/* Reads every lane's newest flog entry into its arena's free slots and
 * validates them without writing: the lanes' blocks are distinct and no
 * sector maps one. O(nfree log nfree + ext_nlba) per arena. 0 or
 * XMEM_E_CORRUPT naming the arena, lane (flog group) and block. */
int xmem__btt_lanes_load(struct xmem_blk *b);

/* Finishes the map updates that load found unfinished (none when opened
 * read-only). Called once every check of the open has passed. */
void xmem__btt_lanes_recover(struct xmem_blk *b);

/* Opens as xmem_blk_open_mem() does; with `parent` (16 bytes) non-NULL, a
 * BTT whose parent uuid is set and differs is refused (XMEM_E_CORRUPT)
 * before anything is written. */
int xmem__btt_open(void *addr, uint64_t len, const struct xmem_persist_ops *ops,
		   unsigned flags, const uint8_t *parent,
		   struct xmem_blk **blkp);

/* Largest arena that format cuts (BTT_ARENA_MAX; tests lower it). */
extern uint64_t xmem__btt_arena_max;

static inline uint32_t btt_seq_next(uint32_t seq)
{
	return seq % 3 + 1; /* 1 -> 2 -> 3 -> 1 */
}

#endif /* XMEM_BTT_H */
