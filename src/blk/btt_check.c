/* SPDX-License-Identifier: MIT */
/*
 * btt_check.c - a read-only consistency check of a BTT: info blocks and
 * their backups, flog groups, map entries, and the ownership of every data
 * block (each must be owned exactly once, by a map entry or as a lane's
 * free block). O(nlba) time, O(int_nlba / 4) bits of memory per arena.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk/btt.h"
#include "core/error.h"
#include "core/util.h"

#define CHECK_REPORT_MAX 16 /* reports of one kind per arena */

struct checker {
	const uint8_t *base;
	xmem_blk_check_fn fn;
	void *arg;
	unsigned n;
	uint64_t *seen;
	uint32_t ndup;
};

/* Reports one problem to the caller's callback and counts it. */
static void problem(struct checker *c, const char *structure, uint64_t off,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void problem(struct checker *c, const char *structure, uint64_t off,
		    const char *fmt, ...)
{
	struct xmem_blk_problem p = { .structure = structure, .offset = off };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p.what, sizeof(p.what), fmt, ap);
	va_end(ap);
	c->n++;
	if (c->fn)
		c->fn(&p, c->arg);
}

/* Marks a block owned; reports the second owner. */
static void mark(struct checker *c, const char *who, uint64_t off,
		 uint32_t block, const char *owner, uint32_t idx)
{
	uint64_t bit = 1ull << (block % 64);

	if (!(c->seen[block / 64] & bit)) {
		c->seen[block / 64] |= bit;
		return;
	}
	if (c->ndup++ < CHECK_REPORT_MAX)
		problem(c, who, off,
			"block %u owned twice (again by %s %u): two "
			"writers could share it",
			block, owner, idx);
}

/* Checks the flog of an arena and marks the lanes' blocks. */
static void check_flog(struct checker *c, const struct btt_arena *ar,
		       const char *who)
{
	for (uint32_t i = 0; i < ar->nfree; i++) {
		const struct btt_flog_ent *e0 = &ar->flog[i].ent[ar->idx[0]];
		const struct btt_flog_ent *e1 = &ar->flog[i].ent[ar->idx[1]];
		uint64_t off =
			(uint64_t)((const uint8_t *)&ar->flog[i] - c->base);
		const struct btt_flog_ent *e;
		uint32_t lba, oldb, newb, mapped, raw;
		int nw;

		if (xmem__btt_flog_newest(e0, e1, &nw) != 0) {
			problem(c, who, off,
				"flog group %u: sequence numbers "
				"%u and %u are not a valid pair",
				i, le32(e0->seq), le32(e1->seq));
			continue;
		}
		e = nw ? e1 : e0;
		lba = le32(e->lba);
		oldb = le32(e->old_map) & BTT_MAP_LBA_MASK;
		newb = le32(e->new_map) & BTT_MAP_LBA_MASK;
		if (lba >= ar->ext_nlba || oldb >= ar->int_nlba ||
		    newb >= ar->int_nlba) {
			problem(c, who, off,
				"flog group %u: entry out of "
				"range (lba %u, old %u, new %u)",
				i, lba, oldb, newb);
			continue;
		}
		raw = le32(ar->map[lba]);
		mapped =
			(raw & BTT_MAP_NORMAL) ? (raw & BTT_MAP_LBA_MASK) : lba;
		/* A pending update (open would finish it): the map's block
		 * is the lane's free one, new_map becomes mapped. */
		if (oldb != newb && mapped == oldb)
			mark(c, who, off, newb, "pending flog of lane", i);
		else
			mark(c, who, off, oldb, "free block of lane", i);
	}
}

/* Checks every map entry and marks the block it owns. */
static void check_map(struct checker *c, const struct btt_arena *ar,
		      const char *who)
{
	uint32_t nbad = 0;

	for (uint32_t i = 0; i < ar->ext_nlba; i++) {
		uint32_t raw = le32(ar->map[i]);
		uint32_t b =
			(raw & BTT_MAP_NORMAL) ? (raw & BTT_MAP_LBA_MASK) : i;
		uint64_t off =
			(uint64_t)((const uint8_t *)&ar->map[i] - c->base);

		if (b >= ar->int_nlba) {
			if (nbad++ < CHECK_REPORT_MAX)
				problem(c, who, off,
					"map entry %u: block %u "
					"out of range (%u blocks)",
					i, b, ar->int_nlba);
			continue;
		}
		mark(c, who, off, b, "map entry", i);
	}
}

