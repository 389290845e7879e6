/* SPDX-License-Identifier: MIT */
/*
 * gran.c - the persistence operations of each granularity: byte (a
 * fence), cache line (flush + fence) and page (msync).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch.h"
#include "core/error.h"
#include "core/util.h"
#include "crashsim.h"
#include "dispatch.h"

XMEM_EXPORT const char *xmem_granularity_name(enum xmem_granularity g)
{
	switch (g) {
	case XMEM_GRAN_BYTE:
		return "byte";
	case XMEM_GRAN_CACHELINE:
		return "cacheline";
	case XMEM_GRAN_PAGE:
		return "page";
	}
	return "unknown";
}

/* ---- byte: the CPU caches are inside the persistence domain ---- */

/*
 * Operations handed out before the crash simulator started still reach it:
 * each one forwards to the simulator's while it runs.
 */
#define SIM_FORWARD(op, ...)                                                   \
	do {                                                                   \
		if (unlikely(xmem__crashsim_on)) {                             \
			xmem__crashsim_ops()->op(__VA_ARGS__);                 \
			return;                                                \
		}                                                              \
	} while (0)
#define SIM_FORWARD_RET(op, ...)                                               \
	do {                                                                   \
		if (unlikely(xmem__crashsim_on))                               \
			return xmem__crashsim_ops()->op(__VA_ARGS__);          \
	} while (0)

static void byte_flush(const void *addr, size_t len)
{
	SIM_FORWARD(flush, addr, len);
}

static void byte_drain(void)
{
	SIM_FORWARD(drain);
	/* Earlier NT stores leave the write-combining buffers (and so enter
	 * the persistence domain) before any later store. */
	xmem__arch_fence();
}

static void byte_persist(const void *addr, size_t len)
{
	SIM_FORWARD(persist, addr, len);
	/* Cached stores are already durable; the fence orders them (and
	 * any NT stores) before the stores that follow. */
	xmem__arch_fence();
}

/* ---- page: only msync makes a plain file mapping durable ---- */

/* The page size, read once; threads may race to store the same value. */
static long page_size(void)
{
	static long ps;
	long v = __atomic_load_n(&ps, __ATOMIC_RELAXED);

	if (!v) {
		v = sysconf(_SC_PAGESIZE);
		if (v <= 0)
			v = 4096;
		__atomic_store_n(&ps, v, __ATOMIC_RELAXED);
	}
	return v;
}

/* msync(MS_SYNC) of the pages covering [addr, addr+len). */
static void page_flush(const void *addr, size_t len)
{
	uintptr_t ps = (uintptr_t)page_size();
	uintptr_t start = (uintptr_t)addr & ~(ps - 1);
	uintptr_t end;

	SIM_FORWARD(persist, addr, len);
	if (!len)
		return;
	end = ((uintptr_t)addr + len + ps - 1) & ~(ps - 1);
	/* MS_SYNC returns once the pages are written to the file, so this
	 * is both the flush and the drain of page granularity. */
	if (msync((void *)start, end - start, MS_SYNC) != 0)
		XMEM_LOG_W("msync of %#lx+%zu failed: %s", (unsigned long)start,
			   (size_t)(end - start), strerror(errno));
}

static void page_drain(void)
{
	SIM_FORWARD(drain);
	/* Every flush was a synchronous msync already. */
}

static void *page_memmove(void *dst, const void *src, size_t len,
			  unsigned flags)
{
	SIM_FORWARD_RET(memmove, dst, src, len, flags);
	memmove(dst, src, len);
	/* With NODRAIN too: page granularity has no separate drain, and
	 * the drain that the caller issues later is a no-op. */
	if (!(flags & XMEM_F_MEM_NOFLUSH))
		page_flush(dst, len);
	return dst;
}

static void *page_memset(void *dst, int c, size_t len, unsigned flags)
{
	SIM_FORWARD_RET(memset, dst, c, len, flags);
	memset(dst, c, len);
	if (!(flags & XMEM_F_MEM_NOFLUSH))
		page_flush(dst, len);
	return dst;
}

static const struct xmem_persist_ops ops_byte = {
	.gran = XMEM_GRAN_BYTE,
	.flush = byte_flush,
	.drain = byte_drain,
	.persist = byte_persist,
	.memcpy = xmem__persist_memmove_byte,
	.memmove = xmem__persist_memmove_byte,
	.memset = xmem__persist_memset_byte,
};

static const struct xmem_persist_ops ops_cacheline = {
	.gran = XMEM_GRAN_CACHELINE,
	.flush = xmem_flush,
	.drain = xmem_drain,
	.persist = xmem_persist,
	.memcpy = xmem_memcpy,
	.memmove = xmem_memmove,
	.memset = xmem_memset,
};

static const struct xmem_persist_ops ops_page = {
	.gran = XMEM_GRAN_PAGE,
	.flush = page_flush,
	.drain = page_drain,
	.persist = page_flush,
	.memcpy = page_memmove,
	.memmove = page_memmove,
	.memset = page_memset,
};

XMEM_EXPORT const struct xmem_persist_ops *
xmem_persist_ops(enum xmem_granularity g)
{
	if (xmem__crashsim_on)
		return xmem__crashsim_ops();
	switch (g) {
	case XMEM_GRAN_BYTE:
		return &ops_byte;
	case XMEM_GRAN_CACHELINE:
		return &ops_cacheline;
	case XMEM_GRAN_PAGE:
		return &ops_page;
	}
	/* An unknown value gets the safest operations. */
	return &ops_page;
}
