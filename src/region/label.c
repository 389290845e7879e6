/* SPDX-License-Identifier: MIT */
/*
 * label.c - the label area at run time: keeping the cached state in step
 * with the device, and committing a change with the slot-then-index
 * protocol of region_layout.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "persist/crashsim.h"
#include "region_int.h"

int xmem__region_msync_fail;

/*
 * Makes [off, off+len) of a page-granularity metadata map durable with
 * msync of the pages around it, and says so if it could not: the
 * persistence operations of such a map only log a failed msync.
 */
static int meta_msync(struct xmem_region *reg, uint64_t off, uint64_t len)
{
	uintptr_t a = align_down((uintptr_t)(reg->base + off), XMEM_PAGE);
	uintptr_t e = align_up((uintptr_t)(reg->base + off + len), XMEM_PAGE);
	int rc = msync((void *)a, e - a, MS_SYNC) ? -errno : 0;

	if (xmem__region_msync_fail && --xmem__region_msync_fail == 0)
		rc = -EIO;
	if (rc)
		return xmem__err(-EIO,
				 "region on '%s': metadata at offset %" PRIu64
				 " (%" PRIu64 " bytes) is not durable: msync: "
				 "%s",
				 xmem_device_path(reg->dev), off, len,
				 xmem_strerror(rc));
	return 0;
}

/* A page-granularity map outside the crash simulator: msync by hand. */
static int meta_by_msync(const struct xmem_region *reg)
{
	return xmem_map_granularity(reg->meta) == XMEM_GRAN_PAGE &&
	       !xmem__crashsim_active();
}

/* The error for a metadata write outside the mapped length. */
static int beyond_map(const struct xmem_region *reg, uint64_t off, uint64_t len)
{
	return xmem__err(-ENOSPC,
			 "region on '%s': metadata at offset %" PRIu64
			 " (%" PRIu64
			 " bytes) lies beyond the device's %" PRIu64
			 " mapped bytes (device truncated?)",
			 xmem_device_path(reg->dev), off, len, reg->maplen);
}

/*
 * Writes len bytes at device offset off of the metadata map, durably
 * (flushed and fenced, or msync'ed, on return). 0, -ENOSPC for a write
 * outside the mapped length (the device is smaller than the metadata
 * area), or -EIO if the write could not be made durable: the caller must
 * not go on to a write that depends on it.
 */
int xmem__meta_write(struct xmem_region *reg, uint64_t off, const void *src,
		     size_t len)
{
	if (!range_fits(off, len, reg->maplen))
		return beyond_map(reg, off, len);
	reg->stats.meta_bytes_written += len;
	if (meta_by_msync(reg)) {
		memcpy(reg->base + off, src, len);
		return meta_msync(reg, off, len);
	}
	/* memcpy with persist semantics: flushed and fenced on return */
	reg->ops->memcpy(reg->base + off, src, len, 0);
	return 0;
}

/* Zeroes the part of [off, off+len) that lies inside the mapped length,
 * durably; the part beyond it does not exist on the device. */
int xmem__meta_zero(struct xmem_region *reg, uint64_t off, uint64_t len)
{
	if (off >= reg->maplen)
		return 0;
	len = MIN(len, reg->maplen - off);
	reg->stats.meta_bytes_written += len;
	if (meta_by_msync(reg)) {
		memset(reg->base + off, 0, len);
		return meta_msync(reg, off, len);
	}
	/* memset with persist semantics: flushed and fenced on return */
	reg->ops->memset(reg->base + off, 0, len, 0);
	return 0;
}

