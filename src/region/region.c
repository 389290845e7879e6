/* SPDX-License-Identifier: MIT */
/*
 * region.c - region create, open, info and destroy.
 *
 * Costs, for n ranges and S label slots: open validates everything, O(S/8
 * + n log n); info is O(n) (free space is summed over the gaps); create
 * writes a fixed amount of metadata, O(S) (it zeroes the label slots);
 * destroy is O(S) likewise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "region_int.h"

XMEM_EXPORT const char *xmem_range_mode_name(enum xmem_range_mode mode)
{
	static const char *const names[] = { "raw", "heap", "blk", "tier" };

	return (unsigned)mode < ARRAY_SIZE(names) ? names[mode] : "unknown";
}

XMEM_EXPORT int xmem_range_mode_parse(const char *s, enum xmem_range_mode *m)
{
	for (unsigned i = 0; i <= XMEM_RANGE_TIER; i++) {
		if (!strcmp(s, xmem_range_mode_name((enum xmem_range_mode)i))) {
			*m = (enum xmem_range_mode)i;
			return 0;
		}
	}
	return xmem__err(-EINVAL,
			 "unknown range mode '%s' (raw, heap, blk "
			 "or tier)",
			 s);
}

int xmem__region_map_meta(struct xmem_device *dev, int rdonly,
			  struct xmem_map **mapp, uint64_t *maplenp)
{
	uint64_t a = MAX(xmem_device_align(dev), (uint64_t)XMEM_PAGE);
	uint64_t len = align_up(XMEM_META_END, a);
	uint64_t have = align_down(xmem_device_size(dev), a);

	len = MIN(len, have);
	if (len == 0)
		return xmem__err(XMEM_E_NOREGION,
				 "device '%s' (%" PRIu64 " bytes) is too "
				 "small to hold a region",
				 xmem_device_path(dev), xmem_device_size(dev));
	*maplenp = len;
	return xmem_device_map(dev, 0, len, 0, rdonly ? XMEM_F_MAP_RDONLY : 0,
			       mapp);
}

/* A region object with the metadata mapped but nothing read yet. */
int xmem__region_new(struct xmem_device *dev, struct xmem_region **regp)
{
	struct xmem_region *reg = calloc(1, sizeof(*reg));
	int fl, rc;

	if (!reg)
		return xmem__err(-ENOMEM, "out of memory");
	reg->dev = dev;
	fl = fcntl(xmem_device_fd(dev), F_GETFL);
	reg->rdonly = fl >= 0 && (fl & O_ACCMODE) == O_RDONLY;
	/* an open file description of its own: the metadata lock then
	 * excludes other region objects of the same device object too */
	reg->fd = xmem__fd_reopen(xmem_device_fd(dev), reg->rdonly);
	if (reg->fd < 0) {
		rc = reg->fd;
		free(reg);
		return rc;
	}
	rc = xmem__region_map_meta(dev, reg->rdonly, &reg->meta, &reg->maplen);
	if (rc) {
		close(reg->fd);
		free(reg);
		return rc;
	}
	reg->base = xmem_map_addr(reg->meta);
	reg->ops = xmem_map_ops(reg->meta);
	pthread_mutex_init(&reg->mu, NULL);
	reg->refs = 1;
	*regp = reg;
	return 0;
}

/* Drops one reference; the last one unmaps and frees. */
void xmem__region_unref(struct xmem_region *reg)
{
	if (__atomic_sub_fetch(&reg->refs, 1, __ATOMIC_ACQ_REL))
		return;
	xmem_map_delete(&reg->meta);
	close(reg->fd); /* drops any lock this object still held */
	pthread_mutex_destroy(&reg->mu);
	free(reg->ranges);
	free(reg);
}

/* Drops the opener's reference: ranges still open keep the object alive
 * until they are closed. */
XMEM_EXPORT void xmem_region_close(struct xmem_region **regp)
{
	struct xmem_region *reg = regp ? *regp : NULL;

	if (!reg)
		return;
	*regp = NULL;
	xmem__region_unref(reg);
}

