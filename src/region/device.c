/* SPDX-License-Identifier: MIT */
/*
 * device.c - opening the bytes a region lives on: device DAX, files on DAX
 * and ordinary file systems, block devices, memfds and anonymous memory,
 * and finding each one's size, alignment and persistence granularity.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "device_internal.h"
#include "sysfs.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

XMEM_EXPORT const char *xmem_device_kind_name(enum xmem_device_kind kind)
{
	static const char *const names[] = {
		[XMEM_DEVICE_DAX] = "devdax",  [XMEM_DEVICE_FSDAX] = "fsdax",
		[XMEM_DEVICE_FILE] = "file",   [XMEM_DEVICE_BLOCK] = "block",
		[XMEM_DEVICE_MEMFD] = "memfd", [XMEM_DEVICE_ANON] = "anon",
	};

	if ((unsigned)kind >= ARRAY_SIZE(names))
		return "unknown";
	return names[kind];
}

int xmem__forced_granularity(void)
{
	const char *e = getenv("XMEM_FORCE_GRANULARITY");

	if (!e || !*e)
		return -1;
	if (!strcasecmp(e, "byte"))
		return XMEM_GRAN_BYTE;
	if (!strcasecmp(e, "cacheline") || !strcasecmp(e, "cache_line") ||
	    !strcasecmp(e, "cl"))
		return XMEM_GRAN_CACHELINE;
	if (!strcasecmp(e, "page"))
		return XMEM_GRAN_PAGE;
	XMEM_LOG_W("XMEM_FORCE_GRANULARITY='%s' is not byte, cacheline or "
		   "page; ignored",
		   e);
	return -1;
}

/* Cache-line granularity, or byte when the nd region's persistence domain
 * includes the CPU caches. */
static enum xmem_granularity flush_domain(const char *nd_region)
{
	return xmem__sysfs_cpu_cache_domain(nd_region) ? XMEM_GRAN_BYTE
						       : XMEM_GRAN_CACHELINE;
}

/* Tells whether MAP_SYNC mappings of the file work (a DAX file system). */
static int probe_map_sync(int fd, int rdonly)
{
	int prot = rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
	void *p = mmap(NULL, XMEM_PAGE, prot, MAP_SHARED_VALIDATE | MAP_SYNC,
		       fd, 0);

	if (p == MAP_FAILED)
		return 0;
	munmap(p, XMEM_PAGE);
	return 1;
}

/* Fills in a device DAX character device. */
static int open_devdax(struct xmem_device *dev, const struct stat *st)
{
	struct xmem__daxinfo di;
	int rc;

	if (!xmem__sysfs_is_dax(st->st_rdev))
		return xmem__err(-ENODEV,
				 "device '%s': a character device that is "
				 "not device DAX",
				 dev->path);
	rc = xmem__sysfs_dax(st->st_rdev, &di);
	if (rc)
		return xmem__err_prefix(rc, "device '%s'", dev->path);
	if (!is_pow2(di.align) || di.align < XMEM_PAGE)
		return xmem__err(XMEM_E_ALIGN,
				 "device '%s': sysfs alignment %llu is not a "
				 "power of two of at least 4 KiB",
				 dev->path, (unsigned long long)di.align);
	dev->kind = XMEM_DEVICE_DAX;
	dev->size = di.size;
	dev->align = di.align;
	memcpy(dev->nd_region, di.nd_region, sizeof(dev->nd_region));
	dev->gran = flush_domain(dev->nd_region);
	return 0;
}

/* Fills in a block device such as /dev/pmem0. */
static int open_block(struct xmem_device *dev, const struct stat *st)
{
	uint64_t size;

	if (ioctl(dev->fd, BLKGETSIZE64, &size) < 0)
		return xmem__err(-errno,
				 "device '%s': cannot read its size: %s",
				 dev->path, strerror(errno));
	dev->kind = XMEM_DEVICE_BLOCK;
	dev->size = size;
	dev->align = XMEM_PAGE;
	dev->gran = XMEM_GRAN_PAGE;
	if (xmem__sysfs_nd_region(st->st_rdev, 1, dev->nd_region,
				  sizeof(dev->nd_region)))
		dev->nd_region[0] = '\0';
	return 0;
}

/* Fills in a regular file; grows it to `size` when asked. */
static int open_file(struct xmem_device *dev, const struct stat *st,
		     uint64_t size, unsigned flags)
{
	uint64_t cur = (uint64_t)st->st_size;

	if ((flags & XMEM_F_CREATE) && size > cur) {
		if (ftruncate(dev->fd, (off_t)size) < 0)
			return xmem__err(-errno,
					 "device '%s': cannot grow to %llu "
					 "bytes: %s",
					 dev->path, (unsigned long long)size,
					 strerror(errno));
		cur = size;
	}
	if (cur < XMEM_PAGE)
		return xmem__err(-EINVAL,
				 "device '%s': file is %llu bytes, smaller "
				 "than one page",
				 dev->path, (unsigned long long)cur);
	dev->size = align_down(cur, XMEM_PAGE);
	dev->align = XMEM_PAGE;
	dev->map_sync = probe_map_sync(dev->fd, dev->rdonly);
	if (dev->map_sync) {
		dev->kind = XMEM_DEVICE_FSDAX;
		if (xmem__sysfs_nd_region(st->st_dev, 1, dev->nd_region,
					  sizeof(dev->nd_region)))
			dev->nd_region[0] = '\0';
		dev->gran = flush_domain(dev->nd_region);
	} else {
		dev->kind = XMEM_DEVICE_FILE;
		dev->gran = XMEM_GRAN_PAGE;
	}
	return 0;
}

