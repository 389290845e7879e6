/* SPDX-License-Identifier: MIT */
/*
 * preload.c - libxmem-tier-preload.so: places an unmodified program's
 * large anonymous memory on tiers (LD_PRELOAD; `xmem tier run` sets it
 * up).
 *
 * Interposed: mmap/mmap64 (private anonymous read-write mappings of at
 * least the threshold), malloc/calloc/realloc/memalign family (requests of
 * at least the threshold: glibc serves those with mmap calls of its own
 * that LD_PRELOAD cannot see), free, malloc_usable_size, munmap, mremap,
 * madvise and mprotect on tier memory. fork is handled by the library
 * (registry.c: the child gets private copies). Every tier shares one DRAM
 * budget (a group).
 *
 * Environment (read once, at load):
 *   XMEM_TIER_DRAM        DRAM budget in bytes ("1G"); unset: do nothing
 *   XMEM_TIER_THRESHOLD   smallest request placed on a tier (default 32M)
 *   XMEM_TIER_UNIT        unit (default 2M)
 *   XMEM_TIER_DEVICE_PATH device memory file (shmem), with
 *   XMEM_TIER_DEVICE_OFFSET / XMEM_TIER_DEVICE_SIZE: the extent to use;
 *                         unset: each tier gets private device memory
 *   XMEM_TIER_VERBOSE     1: log each placement to stderr
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xmem/core.h>

#include "core/util.h"
#include "tier_internal.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

#define MAX_TIERS 1024
#define MAX_FREE 256

struct ptier {
	struct xmem_tier *t;
	char *base;
	uint64_t size;	 /* tier size (unit multiple) */
	uint64_t req;	 /* bytes the program asked for */
	uint64_t devoff; /* device extent, if from the shared device */
	int from_dev;
};

static struct {
	int on, verbose, devfd;
	char devpath[4096];
	uint64_t budget, threshold, unit;
	struct xmem_tier_group *group;
	pthread_mutex_t lock;
	struct ptier tiers[MAX_TIERS];
	int n, seq;
	struct {
		uint64_t off, len;
	} freelist[MAX_FREE];
	int nfree;
} P = { .lock = PTHREAD_MUTEX_INITIALIZER, .devfd = -1 };

static __thread int in_tier; /* recursion guard */

/* Parses a size from the environment ("1G"). */
static uint64_t env_size(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	uint64_t v;

	if (!s || xmem__parse_size(s, &v) < 0)
		return dflt;
	return v;
}

static void preload_child(void);

__attribute__((constructor)) static void preload_init(void)
{
	const char *dev = getenv("XMEM_TIER_DEVICE_PATH");

	P.budget = env_size("XMEM_TIER_DRAM", 0);
	if (!getenv("XMEM_TIER_DRAM"))
		return;
	P.threshold = env_size("XMEM_TIER_THRESHOLD", 32ull << 20);
	P.unit = env_size("XMEM_TIER_UNIT", 2ull << 20);
	P.verbose = getenv("XMEM_TIER_VERBOSE") != NULL;
	P.budget = align_down(P.budget, P.unit);
	if (xmem_tier_group_new(P.budget, &P.group) < 0)
		return;
	if (dev) {
		snprintf(P.devpath, sizeof(P.devpath), "%s", dev);
		P.devfd = open(dev, O_RDWR | O_CLOEXEC);
		if (P.devfd < 0) {
			fprintf(stderr, "xmem-tier: %s: %s\n", dev,
				strerror(errno));
			return;
		}
		P.freelist[0].off = env_size("XMEM_TIER_DEVICE_OFFSET", 0);
		P.freelist[0].len = env_size("XMEM_TIER_DEVICE_SIZE", 0);
		P.nfree = 1;
		pthread_atfork(NULL, NULL, preload_child);
	}
	P.on = 1;
}

/* Locks (or unlocks) [off, off+len) of the device file for this process's
 * open file description; 0 or -1. Data bytes, so no conflict with the
 * region's own locks (they lie beyond 2^62). */
static int dev_lock(uint64_t off, uint64_t len, int type)
{
	struct flock fl = { .l_type = (short)type,
			    .l_whence = SEEK_SET,
			    .l_start = (off_t)off,
			    .l_len = (off_t)len };

	return fcntl(P.devfd, F_OFD_SETLK, &fl);
}

/*
 * Takes len bytes of the shared device: first fit among the extents this
 * process has not used, confirmed by a lock on the bytes, so that other
 * processes (a forked stress-ng worker has the same free list) never get
 * the same extent. 0 or -ENOSPC.
 */
