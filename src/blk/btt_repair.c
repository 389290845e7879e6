/* SPDX-License-Identifier: MIT */
/*
 * btt_repair.c - the one repair that is always safe: an info block
 * restored from its good copy. A damaged first info block is rewritten
 * from the first arena's backup (when that backup is valid and where
 * format put it); a backup that differs from its valid info block is
 * rewritten from it. Map, flog and data are never touched: their damage
 * has no second copy to trust. O(arenas).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
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
		if (!le64(ib->nextoff))
			break;
		off += le64(ib->nextoff);
	}
	if (nrepaired)
		*nrepaired = n;
	return rc;
}
