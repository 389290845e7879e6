/* SPDX-License-Identifier: MIT */
/*
 * xmem/region.h - regions and ranges, with device-DAX semantics.
 *
 * A region is a device with xmem metadata at its start: two superblock
 * copies and a label area whose updates are atomic (a new label is written
 * to a free slot, then the inactive index block is written with the next
 * sequence number, then the other block is made its copy). The data area
 * begins at XMEM_REGION_DATA_OFFSET.
 *
 * A range is a named, exclusive, aligned extent of a region (4 KiB, 2 MiB
 * or 1 GiB alignment, measured as a device offset). An alignment that
 * cannot be met is an error, never a fallback. A range is owned by one
 * open at a time (an open file description lock on the device, so it dies
 * with its process) unless every open asks for XMEM_F_SHARED. The lock
 * follows its open file description, which fork() shares: ownership is
 * held by the process and the children it forks without exec (until all
 * of them have closed the range or exited); exec closes it (O_CLOEXEC).
 */
#ifndef XMEM_REGION_H
#define XMEM_REGION_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMEM_RANGE_NAME_MAX 47 /* bytes, without the terminating NUL */
#define XMEM_RANGE_MAX 4032    /* label slots, so ranges per region */

#define XMEM_ALIGN_4K (4096ull)
#define XMEM_ALIGN_2M (2ull << 20)
#define XMEM_ALIGN_1G (1ull << 30)

/* Device offset of the data area (or the device alignment, if larger). */
#define XMEM_REGION_DATA_OFFSET (2ull << 20)

enum xmem_range_mode {
	XMEM_RANGE_RAW = 0,
	XMEM_RANGE_HEAP = 1,
	XMEM_RANGE_BLK = 2,
	XMEM_RANGE_TIER = 3,
};

/* "raw", "heap", "blk", "tier"; and the reverse (-EINVAL if unknown). */
const char *xmem_range_mode_name(enum xmem_range_mode mode);
int xmem_range_mode_parse(const char *s, enum xmem_range_mode *mode);

struct xmem_region;
struct xmem_range;

struct xmem_region_info {
	uint8_t uuid[16];
	uint64_t device_size; /* bytes the region spans */
	uint64_t data_offset; /* first byte ranges may use */
	uint64_t data_size;
	uint64_t used; /* bytes held by ranges */
	uint64_t free; /* data_size - used */
	uint64_t largest_free;
	uint32_t nranges;
	uint32_t label_slots;
	uint64_t label_seq; /* sequence number of the active index */
	uint64_t created;   /* seconds since the epoch */
};

/* Writes fresh region metadata to the device. Fails with -EEXIST if the
 * device already holds a valid region. */
int xmem_region_create(struct xmem_device *dev, struct xmem_region **regp);

/* Opens a region. Corrupt metadata fails with XMEM_E_CORRUPT and a message
 * naming the structure and its offset; nothing on the device is changed.
 * One bad superblock copy is corrupt too (the message suggests
 * `xmem region check --repair`). A region object may be used by several
 * threads; several region objects (of one device object or of several)
 * exclude each other's changes as processes do. */
int xmem_region_open(struct xmem_device *dev, struct xmem_region **regp);

/* Closes the region and sets NULL. Ranges opened from it stay usable: each
 * holds a reference, and the last of them to close frees the object. */
void xmem_region_close(struct xmem_region **regp);

struct xmem_device *xmem_region_device(const struct xmem_region *reg);
int xmem_region_info(struct xmem_region *reg, struct xmem_region_info *info);

/* Wipes the region metadata. Fails with -ENOTEMPTY while ranges exist,
 * unless XMEM_F_FORCE, and with -EBUSY while any range is open. With
 * ranges and XMEM_F_FORCE the ranges go first (atomically), then the
 * region: a crash in between leaves an empty region. The data area is
 * left as it is. XMEM_F_FORCE also wipes damaged metadata. */
