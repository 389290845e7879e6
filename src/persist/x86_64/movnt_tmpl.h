/* SPDX-License-Identifier: MIT */
/*
 * movnt_tmpl.h - non-temporal memmove and memset, written once for every
 * vector width. Included by movnt_<isa>.c after defining:
 *
 *   NT_ISA          suffix of the function names (avx512f, avx2, sse2)
 *   NT_TARGET       the target attribute string ("avx512f")
 *   NT_VEC          the vector type; NT_W its width in bytes
 *   NT_LOADU(p)     unaligned load of one vector
 *   NT_STREAM(p, v) non-temporal store of one vector to aligned p
 *   NT_SET1(c)      a vector with every byte c
 *   NT_BATCH        cache lines loaded before they are stored, per step
 *
 * Whole destination cache lines are written with non-temporal stores, so
 * they bypass the caches and need no flush; the partial lines at either
 * end are written with ordinary stores and then flushed. No fence here.
 */
#include <stdint.h>
#include <string.h>

#define NT_CAT2(a, b) a##b
#define NT_CAT(a, b) NT_CAT2(a, b)
#define NT_FN(n) NT_CAT(n, NT_ISA)
#define NT_LINE 64u
#define NT_VPL (NT_LINE / NT_W) /* vectors per cache line */
#define NT_INLINE static inline __attribute__((always_inline))
#define NT_TGT __attribute__((target(NT_TARGET)))

/* Copies `n` whole lines upward; d is line-aligned. Every batch is loaded
 * before it is stored, so a source that overlaps the destination from
 * above is read before it is overwritten. */
NT_INLINE NT_TGT void NT_FN(copy_up_)(char *d, const char *s, size_t n)
{
	NT_VEC v[NT_BATCH * NT_VPL];

	for (; n >= NT_BATCH; n -= NT_BATCH) {
#pragma GCC unroll 32
		for (unsigned i = 0; i < NT_BATCH * NT_VPL; i++)
			v[i] = NT_LOADU(s + i * NT_W);
#pragma GCC unroll 32
		for (unsigned i = 0; i < NT_BATCH * NT_VPL; i++)
			NT_STREAM(d + i * NT_W, v[i]);
		d += NT_BATCH * NT_LINE;
		s += NT_BATCH * NT_LINE;
	}
	for (; n; n--) {
#pragma GCC unroll 4
		for (unsigned i = 0; i < NT_VPL; i++)
			v[i] = NT_LOADU(s + i * NT_W);
#pragma GCC unroll 4
		for (unsigned i = 0; i < NT_VPL; i++)
			NT_STREAM(d + i * NT_W, v[i]);
		d += NT_LINE;
		s += NT_LINE;
	}
}

/* Copies the `n` whole lines that end at d and s, downward. */
NT_INLINE NT_TGT void NT_FN(copy_down_)(char *d, const char *s, size_t n)
{
	NT_VEC v[NT_BATCH * NT_VPL];

	for (; n >= NT_BATCH; n -= NT_BATCH) {
		d -= NT_BATCH * NT_LINE;
		s -= NT_BATCH * NT_LINE;
#pragma GCC unroll 32
		for (unsigned i = 0; i < NT_BATCH * NT_VPL; i++)
			v[i] = NT_LOADU(s + i * NT_W);
#pragma GCC unroll 32
		for (unsigned i = 0; i < NT_BATCH * NT_VPL; i++)
			NT_STREAM(d + i * NT_W, v[i]);
	}
	for (; n; n--) {
		d -= NT_LINE;
		s -= NT_LINE;
#pragma GCC unroll 4
		for (unsigned i = 0; i < NT_VPL; i++)
			v[i] = NT_LOADU(s + i * NT_W);
#pragma GCC unroll 4
		for (unsigned i = 0; i < NT_VPL; i++)
			NT_STREAM(d + i * NT_W, v[i]);
	}
}

/* A partial line: ordinary stores, then written back. */
NT_INLINE void NT_FN(part_)(char *d, const char *s, size_t n,
			    xmem__flush_lines_fn flush)
{
	if (n) {
		memmove(d, s, n);
		flush(d, n);
	}
}

/* memmove whose whole destination lines are non-temporal; any overlap. */
NT_TGT void NT_FN(xmem__memmove_nt_)(void *dst, const void *src, size_t len,
				     xmem__flush_lines_fn flush)
{
	char *d = dst;
	const char *s = src;
	size_t part, lines;

	if ((uintptr_t)d - (uintptr_t)s >= len) {
		/* Upward is safe: d is below s, or they do not overlap. */
		part = (size_t)(-(uintptr_t)d & (NT_LINE - 1));
		part = part < len ? part : len;
		NT_FN(part_)(d, s, part, flush);
		d += part;
		s += part;
		len -= part;
		lines = len / NT_LINE;
		NT_FN(copy_up_)(d, s, lines);
		d += lines * NT_LINE;
		s += lines * NT_LINE;
		NT_FN(part_)(d, s, len - lines * NT_LINE, flush);
		return;
	}
	/* d overlaps s from above: copy the highest bytes first. */
	part = (size_t)((uintptr_t)(d + len) & (NT_LINE - 1));
	part = part < len ? part : len;
	len -= part;
	NT_FN(part_)(d + len, s + len, part, flush);
	lines = len / NT_LINE;
	NT_FN(copy_down_)(d + len, s + len, lines);
	len -= lines * NT_LINE;
	NT_FN(part_)(d, s, len, flush);
}

/* memset whose whole destination lines are non-temporal. */
NT_TGT void NT_FN(xmem__memset_nt_)(void *dst, int c, size_t len,
				    xmem__flush_lines_fn flush)
{
	char *d = dst;
	size_t part = (size_t)(-(uintptr_t)d & (NT_LINE - 1));
	NT_VEC v = NT_SET1((char)c);

	part = part < len ? part : len;
	if (part) {
		memset(d, c, part);
		flush(d, part);
		d += part;
		len -= part;
	}
	for (; len >= NT_BATCH * NT_LINE; len -= NT_BATCH * NT_LINE) {
#pragma GCC unroll 32
		for (unsigned i = 0; i < NT_BATCH * NT_VPL; i++)
			NT_STREAM(d + i * NT_W, v);
		d += NT_BATCH * NT_LINE;
	}
	for (; len >= NT_LINE; len -= NT_LINE) {
#pragma GCC unroll 4
		for (unsigned i = 0; i < NT_VPL; i++)
			NT_STREAM(d + i * NT_W, v);
		d += NT_LINE;
	}
	if (len) {
		memset(d, c, len);
		flush(d, len);
	}
}
