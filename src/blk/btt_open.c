/* SPDX-License-Identifier: MIT */
/*
 * btt_open.c - opening a BTT: discovering its arenas, validating their
 * metadata and running flog recovery, as Linux's nd_btt does on attach.
 *
 * Open reads and validates everything first (info blocks, flog groups,
 * the lanes' free blocks against each other and against the map, and the
 * parent uuid when the caller knows it) and writes only when all of it
 * checked out: then the unfinished map updates are finished.
 *
 * Open is O(arenas * nfree log nfree + nlba): one pass over each arena's
 * map (4 bytes per sector, at memory speed: see btt_lanes.c) checks that
 * no sector owns a lane's free block. The data blocks are never read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk/btt.h"
#include "core/error.h"
#include "core/util.h"

/* Fills an arena from its (validated) info block at namespace offset off. */
static int arena_setup(struct xmem_blk *b, struct btt_arena *ar,
		       const struct btt_info *ib, uint64_t off)
{
	uint8_t *a = b->base + off;

	ar->off = off;
	ar->size = le64(ib->nextoff) ? le64(ib->nextoff)
				     : le64(ib->info2off) + BTT_INFO_SIZE;
	ar->ext_nlba = le32(ib->external_nlba);
	ar->int_nlba = le32(ib->internal_nlba);
	ar->nfree = le32(ib->nfree);
	ar->flags = le32(ib->flags);
	ar->data = a + le64(ib->dataoff);
	ar->map = (uint32_t *)(a + le64(ib->mapoff));
	ar->flog = (struct btt_flog_group *)(a + le64(ib->logoff));
	ar->free = aligned_alloc(BTT_PAD, ar->nfree * sizeof(*ar->free));
	ar->rtt = aligned_alloc(BTT_PAD, ar->nfree * sizeof(*ar->rtt));
	ar->maplocks =
		aligned_alloc(BTT_PAD, ar->nfree * sizeof(*ar->maplocks));
	if (!ar->free || !ar->rtt || !ar->maplocks)
		return xmem__err(-ENOMEM, "BTT open: out of memory");
	memset(ar->free, 0, ar->nfree * sizeof(*ar->free));
	memset(ar->rtt, 0, ar->nfree * sizeof(*ar->rtt));
	memset(ar->maplocks, 0, ar->nfree * sizeof(*ar->maplocks));
	return xmem__btt_flog_slots(ar->flog, ar->nfree,
				    (unsigned)(ar - b->arenas),
				    off + le64(ib->logoff), ar->idx);
}

/* Walks the arena chain from btt_off, validating each info block. */
static int arenas_discover(struct xmem_blk *b, uint16_t major)
{
	uint64_t off = b->btt_off, lba = 0;

	for (;;) {
		const struct btt_info *ib = (const void *)(b->base + off);
		unsigned a = b->narenas;
		struct btt_arena *ar;
		void *p;
		int rc;

		rc = xmem__btt_info_check(ib, a, off, b->len - off, major);
		if (rc)
			return rc;
		if (a && (memcmp(ib->uuid, b->info.uuid, 16) != 0 ||
			  le32(ib->external_lbasize) != b->lbasize ||
			  le16(ib->version_major) != b->info.version_major))
			return xmem__err(XMEM_E_CORRUPT,
					 "BTT arena %u info block at offset "
					 "%#" PRIx64 ": uuid, sector size or "
					 "version differ from arena 0",
					 a, off);
		p = realloc(b->arenas, (a + 1) * sizeof(*b->arenas));
		if (!p)
			return xmem__err(-ENOMEM, "BTT open: out of memory");
		b->arenas = p;
		ar = &b->arenas[a];
		memset(ar, 0, sizeof(*ar));
		b->narenas++;
		if (a == 0) {
			memcpy(b->info.uuid, ib->uuid, 16);
			memcpy(b->info.parent_uuid, ib->parent_uuid, 16);
			b->info.version_major = le16(ib->version_major);
			b->info.version_minor = le16(ib->version_minor);
			b->lbasize = le32(ib->external_lbasize);
			b->int_lbasize = le32(ib->internal_lbasize);
		}
		rc = arena_setup(b, ar, ib, off);
		if (rc)
			return rc;
		ar->lba_start = lba;
		lba += ar->ext_nlba;
		if (ar->flags & BTT_IB_FLAG_ERROR)
			b->info.arena_errors++;
		if (!le64(ib->nextoff))
			break;
		off += le64(ib->nextoff);
	}
	b->nlba = lba;
	return 0;
}

