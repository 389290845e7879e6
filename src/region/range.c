/* SPDX-License-Identifier: MIT */
/*
 * range.c - ranges: named, aligned, exclusively owned extents of a region.
 *
 * Costs, for n ranges and S label slots (S = 4032), once the cached state
 * is current (an O(1) comparison of superblock 0 and the two index blocks;
 * after another process's change, one full validation, O(S/8 + n log n)):
 *   create   O(n) placement and name check + O(S/8) free-slot search;
 *            writes one 128-byte label and both 1 KiB index blocks.
 *   destroy  O(n) lookup; writes both index blocks (+ the data with
 *            SCRUB).
 *   resize   O(n) lookup; writes one label and both index blocks.
 *   list     O(n) copy; info O(n) lookup by name.
 * No operation reads or checksums the labels again on the fast path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "region_int.h"

/* Index of the range named `name` in the cache, or -1. */
static int find(const struct xmem_region *reg, const char *name)
{
	for (uint32_t i = 0; i < reg->n; i++)
		if (!strcmp(reg->ranges[i].name, name))
			return (int)i;
	return -1;
}

/* Locks, refreshes, and finds `name` (-ENOENT if absent). */
static int lock_find(struct xmem_region *reg, const char *name, int write,
		     int *idxp)
{
	int rc = xmem__region_lock(reg, write);

	if (rc)
		return rc;
	rc = xmem__region_refresh(reg);
	if (rc == 0 && name) {
		*idxp = find(reg, name);
		if (*idxp < 0)
			rc = xmem__err(-ENOENT,
				       "range '%s': no such range in "
				       "the region on '%s'",
				       name, xmem_device_path(reg->dev));
	}
	if (rc)
		xmem__region_unlock(reg);
	return rc;
}

/* Checks the arguments of create. */
static int create_args(struct xmem_region *reg, const char *name, uint64_t size,
		       uint64_t align, enum xmem_range_mode mode)
{
	uint64_t da = le64(reg->sb.dev_align);
	char why[128], b1[32], b2[32];

	if (!name || xmem__range_name_check(name, why, sizeof(why)))
		return xmem__err(-EINVAL, "range '%s': %s", name ? name : "",
				 name ? why : "no name");
	if (align != XMEM_ALIGN_4K && align != XMEM_ALIGN_2M &&
	    align != XMEM_ALIGN_1G)
		return xmem__err(-EINVAL,
				 "range '%s': alignment %" PRIu64
				 " is not 4 KiB, 2 MiB or 1 GiB",
				 name, align);
	if (align < da)
		return xmem__err(XMEM_E_ALIGN,
				 "range '%s': alignment %s "
				 "cannot be met: the device "
				 "maps only at multiples of %s",
				 name, xmem__fmt_size(b1, sizeof(b1), align),
				 xmem__fmt_size(b2, sizeof(b2), da));
	if (size == 0 || size % align)
		return xmem__err(-EINVAL,
				 "range '%s': size %" PRIu64
				 " is not a non-zero multiple of "
				 "the alignment %s",
				 name, size,
				 xmem__fmt_size(b1, sizeof(b1), align));
	if ((unsigned)mode > XMEM_RANGE_TIER)
		return xmem__err(-EINVAL, "range '%s': bad mode %d", name,
				 (int)mode);
	return 0;
}

/* Inserts ri into the sorted cache. */
static void cache_insert(struct xmem_region *reg,
			 const struct xmem_range_info *ri)
{
	uint32_t i = 0;

	while (i < reg->n && reg->ranges[i].offset < ri->offset)
		i++;
	memmove(&reg->ranges[i + 1], &reg->ranges[i],
		(reg->n - i) * sizeof(*ri));
	reg->ranges[i] = *ri;
	reg->n++;
}

static void cache_remove(struct xmem_region *reg, int i)
{
	memmove(&reg->ranges[i], &reg->ranges[i + 1],
		(reg->n - (uint32_t)i - 1) * sizeof(reg->ranges[0]));
	reg->n--;
}

XMEM_EXPORT int xmem_range_create(struct xmem_region *reg, const char *name,
				  uint64_t size, uint64_t align,
				  enum xmem_range_mode mode,
				  struct xmem_range_info *info)
{
	struct xmem_label_layout lbl;
	struct xmem__placement pl;
	struct xmem_range_info ri;
	int rc, idx;

