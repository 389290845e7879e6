/* SPDX-License-Identifier: MIT */
/*
 * nt_store.c - small durable stores on x86-64: MOVNTI, an aligned 4- or
 * 8-byte non-temporal store (atomic, like any aligned store of that size;
 * weakly ordered until the next SFENCE, which is the drain).
 */
#include "persist/crashsim.h"
#include "persist/nt_store.h"

/* Under the simulator: an atomic store whose line it captures. */
static int simulated(void)
{
	return __atomic_load_n(&xmem__crashsim_on, __ATOMIC_RELAXED);
}

/* MOVNTI of 4 bytes. Inline assembly, not the intrinsic: a sanitizer
 * would see the intrinsic as a plain store racing with readers' atomic
 * loads, while the instruction is single-copy atomic. */
void xmem__nt_store32(uint32_t *dst, uint32_t v)
{
	if (simulated()) {
		__atomic_store_n(dst, v, __ATOMIC_RELEASE);
		xmem__crashsim_flush(dst, sizeof(*dst));
		return;
	}
	__asm__ volatile("movnti %1, %0" : "=m"(*dst) : "r"(v));
}

/* MOVNTI of 8 bytes. */
void xmem__nt_store64(uint64_t *dst, uint64_t v)
{
	xmem__nt_store_words(dst, &v, 1);
}

/* xmem__nt_store_words under the simulator. */
void xmem__nt_store_words_sim(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&dst[i], src ? src[i] : 0, __ATOMIC_RELEASE);
	xmem__crashsim_flush(dst, n * sizeof(*dst));
}
