/* SPDX-License-Identifier: MIT */
/* range.c - a tier whose device memory is a range (mode tier) of a region. */
#include <errno.h>

#include "core/error.h"
#include "core/util.h"
#include "tier_internal.h"

/* A tier whose device memory is the range: checks its mode, size and
 * alignment, then xmem_tier_new() on the region's device file. */
XMEM_EXPORT int xmem_tier_new_range(struct xmem_region *reg,
				    struct xmem_range *range,
				    const struct xmem_tier_config *cfg,
				    struct xmem_tier **tp)
{
	const struct xmem_range_info *ri = xmem_range_get_info(range);
	struct xmem_tier_config c = *cfg;
	uint64_t unit = c.unit ? c.unit : (2ull << 20);

	*tp = NULL;
	if (ri->mode != XMEM_RANGE_TIER)
		return xmem__err(XMEM_E_MODE, "tier: range '%s' has mode %s",
				 ri->name, xmem_range_mode_name(ri->mode));
	if (unit % ri->align)
		return xmem__err(XMEM_E_ALIGN,
				 "tier: unit %llu is not a multiple of range "
				 "'%s' alignment %llu",
				 (unsigned long long)unit, ri->name,
				 (unsigned long long)ri->align);
	if (!c.size)
		c.size = ri->size;
	if (align_up(c.size, unit) > ri->size)
		return xmem__err(-ENOSPC,
				 "tier: %llu bytes do not fit in range '%s' "
				 "of %llu bytes",
				 (unsigned long long)align_up(c.size, unit),
				 ri->name, (unsigned long long)ri->size);
	c.device_fd = xmem_device_fd(xmem_region_device(reg));
	c.device_offset = ri->offset;
	return xmem_tier_new(&c, tp);
}
