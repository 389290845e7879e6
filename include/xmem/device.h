/* SPDX-License-Identifier: MIT */
/*
 * xmem/device.h - devices and mappings.
 *
 * A device is whatever bytes a region lives on:
 *
 *   /dev/daxX.Y        device DAX; size and alignment from sysfs. Only
 *                      MAP_SHARED mappings at multiples of the alignment.
 *   file on DAX fs     MAP_SHARED_VALIDATE|MAP_SYNC succeeds.
 *   plain file         ext4, xfs, tmpfs; created sparse with XMEM_F_CREATE.
 *   block device       /dev/pmemN and the like.
 *   "memfd:NAME"       volatile device memory in a memfd.
 *   "anon"             volatile anonymous memory (a private memfd).
 *
 * A mapping (struct xmem_map) is a window of a device mapped MAP_SHARED at a
 * virtual address aligned as asked, with the persistence operations that
 * fit its granularity.
 */
#ifndef XMEM_DEVICE_H
#define XMEM_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include "persist.h"

#ifdef __cplusplus
extern "C" {
#endif

enum xmem_device_kind {
	XMEM_DEVICE_DAX = 0, /* /dev/daxX.Y */
	XMEM_DEVICE_FSDAX,   /* file on a DAX file system */
	XMEM_DEVICE_FILE,    /* plain file */
	XMEM_DEVICE_BLOCK,   /* block device */
	XMEM_DEVICE_MEMFD,   /* memfd, volatile */
	XMEM_DEVICE_ANON,    /* anonymous memory, volatile */
};

/* Returns "devdax", "fsdax", "file", "block", "memfd" or "anon". */
const char *xmem_device_kind_name(enum xmem_device_kind kind);

/* Flags of xmem_device_open(). */
#define XMEM_F_CREATE (1u << 0) /* create the file (sparse) at `size` */
#define XMEM_F_RDONLY (1u << 1) /* open read-only */
#define XMEM_F_EXCL (1u << 2)	/* with CREATE: fail if the file exists */

struct xmem_device;
struct xmem_map;

/*
 * Opens a device. `size` is needed for memfd/anon and with XMEM_F_CREATE
 * (an existing file that is smaller is grown; 0 keeps its size).
 */
int xmem_device_open(struct xmem_device **devp, const char *path, uint64_t size,
		     unsigned flags);

/* Closes the device; maps made from it must have been deleted. Sets NULL. */
void xmem_device_close(struct xmem_device **devp);

enum xmem_device_kind xmem_device_kind(const struct xmem_device *dev);
const char *xmem_device_path(const struct xmem_device *dev);
uint64_t xmem_device_size(const struct xmem_device *dev);
/* Smallest mapping alignment the device accepts (4 KiB, or devdax's). */
uint64_t xmem_device_align(const struct xmem_device *dev);
enum xmem_granularity xmem_device_granularity(const struct xmem_device *dev);
/* Non-zero for memfd and anonymous devices. */
int xmem_device_is_volatile(const struct xmem_device *dev);
/* The device's file descriptor (for locks; do not close it). */
int xmem_device_fd(const struct xmem_device *dev);

/* Flags of xmem_device_map(). */
#define XMEM_F_MAP_RDONLY (1u << 0)
#define XMEM_F_MAP_POPULATE (1u << 1) /* prefault the whole window */
#define XMEM_F_MAP_HUGE (1u << 2)     /* madvise(MADV_HUGEPAGE) */

/*
 * Maps [offset, offset+len) of the device at a virtual address that is a
 * multiple of `va_align` (a power of two, at least the page size; 0 means
 * the page size). offset and len must be multiples of the device alignment.
 */
int xmem_device_map(struct xmem_device *dev, uint64_t offset, uint64_t len,
		    uint64_t va_align, unsigned flags, struct xmem_map **mapp);

/* Unmaps and frees the map. Sets *mapp to NULL. */
void xmem_map_delete(struct xmem_map **mapp);

void *xmem_map_addr(const struct xmem_map *map);
uint64_t xmem_map_size(const struct xmem_map *map);
uint64_t xmem_map_offset(const struct xmem_map *map); /* device offset */
enum xmem_granularity xmem_map_granularity(const struct xmem_map *map);

/* The persistence operations for this mapping. Never NULL. */
const struct xmem_persist_ops *xmem_map_ops(const struct xmem_map *map);

/* Makes [addr, addr+len) of the mapping durable at its granularity. */
void xmem_map_persist(const struct xmem_map *map, const void *addr, size_t len);

/*
 * Deep flush: beyond the persistence domain, through the memory
 * controller's write queues where the platform offers that (devdax:
 * the region's deep_flush attribute; files: msync).
 */
int xmem_map_deep_flush(const struct xmem_map *map, const void *addr,
			size_t len);

/* What the kernel actually gave a mapping, read from /proc/self/smaps. */
struct xmem_map_pmd {
	uint64_t resident;   /* bytes resident in the mapping */
	uint64_t pmd_mapped; /* bytes mapped by PMD (2 MiB) entries */
	uint64_t page_size;  /* kernel page size of the VMA */
	char reason[160];    /* when pmd_mapped is 0: why, as far as known */
};
int xmem_map_pmd_status(const struct xmem_map *map, struct xmem_map_pmd *st);

#ifdef __cplusplus
}
#endif
#endif /* XMEM_DEVICE_H */