/* Reports the data blocks that nothing owns. */
static void check_lost(struct checker *c, const struct btt_arena *ar,
		       const char *who)
{
	uint32_t lost = 0, first = 0;

	for (uint32_t b = 0; b < ar->int_nlba; b++)
		if (!(c->seen[b / 64] & (1ull << (b % 64))) && !lost++)
			first = b;
	if (lost)
		problem(c, who, ar->off,
			"%u data blocks owned by nothing "
			"(lost), the first is %u",
			lost, first);
}

/* Checks one arena; returns its info block's nextoff, or 0 to stop. */
static uint64_t check_arena(struct checker *c, struct btt_arena *ar, unsigned a,
			    uint64_t off, uint64_t len, uint16_t major)
{
	const struct btt_info *ib = (const void *)(c->base + off);
	char who[48];
	size_t words;

	snprintf(who, sizeof(who), "arena %u", a);
	if (xmem__btt_info_check(ib, a, off, len - off, major)) {
		problem(c, "info block", off, "%s", xmem_errormsg());
		return 0;
	}
	if (memcmp(c->base + off + le64(ib->info2off), ib, sizeof(*ib)))
		problem(c, "backup info block", off + le64(ib->info2off),
			"arena %u: differs from the info block", a);
	if (le32(ib->flags) & BTT_IB_FLAG_ERROR)
		problem(c, "info block", off, "arena %u is flagged in error",
			a);
	memset(ar, 0, sizeof(*ar));
	ar->off = off;
	ar->ext_nlba = le32(ib->external_nlba);
	ar->int_nlba = le32(ib->internal_nlba);
	ar->nfree = le32(ib->nfree);
	ar->map = (uint32_t *)(c->base + off + le64(ib->mapoff));
	ar->flog = (struct btt_flog_group *)(c->base + off + le64(ib->logoff));
	if (xmem__btt_flog_slots(ar->flog, ar->nfree, a, off + le64(ib->logoff),
				 ar->idx)) {
		problem(c, "flog", off + le64(ib->logoff), "%s",
			xmem_errormsg());
		return le64(ib->nextoff);
	}
	words = (ar->int_nlba + 63) / 64;
	c->seen = calloc(words, sizeof(uint64_t));
	if (!c->seen) {
		problem(c, who, off, "out of memory for %u blocks",
			ar->int_nlba);
		return 0;
	}
	c->ndup = 0;
	snprintf(who, sizeof(who), "arena %u map", a);
	check_map(c, ar, who);
	snprintf(who, sizeof(who), "arena %u flog", a);
	check_flog(c, ar, who);
	snprintf(who, sizeof(who), "arena %u", a);
	check_lost(c, ar, who);
	free(c->seen);
	c->seen = NULL;
	return le64(ib->nextoff);
}

/* Walks the arenas from the first info block; see xmem/blk.h. */
XMEM_EXPORT int xmem_blk_check_mem(const void *addr, uint64_t len,
				   xmem_blk_check_fn fn, void *arg,
				   unsigned *nproblems)
{
	struct checker c = { .base = addr, .fn = fn, .arg = arg };
	struct btt_arena ar;
	uint64_t off, next, boff;
	uint16_t major;
	int rc;

	if (nproblems)
		*nproblems = 0;
	rc = xmem__btt_probe(addr, len, &off, &major);
	if (rc == XMEM_E_NOREGION && xmem__btt_backup_find(addr, len, &boff)) {
		problem(&c, "info block", boff,
			"no valid BTT info block, but the backup info block "
			"at offset %#" PRIx64 " is valid: the info block was "
			"damaged or a format was interrupted",
			boff);
		if (nproblems)
			*nproblems = c.n;
		return xmem__err(XMEM_E_NOREGION, "BTT check: %s",
				 "no valid info block (its backup is valid)");
	}
	if (rc)
		return rc;
	for (unsigned a = 0;; a++) {
		next = check_arena(&c, &ar, a, off, len, major);
		if (!next)
			break;
		off += next;
	}
	if (nproblems)
		*nproblems = c.n;
	if (c.n)
		return xmem__err(XMEM_E_CORRUPT,
				 "BTT check: %u problem%s found", c.n,
				 c.n == 1 ? "" : "s");
	return 0;
}
