/* SPDX-License-Identifier: MIT */
/*
 * sysfs.h - what the kernel says about a device (internal).
 * Implemented for Linux in sysfs.c; nothing else reads /sys or /proc.
 */
#ifndef XMEM_SYSFS_H
#define XMEM_SYSFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Facts about a device DAX character device. */
struct xmem__daxinfo {
	uint64_t size;
	uint64_t align;
	char nd_region[64]; /* "region0", or "" when not an nd region */
};

/* Non-zero when the character device belongs to the dax subsystem. */
int xmem__sysfs_is_dax(dev_t rdev);

/* Reads size and alignment of /dev/daxX.Y (dev_t rdev) from sysfs. */
int xmem__sysfs_dax(dev_t rdev, struct xmem__daxinfo *info);

/* Finds the nd region ("regionN") under a char or block device, or the
 * block device holding a file system (is_block selects /sys/dev/block).
 * Returns 0 and fills buf, or -ENOENT. */
int xmem__sysfs_nd_region(dev_t dev, int is_block, char *buf, size_t len);

/* Non-zero when the nd region's persistence_domain is "cpu_cache". */
int xmem__sysfs_cpu_cache_domain(const char *nd_region);

/* Writes 1 to the nd region's deep_flush attribute. -ENOENT if absent. */
int xmem__sysfs_deep_flush(const char *nd_region);

#endif /* XMEM_SYSFS_H */