/* The error for a failed scan, with advice where advice helps. */
static int scan_error(struct xmem_device *dev,
		      const struct xmem__region_scan *s)
{
	const char *hint = "";

	if (s->status == XMEM_E_CORRUPT && s->repairable)
		hint = "; run `xmem region check --repair` to restore it "
		       "from its good copy";
	else if (s->status == XMEM_E_CORRUPT)
		hint = "; run `xmem region check` for every problem";
	return xmem__err(s->status, "region on '%s': %s%s",
			 xmem_device_path(dev), s->msg, hint);
}

XMEM_EXPORT int xmem_region_open(struct xmem_device *dev,
				 struct xmem_region **regp)
{
	struct xmem__region_scan s;
	struct xmem_region *reg;
	int rc;

	rc = xmem__region_new(dev, &reg);
	if (rc)
		return rc;
	rc = xmem__region_lock(reg, 0);
	if (rc)
		goto fail;
	rc = xmem__region_scan(reg->base, reg->maplen, xmem_device_size(dev),
			       &s, NULL, NULL);
	/* the cache (ranges and the raw index blocks the O(1) refresh
	 * compares) is taken while the lock is held: another object's change
	 * after the unlock then always shows as a difference */
	if (rc == 0)
		xmem__region_adopt(reg, &s);
	xmem__region_unlock(reg);
	if (rc) {
		rc = rc == -ENOMEM ? xmem__err(rc, "out of memory")
				   : scan_error(dev, &s);
		xmem__region_scan_free(&s);
		goto fail;
	}
	*regp = reg;
	return 0;
fail:
	xmem_region_close(&reg);
	return rc;
}

XMEM_EXPORT struct xmem_device *xmem_region_device(const struct xmem_region *r)
{
	return r->dev;
}

XMEM_EXPORT int xmem_region_info(struct xmem_region *reg,
				 struct xmem_region_info *info)
{
	int rc = xmem__region_lock(reg, 0);

	if (rc)
		return rc;
	rc = xmem__region_refresh(reg);
	if (rc == 0) {
		memset(info, 0, sizeof(*info));
		memcpy(info->uuid, reg->sb.uuid, 16);
		info->device_size = le64(reg->sb.region_size);
		info->data_offset = le64(reg->sb.data_off);
		info->data_size = le64(reg->sb.data_size);
		xmem__free_space(reg, &info->free, &info->largest_free);
		info->used = info->data_size - info->free;
		info->nranges = reg->n;
		info->label_slots = le32(reg->sb.slot_count);
		info->label_seq = reg->seq;
		info->created = le64(reg->sb.created);
	}
	xmem__region_unlock(reg);
	return rc;
}

/* Fills a fresh superblock for the device. */
static int sb_build(struct xmem_device *dev, struct xmem_sb_layout *sb)
{
	uint64_t a = MAX(xmem_device_align(dev), (uint64_t)XMEM_PAGE);
	uint64_t size = xmem_device_size(dev);
	uint64_t doff = MAX((uint64_t)XMEM_REGION_DATA_OFFSET, a);
	char b1[32], b2[32];

	if (!is_pow2(a) || a > XMEM_ALIGN_1G)
		return xmem__err(-EINVAL,
				 "device '%s': alignment %" PRIu64
				 " is not supported",
				 xmem_device_path(dev), a);
	if (size < doff + a)
		return xmem__err(-ENOSPC,
				 "device '%s' (%s) is too small: a "
				 "region needs at least %s",
				 xmem_device_path(dev),
				 xmem__fmt_size(b1, sizeof(b1), size),
				 xmem__fmt_size(b2, sizeof(b2), doff + a));
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, XMEM_SB_MAGIC, 8);
	sb->version = le32(XMEM_REGION_LAYOUT_VERSION);
	sb->sb_size = le32(sizeof(*sb));
	xmem__uuid_gen(sb->uuid);
	sb->region_size = le64(size);
	sb->created = le64((uint64_t)time(NULL));
	sb->index_off[0] = le64(XMEM_INDEX_OFF(0));
	sb->index_off[1] = le64(XMEM_INDEX_OFF(1));
	sb->index_size = le32(sizeof(struct xmem_index_layout));
	sb->slot_count = le32(XMEM_LABEL_SLOTS);
	sb->slots_off = le64(XMEM_SLOTS_OFF);
	sb->slot_size = le32(XMEM_LABEL_SIZE);
	sb->data_off = le64(doff);
	sb->data_size = le64(align_down(size - doff, a));
	sb->dev_align = le64(a);
	sb->csum = le32(xmem__csum_struct(
		sb, sizeof(*sb), offsetof(struct xmem_sb_layout, csum)));
	return 0;
}