void xmem__uuid_gen(uint8_t uuid[16])
{
	static __thread uint64_t ctr;
	ssize_t got = getrandom(uuid, 16, GRND_NONBLOCK);

	if (got != 16) {
		/* no entropy yet: time, address and a counter still differ */
		uint64_t a = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&ctr;
		uint64_t b = ++ctr ^ ((uint64_t)getpid() << 32);
		memcpy(uuid, &a, 8);
		memcpy(uuid + 8, &b, 8);
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void xmem__label_fill(struct xmem_label_layout *l,
		      const struct xmem_range_info *ri)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->magic, XMEM_LABEL_MAGIC, 8);
	l->version = le32(XMEM_REGION_LAYOUT_VERSION);
	memcpy(l->name, ri->name, strnlen(ri->name, XMEM_RANGE_NAME_MAX));
	memcpy(l->uuid, ri->uuid, 16);
	l->offset = le64(ri->offset);
	l->size = le64(ri->size);
	l->align = le64(ri->align);
	l->mode = le32((uint32_t)ri->mode);
	l->created = le64(ri->created);
}

/* Takes the result of a full scan as the cached state (call with the
 * region locked, as for the scan: the raw index blocks are read again). */
void xmem__region_adopt(struct xmem_region *reg, struct xmem__region_scan *s)
{
	reg->sb = s->sb;
	reg->active = s->active;
	reg->seq = le64(s->idx[s->active].seq);
	for (int i = 0; i < 2; i++) {
		reg->idx_ok[i] = s->idx_ok[i];
		memcpy(&reg->idx[i], reg->base + XMEM_INDEX_OFF(i),
		       sizeof(reg->idx[i]));
	}
	free(reg->ranges);
	reg->ranges = s->ranges;
	reg->n = s->n;
	s->ranges = NULL;
	reg->stats.labels_checked += s->labels_checked;
}

/*
 * Brings the cached state up to date. O(1) when nothing changed since the
 * last look (superblock 0 and both index blocks compare equal to the
 * cached copies: labels in use are never rewritten in place); otherwise a
 * full validation, O(S/8 + n log n).
 */
int xmem__region_refresh(struct xmem_region *reg)
{
	struct xmem__region_scan s;
	int rc;

	if (reg->ranges && !memcmp(reg->base, &reg->sb, sizeof(reg->sb)) &&
	    !memcmp(reg->base + XMEM_INDEX_OFF(0), &reg->idx[0],
		    sizeof(reg->idx[0])) &&
	    !memcmp(reg->base + XMEM_INDEX_OFF(1), &reg->idx[1],
		    sizeof(reg->idx[1])))
		return 0;
	rc = xmem__region_scan(reg->base, reg->maplen,
			       xmem_device_size(reg->dev), &s, NULL, NULL);
	if (rc == 0 && reg->ranges && memcmp(s.sb.uuid, reg->sb.uuid, 16)) {
		rc = -ESTALE;
		snprintf(s.msg, sizeof(s.msg),
			 "the region was destroyed and created again");
	}
	if (rc) {
		xmem__region_scan_free(&s);
		return xmem__err(rc, "region on '%s': %s",
				 xmem_device_path(reg->dev), s.msg);
	}
	reg->stats.reloads++;
	xmem__region_adopt(reg, &s);
	return 0;
}

/* A slot free in the active index and, if valid, in the other one; 0, or
 * -1 (no message) if there is none. */
static int free_slot(struct xmem_region *reg, uint32_t *slotp)
{
	const uint8_t *a = reg->idx[reg->active].used;
	const uint8_t *b =
		reg->idx_ok[!reg->active] ? reg->idx[!reg->active].used : NULL;

	for (uint32_t i = 0; i < XMEM_BITMAP_BYTES; i++) {
		uint8_t busy = (uint8_t)(a[i] | (b ? b[i] : 0));
		reg->stats.bitmap_bytes++;
		if (busy == 0xff)
			continue;
		*slotp = i * 8 + (uint32_t)__builtin_ctz(~busy & 0xffu);
		return 0;
	}
	return -1;
}

/* Builds index block content: the active block's with bitmap `used` and
 * sequence number seq (whose parity names the block it goes to). */
static void index_build(const struct xmem_region *reg, const uint8_t *used,
			uint64_t seq, struct xmem_index_layout *nx)
{
	uint32_t pop = 0;

	*nx = reg->idx[reg->active];
	memcpy(nx->used, used, sizeof(nx->used));
	for (uint32_t i = 0; i < XMEM_BITMAP_BYTES; i++)
		pop += (uint32_t)__builtin_popcount(nx->used[i]);
	nx->nused = le32(pop);
	nx->seq = le64(seq);
	nx->csum = 0;
	nx->csum = le32(xmem__csum_struct(
		nx, sizeof(*nx), offsetof(struct xmem_index_layout, csum)));
}