#define XMEM_F_FORCE (1u << 0)
int xmem_region_destroy(struct xmem_device *dev, unsigned flags);

/* One problem found by xmem_region_check(). */
struct xmem_check_problem {
	const char *structure; /* "superblock 1", "label index 0", ... */
	uint64_t offset;       /* device offset of the structure */
	const char *what;      /* what is wrong */
	int repaired;	       /* with XMEM_F_REPAIR: fixed */
	int fatal;	       /* the region cannot be opened because of it */
	int note;	       /* informational (a repair done); not counted
				* in *nproblems */
};
typedef void (*xmem_check_fn)(const struct xmem_check_problem *p, void *arg);

/* Validates all region metadata, calling fn for every problem. A label
 * index block that is invalid or differs from the other is a (non-fatal)
 * problem: damage, or the remains of an interrupted update. With
 * XMEM_F_REPAIR, a damaged superblock or label index is restored from its
 * good copy, and fn hears of each repair (repaired = 1, note = 1). Returns
 * 0 when the region is (now) clean, XMEM_E_CORRUPT if problems remain,
 * XMEM_E_NOREGION (no problems) if the device holds no region, or only
 * the remains of an interrupted create or destroy. *nproblems counts the
 * problems found, notes excluded. */
#define XMEM_F_REPAIR (1u << 1)
int xmem_region_check(struct xmem_device *dev, unsigned flags, xmem_check_fn fn,
		      void *arg, unsigned *nproblems);

struct xmem_range_info {
	char name[XMEM_RANGE_NAME_MAX + 1];
	uint8_t uuid[16];
	uint64_t offset; /* device offset */
	uint64_t size;
	uint64_t align;
	enum xmem_range_mode mode;
	uint32_t slot; /* label slot */
	uint64_t created;
};

/* Creates a range. The name is 1 to XMEM_RANGE_NAME_MAX bytes of letters,
 * digits and . _ + @ - (no ':', which separates DEVICE:RANGE on the
 * command line, no '/', blanks or control bytes). size must be a non-zero
 * multiple of align; align is 4 KiB, 2 MiB or 1 GiB and at least the device
 * alignment. The extent is chosen by best fit. */
int xmem_range_create(struct xmem_region *reg, const char *name, uint64_t size,
		      uint64_t align, enum xmem_range_mode mode,
		      struct xmem_range_info *info);

/* Lists ranges in offset order: *infop is malloc'ed, the caller frees it. */
int xmem_range_list(struct xmem_region *reg, struct xmem_range_info **infop,
		    size_t *countp);

int xmem_range_info(struct xmem_region *reg, const char *name,
		    struct xmem_range_info *info);

/* Grows in place (the space after the range must be free) or shrinks.
 * Fails with -EBUSY while the range is open anywhere. */
int xmem_range_resize(struct xmem_region *reg, const char *name,
		      uint64_t new_size);

/* Removes a range; XMEM_F_SCRUB zeroes its data first. -EBUSY while it is
 * open anywhere. */
#define XMEM_F_SCRUB (1u << 2)
int xmem_range_destroy(struct xmem_region *reg, const char *name,
		       unsigned flags);

/* Opens a range, taking ownership. -EBUSY if another open holds it
 * (unless both are XMEM_F_SHARED). */
#define XMEM_F_SHARED (1u << 3)
int xmem_range_open(struct xmem_region *reg, const char *name, unsigned flags,
		    struct xmem_range **rangep);

/* Drops ownership. Maps made from the range must be deleted. Sets NULL. */
void xmem_range_close(struct xmem_range **rangep);

const struct xmem_range_info *xmem_range_get_info(const struct xmem_range *r);

/* Maps the whole range at a virtual address aligned to its alignment. */
int xmem_range_map(struct xmem_range *r, unsigned flags,
		   struct xmem_map **mapp);

#ifdef __cplusplus
}
#endif
#endif /* XMEM_REGION_H */
