/* SPDX-License-Identifier: MIT */
/*
 * nt_store.h - small durable stores (internal): one aligned 4- or 8-byte
 * store that bypasses the caches, for metadata words on a cache-line
 * granularity mapping (the BTT's flog halves and map entries).
 *
 * There, a store then a line write-back then a fence costs about twice
 * what a non-temporal store then the same fence does (the write-back of
 * a just-written line is slow). The contract:
 *
 *   - a store is single-copy atomic (readers see the old or the new value)
 *     and is not ordered by itself: the caller's drain (xmem_drain, the
 *     ops' drain) makes it durable and visible before any later store,
 *     exactly as it does for flushed lines;
 *   - while the crash simulator runs, the store is an ordinary atomic
 *     store whose line the simulator captures as a flush, so crash tests
 *     see the same ordering points as the real instruction has.
 */
#ifndef XMEM_NT_STORE_H
#define XMEM_NT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "persist/crashsim.h"

void xmem__nt_store32(uint32_t *dst, uint32_t v);
void xmem__nt_store64(uint64_t *dst, uint64_t v);

/* n 8-byte stores from src (zeros if src is NULL) to an 8-byte aligned
 * dst, under the same contract: for a record built word by word in
 * registers or cache, where a copy by wide loads would first wait for
 * the words' stores to retire. Whole lines written in order combine
 * into line writes. Inline: a commit writes its record this way, and a
 * call's saved registers are stores that wait behind the last fence. */
void xmem__nt_store_words_sim(uint64_t *dst, const uint64_t *src, size_t n);

static inline void xmem__nt_store_words(uint64_t *dst, const uint64_t *src,
					size_t n)
{
	if (__atomic_load_n(&xmem__crashsim_on, __ATOMIC_RELAXED)) {
		xmem__nt_store_words_sim(dst, src, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		__asm__ volatile("movnti %1, %0"
				 : "=m"(dst[i])
				 : "r"(src ? src[i] : 0));
}

#endif /* XMEM_NT_STORE_H */
