/* SPDX-License-Identifier: MIT */
/* region_int.h - region internals shared by src/region files (internal). */
#ifndef XMEM_REGION_INT_H
#define XMEM_REGION_INT_H

#include <pthread.h>
#include <stdint.h>

#include <xmem/region.h>

#include "region_layout.h"

/* What validating the metadata found (xmem__region_scan). */
struct xmem__region_scan {
	int status;	/* 0, XMEM_E_NOREGION, XMEM_E_CORRUPT, XMEM_E_VERSION */
	char msg[1024]; /* the first fatal problem, or why there is no region */
	int repairable; /* the first fatal problem has a good copy to use */
	char sb0_why[200]; /* why superblock copy 0 is invalid */
	int sb_ok[2];	   /* superblock copy i is valid */
	int sb_magic0;	   /* copy 0 carries the superblock magic */
	int sb_used;	   /* the copy `sb` came from, -1 if none */
	struct xmem_sb_layout sb;
	int idx_ok[2];
	int active;	  /* active index block, -1 if none */
	int inactive_bad; /* the inactive index lists a bad label */
	struct xmem_index_layout idx[2];
	uint32_t n;			/* ranges in the active index */
	struct xmem_range_info *ranges; /* n, by offset; malloc'ed */
	unsigned nproblems;		/* problems reported (notes excluded) */
	uint64_t labels_checked;	/* label slots validated */
};

/*
 * Validates region metadata in [base, base+maplen), the start of a device
 * of dev_size bytes; reads nothing outside it and writes nothing. Each
 * problem goes to fn (may be NULL). Returns s->status, or -ENOMEM.
 * Cost: O(S/8 + n log n) for S label slots and n ranges (every label in
 * use is checksummed once; ranges are sorted by offset and by name).
 */
int xmem__region_scan(const uint8_t *base, uint64_t maplen, uint64_t dev_size,
		      struct xmem__region_scan *s, xmem_check_fn fn, void *arg);
void xmem__region_scan_free(struct xmem__region_scan *s);

/* Validates index block i against sb; 0 or a reason in why. */
int xmem__index_validate(const uint8_t *base, uint64_t maplen,
			 const struct xmem_sb_layout *sb, int i,
			 struct xmem_index_layout *out, char *why, size_t len);

/* Checks a range name: 1..47 bytes of [A-Za-z0-9._+@-]. 0 or -EINVAL. */
int xmem__range_name_check(const char *name, char *why, size_t len);

/* Operation counters, for the cost tests (not thread-safe, advisory). */
struct xmem__region_stats {
	uint64_t labels_checked;  /* label slots validated (open, reload) */
	uint64_t extents_scanned; /* free extents looked at by placement */
	uint64_t bitmap_bytes;	  /* bitmap bytes scanned for a free slot */
	uint64_t meta_bytes_written;
	uint64_t reloads; /* full rescans after another process's change */
};

struct xmem_region {
	struct xmem_device *dev;
	struct xmem_map *meta; /* [0, maplen) of the device */
	uint8_t *base;
	uint64_t maplen;
	const struct xmem_persist_ops *ops;
	int fd;	    /* own open file description (metadata lock) */
	int rdonly; /* device opened read-only */
	pthread_mutex_t mu;
	struct xmem_sb_layout sb;
	/* Cached state, valid for index sequence number `seq`. */
	uint64_t seq;
	int active;
	struct xmem_index_layout idx[2];
	int idx_ok[2];
	uint32_t n;
	struct xmem_range_info *ranges; /* by offset; room for all slots */
	struct xmem__region_stats stats;
	unsigned nopen; /* ranges opened from this object (under mu) */
	unsigned refs;	/* the opener's + one per open range (atomic) */
};

struct xmem_range {
	struct xmem_region *reg;
	struct xmem_range_info info;
	int lock_fd; /* own open file description holding the range lock */
	unsigned flags;
};

/* lock.c: OFD locks on the device file. */
int xmem__region_lock(struct xmem_region *reg, int write);
void xmem__region_unlock(struct xmem_region *reg);
int xmem__lock_byte_wait(int fd, uint64_t byte, int type);
int xmem__lock_byte_try(int fd, uint64_t byte, int type);
void xmem__lock_byte_drop(int fd, uint64_t byte);
/* 1 if another open file description holds a lock on byte, 0 if not. */
int xmem__lock_byte_held(int fd, uint64_t byte);
/* 1 (and the byte in *bytep) if another open file description holds a
 * lock on any range lock byte, whatever range it is; 0 if none. Needs no
 * label: used where the labels cannot be trusted. */
int xmem__lock_range_any_held(int fd, uint64_t *bytep);
/* A new open file description of the same file as fd. */
int xmem__fd_reopen(int fd, int rdonly);

/* label.c: reading the current state and committing changes. Call with
 * the region locked. */
int xmem__region_refresh(struct xmem_region *reg);
/* Takes a successful scan (made under the same lock hold) as the cache;
 * the scan's ranges move to reg. */
void xmem__region_adopt(struct xmem_region *reg, struct xmem__region_scan *s);
/* Writes label `lbl` (may be NULL) into a free slot (returned in *slotp),
 * then commits an index with `clear_slot` (or UINT32_MAX) cleared and the
 * new slot set. The cache is reloaded afterwards. */
int xmem__label_commit(struct xmem_region *reg, struct xmem_label_layout *lbl,
		       uint32_t clear_slot, uint32_t *slotp);
/* Commits an index with bitmap `used`: the inactive block with seq + 1
 * (the commit point), then the other block with seq + 2 (the copy). */
int xmem__index_commit(struct xmem_region *reg, const uint8_t *used);
void xmem__label_fill(struct xmem_label_layout *lbl,
		      const struct xmem_range_info *ri);
/* Persists len bytes at device offset off of the metadata map; 0, or a
 * negative code with a message (beyond the mapped length, or the write
 * could not be made durable). */
int xmem__meta_write(struct xmem_region *reg, uint64_t off, const void *src,
		     size_t len);
/* Test hook: when non-zero, counts down at each msync of metadata, and the
 * msync that brings it to zero fails with EIO. */
extern int xmem__region_msync_fail;
/* Zeroes what of [off, off+len) is mapped, durably; 0 or as above. */
int xmem__meta_zero(struct xmem_region *reg, uint64_t off, uint64_t len);
void xmem__uuid_gen(uint8_t uuid[16]);

/* placement.c */
struct xmem__placement {
	uint64_t offset;
	uint64_t largest_free;
	uint64_t free;
};
/* Best fit for size at align among the gaps of the sorted ranges. */
int xmem__place(struct xmem_region *reg, const char *name, uint64_t size,
		uint64_t align, struct xmem__placement *pl);
void xmem__free_space(const struct xmem_region *reg, uint64_t *freep,
		      uint64_t *largestp);

/* region.c */
/* A region object with the metadata mapped and nothing read yet. */
int xmem__region_new(struct xmem_device *dev, struct xmem_region **regp);
/* Drops one reference; the last one frees the region object. */
void xmem__region_unref(struct xmem_region *reg);
int xmem__region_map_meta(struct xmem_device *dev, int rdonly,
			  struct xmem_map **mapp, uint64_t *maplenp);

#endif /* XMEM_REGION_INT_H */
