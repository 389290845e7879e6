/* SPDX-License-Identifier: MIT */
/*
 * btt_nt.c - the BTT's small durable stores on x86-64: MOVNTI, an aligned
 * 4- or 8-byte non-temporal store (atomic, like any aligned store of that
 * size; weakly ordered until the next SFENCE, which is the drain).
 */
#include "blk/btt_nt.h"

int xmem__btt_nt_available(void)
{
	return 1;
}

/* MOVNTI of 4 bytes. Inline assembly, not the intrinsic: a sanitizer
 * would see the intrinsic as a plain store racing with readers' atomic
 * loads, while the instruction is single-copy atomic. */
void xmem__btt_nt_store32(uint32_t *dst, uint32_t v)
{
	__asm__ volatile("movnti %1, %0" : "=m"(*dst) : "r"(v));
}

/* MOVNTI of 8 bytes. */
void xmem__btt_nt_store64(uint64_t *dst, uint64_t v)
{
	__asm__ volatile("movnti %1, %0" : "=m"(*dst) : "r"(v));
}
