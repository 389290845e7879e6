/* SPDX-License-Identifier: MIT */
/*
 * persist.c - the cache-line persistence primitives and the choice, made
 * once at load time, of the instructions behind them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/util.h"
#include "crashsim.h"
#include "dispatch.h"

/*
 * Default non-temporal threshold: copies of at least this many bytes use
 * NT stores. Measured on the development machine (AMD EPYC with AVX-512
 * and clwb, 2 vCPUs; /dev/shm mapping; `persist_bench -t`: 256 copies to
 * distinct lines of a 64 KiB window per sample, medians of 301 samples),
 * ns per xmem_memcpy, alone and followed by a re-read of the copy:
 *
 *   size   cached+clwb    NT    | cached+clwb+read   NT+read
 *   64         166        155   |       169            53 (*)
 *   128        174        161   |       173           200
 *   256        183        164   |       182           211
 *   512        191        173   |       191           221
 *   1024       207        179   |       208           254
 *   2048       245        199   |       246           500
 *   4096       336        237   |       360           913
 *
 * NT stores make the copy itself cheaper at every size (7% at 64 B, 11%
 * at 256 B, 30-40% from 2 KiB), but they leave the lines out of the
 * cache, while clwb here keeps them cached: a re-read after an NT copy
 * misses (+30 ns at 256 B, +250 ns at 2 KiB). Small persistent writes
 * (log headers, allocator metadata, pointers) are usually read again
 * soon; bulk copies mostly are not. 256 B is where the copy gain reaches
 * 10% and where a write stops being "a few metadata lines"; it is also
 * libpmem's value, so mixed code sees the same behaviour. Callers that
 * re-read large copies pass XMEM_F_MEM_TEMPORAL; XMEM_MOVNT_THRESHOLD
 * overrides the default. (*) one line: why the re-read makes this case
 * faster is not understood; it does not change the choice.
 */
#define MOVNT_THRESHOLD_DEFAULT 256

typedef void (*memmove_nt_fn)(void *dst, const void *src, size_t len,
			      xmem__flush_lines_fn flush);
typedef void (*memset_nt_fn)(void *dst, int c, size_t len,
			     xmem__flush_lines_fn flush);

static xmem__flush_lines_fn flush_fn;
static xmem__flush_lines_fn persist_fn;
static memmove_nt_fn movnt_fn;
static memset_nt_fn setnt_fn;
static size_t movnt_threshold = MOVNT_THRESHOLD_DEFAULT;
static struct xmem_cpu_info info;

/* Cached stores, then the lines written back: the "generic" variant. */
static void memmove_generic(void *dst, const void *src, size_t len,
			    xmem__flush_lines_fn flush)
{
	memmove(dst, src, len);
	flush(dst, len);
}

static void memset_generic(void *dst, int c, size_t len,
			   xmem__flush_lines_fn flush)
{
	memset(dst, c, len);
	flush(dst, len);
}

static void flush_none(const void *addr, size_t len)
{
	(void)addr;
	(void)len;
}

/* True when the variable is set to anything but "" or "0". */
static int env_set(const char *name)
{
	const char *v = name ? getenv(name) : NULL;

	return v && *v && strcmp(v, "0") != 0;
}

static size_t env_threshold(void)
{
	const char *v = getenv("XMEM_MOVNT_THRESHOLD");
	char *end;
	unsigned long long t;

	if (!v || !*v)
		return MOVNT_THRESHOLD_DEFAULT;
	errno = 0;
	t = strtoull(v, &end, 0);
	if (errno || *end || v[0] == '-') {
		XMEM_LOG_W("XMEM_MOVNT_THRESHOLD=%s is not a byte count; "
			   "using %u",
			   v, MOVNT_THRESHOLD_DEFAULT);
		return MOVNT_THRESHOLD_DEFAULT;
	}
	return (size_t)t;
}