static int dev_take(uint64_t len, uint64_t *off)
{
	for (int k = 0; k < P.nfree; k++) {
		uint64_t eo = P.freelist[k].off, el = P.freelist[k].len;

		for (uint64_t c = eo; c + len <= eo + el; c += P.unit) {
			if (dev_lock(c, len, F_WRLCK) < 0)
				continue;
			/* carve [c, c+len) out of the extent */
			P.freelist[k].len = c - eo;
			if (eo + el > c + len && P.nfree < MAX_FREE) {
				P.freelist[P.nfree].off = c + len;
				P.freelist[P.nfree++].len = eo + el - c - len;
			}
			*off = c;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Returns a device extent to this process's free list and unlocks it. */
static void dev_give(uint64_t off, uint64_t len)
{
	dev_lock(off, len, F_UNLCK);
	for (int k = 0; k < P.nfree; k++) {
		if (P.freelist[k].off + P.freelist[k].len == off) {
			P.freelist[k].len += len;
			return;
		}
		if (off + len == P.freelist[k].off) {
			P.freelist[k].off = off;
			P.freelist[k].len += len;
			return;
		}
	}
	if (P.nfree < MAX_FREE) {
		P.freelist[P.nfree].off = off;
		P.freelist[P.nfree++].len = len;
	}
}

/* In a forked child: a description of its own, so that its extent locks
 * exclude the parent's (the parent keeps its locks). */
static void preload_child(void)
{
	if (P.devfd >= 0) {
		int fd = open(P.devpath, O_RDWR | O_CLOEXEC);

		close(P.devfd);
		P.devfd = fd;
	}
	pthread_mutex_init(&P.lock, NULL);
}

/* Creates a tier for a request of len bytes; NULL if it cannot. */
static void *tier_alloc(size_t len, const char *why)
{
	struct xmem_tier_config cfg;
	struct ptier *pt;
	char name[32];
	int rc;

	if (!P.on || in_tier || !len)
		return NULL;
	in_tier = 1;
	pthread_mutex_lock(&P.lock);
	if (P.n == MAX_TIERS)
		goto out;
	pt = &P.tiers[P.n];
	memset(pt, 0, sizeof(*pt));
	xmem_tier_config_init(&cfg);
	cfg.size = len;
	cfg.unit = P.unit;
	cfg.group = P.group;
	cfg.flags = XMEM_F_TIER_PUBLISH;
	snprintf(name, sizeof(name), "%s#%d", why, P.seq++);
	cfg.name = name;
	pt->size = align_up(len, P.unit);
	if (P.devfd >= 0) {
		if (dev_take(pt->size, &pt->devoff) < 0)
			goto out; /* the device is full: plain memory */
		pt->from_dev = 1;
		cfg.device_fd = P.devfd;
		cfg.device_offset = pt->devoff;
	}
	rc = xmem_tier_new(&cfg, &pt->t);
	if (rc < 0) {
		if (pt->from_dev)
			dev_give(pt->devoff, pt->size);
		if (P.verbose)
			fprintf(stderr, "xmem-tier: %s of %zu bytes: %s\n", why,
				len, xmem_errormsg());
		goto out;
	}
	pt->base = xmem_tier_addr(pt->t);
	pt->req = len;
	P.n++;
	if (P.verbose)
		fprintf(stderr, "xmem-tier: %s of %zu bytes at %p\n", name, len,
			(void *)pt->base);
	pthread_mutex_unlock(&P.lock);
	in_tier = 0;
	return pt->base;
out:
	pthread_mutex_unlock(&P.lock);
	in_tier = 0;
	return NULL;
}

/* The index of the tier holding p, or -1; a unit the program unmapped
 * is no longer the tier's (the kernel may reuse the addresses). Caller
 * holds P.lock. */
static int find(const void *p)
{
	for (int k = 0; k < P.n; k++) {
		struct ptier *pt = &P.tiers[k];
		uint64_t i;

		if ((const char *)p < pt->base ||
		    (const char *)p >= pt->base + pt->size)
			continue;
		i = (uint64_t)((const char *)p - pt->base) / P.unit;
		if ((atomic_load(&pt->t->u[i].st) & U_WHERE) != U_GONE)
			return k;
	}
	return -1;
}

/* Are all units of tier k unmapped by the program? */
static int all_gone(int k)
{
	struct xmem_tier *t = P.tiers[k].t;

	for (uint64_t i = 0; i < t->nunits; i++)
		if ((atomic_load(&t->u[i].st) & U_WHERE) != U_GONE)
			return 0;
	return 1;
}

/* Deletes tier k entirely. Caller holds P.lock. */
static void drop(int k)
{
	struct ptier pt = P.tiers[k];

	P.tiers[k] = P.tiers[--P.n];
	xmem_tier_delete(&pt.t);
	if (pt.from_dev)
		dev_give(pt.devoff, pt.size);
}

static void *raw_mmap(void *a, size_t l, int pr, int fl, int fd, off_t o)
{
	long r = syscall(SYS_mmap, a, l, pr, fl, fd, o);

	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	return (void *)r;
}

/* Is this an mmap the tier can serve? */
static int tierable(size_t len, int prot, int flags, int fd)
{
	int bad = MAP_FIXED | MAP_SHARED | MAP_GROWSDOWN | MAP_HUGETLB |
		  MAP_STACK | MAP_FIXED_NOREPLACE;

	return P.on && fd == -1 && (flags & MAP_ANONYMOUS) &&
	       (flags & MAP_PRIVATE) && !(flags & bad) &&
	       prot == (PROT_READ | PROT_WRITE) && len >= P.threshold;
}

/* mmap: a tier for large private anonymous mappings. */
static void *do_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	if (tierable(len, prot, flags, fd)) {
		void *p = tier_alloc(len, "mmap");

		if (p)
			return p;
	}
	return raw_mmap(addr, len, prot, flags, fd, off);
}

/* Both names, whatever _FILE_OFFSET_BITS makes of "mmap" here. */
XMEM_EXPORT void *preload_mmap(void *, size_t, int, int, int,
			       off_t) __asm__("mmap");
XMEM_EXPORT void *preload_mmap64(void *, size_t, int, int, int,
				 off_t) __asm__("mmap64");

/* mmap and mmap64 both go to do_mmap. */
void *preload_mmap(void *addr, size_t len, int prot, int flags, int fd,
		   off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off);
}

void *preload_mmap64(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	return do_mmap(addr, len, prot, flags, fd, off);
}

/* munmap: a whole tier is deleted; part of one is forgotten (GONE units)
 * and really unmapped. */
XMEM_EXPORT int munmap(void *addr, size_t len)
{
	int k;

	if (P.on) {
		pthread_mutex_lock(&P.lock);
		k = find(addr);
		if (k >= 0 && (char *)addr == P.tiers[k].base &&
		    len >= P.tiers[k].req) {
			drop(k);
			pthread_mutex_unlock(&P.lock);
			return 0;
		}
		if (k >= 0) {
			xmem__tier_forget(P.tiers[k].t, addr, len);
			/* unmap first: deleting skips GONE units anyway */
			syscall(SYS_munmap, addr, len);
			if (all_gone(k))
				drop(k);
			pthread_mutex_unlock(&P.lock);
			return 0;
		}
		pthread_mutex_unlock(&P.lock);
	}
	return (int)syscall(SYS_munmap, addr, len);
}

/* mremap of tier memory: shrink in place, or move to a new allocation. */
static void *tier_mremap(int k, void *old, size_t oldlen, size_t newlen,
			 int flags)
{
	struct ptier *pt = &P.tiers[k];
	void *n;

	if ((char *)old != pt->base || (flags & MREMAP_FIXED)) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	if (newlen <= pt->size) {
		if (newlen < pt->req && newlen < oldlen)
			xmem__tier_forget(pt->t,
					  (char *)old + align_up(newlen, 4096),
					  pt->size - align_up(newlen, 4096));
		pt->req = newlen;
		return old;
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	pthread_mutex_unlock(&P.lock);
	n = do_mmap(NULL, newlen, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_mutex_lock(&P.lock);
	if (n == MAP_FAILED)
		return n;
	memcpy(n, old, oldlen < newlen ? oldlen : newlen);
	k = find(old);
	if (k >= 0)
		drop(k);
	return n;
}

/* mremap: tier memory is handled by tier_mremap, the rest by the kernel. */
XMEM_EXPORT void *mremap(void *old, size_t oldlen, size_t newlen, int flags,
			 ...)
{
	void *newaddr = NULL, *r;
	va_list ap;
	int k;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		newaddr = va_arg(ap, void *);
		va_end(ap);
	}
	if (P.on) {
		pthread_mutex_lock(&P.lock);
		k = find(old);
		if (k >= 0) {
			r = tier_mremap(k, old, oldlen, newlen, flags);
			pthread_mutex_unlock(&P.lock);
			return r;
		}
		pthread_mutex_unlock(&P.lock);
	}
	r = (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, newaddr);
	if ((long)r < 0 && (long)r > -4096) {
		errno = (int)-(long)r;
		return MAP_FAILED;
	}
	return r;
}

/* Discarding advice on tier memory must read back zeros afterwards, as on
 * private anonymous memory; the tier's memory is shared, so zero it. */
XMEM_EXPORT int madvise(void *addr, size_t len, int advice)
{
	if (P.on && (advice == MADV_DONTNEED || advice == MADV_FREE ||
		     advice == MADV_REMOVE)) {
		int k;

		pthread_mutex_lock(&P.lock);
		k = find(addr);
		pthread_mutex_unlock(&P.lock);
		if (k >= 0) {
			memset(addr, 0, len);
			return 0;
		}
	}
	return (int)syscall(SYS_madvise, addr, len, advice);
}

/* A program that changes protection of tier memory keeps it where it is:
 * the units are pinned (a move would map them read-write again). */
XMEM_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	if (P.on) {
		int k;

		pthread_mutex_lock(&P.lock);
		k = find(addr);
		if (k >= 0) {
			struct xmem_tier *t = P.tiers[k].t;
			char *a = addr;

			for (size_t o = 0; o < len; o += t->unit) {
				enum xmem_tier_where w = XMEM_TIER_NONE;

				xmem_tier_where(t, a + o, &w);
				/* touch first so the unit is placed */
				if (w == XMEM_TIER_NONE)
					xmem_tier_migrate(t, a + o, 1,
							  XMEM_TIER_DEVICE,
							  NULL),
						xmem_tier_where(t, a + o, &w);
				xmem_tier_advise(
					t, a + o, 1,
					w == XMEM_TIER_DRAM
						? XMEM_TIER_ADV_PIN_DRAM
						: XMEM_TIER_ADV_PIN_DEVICE);
			}
		}
		pthread_mutex_unlock(&P.lock);
	}
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

/* glibc's malloc_usable_size (looked up once). */
static size_t real_usable(void *p)
{
	static size_t (*fn)(void *);

	if (!fn)
		fn = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
	return fn ? fn(p) : 0;
}

/* malloc family: large requests on tiers, the rest to glibc. */
XMEM_EXPORT void *malloc(size_t n)
{
	void *p = n >= P.threshold && P.on ? tier_alloc(n, "malloc") : NULL;

	return p ? p : __libc_malloc(n);
}

/* calloc: tier memory starts zeroed, so no memset is needed. */
XMEM_EXPORT void *calloc(size_t a, size_t b)
{
	size_t n;
	void *p = NULL;

	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	if (n >= P.threshold && P.on)
		p = tier_alloc(n, "malloc"); /* tier memory starts zeroed */
	return p ? p : __libc_calloc(a, b);
}

/* Is p the base of a tier? Only unit-aligned pointers can be. */
static int tier_of(const void *p)
{
	int k;

	if (!P.on || !p || ((uintptr_t)p & (P.unit - 1)))
		return -1;
	pthread_mutex_lock(&P.lock);
	k = find(p);
	pthread_mutex_unlock(&P.lock);
	return k;
}

/* free: a tier's base deletes the tier; anything else goes to glibc. */
XMEM_EXPORT void free(void *p)
{
	if (tier_of(p) >= 0) {
		pthread_mutex_lock(&P.lock);
		int k = find(p);
		if (k >= 0)
			drop(k);
		pthread_mutex_unlock(&P.lock);
		return;
	}
	__libc_free(p);
}

/* The usable size of a tier is its whole (unit-rounded) size. */
XMEM_EXPORT size_t malloc_usable_size(void *p)
{
	int k = tier_of(p);

	if (k >= 0)
		return P.tiers[k].size;
	return p ? real_usable(p) : 0;
}

/* realloc: glibc blocks that grow past the threshold move onto a tier;
 * a tier that must grow moves to a new one. */
XMEM_EXPORT void *realloc(void *p, size_t n)
{
	int k = tier_of(p);
	void *q;
	size_t old;

	if (k < 0) {
		if (!(p && n >= P.threshold && P.on))
			return __libc_realloc(p, n);
		q = tier_alloc(n, "malloc");
		if (!q)
			return __libc_realloc(p, n);
		old = real_usable(p);
		memcpy(q, p, old < n ? old : n);
		__libc_free(p);
		return q;
	}
	if (n <= P.tiers[k].size)
		return p;
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, P.tiers[k].req);
	free(p);
	return q;
}

/* memalign: a tier's base is unit-aligned, which covers any alignment up
 * to the unit. */
XMEM_EXPORT void *memalign(size_t align, size_t n)
{
	void *p = NULL;

	if (n >= P.threshold && P.on && align <= P.unit)
		p = tier_alloc(n, "malloc");
	return p ? p : __libc_memalign(align, n);
}

/* posix_memalign and aligned_alloc, through memalign. */
XMEM_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p = memalign(align, n);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

XMEM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}