/* Frees what open allocated (also a half-built blk). */
static void blk_free(struct xmem_blk *b)
{
	for (uint32_t i = 0; b->arenas && i < b->narenas; i++) {
		struct btt_arena *ar = &b->arenas[i];

		free(ar->free);
		free(ar->rtt);
		free(ar->maplocks);
	}
	free(b->arenas);
	free(b->lanes);
	free(b);
}

/*
 * Reader slots: four per CPU (at least 8, at most 64). Every writer scans
 * them all, so fewer make writes cheaper. Writer lanes: BTT_MAX_LANES, so
 * that concurrent multi-sector writes (a batch takes one lane per sector)
 * rarely wait for one; a lane costs nothing per write. Both at most the
 * smallest arena's free block count.
 */
static int lanes_setup(struct xmem_blk *b)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t r =
		(uint32_t)MIN(MAX(4 * (cpus > 0 ? cpus : 1), 8), BTT_MAX_LANES);
	uint32_t n = BTT_MAX_LANES;

	for (uint32_t i = 0; i < b->narenas; i++) {
		n = MIN(n, b->arenas[i].nfree);
		r = MIN(r, b->arenas[i].nfree);
	}
	b->nlanes = n;
	b->nslots = r;
	b->lanes = aligned_alloc(BTT_PAD, n * sizeof(*b->lanes));
	if (!b->lanes)
		return xmem__err(-ENOMEM, "BTT open: out of memory");
	memset(b->lanes, 0, n * sizeof(*b->lanes));
	return 0;
}

/* Fills the summary xmem_blk_get_info() returns. */
static void info_fill(struct xmem_blk *b)
{
	struct xmem_blk_info *in = &b->info;

	in->lbasize = b->lbasize;
	in->internal_lbasize = b->int_lbasize;
	in->nlba = b->nlba;
	in->size = b->nlba * b->lbasize;
	in->btt_offset = b->btt_off;
	in->namespace_size = b->len;
	in->narenas = b->narenas;
	in->nfree = b->arenas[0].nfree;
	in->nlanes = b->nlanes;
	in->flog_slots[0] = b->arenas[0].idx[0];
	in->flog_slots[1] = b->arenas[0].idx[1];
	in->rdonly = !!(b->flags & XMEM_F_BLK_RDONLY);
}

/* Arena 0 spans min(512 GiB, rest) rounded down to 4 KiB; its backup
 * is its last 4 KiB. */
uint64_t xmem__btt_backup_off(uint64_t len, int v11)
{
	uint64_t off = v11 ? BTT_V11_OFFSET : 0;

	if (len < off + BTT_ARENA_MIN)
		return 0;
	return off + align_down(MIN(BTT_ARENA_MAX, len - off), BTT_PG) -
	       BTT_INFO_SIZE;
}

/* Looks for a valid backup where arena 0's would be (v1.1, v2.0). */
int xmem__btt_backup_find(const uint8_t *base, uint64_t len, uint64_t *boff)
{
	char msg[256];
	int found = 0;

	snprintf(msg, sizeof(msg), "%s", xmem_errormsg());
	for (int v11 = 1; v11 >= 0 && !found; v11--) {
		uint64_t off = v11 ? BTT_V11_OFFSET : 0;
		uint64_t b = xmem__btt_backup_off(len, v11);
		const struct btt_info *ib = (const void *)(base + b);

		/* valid, and placed where this arena's backup belongs */
		found = b &&
			xmem__btt_info_check(ib, 0, off, len - off,
					     (uint16_t)(v11 ? 1 : 2)) == 0 &&
			le64(ib->info2off) == b - off;
		if (found)
			*boff = b;
	}
	xmem__err(XMEM_E_NOREGION, "%s", msg); /* keep the probe's message */
	return found;
}

