/* SPDX-License-Identifier: MIT */
/*
 * flush.c - x86-64 cache-line write-back instructions, the store fence,
 * and the tables of flush and non-temporal memory variants.
 */
#include <stdint.h>

#include "../arch.h"
#include "core/cpu.h"
#include "movnt.h"

#define LINE 64u

/* clwb: writes the line back and may keep it cached (best: a later read
 * of the same data does not miss). Weakly ordered; needs a fence. */
static inline __attribute__((always_inline)) void flush_clwb(const void *addr,
							     size_t len)
{
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(LINE - 1);
	uintptr_t end = (uintptr_t)addr + len;

	for (; p < end; p += LINE)
		__asm__ volatile("clwb %0"
				 :
				 : "m"(*(const char *)p)
				 : "memory");
}

/* clflushopt: writes the line back and evicts it. Weakly ordered. */
static inline __attribute__((always_inline)) void
flush_clflushopt(const void *addr, size_t len)
{
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(LINE - 1);
	uintptr_t end = (uintptr_t)addr + len;

	for (; p < end; p += LINE)
		__asm__ volatile("clflushopt %0"
				 :
				 : "m"(*(const char *)p)
				 : "memory");
}

/* clflush: writes back and evicts; each one is ordered with every other
 * store, which makes it slow, but it exists on every x86-64. */
static inline __attribute__((always_inline)) void
flush_clflush(const void *addr, size_t len)
{
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(LINE - 1);
	uintptr_t end = (uintptr_t)addr + len;

	for (; p < end; p += LINE)
		__asm__ volatile("clflush %0"
				 :
				 : "m"(*(const char *)p)
				 : "memory");
}

/* sfence: the earlier clwb/clflushopt and non-temporal stores of this
 * thread complete before any later store (x86 keeps ordinary stores in
 * order already, so this is the only fence persistence needs). */
void xmem__arch_fence(void)
{
	__asm__ volatile("sfence" : : : "memory");
}

/* Flush and fence in one call, for the persist fast path. */
#define PERSIST_FN(insn)                                                       \
	static void persist_##insn(const void *addr, size_t len)               \
	{                                                                      \
		flush_##insn(addr, len);                                       \
		/* The lines just written back are durable before any          \
		 * later store. */                                             \
		__asm__ volatile("sfence" : : : "memory");                     \
	}
PERSIST_FN(clwb)
PERSIST_FN(clflushopt)
PERSIST_FN(clflush)

static struct xmem__flush_variant flush_variants[] = {
	{ "clwb", "XMEM_NO_CLWB", 0, flush_clwb, persist_clwb },
	{ "clflushopt", "XMEM_NO_CLFLUSHOPT", 0, flush_clflushopt,
	  persist_clflushopt },
	{ "clflush", NULL, 0, flush_clflush, persist_clflush },
};

static struct xmem__mem_variant mem_variants[] = {
	{ "avx512f", "XMEM_NO_AVX512F", 0, xmem__memmove_nt_avx512f,
	  xmem__memset_nt_avx512f },
	{ "avx2", "XMEM_NO_AVX2", 0, xmem__memmove_nt_avx2,
	  xmem__memset_nt_avx2 },
	{ "sse2", NULL, 0, xmem__memmove_nt_sse2, xmem__memset_nt_sse2 },
};

size_t xmem__arch_flush_variants(const struct xmem__flush_variant **out)
{
	const struct xmem__cpu *c = xmem__cpu();

	flush_variants[0].available = c->clwb;
	flush_variants[1].available = c->clflushopt;
	flush_variants[2].available = c->clflush;
	*out = flush_variants;
	return sizeof(flush_variants) / sizeof(flush_variants[0]);
}

size_t xmem__arch_mem_variants(const struct xmem__mem_variant **out)
{
	const struct xmem__cpu *c = xmem__cpu();

	mem_variants[0].available = c->avx512f;
	mem_variants[1].available = c->avx2;
	mem_variants[2].available = c->sse2;
	*out = mem_variants;
	return sizeof(mem_variants) / sizeof(mem_variants[0]);
}
