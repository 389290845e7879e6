/* SPDX-License-Identifier: MIT */
/*
 * dispatch.h - how the persist layer picked its instructions, and the
 * knobs that tests and benchmarks use to pick others (internal).
 */
#ifndef XMEM_PERSIST_DISPATCH_H
#define XMEM_PERSIST_DISPATCH_H

#include <stddef.h>

#include <xmem/persist.h>

/*
 * Re-reads the CPU features and the XMEM_NO_* / XMEM_MOVNT_THRESHOLD
 * environment and chooses the flush and memory variants again. Runs once
 * at load time; tests call it after changing the environment. Not safe
 * while other threads use the primitives.
 */
void xmem__persist_reinit(void);

/*
 * Selects one variant by name: a flush instruction ("clwb", "clflushopt",
 * "clflush") or a memory variant ("avx512f", "avx2", "sse2", "generic").
 * Returns 0, -ENOTSUP when this CPU cannot run it, -EINVAL for an unknown
 * name. The choice holds until the next call or xmem__persist_reinit().
 */
int xmem__persist_variant_set(const char *name);

/*
 * Enumerates the variants compiled in: `mem` 0 for flush instructions, 1
 * for memory variants (the last of which is "generic"). Returns the i-th
 * name, or NULL past the end; *available says whether this CPU runs it.
 */
const char *xmem__persist_variant_name(int mem, size_t i, int *available);

/* Sets the non-temporal threshold in bytes (copies of at least this many
 * bytes use non-temporal stores). */
void xmem__persist_threshold_set(size_t bytes);

/* memmove/memset for byte granularity: NT or cached stores, no write-back,
 * then a fence (unless NODRAIN/NOFLUSH). Used by gran.c. */
void *xmem__persist_memmove_byte(void *dst, const void *src, size_t len,
				 unsigned flags);
void *xmem__persist_memset_byte(void *dst, int c, size_t len, unsigned flags);

#endif /* XMEM_PERSIST_DISPATCH_H */