/* Opens "memfd:NAME" or "anon": volatile memory of `size` bytes. */
static int open_volatile(struct xmem_device *dev, uint64_t size, int anon)
{
	const char *name = anon ? "xmem-anon" : dev->path + strlen("memfd:");

	if (size == 0 || size % XMEM_PAGE)
		return xmem__err(-EINVAL,
				 "device '%s': volatile memory needs a size "
				 "that is a non-zero multiple of 4 KiB",
				 dev->path);
	dev->fd = memfd_create(*name ? name : "xmem", MFD_CLOEXEC);
	if (dev->fd < 0)
		return xmem__err(-errno, "device '%s': memfd_create: %s",
				 dev->path, strerror(errno));
	if (ftruncate(dev->fd, (off_t)size) < 0)
		return xmem__err(-errno, "device '%s': cannot size to %llu: %s",
				 dev->path, (unsigned long long)size,
				 strerror(errno));
	dev->kind = anon ? XMEM_DEVICE_ANON : XMEM_DEVICE_MEMFD;
	dev->size = size;
	dev->align = XMEM_PAGE;
	dev->gran = XMEM_GRAN_BYTE;
	return 0;
}

/* Opens a path-backed device and classifies it by what fstat says. */
static int open_path(struct xmem_device *dev, uint64_t size, unsigned flags)
{
	int oflags = (dev->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;

	if (flags & XMEM_F_CREATE) {
		if (size % XMEM_PAGE)
			return xmem__err(-EINVAL,
					 "device '%s': size %llu is not a "
					 "multiple of 4 KiB",
					 dev->path, (unsigned long long)size);
		/* Try to create it exclusively first, to know whether a
		 * failure later must remove the file again. */
		dev->fd = open(dev->path, oflags | O_CREAT | O_EXCL, 0600);
		dev->created = dev->fd >= 0;
		if (dev->fd < 0 && errno == EEXIST && !(flags & XMEM_F_EXCL))
			dev->fd = open(dev->path, oflags);
	} else {
		dev->fd = open(dev->path, oflags);
	}
	if (dev->fd < 0)
		return xmem__err(-errno, "device '%s': %s", dev->path,
				 strerror(errno));
	if (fstat(dev->fd, &st) < 0)
		return xmem__err(-errno, "device '%s': fstat: %s", dev->path,
				 strerror(errno));
	if (!realpath(dev->path, dev->real))
		snprintf(dev->real, sizeof(dev->real), "%s", dev->path);
	if (S_ISCHR(st.st_mode))
		return open_devdax(dev, &st);
	if (S_ISBLK(st.st_mode))
		return open_block(dev, &st);
	if (S_ISREG(st.st_mode))
		return open_file(dev, &st, size, flags);
	return xmem__err(-ENODEV,
			 "device '%s': not a file, block device or device "
			 "DAX",
			 dev->path);
}

XMEM_EXPORT int xmem_device_open(struct xmem_device **devp, const char *path,
				 uint64_t size, unsigned flags)
{
	struct xmem_device *dev;
	int forced, rc;

	*devp = NULL;
	if (!path || !*path || strlen(path) >= sizeof(dev->path))
		return xmem__err(-EINVAL, "device path is empty or too long");
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return xmem__err(-ENOMEM, "device '%s': out of memory", path);
	dev->fd = -1;
	dev->rdonly = !!(flags & XMEM_F_RDONLY);
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	snprintf(dev->real, sizeof(dev->real), "%s", path);
	if (!strncmp(path, "memfd:", 6))
		rc = open_volatile(dev, size, 0);
	else if (!strcmp(path, "anon"))
		rc = open_volatile(dev, size, 1);
	else
		rc = open_path(dev, size, flags);
	if (rc) {
		if (dev->fd >= 0)
			close(dev->fd);
		if (dev->created)
			unlink(dev->path);
		free(dev);
		return rc;
	}
	forced = xmem__forced_granularity();
	if (forced >= 0)
		dev->gran = (enum xmem_granularity)forced;
	*devp = dev;
	return 0;
}

XMEM_EXPORT void xmem_device_close(struct xmem_device **devp)
{
	struct xmem_device *dev = *devp;

	if (!dev)
		return;
	if (dev->nmaps)
		XMEM_LOG_W("device '%s' closed with %d live mappings",
			   dev->path, dev->nmaps);
	close(dev->fd);
	free(dev);
	*devp = NULL;
}

XMEM_EXPORT enum xmem_device_kind
xmem_device_kind(const struct xmem_device *dev)
{
	return dev->kind;
}

XMEM_EXPORT const char *xmem_device_path(const struct xmem_device *dev)
{
	return dev->path;
}

XMEM_EXPORT uint64_t xmem_device_size(const struct xmem_device *dev)
{
	return dev->size;
}

XMEM_EXPORT uint64_t xmem_device_align(const struct xmem_device *dev)
{
	return dev->align;
}

XMEM_EXPORT enum xmem_granularity
xmem_device_granularity(const struct xmem_device *dev)
{
	return dev->gran;
}

XMEM_EXPORT int xmem_device_is_volatile(const struct xmem_device *dev)
{
	return dev->kind == XMEM_DEVICE_MEMFD || dev->kind == XMEM_DEVICE_ANON;
}

XMEM_EXPORT int xmem_device_fd(const struct xmem_device *dev)
{
	return dev->fd;
}
