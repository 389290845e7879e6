/* SPDX-License-Identifier: MIT */
/*
 * region_layout.h - the on-media format of an xmem region (the manual).
 *
 * A region is a device whose first bytes hold xmem metadata. All fields are
 * fixed-width little-endian. Every structure carries a magic, a version and
 * a CRC-32C (xmem__csum_struct, the 4-byte csum field taken as zero).
 *
 *   device offset   size      what
 *   0               4 KiB     superblock copy 0 (struct xmem_sb_layout)
 *   4 KiB           4 KiB     superblock copy 1 (identical to copy 0)
 *   8 KiB           4 KiB     label index block 0 (struct xmem_index_layout)
 *   12 KiB          4 KiB     label index block 1
 *   16 KiB          504 KiB   4032 label slots of 128 bytes
 *                             (struct xmem_label_layout)
 *   520 KiB         ...       unused up to the data offset
 *   data_off        ...       the data area: ranges live here. data_off is
 *                             2 MiB, or the device alignment if larger.
 *
 * Superblocks never change after create. They record the geometry and the
 * region uuid. Create writes, in this order, each step made durable before
 * the next: the zeroed label slots, index blocks 0 (seq 0) and 1 (seq 1),
 * both empty, superblock 1, then superblock 0 (the commit point). Destroy
 * undoes them in the reverse order: first (with ranges, XMEM_F_FORCE) an index
 * with no ranges, then superblock 0 (the commit point), superblock 1, the label
 * area. Of a truncated device, destroy zeroes only the metadata the device
 * still holds; and while any range lock byte is held (a range open anywhere) it
 * refuses, even when damaged metadata cannot name the ranges.
 *
 * The label area is updated atomically. Index block i holds only sequence
 * numbers with (seq & 1) == i; the active index is the valid block with the
 * higher sequence number. At rest both blocks are valid and list the same
 * slots (their sequence numbers differ by one), so damage to either one
 * loses nothing: the other holds the current state. A change (range
 * create, resize, destroy), with the active block a at sequence N, is:
 *   1. the new label (if any) goes to a slot that is free in BOTH index
 *      blocks (so neither index can ever point at a half-written label),
 *      and is made durable;
 *   2. block b = !a is rewritten with seq N + 1 and the new bitmap, and
 *      made durable. That write is the commit point;
 *   3. block a is rewritten with the same bitmap and seq N + 2, and made
 *      durable (the copy). Step 3 starts only once step 2 is durable.
 * Each step is made durable (flush and fence, or on page-granularity
 * devices msync, whose failure stops the change) before the next begins.
 * A crash before step 2 is durable leaves the old state (a valid; b
 * unchanged or torn, failing its checksum); a crash after it leaves the
 * new state (b valid at N + 1; a still at N, or torn). After such a crash
 * the other block is invalid or lists other slots: check reports that as a
 * problem (it is also what damage at rest looks like) and --repair copies
 * the active block over it, with the sequence number below the active
 * one. The next change repairs it too (its steps 2 and 3 rewrite both
 * blocks). Only then can a slot be held by the other block and free in
 * the active one; if every free slot is, a change first commits a copy of
 * the active bitmap (steps 2 and 3 with it) to free them.
 * Labels in use are never written in place: resize writes a new label in a
 * new slot and flips the index.
 *
 * Reading the superblocks, and what open does:
 *   both valid and equal           the region.
 *   both valid, different          corrupt (repair copies 0 over 1).
 *   copy 0 valid, copy 1 not       corrupt: open refuses and suggests
 *                                  `xmem region check --repair`, which
 *                                  rewrites copy 1 (no crash leaves this).
 *   copy 1 valid, copy 0 not       an interrupted create or destroy if the
 *                                  active index holds no range: no region
 *                                  (XMEM_E_NOREGION; create may run again).
 *                                  With ranges: corrupt, repairable.
 *   neither valid                  no region, unless copy 0 carries the
 *                                  superblock magic: then corrupt.
 * Open writes nothing, and a failed open has changed nothing.
 *
 * Multi-process rules: every change holds an open file description (OFD)
 * write lock on byte XMEM_LOCK_META of the device file; open and reads hold
 * a read lock on it. An open range holds an OFD lock on byte
 * XMEM_LOCK_RANGE(offset) (write lock exclusive, read lock shared), taken
 * on a file description of its own, so it dies with its process. Every
 * region object locks the metadata through a file description of its own
 * as well, so two objects in one process exclude each other as two
 * processes do. These bytes lie far beyond any device size, so they lock
 * no data.
 */
#ifndef XMEM_REGION_LAYOUT_H
#define XMEM_REGION_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define XMEM_SB_MAGIC "XMEMSB\r\n"    /* 8 bytes, no NUL */
#define XMEM_INDEX_MAGIC "XMEMIX\r\n" /* 8 bytes, no NUL */
#define XMEM_LABEL_MAGIC "XMEMLB\r\n" /* 8 bytes, no NUL */
#define XMEM_REGION_LAYOUT_VERSION 1u