/* The parent uuid, when the caller knows the namespace's: an unset one
 * (a raw image's) is accepted, as the kernel does. */
static int parent_check(const struct xmem_blk *b, const uint8_t *parent)
{
	static const uint8_t zero[16];
	const uint8_t *pu = b->info.parent_uuid;

	if (!parent || memcmp(pu, zero, 16) == 0 || memcmp(pu, parent, 16) == 0)
		return 0;
	return xmem__err(XMEM_E_CORRUPT,
			 "BTT arena 0 info block at offset %#" PRIx64
			 ": parent uuid does not match the namespace's uuid "
			 "(the BTT belongs to another namespace)",
			 b->btt_off);
}

/* Probe, discover and validate arenas and lanes, check the parent, and
 * only then recover the unfinished map updates. */
int xmem__btt_open(void *addr, uint64_t len, const struct xmem_persist_ops *ops,
		   unsigned flags, const uint8_t *parent,
		   struct xmem_blk **blkp)
{
	struct xmem_blk *b;
	uint64_t boff;
	uint16_t major;
	int rc;

	*blkp = NULL;
	if (!addr || !ops || (flags & ~XMEM_F_BLK_RDONLY))
		return xmem__err(-EINVAL, "BTT open: invalid arguments");
	b = calloc(1, sizeof(*b));
	if (!b)
		return xmem__err(-ENOMEM, "BTT open: out of memory");
	b->base = addr;
	b->len = len;
	b->ops = ops;
	b->nt = ops->gran == XMEM_GRAN_CACHELINE;
	b->flags = flags;
	rc = xmem__btt_probe(b->base, len, &b->btt_off, &major);
	if (rc == XMEM_E_NOREGION && xmem__btt_backup_find(b->base, len, &boff))
		rc = xmem__err(XMEM_E_NOREGION,
			       "no valid BTT info block at namespace offset "
			       "4096 (v1.1) or 0 (v2.0), but the backup info "
			       "block at offset %#" PRIx64 " is valid: the "
			       "info block was damaged or a format was "
			       "interrupted",
			       boff);
	if (rc == 0)
		rc = arenas_discover(b, major);
	if (rc == 0)
		rc = xmem__btt_lanes_load(b);
	if (rc == 0)
		rc = parent_check(b, parent);
	if (rc == 0)
		rc = lanes_setup(b);
	if (rc) {
		blk_free(b);
		return rc;
	}
	/* Everything read checked out: the first write to the namespace. */
	xmem__btt_lanes_recover(b);
	info_fill(b);
	*blkp = b;
	return 0;
}

/* Any mapping: no parent uuid to compare with. */
XMEM_EXPORT int xmem_blk_open_mem(void *addr, uint64_t len,
				  const struct xmem_persist_ops *ops,
				  unsigned flags, struct xmem_blk **blkp)
{
	return xmem__btt_open(addr, len, ops, flags, NULL, blkp);
}

/* Flushes (unless read-only) and releases the blk and its mapping. */
XMEM_EXPORT void xmem_blk_close(struct xmem_blk **blkp)
{
	struct xmem_blk *b = blkp ? *blkp : NULL;

	if (!b)
		return;
	if (!(b->flags & XMEM_F_BLK_RDONLY))
		xmem_blk_flush(b);
	if (b->map)
		xmem_map_delete(&b->map);
	if (b->dev)
		xmem_device_close(&b->dev);
	blk_free(b);
	*blkp = NULL;
}

/* Copies the summary made at open. */
XMEM_EXPORT void xmem_blk_get_info(const struct xmem_blk *blk,
				   struct xmem_blk_info *info)
{
	*info = blk->info;
}

/* The external sector size. */
XMEM_EXPORT uint32_t xmem_blk_lbasize(const struct xmem_blk *blk)
{
	return blk->lbasize;
}

/* The number of sectors over all arenas. */
XMEM_EXPORT uint64_t xmem_blk_nlba(const struct xmem_blk *blk)
{
	return blk->nlba;
}
