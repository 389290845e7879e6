/* SPDX-License-Identifier: MIT */
/*
 * btt_range.c - a BTT on a range in mode blk: the range's mapping is the
 * namespace, and the range's uuid is the BTT's parent uuid.
 */
#include <errno.h>
#include <string.h>

#include "blk/btt.h"
#include "core/error.h"
#include "core/util.h"

/* XMEM_E_MODE unless the range is in mode blk. */
static int range_blk_check(struct xmem_range *range)
{
	const struct xmem_range_info *ri = xmem_range_get_info(range);

	if (ri->mode != XMEM_RANGE_BLK)
		return xmem__err(XMEM_E_MODE, "range '%s': mode %s, not blk",
				 ri->name, xmem_range_mode_name(ri->mode));
	return 0;
}

/* Formats the range's mapping with the range uuid as parent uuid. */
XMEM_EXPORT int xmem_blk_format(struct xmem_range *range,
				const struct xmem_blk_format_opts *opts)
{
	struct xmem_blk_format_opts o;
	struct xmem_map *map;
	int rc = range_blk_check(range);

	if (rc)
		return rc;
	if (opts)
		o = *opts;
	else
		memset(&o, 0, sizeof(o));
	memcpy(o.parent_uuid, xmem_range_get_info(range)->uuid, 16);
	rc = xmem_range_map(range, 0, &map);
	if (rc)
		return rc;
	rc = xmem_blk_format_mem(xmem_map_addr(map), xmem_map_size(map),
				 xmem_map_ops(map), &o);
	xmem_map_delete(&map);
	return rc;
}

/* Opens the BTT in the range; a parent uuid naming another namespace
 * is refused, as the kernel does, before recovery writes anything. */
XMEM_EXPORT int xmem_blk_open(struct xmem_range *range, unsigned flags,
			      struct xmem_blk **blkp)
{
	const struct xmem_range_info *ri;
	struct xmem_map *map;
	int rc = range_blk_check(range);

	*blkp = NULL;
	if (rc)
		return rc;
	ri = xmem_range_get_info(range);
	rc = xmem_range_map(range, 0, &map);
	if (rc)
		return rc;
	rc = xmem__btt_open(xmem_map_addr(map), xmem_map_size(map),
			    xmem_map_ops(map), flags, ri->uuid, blkp);
	if (rc) {
		xmem_map_delete(&map);
		return rc == XMEM_E_CORRUPT || rc == XMEM_E_NOREGION
			       ? xmem__err_prefix(rc, "range '%s'", ri->name)
			       : rc;
	}
	(*blkp)->map = map;
	return 0;
}