	if (reg->rdonly)
		return xmem__err(-EROFS,
				 "range '%s': the device is open "
				 "read-only",
				 name ? name : "");
	rc = lock_find(reg, NULL, 1, &idx);
	if (rc)
		return rc;
	rc = create_args(reg, name, size, align, mode); /* reads reg->sb */
	if (rc)
		goto out;
	if (find(reg, name) >= 0) {
		rc = xmem__err(-EEXIST, "range '%s' already exists", name);
		goto out;
	}
	rc = xmem__place(reg, name, size, align, &pl);
	if (rc)
		goto out;
	memset(&ri, 0, sizeof(ri));
	strncpy(ri.name, name, XMEM_RANGE_NAME_MAX);
	xmem__uuid_gen(ri.uuid);
	ri.offset = pl.offset;
	ri.size = size;
	ri.align = align;
	ri.mode = mode;
	ri.created = (uint64_t)time(NULL);
	xmem__label_fill(&lbl, &ri);
	rc = xmem__label_commit(reg, &lbl, UINT32_MAX, &ri.slot);
	if (rc)
		goto out;
	cache_insert(reg, &ri);
	if (info)
		*info = ri;
out:
	xmem__region_unlock(reg);
	return rc;
}

XMEM_EXPORT int xmem_range_list(struct xmem_region *reg,
				struct xmem_range_info **infop, size_t *countp)
{
	struct xmem_range_info *v;
	int rc, idx;

	rc = lock_find(reg, NULL, 0, &idx);
	if (rc)
		return rc;
	v = malloc((reg->n ? reg->n : 1) * sizeof(*v));
	if (!v) {
		rc = xmem__err(-ENOMEM, "out of memory");
	} else {
		memcpy(v, reg->ranges, reg->n * sizeof(*v));
		*infop = v;
		*countp = reg->n;
	}
	xmem__region_unlock(reg);
	return rc;
}

XMEM_EXPORT int xmem_range_info(struct xmem_region *reg, const char *name,
				struct xmem_range_info *info)
{
	int rc, idx;

	rc = lock_find(reg, name, 0, &idx);
	if (rc)
		return rc;
	*info = reg->ranges[idx];
	xmem__region_unlock(reg);
	return 0;
}

/* -EBUSY if any open file description holds range i open. */
static int check_not_open(struct xmem_region *reg, int i, const char *what)
{
	int held = xmem__lock_byte_held(reg->fd,
					XMEM_LOCK_RANGE(reg->ranges[i].offset));

	if (held < 0)
		return xmem__err(held, "range '%s': cannot test its lock: %s",
				 reg->ranges[i].name, xmem_strerror(held));
	if (held)
		return xmem__err(-EBUSY,
				 "range '%s': cannot %s it while it "
				 "is open",
				 reg->ranges[i].name, what);
	return 0;
}

/* The start of resize and destroy: the device writable, the metadata
 * write-locked, range `name` found (its index in *ip) and not open
 * anywhere. The lock is held on return only when 0 is returned. */
static int lock_for_change(struct xmem_region *reg, const char *name,
			   const char *what, int *ip)
{
	int rc;

	if (reg->rdonly)
		return xmem__err(-EROFS,
				 "range '%s': the device is open "
				 "read-only",
				 name);
	rc = lock_find(reg, name, 1, ip);
	if (rc)
		return rc;
	rc = check_not_open(reg, *ip, what);
	if (rc)
		xmem__region_unlock(reg);
	return rc;
}

/* Whether range i can become new_size bytes where it stands. */
static int resize_fits(struct xmem_region *reg, int i, uint64_t new_size)
{
	const struct xmem_range_info *r = &reg->ranges[i];
	uint64_t dend = le64(reg->sb.data_off) + le64(reg->sb.data_size);
	uint64_t limit =
		(uint32_t)i + 1 < reg->n ? reg->ranges[i + 1].offset : dend;
	char b1[32], b2[32];

	if (new_size == 0 || new_size % r->align)
		return xmem__err(-EINVAL,
				 "range '%s': size %" PRIu64
				 " is not a non-zero multiple of "
				 "its alignment %s",
				 r->name, new_size,
				 xmem__fmt_size(b1, sizeof(b1), r->align));
	if (new_size > limit - r->offset)
		return xmem__err(
			XMEM_E_NOSPACE,
			"range '%s': cannot grow in place to %s: %s "
			"follows it at offset %" PRIu64 " (%s free after it)",
			r->name, xmem__fmt_size(b1, sizeof(b1), new_size),
			(uint32_t)i + 1 < reg->n ? "a range"
						 : "the end of the "
						   "data area",
			limit,
			xmem__fmt_size(b2, sizeof(b2),
				       limit - r->offset - r->size));
	return 0;
}

XMEM_EXPORT int xmem_range_resize(struct xmem_region *reg, const char *name,
				  uint64_t new_size)
{
	struct xmem_label_layout lbl;
	struct xmem_range_info ri;
	int rc, i;

	rc = lock_for_change(reg, name, "resize", &i);
	if (rc)
		return rc;
	rc = resize_fits(reg, i, new_size);
	if (rc || new_size == reg->ranges[i].size)
		goto out;
	ri = reg->ranges[i];
	ri.size = new_size;
	xmem__label_fill(&lbl, &ri);
	rc = xmem__label_commit(reg, &lbl, ri.slot, &ri.slot);
	if (rc == 0)
		reg->ranges[i] = ri;
out:
	xmem__region_unlock(reg);
	return rc;
}