/* Writes the metadata of a new region in the order of region_layout.h;
 * 0 or the first write's error. */
static int region_write_new(struct xmem_region *reg,
			    const struct xmem_sb_layout *sb)
{
	struct xmem_index_layout ix;
	uint8_t block[4096] = { 0 };
	int rc;

	/* the zeroed label slots are durable before an index describes them */
	rc = xmem__meta_zero(reg, XMEM_INDEX_OFF(0),
			     XMEM_META_END - XMEM_INDEX_OFF(0));
	for (int i = 0; i < 2 && rc == 0; i++) {
		memset(&ix, 0, sizeof(ix));
		memcpy(ix.magic, XMEM_INDEX_MAGIC, 8);
		ix.version = le32(XMEM_REGION_LAYOUT_VERSION);
		ix.seq = le64((uint64_t)i);
		ix.slot_count = sb->slot_count;
		memcpy(ix.uuid, sb->uuid, 16);
		ix.csum = le32(xmem__csum_struct(
			&ix, sizeof(ix),
			offsetof(struct xmem_index_layout, csum)));
		/* both index blocks are durable before superblock 1 */
		rc = xmem__meta_write(reg, XMEM_INDEX_OFF(i), &ix, sizeof(ix));
	}
	memcpy(block, sb, sizeof(*sb));
	/* superblock 1 is durable before superblock 0 commits the region */
	if (rc == 0)
		rc = xmem__meta_write(reg, XMEM_SB_OFF(1), block,
				      sizeof(block));
	/* commit point: superblock 0 */
	if (rc == 0)
		rc = xmem__meta_write(reg, XMEM_SB_OFF(0), block,
				      sizeof(block));
	return rc;
}

/*
 * The start of create and destroy: a region object of dev, writable, with
 * the metadata write-locked and scanned (the scan's result in *scan_rc,
 * the findings in *s). 0, or an error with nothing held.
 */
static int locked_scan(struct xmem_device *dev, struct xmem_region **regp,
		       struct xmem__region_scan *s, int *scan_rc)
{
	struct xmem_region *reg;
	int rc = xmem__region_new(dev, &reg);

	if (rc)
		return rc;
	if (reg->rdonly)
		rc = xmem__err(-EROFS, "device '%s' is open read-only",
			       xmem_device_path(dev));
	else
		rc = xmem__region_lock(reg, 1);
	if (rc) {
		xmem_region_close(&reg);
		return rc;
	}
	*scan_rc = xmem__region_scan(reg->base, reg->maplen,
				     xmem_device_size(dev), s, NULL, NULL);
	*regp = reg;
	return 0;
}

XMEM_EXPORT int xmem_region_create(struct xmem_device *dev,
				   struct xmem_region **regp)
{
	struct xmem__region_scan s;
	struct xmem_sb_layout sb;
	struct xmem_region *reg;
	int rc, src;

	rc = sb_build(dev, &sb);
	if (rc == 0)
		rc = locked_scan(dev, &reg, &s, &src);
	if (rc)
		return rc;
	xmem__region_scan_free(&s);
	if (src != XMEM_E_NOREGION)
		rc = xmem__err(src == -ENOMEM ? src : -EEXIST,
			       "device '%s' already holds %s; destroy it "
			       "first",
			       xmem_device_path(dev),
			       src == 0 ? "an xmem region"
					: "damaged xmem region metadata");
	else
		rc = region_write_new(reg, &sb);
	if (rc == 0)
		rc = xmem__region_refresh(reg);
	xmem__region_unlock(reg);
	if (rc)
		xmem_region_close(&reg);
	else
		*regp = reg;
	return rc;
}

