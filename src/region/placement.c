/* SPDX-License-Identifier: MIT */
/*
 * placement.c - where a new range goes: best fit over aligned extents.
 *
 * The free extents are the gaps between the ranges, which the cache keeps
 * sorted by device offset, and the ends of the data area. For an alignment
 * A, a gap [s, e) can hold the range at align_up(s, A) if that leaves
 * `size` bytes before e. Among the gaps that can, the one that wastes the
 * least (smallest gap) wins; ties go to the lower offset, so placement is
 * deterministic. Cost: O(n) for n ranges, one pass over the gaps.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "core/error.h"
#include "core/util.h"
#include "region_int.h"

struct gap_walk {
	const struct xmem_region *reg;
	uint32_t i; /* next range */
	uint64_t pos;
};

/* The next gap [*s, *e) (possibly empty); 0 when there are no more. */
static int next_gap(struct gap_walk *w, uint64_t *s, uint64_t *e)
{
	const struct xmem_region *reg = w->reg;
	uint64_t dend = le64(reg->sb.data_off) + le64(reg->sb.data_size);

	if (w->i > reg->n)
		return 0;
	*s = w->pos;
	if (w->i < reg->n) {
		*e = reg->ranges[w->i].offset;
		w->pos = *e + reg->ranges[w->i].size;
	} else {
		*e = dend;
	}
	w->i++;
	return 1;
}

void xmem__free_space(const struct xmem_region *reg, uint64_t *freep,
		      uint64_t *largestp)
{
	struct gap_walk w = { reg, 0, le64(reg->sb.data_off) };
	uint64_t s, e, fr = 0, big = 0;

	while (next_gap(&w, &s, &e)) {
		if (e <= s)
			continue;
		fr += e - s;
		big = MAX(big, e - s);
	}
	*freep = fr;
	*largestp = big;
}

/* Why no extent fits: the data area too small, the alignment impossible
 * in it, no aligned free extent, or no free extent at all. */
static int place_error(const struct xmem_region *reg, const char *name,
		       uint64_t size, uint64_t align,
		       const struct xmem__placement *pl)
{
	uint64_t dstart = le64(reg->sb.data_off);
	uint64_t dend = dstart + le64(reg->sb.data_size);
	uint64_t lo = align_up(dstart, align), hi = align_down(dend, align);
	uint64_t window = hi > lo ? hi - lo : 0;
	char b1[32], b2[32], b3[32], b4[32];

	xmem__fmt_size(b1, sizeof(b1), align);
	xmem__fmt_size(b2, sizeof(b2), size);
	if (window >= align && size > dend - dstart)
		return xmem__err(XMEM_E_NOSPACE,
				 "range '%s': %s does not fit: the region's "
				 "data area is %s",
				 name, b2,
				 xmem__fmt_size(b3, sizeof(b3), dend - dstart));
	if (window < size)
		return xmem__err(XMEM_E_ALIGN,
				 "range '%s': alignment %s cannot be met: "
				 "region data spans %s..%s, which holds no "
				 "%s-aligned extent of %s",
				 name, b1,
				 xmem__fmt_size(b3, sizeof(b3), dstart),
				 xmem__fmt_size(b4, sizeof(b4), dend), b1, b2);
	if (pl->largest_free >= size)
		return xmem__err(
			XMEM_E_ALIGN,
			"range '%s': alignment %s cannot be met: no "
			"free extent of %s starts at a multiple of %s "
			"(largest free extent %s)",
			name, b1, b2, b1,
			xmem__fmt_size(b3, sizeof(b3), pl->largest_free));
	return xmem__err(XMEM_E_NOSPACE,
			 "range '%s': no free extent of %s (largest free "
			 "extent %s, %s free in all)",
			 name, b2,
			 xmem__fmt_size(b3, sizeof(b3), pl->largest_free),
			 xmem__fmt_size(b4, sizeof(b4), pl->free));
}

/* Best fit: the smallest gap that holds size bytes at align, lowest
 * offset on ties; 0 with pl filled, or the reason there is none. */
int xmem__place(struct xmem_region *reg, const char *name, uint64_t size,
		uint64_t align, struct xmem__placement *pl)
{
	struct gap_walk w = { reg, 0, le64(reg->sb.data_off) };
	uint64_t s, e, best_gap = UINT64_MAX, best = UINT64_MAX;

	while (next_gap(&w, &s, &e)) {
		uint64_t at = align_up(s, align);
		reg->stats.extents_scanned++;
		if (e <= s || at < s || at >= e || e - at < size)
			continue;
		if (e - s < best_gap) {
			best_gap = e - s;
			best = at;
		}
	}
	xmem__free_space(reg, &pl->free, &pl->largest_free);
	if (best == UINT64_MAX)
		return place_error(reg, name, size, align, pl);
	pl->offset = best;
	return 0;
}
