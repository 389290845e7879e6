/* SPDX-License-Identifier: MIT */
/* util.h - small helpers shared by every layer (internal). */
#ifndef XMEM_UTIL_H
#define XMEM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XMEM_CACHELINE 64u
#define XMEM_PAGE 4096u

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define XMEM_EXPORT __attribute__((visibility("default")))

/* Alignment helpers; `a` must be a power of two. */
static inline uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline uint64_t align_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}

static inline int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Overflow-checked a + b <= limit. */
static inline int range_fits(uint64_t off, uint64_t len, uint64_t limit)
{
	return off <= limit && len <= limit - off;
}

/*
 * Little-endian accessors for on-media structures. x86-64 is little-endian;
 * these exist so that a big-endian port has one place to change.
 */
static inline uint16_t le16(uint16_t v)
{
	return v;
}

static inline uint32_t le32(uint32_t v)
{
	return v;
}

static inline uint64_t le64(uint64_t v)
{
	return v;
}

/*
 * Grows a malloc'ed vector of `esz`-byte elements so that it holds at
 * least `need` (doubling, from 16). Returns 0, or -ENOMEM with the vector
 * left as it was. The test that it is big enough is inline.
 */
int xmem__vec_realloc(void **v, size_t *cap, size_t need, size_t esz);

static inline int xmem__vec_grow(void **v, size_t *cap, size_t need, size_t esz)
{
	return need <= *cap ? 0 : xmem__vec_realloc(v, cap, need, esz);
}

/*
 * Asks for huge pages under the 2 MiB-aligned part of a large buffer not
 * yet touched (from 4 MiB): each of its 4 KiB pages would otherwise cost
 * a fault of its own on first use. A hint; failure is ignored.
 */
#define XMEM_HUGE_ADVISE (2u << 20)
void xmem__huge_advise(void *p, size_t len);

/* Formats a byte count as "64 MiB", "2 GiB", "4096 B" into buf. */
const char *xmem__fmt_size(char *buf, size_t len, uint64_t bytes);

/* Parses "64M", "2G", "4096", "1T", "4k" (binary units). 0 or -EINVAL. */
int xmem__parse_size(const char *s, uint64_t *out);

#endif /* XMEM_UTIL_H */