/* Zeroes the metadata: superblock 0 first (the commit point), then
 * superblock 1, then the label area. Only what the device holds is
 * written: on a truncated device the rest of the metadata does not exist. */
static int region_wipe(struct xmem_region *reg)
{
	/* superblock 0 is gone before anything else goes */
	int rc = xmem__meta_zero(reg, XMEM_SB_OFF(0), 4096);

	/* superblock 1 is gone before the label area it describes */
	if (rc == 0)
		rc = xmem__meta_zero(reg, XMEM_SB_OFF(1), 4096);
	if (rc == 0)
		rc = xmem__meta_zero(reg, XMEM_INDEX_OFF(0),
				     XMEM_META_END - XMEM_INDEX_OFF(0));
	return rc;
}

/* -EBUSY if any range of the region is open anywhere, found from the lock
 * bytes alone (damaged metadata may not list the range). */
static int destroy_not_open(struct xmem_region *reg)
{
	uint64_t byte = 0;
	int held = xmem__lock_range_any_held(reg->fd, &byte);

	if (held < 0)
		return xmem__err(held,
				 "region on '%s': cannot test the range "
				 "locks: %s",
				 xmem_device_path(reg->dev),
				 xmem_strerror(held));
	if (held)
		return xmem__err(-EBUSY,
				 "region on '%s': a range at device offset "
				 "%" PRIu64 " is open; close it first",
				 xmem_device_path(reg->dev),
				 (uint64_t)((byte - XMEM_LOCK_RANGE(0)) << 12));
	return 0;
}

/* Destroy's checks and the empty index it commits before the wipe. */
static int destroy_prepare(struct xmem_region *reg, struct xmem__region_scan *s,
			   unsigned flags)
{
	const char *path = xmem_device_path(reg->dev);
	uint8_t none[XMEM_BITMAP_BYTES] = { 0 };

	if (s->status == XMEM_E_NOREGION && !s->sb_ok[1])
		return xmem__err(XMEM_E_NOREGION,
				 "device '%s' holds no xmem "
				 "region",
				 path);
	if (s->status == XMEM_E_NOREGION)
		return 0; /* leftovers of an interrupted create: wipe them */
	if (s->status && !(flags & XMEM_F_FORCE))
		return scan_error(reg->dev, s);
	if (s->status)
		return destroy_not_open(reg); /* no label can be trusted */
	if (s->n && !(flags & XMEM_F_FORCE))
		return xmem__err(-ENOTEMPTY,
				 "region on '%s' holds %u range%s; destroy "
				 "them first, or force",
				 path, s->n, s->n == 1 ? "" : "s");
	for (uint32_t i = 0; i < s->n; i++)
		if (xmem__lock_byte_held(reg->fd,
					 XMEM_LOCK_RANGE(s->ranges[i].offset)))
			return xmem__err(-EBUSY,
					 "region on '%s': range '%s' "
					 "is open",
					 path, s->ranges[i].name);
	if (!s->n)
		return 0;
	reg->sb = s->sb;
	reg->active = s->active;
	reg->seq = le64(s->idx[s->active].seq);
	reg->idx[0] = s->idx[0];
	reg->idx[1] = s->idx[1];
	reg->idx_ok[0] = s->idx_ok[0];
	reg->idx_ok[1] = s->idx_ok[1];
	/* the ranges are gone (durably) before the region goes */
	return xmem__index_commit(reg, none);
}

XMEM_EXPORT int xmem_region_destroy(struct xmem_device *dev, unsigned flags)
{
	struct xmem__region_scan s;
	struct xmem_region *reg;
	int rc, src;

	rc = locked_scan(dev, &reg, &s, &src);
	if (rc)
		return rc;
	if (src == -ENOMEM)
		rc = xmem__err(src, "out of memory");
	else
		rc = destroy_prepare(reg, &s, flags);
	if (rc == 0)
		rc = region_wipe(reg);
	xmem__region_scan_free(&s);
	xmem__region_unlock(reg);
	xmem_region_close(&reg);
	return rc;
}