static void choose_flush(void)
{
	const struct xmem__flush_variant *v;
	size_t n = xmem__arch_flush_variants(&v);

	for (size_t i = 0; i < n; i++) {
		if (v[i].available && !env_set(v[i].env)) {
			flush_fn = v[i].flush;
			persist_fn = v[i].persist;
			info.flush_insn = v[i].name;
			return;
		}
	}
	/* clflush is part of x86-64; reaching here means an odd CPU. */
	flush_fn = v[n - 1].flush;
	persist_fn = v[n - 1].persist;
	info.flush_insn = v[n - 1].name;
}

static void choose_mem(void)
{
	const struct xmem__mem_variant *v;
	size_t n = xmem__arch_mem_variants(&v);

	movnt_fn = memmove_generic;
	setnt_fn = memset_generic;
	info.memcpy_impl = "generic";
	if (env_set("XMEM_NO_MOVNT"))
		return;
	for (size_t i = 0; i < n; i++) {
		if (v[i].available && !env_set(v[i].env)) {
			movnt_fn = v[i].memmove_nt;
			setnt_fn = v[i].memset_nt;
			info.memcpy_impl = v[i].name;
			return;
		}
	}
}

void xmem__persist_reinit(void)
{
	const struct xmem__cpu *c = xmem__cpu();

	info.clflush = c->clflush;
	info.clflushopt = c->clflushopt && !env_set("XMEM_NO_CLFLUSHOPT");
	info.clwb = c->clwb && !env_set("XMEM_NO_CLWB");
	info.sse2 = c->sse2;
	info.avx2 = c->avx2 && !env_set("XMEM_NO_AVX2");
	info.avx512f = c->avx512f && !env_set("XMEM_NO_AVX512F");
	choose_flush();
	choose_mem();
	movnt_threshold = env_threshold();
	info.movnt_threshold = movnt_threshold;
}

__attribute__((constructor)) static void persist_init(void)
{
	xmem__persist_reinit();
}

static int set_flush_variant(const char *name)
{
	const struct xmem__flush_variant *v;
	size_t n = xmem__arch_flush_variants(&v);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, name) != 0)
			continue;
		if (!v[i].available)
			return -ENOTSUP;
		flush_fn = v[i].flush;
		persist_fn = v[i].persist;
		info.flush_insn = v[i].name;
		return 0;
	}
	return -EINVAL;
}

int xmem__persist_variant_set(const char *name)
{
	const struct xmem__mem_variant *v;
	size_t n = xmem__arch_mem_variants(&v);

	if (!strcmp(name, "generic")) {
		movnt_fn = memmove_generic;
		setnt_fn = memset_generic;
		info.memcpy_impl = "generic";
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, name) != 0)
			continue;
		if (!v[i].available)
			return -ENOTSUP;
		movnt_fn = v[i].memmove_nt;
		setnt_fn = v[i].memset_nt;
		info.memcpy_impl = v[i].name;
		return 0;
	}
	return set_flush_variant(name);
}

const char *xmem__persist_variant_name(int mem, size_t i, int *available)
{
	const struct xmem__flush_variant *fv;
	const struct xmem__mem_variant *mv;
	size_t n;

	if (!mem) {
		n = xmem__arch_flush_variants(&fv);
		if (i >= n)
			return NULL;
		*available = fv[i].available;
		return fv[i].name;
	}
	n = xmem__arch_mem_variants(&mv);
	if (i < n) {
		*available = mv[i].available;
		return mv[i].name;
	}
	*available = 1;
	return i == n ? "generic" : NULL;
}

void xmem__persist_threshold_set(size_t bytes)
{
	movnt_threshold = bytes;
	info.movnt_threshold = bytes;
}

XMEM_EXPORT void xmem_cpu_info(struct xmem_cpu_info *out)
{
	*out = info;
}

XMEM_EXPORT void xmem_flush(const void *addr, size_t len)
{
	if (unlikely(xmem__crashsim_on)) {
		xmem__crashsim_flush(addr, len);
		return;
	}
	flush_fn(addr, len);
}

