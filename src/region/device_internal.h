/* SPDX-License-Identifier: MIT */
/* device_internal.h - the device and map objects (internal). */
#ifndef XMEM_DEVICE_INTERNAL_H
#define XMEM_DEVICE_INTERNAL_H

#include <limits.h>
#include <stdint.h>
#include <xmem/device.h>

struct xmem_device {
	enum xmem_device_kind kind;
	int fd;
	int rdonly;
	uint64_t size;
	uint64_t align;
	enum xmem_granularity gran;
	int map_sync;	     /* mappings use MAP_SHARED_VALIDATE|MAP_SYNC */
	int nmaps;	     /* live maps (atomic); close warns unless zero */
	int created;	     /* this open created the file */
	char nd_region[64];  /* nd region under the device, if any */
	char path[PATH_MAX]; /* as given */
	char real[PATH_MAX]; /* canonical, for the crash simulator */
};

struct xmem_map {
	struct xmem_device *dev;
	void *addr;
	uint64_t size;
	uint64_t offset;
	unsigned flags;
	const struct xmem_persist_ops *ops;
};

/* Granularity forced by XMEM_FORCE_GRANULARITY, or -1. */
int xmem__forced_granularity(void);

#endif /* XMEM_DEVICE_INTERNAL_H */
