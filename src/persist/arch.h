/* SPDX-License-Identifier: MIT */
/*
 * arch.h - the CPU instructions that make stores durable (internal).
 *
 * Implemented per architecture in src/persist/<arch>/. The rest of the
 * persist layer sees only this contract:
 *
 *   - a flush variant writes back every cache line that overlaps
 *     [addr, addr+len) and gives no ordering by itself;
 *   - xmem__arch_fence() orders every earlier flush and non-temporal store
 *     of the calling thread before every later store (it is the "drain");
 *   - a memory variant copies or fills with non-temporal stores for the
 *     whole cache lines of the destination, and ordinary stores followed by
 *     the given flush for the partial lines at either end. It issues no
 *     fence. memmove_nt handles any overlap of source and destination.
 *
 * Variants are listed best first, each with `available` set when this CPU
 * can run it. Choosing among them (and the environment overrides) is the
 * business of persist.c.
 */
#ifndef XMEM_PERSIST_ARCH_H
#define XMEM_PERSIST_ARCH_H

#include <stddef.h>

typedef void (*xmem__flush_lines_fn)(const void *addr, size_t len);

struct xmem__flush_variant {
	const char *name; /* "clwb", "clflushopt", "clflush" */
	const char *env;  /* XMEM_NO_* variable that turns it off, or NULL */
	int available;
	xmem__flush_lines_fn flush;
	xmem__flush_lines_fn persist; /* flush, then xmem__arch_fence() */
};

struct xmem__mem_variant {
	const char *name; /* "avx512f", "avx2", "sse2" */
	const char *env;  /* XMEM_NO_* variable that turns it off, or NULL */
	int available;
	void (*memmove_nt)(void *dst, const void *src, size_t len,
			   xmem__flush_lines_fn flush);
	void (*memset_nt)(void *dst, int c, size_t len,
			  xmem__flush_lines_fn flush);
};

/* The flush variants compiled in, best first. Returns their count. */
size_t xmem__arch_flush_variants(const struct xmem__flush_variant **out);

/* The non-temporal memory variants compiled in, best first. */
size_t xmem__arch_mem_variants(const struct xmem__mem_variant **out);

/* Store fence: every earlier flush and non-temporal store of this thread
 * is complete (durable, for cache-line granularity) before any later
 * store becomes visible. */
void xmem__arch_fence(void);

#endif /* XMEM_PERSIST_ARCH_H */