#define XMEM_SB_OFF(i) ((uint64_t)(i)*4096u)
#define XMEM_INDEX_OFF(i) (8192u + (uint64_t)(i)*4096u)
#define XMEM_SLOTS_OFF 16384u
#define XMEM_LABEL_SIZE 128u
#define XMEM_LABEL_SLOTS 4032u /* == XMEM_RANGE_MAX */
#define XMEM_BITMAP_BYTES (XMEM_LABEL_SLOTS / 8u)
#define XMEM_SLOT_OFF(s) (XMEM_SLOTS_OFF + (uint64_t)(s)*XMEM_LABEL_SIZE)
/* End of the last metadata structure. */
#define XMEM_META_END XMEM_SLOT_OFF(XMEM_LABEL_SLOTS)

#define XMEM_LOCK_META (1ull << 62)
#define XMEM_LOCK_RANGE(off) (XMEM_LOCK_META + 1 + ((off) >> 12))

/* Superblock (256 bytes at the start of its 4 KiB block). */
struct xmem_sb_layout {
	uint8_t magic[8];     /* XMEM_SB_MAGIC */
	uint32_t version;     /* XMEM_REGION_LAYOUT_VERSION */
	uint32_t csum;	      /* CRC-32C of these 256 bytes */
	uint32_t flags;	      /* 0 */
	uint32_t sb_size;     /* sizeof(struct xmem_sb_layout) */
	uint8_t uuid[16];     /* region uuid */
	uint64_t region_size; /* device bytes the region spans */
	uint64_t created;     /* seconds since the epoch */
	uint64_t index_off[2];
	uint32_t index_size; /* sizeof(struct xmem_index_layout) */
	uint32_t slot_count; /* XMEM_LABEL_SLOTS */
	uint64_t slots_off;  /* XMEM_SLOTS_OFF */
	uint32_t slot_size;  /* XMEM_LABEL_SIZE */
	uint32_t reserved0;
	uint64_t data_off;  /* multiple of 2 MiB and of dev_align */
	uint64_t data_size; /* multiple of 4 KiB and of dev_align */
	uint64_t dev_align; /* device alignment when created */
	uint8_t reserved[136];
};

/* Label index block (1 KiB at the start of its 4 KiB block). */
struct xmem_index_layout {
	uint8_t magic[8];    /* XMEM_INDEX_MAGIC */
	uint32_t version;    /* XMEM_REGION_LAYOUT_VERSION */
	uint32_t csum;	     /* CRC-32C of these 1024 bytes */
	uint64_t seq;	     /* (seq & 1) == block number */
	uint32_t slot_count; /* == superblock slot_count */
	uint32_t nused;	     /* bits set in `used` */
	uint8_t uuid[16];    /* region uuid: stale blocks never validate */
	uint8_t used[XMEM_BITMAP_BYTES]; /* bit s (byte s/8, bit s%8) */
	uint8_t reserved[472];
};

/* Label: one range (128 bytes, two cache lines). */
struct xmem_label_layout {
	uint8_t magic[8]; /* XMEM_LABEL_MAGIC */
	uint32_t version; /* XMEM_REGION_LAYOUT_VERSION */
	uint32_t csum;	  /* CRC-32C of these 128 bytes */
	char name[48];	  /* 1..47 bytes of [A-Za-z0-9._+@-], NUL-padded */
	uint8_t uuid[16]; /* range uuid */
	uint64_t offset;  /* device offset, multiple of align */
	uint64_t size;	  /* non-zero multiple of align */
	uint64_t align;	  /* 4 KiB, 2 MiB or 1 GiB */
	uint32_t mode;	  /* enum xmem_range_mode */
	uint32_t flags;	  /* 0 */
	uint64_t created; /* seconds since the epoch */
	uint64_t seq;	  /* index sequence number that first listed it */
};

_Static_assert(sizeof(struct xmem_sb_layout) == 256, "superblock size");
_Static_assert(offsetof(struct xmem_sb_layout, csum) == 12, "sb csum");
_Static_assert(offsetof(struct xmem_sb_layout, uuid) == 24, "sb uuid");
_Static_assert(offsetof(struct xmem_sb_layout, index_off) == 56, "sb idx");
_Static_assert(offsetof(struct xmem_sb_layout, data_off) == 96, "sb data");
_Static_assert(offsetof(struct xmem_sb_layout, reserved) == 120, "sb rsv");
_Static_assert(sizeof(struct xmem_index_layout) == 1024, "index size");
_Static_assert(offsetof(struct xmem_index_layout, seq) == 16, "index seq");
_Static_assert(offsetof(struct xmem_index_layout, used) == 48, "index map");
_Static_assert(sizeof(struct xmem_label_layout) == XMEM_LABEL_SIZE,
	       "label size");
_Static_assert(offsetof(struct xmem_label_layout, name) == 16, "lbl name");
_Static_assert(offsetof(struct xmem_label_layout, offset) == 80, "lbl off");
_Static_assert(offsetof(struct xmem_label_layout, seq) == 120, "lbl seq");
_Static_assert(XMEM_META_END == 532480, "metadata end");

#endif /* XMEM_REGION_LAYOUT_H */
