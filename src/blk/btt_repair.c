/* SPDX-License-Identifier: MIT */
/*
 * btt_repair.c - the repairs that need no guess, run only when asked
 * (open and check never change anything they find wrong):
 *
 *   - an info block restored from its good copy: a damaged first info
 *     block from the first arena's backup (when that backup is valid and
 *     where format put it); a backup that differs from its valid info
 *     block from it;
 *   - a lane whose block (its free block, or the new block of its
 *     unfinished write) is also owned by a sector or by another lane gets
 *     a block that nothing owns, through a new flog entry that moves
 *     nothing (old == new); its unfinished write, if any, is dropped and
 *     that sector keeps its old data. If a block is owned twice, some
 *     block is owned by nothing (there are as many blocks as sectors and
 *     lanes), so there is always one to give.
 *
 * The map and the data are never changed. O(arenas + nlba) time,
 * O(int_nlba / 8) bytes of memory for one arena at a time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk/btt.h"
#include "core/error.h"
#include "core/util.h"

/* Writes an info block: all but the signature line first, then the
 * signature line, so a crash leaves the old state or the new. */
static void info_write(uint8_t *dst, const uint8_t *src,
		       const struct xmem_persist_ops *ops)
{
	uint8_t copy[BTT_INFO_SIZE];

	memcpy(copy, src, sizeof(copy)); /* src is on the device too */
	ops->memcpy(dst + XMEM_CACHELINE, copy + XMEM_CACHELINE,
		    BTT_INFO_SIZE - XMEM_CACHELINE, XMEM_F_MEM_NODRAIN);
	/* The body is durable before the signature line validates it. */
	ops->drain();
	ops->memcpy(dst, copy, XMEM_CACHELINE, 0);
}

/* Restores the first info block from the first arena's backup. */
static int first_restore(uint8_t *base, uint64_t len,
			 const struct xmem_persist_ops *ops, unsigned *n)
{
	uint64_t boff, off;
	const struct btt_info *ib;

	if (!xmem__btt_backup_find(base, len, &boff))
		return xmem__err(XMEM_E_NOREGION,
				 "BTT repair: no valid info block and no valid "
				 "backup: nothing to restore from");
	ib = (const void *)(base + boff);
	off = boff - le64(ib->info2off);
	info_write(base + off, (const uint8_t *)ib, ops);
	(*n)++;
	return 0;
}

/* Restores the info block of arena a at off from the backup where format
 * put it (the arena spans min(512 GiB, rest of the namespace)). */
static int arena_restore(uint8_t *base, uint64_t len, unsigned a, uint64_t off,
			 uint16_t major, const struct xmem_persist_ops *ops)
{
	uint64_t sz = align_down(MIN(BTT_ARENA_MAX, len - off), BTT_PG);
	uint64_t b = off + sz - BTT_INFO_SIZE;
	const struct btt_info *ib = (const void *)(base + b);
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", xmem_errormsg());
	if (sz < BTT_ARENA_MIN ||
	    xmem__btt_info_check(ib, a, off, len - off, major) != 0 ||
	    le64(ib->info2off) != b - off)
		return xmem__err(XMEM_E_CORRUPT,
				 "BTT repair: %s; no valid backup at offset "
				 "%#" PRIx64 " to restore it from",
				 msg, b);
	info_write(base + off, (const uint8_t *)ib, ops);
	return 0;
}

/* The block a map entry names (identity when both flags are clear). */
static uint32_t entry_block(uint32_t e, uint32_t premap)
{
	return (e & BTT_MAP_NORMAL) ? (e & BTT_MAP_LBA_MASK) : premap;
}

struct lanes_fix {
	const struct xmem_persist_ops *ops;
	unsigned a;
	uint32_t ext, in, nfree, idx[2];
	uint32_t *map;
	struct btt_flog_group *flog;
	uint64_t *own; /* blocks owned by a sector or a lane */
	uint8_t *bad;  /* lanes whose block is owned elsewhere */
};

static int owned(const struct lanes_fix *f, uint32_t b)
{
	return (f->own[b / 64] >> (b % 64)) & 1;
}

static void own(struct lanes_fix *f, uint32_t b)
{
	f->own[b / 64] |= 1ull << (b % 64);
}

/* Marks what the sectors own, then what each lane claims; a lane whose
 * claim is out of range or already owned is marked bad. */
