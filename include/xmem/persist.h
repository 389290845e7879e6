/* SPDX-License-Identifier: MIT */
/*
 * xmem/persist.h - making stores durable.
 *
 * A store to persistent memory is durable only once it has left the CPU
 * caches (or the caches are inside the persistence domain). How that is
 * achieved depends on the mapping's persistence granularity:
 *
 *   XMEM_GRAN_BYTE       caches are persistent (eADR, CXL GPF): a fence.
 *   XMEM_GRAN_CACHELINE  devdax or MAP_SYNC: flush lines, then a fence.
 *   XMEM_GRAN_PAGE       plain file mapping: msync of the pages.
 *
 * The xmem_flush/xmem_drain/xmem_persist and xmem_mem* calls below are the
 * CPU-level primitives: they assume cache-line granularity. Code that works
 * on a mapping should take the operations for that mapping's granularity
 * from xmem_map_ops() (xmem/device.h) instead, so that a page-granularity
 * mapping is msync'ed and a byte-granularity one skips the flushes.
 *
 * XMEM_FORCE_GRANULARITY=byte|cacheline|page in the environment overrides
 * detection for every mapping, for tests and benchmarks.
 */
#ifndef XMEM_PERSIST_H
#define XMEM_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum xmem_granularity {
	XMEM_GRAN_BYTE = 0,
	XMEM_GRAN_CACHELINE = 1,
	XMEM_GRAN_PAGE = 2,
};

/* Returns "byte", "cacheline" or "page". */
const char *xmem_granularity_name(enum xmem_granularity g);

/* Flags of xmem_memcpy/xmem_memmove/xmem_memset. */
#define XMEM_F_MEM_NODRAIN (1u << 0)	 /* skip the final fence */
#define XMEM_F_MEM_NONTEMPORAL (1u << 1) /* prefer non-temporal stores */
#define XMEM_F_MEM_TEMPORAL (1u << 2)	 /* prefer cached stores + flush */
#define XMEM_F_MEM_NOFLUSH (1u << 3)	 /* neither flush nor fence */
#define XMEM_F_MEM_VALID_FLAGS (0xfu)

/* Writes back the cache lines covering [addr, addr+len); no ordering. */
void xmem_flush(const void *addr, size_t len);

/* Waits until every earlier flush and non-temporal store is durable. */
void xmem_drain(void);

/* xmem_flush() then xmem_drain(). */
void xmem_persist(const void *addr, size_t len);

/* memcpy/memmove/memset whose result is durable on return (unless a flag
 * says otherwise). Return dst. */
void *xmem_memcpy(void *dst, const void *src, size_t len, unsigned flags);
void *xmem_memmove(void *dst, const void *src, size_t len, unsigned flags);
void *xmem_memset(void *dst, int c, size_t len, unsigned flags);

/* Persistence operations bound to one granularity. */
typedef void (*xmem_flush_fn)(const void *addr, size_t len);
typedef void (*xmem_drain_fn)(void);
typedef void (*xmem_persist_fn)(const void *addr, size_t len);
typedef void *(*xmem_memcpy_fn)(void *dst, const void *src, size_t len,
				unsigned flags);
typedef void *(*xmem_memset_fn)(void *dst, int c, size_t len, unsigned flags);

struct xmem_persist_ops {
	enum xmem_granularity gran;
	xmem_flush_fn flush;
	xmem_drain_fn drain;
	xmem_persist_fn persist;
	xmem_memcpy_fn memcpy;
	xmem_memcpy_fn memmove;
	xmem_memset_fn memset;
};

/* Returns the operations for a granularity (or the crash simulator's, when
 * it is running). Never NULL. */
const struct xmem_persist_ops *xmem_persist_ops(enum xmem_granularity g);

/* CPU facts found at load time, after the XMEM_NO_* overrides. */
struct xmem_cpu_info {
	int clflush, clflushopt, clwb;
	int sse2, avx2, avx512f;
	const char *flush_insn;	 /* "clwb", "clflushopt" or "clflush" */
	const char *memcpy_impl; /* "avx512f", "avx2", "sse2" or "generic" */
	size_t movnt_threshold;	 /* bytes; smaller copies use cached stores */
};
void xmem_cpu_info(struct xmem_cpu_info *info);

/*
 * Crash simulation: a shadow "durable image".
 *
 * While it runs, every mapping of the device at `device_path` is tracked:
 * flushed cache lines (and non-temporal stores) are captured at the flush
 * and reach the image file only at the next fence, so the image holds
 * exactly what real hardware would have made durable. Stores that were
 * never flushed never reach it.
 *
 * With crash_at = N > 0, the Nth fence does not complete: the process
 * _exit()s with XMEM_CRASHSIM_EXIT, leaving the image as a crash there
 * would. With `torn_seed` != 0, a pseudo-random subset (seeded) of the
 * lines flushed since the previous fence also reaches the image first, as
 * the hardware may write back lines early.
 *
 * The image starts as a copy of the device's contents. It is meant to be
 * used in a forked child; the parent then opens the image as a device.
 *
 * Only fences with something to make durable are counted (a crash at an
 * empty fence leaves the same image as one at the next counted fence).
 * Mappings of the device made before the start are tracked too, and so
 * are operations taken from xmem_persist_ops() before it. Under the
 * simulator, mem* with XMEM_F_MEM_NOFLUSH are never captured: the caller
 * promised to flush them. tests/common/crashtest.h drives it.
 */
#define XMEM_CRASHSIM_EXIT 86

struct xmem_crashsim_opts {
	const char *device_path; /* file whose mappings are tracked */
	const char *image_path;	 /* the durable image, created or truncated */
	uint64_t crash_at;	 /* 0: never crash, just count fences */
	uint64_t torn_seed;	 /* 0: no early write-back at the crash */
	unsigned flags;		 /* XMEM_CRASHSIM_F_* */
};

/* At a torn crash, a seeded half of the tracked lines that were stored but
 * never flushed also reach the image, with the contents they hold at the
 * crash: a cache may evict any dirty line at any time. */
#define XMEM_CRASHSIM_F_EVICT (1u << 0)

int xmem_crashsim_start(const struct xmem_crashsim_opts *opts);

/* Number of fences counted so far on tracked mappings. */
uint64_t xmem_crashsim_fences(void);

/* Stops tracking; the image keeps what was durable. */
void xmem_crashsim_stop(void);

#ifdef __cplusplus
}
#endif
#endif /* XMEM_PERSIST_H */