XMEM_EXPORT void xmem_drain(void)
{
	if (unlikely(xmem__crashsim_on)) {
		xmem__crashsim_drain();
		return;
	}
	/* Earlier flushes and NT stores are durable before later stores. */
	xmem__arch_fence();
}

XMEM_EXPORT void xmem_persist(const void *addr, size_t len)
{
	if (unlikely(xmem__crashsim_on)) {
		xmem__crashsim_flush(addr, len);
		xmem__crashsim_drain();
		return;
	}
	/* Flush, then a fence: the lines are durable before any later
	 * store. */
	persist_fn(addr, len);
}

/* Non-temporal stores or not, by flags and size. */
static int use_movnt(size_t len, unsigned flags)
{
	if (flags & XMEM_F_MEM_NONTEMPORAL)
		return 1;
	if (flags & XMEM_F_MEM_TEMPORAL)
		return 0;
	return len >= movnt_threshold;
}

XMEM_EXPORT void *xmem_memmove(void *dst, const void *src, size_t len,
			       unsigned flags)
{
	xmem__flush_lines_fn fl = flush_fn;

	if (unlikely(xmem__crashsim_on))
		return xmem__crashsim_ops()->memmove(dst, src, len, flags);
	if (flags & XMEM_F_MEM_NOFLUSH)
		fl = flush_none;
	if (use_movnt(len, flags)) {
		movnt_fn(dst, src, len, fl);
	} else {
		memmove(dst, src, len);
		fl(dst, len);
	}
	/* The copy (NT stores and flushed lines) is durable on return. */
	if (!(flags & (XMEM_F_MEM_NODRAIN | XMEM_F_MEM_NOFLUSH)))
		xmem__arch_fence();
	return dst;
}

XMEM_EXPORT void *xmem_memcpy(void *dst, const void *src, size_t len,
			      unsigned flags)
{
	return xmem_memmove(dst, src, len, flags);
}

XMEM_EXPORT void *xmem_memset(void *dst, int c, size_t len, unsigned flags)
{
	xmem__flush_lines_fn fl = flush_fn;

	if (unlikely(xmem__crashsim_on))
		return xmem__crashsim_ops()->memset(dst, c, len, flags);
	if (flags & XMEM_F_MEM_NOFLUSH)
		fl = flush_none;
	if (use_movnt(len, flags)) {
		setnt_fn(dst, c, len, fl);
	} else {
		memset(dst, c, len);
		fl(dst, len);
	}
	/* The filled bytes are durable on return. */
	if (!(flags & (XMEM_F_MEM_NODRAIN | XMEM_F_MEM_NOFLUSH)))
		xmem__arch_fence();
	return dst;
}

/* Byte granularity: the caches are persistent, so no write-back; NT
 * stores still need the fence to leave the write-combining buffers. */
void *xmem__persist_memmove_byte(void *dst, const void *src, size_t len,
				 unsigned flags)
{
	if (unlikely(xmem__crashsim_on))
		return xmem__crashsim_ops()->memmove(dst, src, len, flags);
	if (use_movnt(len, flags))
		movnt_fn(dst, src, len, flush_none);
	else
		memmove(dst, src, len);
	/* NT stores reach the (persistent) cache hierarchy's domain. */
	if (!(flags & (XMEM_F_MEM_NODRAIN | XMEM_F_MEM_NOFLUSH)))
		xmem__arch_fence();
	return dst;
}

void *xmem__persist_memset_byte(void *dst, int c, size_t len, unsigned flags)
{
	if (unlikely(xmem__crashsim_on))
		return xmem__crashsim_ops()->memset(dst, c, len, flags);
	if (use_movnt(len, flags))
		setnt_fn(dst, c, len, flush_none);
	else
		memset(dst, c, len);
	/* NT stores reach the persistence domain before later stores. */
	if (!(flags & (XMEM_F_MEM_NODRAIN | XMEM_F_MEM_NOFLUSH)))
		xmem__arch_fence();
	return dst;
}
