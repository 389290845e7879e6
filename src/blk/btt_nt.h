/* SPDX-License-Identifier: MIT */
/*
 * btt_nt.h - the BTT's small durable stores (internal): one aligned 4- or
 * 8-byte store that bypasses the caches, for the flog entry halves and the
 * map entries of a sector write.
 *
 * On a cache-line granularity mapping, a store then a line write-back then
 * a fence costs here about twice what a non-temporal store then the same
 * fence does (the write-back of a just-written line is slow; bench_blk's
 * floor shows both). The contract, per architecture in src/blk/<arch>/:
 *
 *   - a store is single-copy atomic (readers see the old or the new value)
 *     and is not ordered by itself: the caller's drain (xmem_drain, the
 *     ops' drain) makes it durable and visible before any later store,
 *     exactly as it does for flushed lines;
 *   - xmem__btt_nt_available() is 0 when the architecture has no such
 *     store; callers then store and flush through the persist operations.
 */
#ifndef XMEM_BTT_NT_H
#define XMEM_BTT_NT_H

#include <stdint.h>

int xmem__btt_nt_available(void);
void xmem__btt_nt_store32(uint32_t *dst, uint32_t v);
void xmem__btt_nt_store64(uint64_t *dst, uint64_t v);

#endif /* XMEM_BTT_NT_H */
