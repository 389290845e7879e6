/* SPDX-License-Identifier: MIT */
/*
 * btt_nt_none.c - no non-temporal small stores on this architecture: the
 * BTT stores and flushes through the persist operations instead.
 */
#include "blk/btt_nt.h"

int xmem__btt_nt_available(void)
{
	return 0;
}

void xmem__btt_nt_store32(uint32_t *dst, uint32_t v)
{
	__atomic_store_n(dst, v, __ATOMIC_RELAXED);
}

void xmem__btt_nt_store64(uint64_t *dst, uint64_t v)
{
	__atomic_store_n(dst, v, __ATOMIC_RELAXED);
}