/* Writes index block `blk` durably and makes it the cached active one. */
static int index_put(struct xmem_region *reg, int blk,
		     const struct xmem_index_layout *nx)
{
	int rc = xmem__meta_write(reg, XMEM_INDEX_OFF(blk), nx, sizeof(*nx));

	if (rc)
		return rc;
	reg->idx[blk] = *nx;
	reg->idx_ok[blk] = 1;
	reg->active = blk;
	reg->seq = le64(nx->seq);
	return 0;
}

/*
 * Commits bitmap `used` in two writes, each durable (its own fence, or
 * msync) before the next begins:
 *   1. the inactive block b with seq + 1: the commit point. A crash before
 *      it is durable leaves the old state (block a still valid, and
 *      b torn or unchanged).
 *   2. block a with the same bitmap and seq + 2: the copy. A crash in it
 *      leaves the new state in b; once it is durable, both blocks hold
 *      the current state, so damage to either one at rest loses nothing.
 * Write 2 starts only after write 1 is durable: were they reordered, a
 * torn b could sit next to an a that already holds the new state and
 * then a crash would leave no valid older block to fall back to.
 */
int xmem__index_commit(struct xmem_region *reg, const uint8_t *used)
{
	struct xmem_index_layout nx;
	int a = reg->active, rc;

	index_build(reg, used, reg->seq + 1, &nx);
	/* commit point: once block !a is durable, it is the active index */
	rc = index_put(reg, !a, &nx);
	if (rc)
		return rc;
	index_build(reg, used, reg->seq + 1, &nx);
	/* the copy: block a matches block !a once this is durable */
	return index_put(reg, a, &nx);
}

/* Writes the label, durably, into a slot free in both index blocks. */
static int label_put(struct xmem_region *reg, struct xmem_label_layout *lbl,
		     uint8_t *used, uint32_t *slotp)
{
	int rc = free_slot(reg, slotp);

	if (rc && le32(reg->idx[reg->active].nused) < XMEM_LABEL_SLOTS) {
		/* every free slot is still held by the other block (only
		 * after an interrupted update): make it a copy of the active
		 * one first */
		rc = xmem__index_commit(reg, used);
		if (rc)
			return rc;
		rc = free_slot(reg, slotp);
	}
	if (rc)
		return xmem__err(XMEM_E_LABELFULL,
				 "region on '%s': all %u label slots are in "
				 "use",
				 xmem_device_path(reg->dev), XMEM_LABEL_SLOTS);
	lbl->seq = le64(reg->seq + 1);
	lbl->csum = 0;
	lbl->csum = le32(xmem__csum_struct(
		lbl, sizeof(*lbl), offsetof(struct xmem_label_layout, csum)));
	/* the label is durable before any index lists its slot */
	rc = xmem__meta_write(reg, XMEM_SLOT_OFF(*slotp), lbl, sizeof(*lbl));
	if (rc)
		return rc;
	used[*slotp / 8] |= (uint8_t)(1u << (*slotp % 8));
	return 0;
}

int xmem__label_commit(struct xmem_region *reg, struct xmem_label_layout *lbl,
		       uint32_t clear_slot, uint32_t *slotp)
{
	uint8_t used[XMEM_BITMAP_BYTES];
	uint32_t slot = UINT32_MAX;
	int rc;

	memcpy(used, reg->idx[reg->active].used, sizeof(used));
	if (lbl) {
		rc = label_put(reg, lbl, used, &slot);
		if (rc)
			return rc;
	}
	if (clear_slot != UINT32_MAX)
		used[clear_slot / 8] &= (uint8_t) ~(1u << (clear_slot % 8));
	if (slotp)
		*slotp = slot;
	return xmem__index_commit(reg, used);
}
