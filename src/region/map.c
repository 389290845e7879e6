/* SPDX-License-Identifier: MIT */
/*
 * map.c - mapping a window of a device at an aligned virtual address, and
 * finding out what the kernel made of it (PMD mappings, from smaps).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "device_internal.h"
#include "persist/crashsim.h"
#include "sysfs.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

static const char *sz(char *buf, uint64_t v)
{
	return xmem__fmt_size(buf, 32, v);
}

/* Checks offset, length and alignment of a map request. */
static int map_args_ok(const struct xmem_device *dev, uint64_t off,
		       uint64_t len, uint64_t va_align)
{
	char a[32], b[32], c[32];

	if (len == 0 || !range_fits(off, len, dev->size))
		return xmem__err(-EINVAL,
				 "device '%s': window %s at offset %s does "
				 "not fit in its %s",
				 dev->path, sz(a, len), sz(b, off),
				 sz(c, dev->size));
	if (off % dev->align || len % dev->align)
		return xmem__err(XMEM_E_ALIGN,
				 "device '%s': offset %s and length %s must "
				 "be multiples of the device alignment %s",
				 dev->path, sz(a, off), sz(b, len),
				 sz(c, dev->align));
	if (!is_pow2(va_align) || va_align < dev->align)
		return xmem__err(XMEM_E_ALIGN,
				 "device '%s': mapping alignment %s is not a "
				 "power of two of at least the device "
				 "alignment %s",
				 dev->path, sz(a, va_align), sz(b, dev->align));
	return 0;
}

/*
 * Reserves len + align bytes of address space, places the device window
 * at the first aligned address inside it with MAP_FIXED, and returns the
 * unused head and tail.
 */
static void *map_aligned(struct xmem_device *dev, uint64_t off, uint64_t len,
			 uint64_t align, int prot, int *err)
{
	uint8_t *res, *at;
	int mflags = MAP_FIXED;

	res = mmap(NULL, len + align, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	at = (uint8_t *)align_up((uintptr_t)res, align);
	mflags |= dev->map_sync ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED;
	if (mmap(at, len, prot, mflags, dev->fd, (off_t)off) == MAP_FAILED) {
		*err = -errno;
		munmap(res, len + align);
		return NULL;
	}
	if (at > res)
		munmap(res, (size_t)(at - res));
	if (res + len + align > at + len)
		munmap(at + len, (size_t)(res + align - at));
	return at;
}

XMEM_EXPORT int xmem_device_map(struct xmem_device *dev, uint64_t offset,
				uint64_t len, uint64_t va_align, unsigned flags,
				struct xmem_map **mapp)
{
	int prot = PROT_READ, err = 0, rc;
	struct xmem_map *m;
	char a[32];

	*mapp = NULL;
	if (!va_align)
		va_align = dev->align;
	rc = map_args_ok(dev, offset, len, va_align);
	if (rc)
		return rc;
	if (!(flags & XMEM_F_MAP_RDONLY)) {
		if (dev->rdonly)
			return xmem__err(-EROFS,
					 "device '%s' is open read-only",
					 dev->path);
		prot |= PROT_WRITE;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return xmem__err(-ENOMEM, "device '%s': out of memory",
				 dev->path);
	m->addr = map_aligned(dev, offset, len, va_align, prot, &err);
	if (!m->addr) {
		free(m);
		return xmem__err(err,
				 "device '%s': cannot map %s at offset "
				 "%" PRIu64 ": %s",
				 dev->path, sz(a, len), offset, strerror(-err));
	}
	m->dev = dev;
	m->size = len;
	m->offset = offset;
	m->flags = flags;
	if (va_align >= (2u << 20) && len >= (2u << 20))
		madvise(m->addr, len, MADV_HUGEPAGE); /* a hint; may fail */
	if (flags & XMEM_F_MAP_POPULATE)
		madvise(m->addr, len, MADV_WILLNEED);
	xmem__crashsim_map_added(m->addr, len, dev->real, offset);
	m->ops = xmem_persist_ops(dev->gran);
	__atomic_add_fetch(&dev->nmaps, 1, __ATOMIC_RELAXED);
	*mapp = m;
	return 0;
}

XMEM_EXPORT void xmem_map_delete(struct xmem_map **mapp)
{
	struct xmem_map *m = *mapp;

	if (!m)
		return;
	xmem__crashsim_map_removed(m->addr);
	munmap(m->addr, m->size);
	__atomic_sub_fetch(&m->dev->nmaps, 1, __ATOMIC_RELAXED);
	free(m);
	*mapp = NULL;
}

XMEM_EXPORT void *xmem_map_addr(const struct xmem_map *map)
{
	return map->addr;
}

XMEM_EXPORT uint64_t xmem_map_size(const struct xmem_map *map)
{
	return map->size;
}

XMEM_EXPORT uint64_t xmem_map_offset(const struct xmem_map *map)
{
	return map->offset;
}

XMEM_EXPORT enum xmem_granularity
xmem_map_granularity(const struct xmem_map *map)
{
	return map->ops->gran;
}

XMEM_EXPORT const struct xmem_persist_ops *
xmem_map_ops(const struct xmem_map *map)
{
	return map->ops;
}

XMEM_EXPORT void xmem_map_persist(const struct xmem_map *map, const void *addr,
				  size_t len)
{
	map->ops->persist(addr, len);
}

XMEM_EXPORT int xmem_map_deep_flush(const struct xmem_map *map,
				    const void *addr, size_t len)
{
	uintptr_t a = align_down((uintptr_t)addr, XMEM_PAGE);
	int rc;

	/* Make the stores durable at the mapping's own granularity first. */
	map->ops->persist(addr, len);
	if (map->dev->kind == XMEM_DEVICE_DAX ||
	    map->dev->kind == XMEM_DEVICE_FSDAX) {
		rc = xmem__sysfs_deep_flush(map->dev->nd_region);
		if (rc == 0 || rc == -ENOENT)
			return 0;
		return xmem__err(rc, "device '%s': deep flush of %s failed",
				 map->dev->path, map->dev->nd_region);
	}
	if (xmem_device_is_volatile(map->dev))
		return 0;
	if (msync((void *)a, len + ((uintptr_t)addr - a), MS_SYNC) < 0)
		return xmem__err(-errno, "device '%s': msync: %s",
				 map->dev->path, strerror(errno));
	return 0;
}