/* Zeroes the data of range r, durably. */
static int scrub(struct xmem_region *reg, const struct xmem_range_info *r)
{
	struct xmem_map *m;
	int rc = xmem_device_map(reg->dev, r->offset, r->size, 0, 0, &m);

	if (rc)
		return xmem__err_prefix(rc, "range '%s': scrub", r->name);
	xmem_map_ops(m)->memset(xmem_map_addr(m), 0, r->size,
				XMEM_F_MEM_NONTEMPORAL);
	/* the data is zero (durably) before the label goes; on a file the
	 * write-back is an msync whose failure stops the destroy rather
	 * than leaving the data behind */
	if (xmem_map_granularity(m) == XMEM_GRAN_PAGE &&
	    msync(xmem_map_addr(m), r->size, MS_SYNC) < 0)
		rc = xmem__err(-errno, "range '%s': scrub: msync: %s", r->name,
			       strerror(errno));
	xmem_map_delete(&m);
	return rc;
}

XMEM_EXPORT int xmem_range_destroy(struct xmem_region *reg, const char *name,
				   unsigned flags)
{
	int rc, i;

	rc = lock_for_change(reg, name, "destroy", &i);
	if (rc)
		return rc;
	if (flags & XMEM_F_SCRUB)
		rc = scrub(reg, &reg->ranges[i]);
	if (rc == 0)
		rc = xmem__label_commit(reg, NULL, reg->ranges[i].slot, NULL);
	if (rc == 0)
		cache_remove(reg, i);
	xmem__region_unlock(reg);
	return rc;
}

XMEM_EXPORT int xmem_range_open(struct xmem_region *reg, const char *name,
				unsigned flags, struct xmem_range **rangep)
{
	int shared = !!(flags & XMEM_F_SHARED);
	struct xmem_range *r;
	int rc, i;

	r = calloc(1, sizeof(*r));
	if (!r)
		return xmem__err(-ENOMEM, "out of memory");
	r->lock_fd = -1;
	if (reg->rdonly && !shared) {
		/* an OFD write lock needs a writable description */
		rc = xmem__err(-EACCES,
			       "range '%s': an exclusive open needs "
			       "the device opened writable; open it "
			       "shared instead",
			       name);
		goto fail;
	}
	rc = lock_find(reg, name, 0, &i);
	if (rc)
		goto fail;
	r->reg = reg;
	r->info = reg->ranges[i];
	r->flags = flags;
	r->lock_fd = xmem__fd_reopen(reg->fd, reg->rdonly);
	if (r->lock_fd < 0) {
		rc = r->lock_fd;
		goto unlock;
	}
	rc = xmem__lock_byte_try(r->lock_fd, XMEM_LOCK_RANGE(r->info.offset),
				 shared ? F_RDLCK : F_WRLCK);
	if (rc == -EBUSY)
		rc = xmem__err(-EBUSY, "range '%s' is open %selsewhere", name,
			       shared ? "exclusively " : "");
	else if (rc)
		rc = xmem__err(rc, "range '%s': cannot lock it: %s", name,
			       xmem_strerror(rc));
unlock:
	if (rc == 0) {
		reg->nopen++;
		/* the range keeps the region object alive */
		__atomic_add_fetch(&reg->refs, 1, __ATOMIC_RELAXED);
	}
	xmem__region_unlock(reg);
	if (rc == 0) {
		*rangep = r;
		return 0;
	}
fail:
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	free(r);
	return rc;
}

XMEM_EXPORT void xmem_range_close(struct xmem_range **rangep)
{
	struct xmem_range *r = rangep ? *rangep : NULL;

	if (!r)
		return;
	close(r->lock_fd); /* drops the OFD lock */
	pthread_mutex_lock(&r->reg->mu);
	r->reg->nopen--;
	pthread_mutex_unlock(&r->reg->mu);
	xmem__region_unref(r->reg); /* frees it if the region was closed */
	free(r);
	*rangep = NULL;
}

XMEM_EXPORT const struct xmem_range_info *
xmem_range_get_info(const struct xmem_range *r)
{
	return &r->info;
}

XMEM_EXPORT int xmem_range_map(struct xmem_range *r, unsigned flags,
			       struct xmem_map **mapp)
{
	int rc = xmem_device_map(r->reg->dev, r->info.offset, r->info.size,
				 r->info.align, flags, mapp);

	if (rc)
		return xmem__err_prefix(rc, "range '%s'", r->info.name);
	return 0;
}
