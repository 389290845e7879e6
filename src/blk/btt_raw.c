/* SPDX-License-Identifier: MIT */
/*
 * btt_raw.c - a BTT on a window of a file or device (a raw namespace
 * image), or on a range in mode blk: the mapping is made here and then
 * handed to the memory-level calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "blk/btt.h"
#include "core/error.h"
#include "core/util.h"

struct window {
	struct xmem_device *dev;
	struct xmem_map *map;
	uint8_t *addr; /* namespace start inside the mapping */
	uint64_t len;
};

/* Maps [offset, offset+len) of path; the mapping starts at the device
 * alignment below offset. */
/*
 * Locks the window of a read-write open against other read-write opens (an
 * open file description lock, so it dies with its process): two writers
 * would each hand out the same free blocks. Read-only opens (info, check,
 * read) take no lock and may see a writer's updates in flight.
 */
static int window_lock(struct xmem_device *dev, uint64_t offset, uint64_t len,
		       const char *path)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = (off_t)offset,
		.l_len = (off_t)len,
	};

	if (fcntl(xmem_device_fd(dev), F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return xmem__err(-EBUSY,
				 "BTT '%s': window %#" PRIx64 "+%#" PRIx64
				 " is already open for writing",
				 path, offset, len);
	return xmem__err(-errno, "BTT '%s': lock: %s", path, strerror(errno));
}

static int window_open(const char *path, uint64_t offset, uint64_t len,
		       int rdonly, struct window *w)
{
	uint64_t size, align, start;
	int rc;

	memset(w, 0, sizeof(*w));
	rc = xmem_device_open(&w->dev, path, 0, rdonly ? XMEM_F_RDONLY : 0);
	if (rc)
		return xmem__err_prefix(rc, "BTT '%s'", path);
	size = xmem_device_size(w->dev);
	align = xmem_device_align(w->dev);
	if (offset > size || (len && len > size - offset)) {
		xmem_device_close(&w->dev);
		return xmem__err(-EINVAL,
				 "BTT '%s': window %#" PRIx64 "+%#" PRIx64
				 " is past the end (%" PRIu64 " bytes)",
				 path, offset, len, size);
	}
	if (!len)
		len = size - offset;
	rc = rdonly ? 0 : window_lock(w->dev, offset, len, path);
	if (rc) {
		xmem_device_close(&w->dev);
		return rc;
	}
	start = align_down(offset, align);
	rc = xmem_device_map(w->dev, start,
			     align_up(offset + len, align) - start, 0,
			     rdonly ? XMEM_F_MAP_RDONLY : 0, &w->map);
	if (rc) {
		xmem_device_close(&w->dev);
		return xmem__err_prefix(rc, "BTT '%s'", path);
	}
	w->addr = (uint8_t *)xmem_map_addr(w->map) + (offset - start);
	w->len = len;
	return 0;
}

/* Unmaps and closes what window_open made. */
static void window_close(struct window *w)
{
	if (w->map)
		xmem_map_delete(&w->map);
	if (w->dev)
		xmem_device_close(&w->dev);
}

/* Formats a window of a file; the mapping is dropped afterwards. */
XMEM_EXPORT int xmem_blk_format_raw(const char *path, uint64_t offset,
				    uint64_t len,
				    const struct xmem_blk_format_opts *opts)
{
	struct window w;
	int rc = window_open(path, offset, len, 0, &w);

	if (rc)
		return rc;
	rc = xmem_blk_format_mem(w.addr, w.len, xmem_map_ops(w.map), opts);
	window_close(&w);
	return rc;
}

/* Opens the BTT in a window of a file; the blk keeps the mapping. */
XMEM_EXPORT int xmem_blk_open_raw(const char *path, uint64_t offset,
				  uint64_t len, unsigned flags,
				  struct xmem_blk **blkp)
{
	struct window w;
	int rc;

	*blkp = NULL;
	rc = window_open(path, offset, len, !!(flags & XMEM_F_BLK_RDONLY), &w);
	if (rc)
		return rc;
	rc = xmem_blk_open_mem(w.addr, w.len, xmem_map_ops(w.map), flags, blkp);
	if (rc) {
		window_close(&w);
		return xmem__err_prefix(rc, "'%s' at offset %#" PRIx64, path,
					offset);
	}
	(*blkp)->dev = w.dev;
	(*blkp)->map = w.map;
	return 0;
}

/* Checks the BTT in a window of a file, mapped read-only. */
XMEM_EXPORT int xmem_blk_check_raw(const char *path, uint64_t offset,
				   uint64_t len, xmem_blk_check_fn fn,
				   void *arg, unsigned *nproblems)
{
	struct window w;
	int rc = window_open(path, offset, len, 1, &w);

	if (nproblems)
		*nproblems = 0;
	if (rc)
		return rc;
	rc = xmem_blk_check_mem(w.addr, w.len, fn, arg, nproblems);
	window_close(&w);
	return rc;
}

/* Repairs the info blocks in a window of a file. */
XMEM_EXPORT int xmem_blk_repair_raw(const char *path, uint64_t offset,
				    uint64_t len, unsigned *nrepaired)
{
	struct window w;
	int rc = window_open(path, offset, len, 0, &w);

	if (nrepaired)
		*nrepaired = 0;
	if (rc)
		return rc;
	rc = xmem_blk_repair_mem(w.addr, w.len, xmem_map_ops(w.map), nrepaired);
	window_close(&w);
	return rc;
}