static int claims_mark(struct lanes_fix *f)
{
	for (uint32_t p = 0; p < f->ext; p++) {
		uint32_t b = entry_block(le32(f->map[p]), p);

		if (b < f->in)
			own(f, b);
	}
	for (uint32_t i = 0; i < f->nfree; i++) {
		const struct btt_flog_ent *e0 = &f->flog[i].ent[f->idx[0]];
		const struct btt_flog_ent *e1 = &f->flog[i].ent[f->idx[1]];
		const struct btt_flog_ent *e;
		uint32_t lba, oldb, newb, claim;
		int nw;

		if (xmem__btt_flog_newest(e0, e1, &nw) != 0)
			return xmem__err(XMEM_E_CORRUPT,
					 "BTT repair: arena %u flog group %u: "
					 "sequence numbers %u and %u are not a "
					 "valid pair; not repaired",
					 f->a, i, le32(e0->seq), le32(e1->seq));
		e = nw ? e1 : e0;
		lba = le32(e->lba);
		oldb = le32(e->old_map) & BTT_MAP_LBA_MASK;
		newb = le32(e->new_map) & BTT_MAP_LBA_MASK;
		claim = oldb;
		if (lba < f->ext && oldb != newb &&
		    entry_block(le32(f->map[lba]), lba) == oldb)
			claim = newb; /* open would finish this write */
		f->bad[i] = lba >= f->ext || oldb >= f->in || newb >= f->in ||
			    owned(f, claim);
		if (!f->bad[i])
			own(f, claim);
	}
	return 0;
}

/* Gives lane i block b: a new newest flog entry (lba, b, b), written as a
 * sector write writes one, so a crash leaves the old entry or the new. */
static void lane_give(struct lanes_fix *f, uint32_t i, uint32_t b)
{
	struct btt_flog_ent *e0 = &f->flog[i].ent[f->idx[0]];
	struct btt_flog_ent *e1 = &f->flog[i].ent[f->idx[1]];
	struct btt_flog_ent ent;
	int nw = 0;

	xmem__btt_flog_newest(e0, e1, &nw); /* checked by claims_mark */
	ent.lba = le32(i % f->ext);
	ent.old_map = le32(b);
	ent.new_map = le32(b);
	ent.seq = le32(btt_seq_next(le32((nw ? e1 : e0)->seq)));
	/* (lba, old_map) durable before (new_map, seq) makes the entry the
	 * lane's newest; each copy drains. */
	f->ops->memcpy(nw ? e0 : e1, &ent, 8, 0);
	f->ops->memcpy((uint8_t *)(nw ? e0 : e1) + 8, (uint8_t *)&ent + 8, 8,
		       0);
}

/* The lanes of the arena at off whose block is owned elsewhere get one
 * that nothing owns. */
static int lanes_repair(uint8_t *base, uint64_t off, const struct btt_info *ib,
			unsigned a, const struct xmem_persist_ops *ops,
			unsigned *n)
{
	struct lanes_fix f = {
		.ops = ops,
		.a = a,
		.ext = le32(ib->external_nlba),
		.in = le32(ib->internal_nlba),
		.nfree = le32(ib->nfree),
		.map = (uint32_t *)(base + off + le64(ib->mapoff)),
		.flog = (struct btt_flog_group *)(base + off +
						  le64(ib->logoff)),
	};
	uint32_t next = 0;
	int rc = xmem__btt_flog_slots(f.flog, f.nfree, a,
				      off + le64(ib->logoff), f.idx);

	if (rc)
		return rc;
	f.own = calloc((f.in + 63) / 64, sizeof(uint64_t));
	f.bad = calloc(f.nfree, 1);
	rc = f.own && f.bad ? claims_mark(&f)
			    : xmem__err(-ENOMEM, "BTT repair: out of memory");
	for (uint32_t i = 0; rc == 0 && i < f.nfree; i++) {
		if (!f.bad[i])
			continue;
		while (next < f.in && owned(&f, next))
			next++;
		if (next == f.in) {
			rc = xmem__err(XMEM_E_CORRUPT,
				       "BTT repair: arena %u lane %u: no block "
				       "is free to give it",
				       a, i);
			break;
		}
		lane_give(&f, i, next);
		own(&f, next);
		(*n)++;
	}
	free(f.own);
	free(f.bad);
	return rc;
}

XMEM_EXPORT int xmem_blk_repair_mem(void *addr, uint64_t len,
				    const struct xmem_persist_ops *ops,
				    unsigned *nrepaired)
{
	uint8_t *base = addr;
	uint64_t off;
	uint16_t major;
	unsigned n = 0;
	int rc;

	if (nrepaired)
		*nrepaired = 0;
	rc = xmem__btt_probe(base, len, &off, &major);
	if (rc == XMEM_E_NOREGION) {
		rc = first_restore(base, len, ops, &n);
		if (rc == 0)
			rc = xmem__btt_probe(base, len, &off, &major);
	}
	for (unsigned a = 0; rc == 0; a++) {
		const struct btt_info *ib = (const void *)(base + off);
		uint8_t *b2;

		if (xmem__btt_info_check(ib, a, off, len - off, major) != 0) {
			rc = arena_restore(base, len, a, off, major, ops);
			if (rc)
				return rc;
			n++;
		}
		b2 = base + off + le64(ib->info2off);
		if (memcmp(b2, ib, BTT_INFO_SIZE) != 0) {
			info_write(b2, (const uint8_t *)ib, ops);
			n++;
		}
		rc = lanes_repair(base, off, ib, a, ops, &n);
		if (rc)
			return rc;
		if (!le64(ib->nextoff))
			break;
		off += le64(ib->nextoff);
	}
	if (nrepaired)
		*nrepaired = n;
	return rc;
}
