/* SPDX-License-Identifier: MIT */
/*
 * btt_meta.c - BTT metadata: validating info blocks and flog groups, and
 * formatting a namespace with the arena geometry Linux's nd_btt computes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "blk/btt.h"
#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"

#define IB_FAIL(...) xmem__err(XMEM_E_CORRUPT, __VA_ARGS__)

/* Largest arena format cuts; tests lower it to get several arenas in a
 * small namespace (the layout and open do not depend on it). */
uint64_t xmem__btt_arena_max = BTT_ARENA_MAX;

/* External sector sizes the kernel's nd_btt supports. */
static int lbasize_ok(uint32_t s)
{
	static const uint32_t ok[] = { 512, 520, 528, 4096, 4104, 4160, 4224 };

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (ok[i] == s)
			return 1;
	return 0;
}

/* Checks the sizes and counts of an info block (not the offsets). */
static int info_counts_check(const struct btt_info *ib, unsigned a,
			     uint64_t off)
{
	uint32_t ext = le32(ib->external_lbasize);
	uint32_t in = le32(ib->internal_lbasize);
	uint32_t nfree = le32(ib->nfree);

	if (le32(ib->infosize) != BTT_INFO_SIZE)
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": infosize %u, expected 4096",
			       a, off, le32(ib->infosize));
	if (!lbasize_ok(ext))
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": unsupported external_lbasize %u",
			       a, off, ext);
	if (in != align_up(ext, BTT_INT_LBA_ALIGN))
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": internal_lbasize %u, expected %u for "
			       "external_lbasize %u",
			       a, off, in, (uint32_t)align_up(ext, 64), ext);
	if (nfree == 0 || nfree > 4096)
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": nfree %u out of range 1..4096",
			       a, off, nfree);
	if (le32(ib->internal_nlba) > BTT_MAX_NLBA ||
	    le32(ib->internal_nlba) <= nfree ||
	    le32(ib->external_nlba) != le32(ib->internal_nlba) - nfree)
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": external_nlba %u, internal_nlba %u and nfree "
			       "%u disagree",
			       a, off, le32(ib->external_nlba),
			       le32(ib->internal_nlba), nfree);
	return 0;
}

/* Checks that the areas of an info block follow each other inside the
 * arena, page-aligned and large enough. */
static int info_offsets_check(const struct btt_info *ib, unsigned a,
			      uint64_t off, uint64_t space)
{
	uint64_t data = le64(ib->dataoff), map = le64(ib->mapoff);
	uint64_t log = le64(ib->logoff), info2 = le64(ib->info2off);
	uint64_t next = le64(ib->nextoff);
	uint64_t datasz =
		(uint64_t)le32(ib->internal_nlba) * le32(ib->internal_lbasize);
	uint64_t mapsz = (uint64_t)le32(ib->external_nlba) * BTT_MAP_ENT_SIZE;
	uint64_t logsz = (uint64_t)le32(ib->nfree) * BTT_FLOG_GROUP_SIZE;
	const char *what = NULL;

	if ((data | map | log | info2 | next) % BTT_PG)
		what = "an offset is not a multiple of 4096";
	else if (data < BTT_INFO_SIZE || data > BTT_ARENA_MAX)
		what = "dataoff overlaps the info block or is out of range";
	else if (map < data || map - data < datasz || map > BTT_ARENA_MAX)
		what = "mapoff overlaps the data blocks";
	else if (log < map || log - map < mapsz || log > BTT_ARENA_MAX)
		what = "logoff overlaps the map";
	else if (info2 < log || info2 - log < logsz || info2 > BTT_ARENA_MAX)
		what = "info2off overlaps the flog";
	else if (info2 + BTT_INFO_SIZE > space)
		what = "the arena runs past the end of the namespace";
	else if (next &&
		 (next < info2 + BTT_INFO_SIZE || next > BTT_ARENA_MAX ||
		  next > space || space - next < BTT_ARENA_MIN))
		what = "nextoff is inside the arena or leaves no room for the "
		       "next arena";
	if (what)
		return IB_FAIL(
			"BTT arena %u info block at offset %#" PRIx64
			": %s (dataoff %#" PRIx64 ", mapoff %#" PRIx64
			", logoff %#" PRIx64 ", info2off %#" PRIx64
			", nextoff %#" PRIx64 ", %" PRIu64 " bytes available)",
			a, off, what, data, map, log, info2, next, space);
	return 0;
}

/* Signature, checksum, version, then counts and offsets. */
int xmem__btt_info_check(const struct btt_info *ib, unsigned a, uint64_t off,
			 uint64_t space, uint16_t want_major)
{
	uint64_t sum;
	uint16_t maj = le16(ib->version_major), min = le16(ib->version_minor);
	int rc;

	if (memcmp(ib->sig, BTT_SIG, BTT_SIG_LEN) != 0)
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": bad signature",
			       a, off);
	sum = xmem__fletcher64(ib, sizeof(*ib),
			       offsetof(struct btt_info, checksum));
	if (sum != le64(ib->checksum))
		return IB_FAIL("BTT arena %u info block at offset %#" PRIx64
			       ": checksum %#" PRIx64 ", computed %#" PRIx64,
			       a, off, le64(ib->checksum), sum);
	if (!((maj == 1 && min == 1) || (maj == 2 && min == 0)) ||
	    (want_major && maj != want_major))
		return xmem__err(XMEM_E_VERSION,
				 "BTT arena %u info block at offset %#" PRIx64
				 ": version %u.%u not supported here",
				 a, off, maj, min);
	rc = info_counts_check(ib, a, off);
	if (rc == 0)
		rc = info_offsets_check(ib, a, off, space);
	return rc;
}

/* An all-zero flog slot: padding, or a slot never written. */
static int ent_is_padding(const struct btt_flog_ent *e)
{
	return !e->lba && !e->old_map && !e->new_map && !e->seq;
}

/* The kernel's log_set_indices: the slots holding entries must be the
 * same pair in every group, (0, 1) or (0, 2). */
int xmem__btt_flog_slots(const struct btt_flog_group *flog, uint32_t nfree,
			 unsigned a, uint64_t logoff, uint32_t idx[2])
{
	int found[2] = { -1, -1 }, nfound = 0, initial = 1;

	for (uint32_t i = 0; i < nfree; i++) {
		int pads = 0;

		for (int j = 0; j < 4; j++) {
			const struct btt_flog_ent *e = &flog[i].ent[j];

			if (ent_is_padding(e)) {
				pads++;
				if (nfound == 2 && j == found[0])
					goto bad;
				continue;
			}
			if (nfound < 2 && j != found[0]) {
				found[nfound++] = j;
				continue;
			}
			if (j != found[0] && j != found[1])
				goto bad;
		}
		if (pads < 3)
			initial = 0;
		continue;
	bad:
		return IB_FAIL("BTT arena %u flog group %u at offset %#" PRIx64
			       ": entries in unexpected slots",
			       a, i, logoff + (uint64_t)i * 64);
	}
	if (initial)
		found[1] = 1;
	if (found[0] != 0 || (found[1] != 1 && found[1] != 2))
		return IB_FAIL("BTT arena %u flog at offset %#" PRIx64
			       ": unknown slot scheme (%d, %d)",
			       a, logoff, found[0], found[1]);
	idx[0] = 0;
	idx[1] = (uint32_t)found[1];
	return 0;
}

/* Sequence numbers run 1, 2, 3, 1: the newer of a pair is the one
 * that follows the other; 0 marks an unused slot. */
int xmem__btt_flog_newest(const struct btt_flog_ent *e0,
			  const struct btt_flog_ent *e1, int *newp)
{
	uint32_t s0 = le32(e0->seq), s1 = le32(e1->seq);

	if (s0 > 3 || s1 > 3 || s0 == s1)
		return XMEM_E_CORRUPT;
	if (s0 == 0 || s1 == 0) {
		*newp = s0 == 0;
		return 0;
	}
	*newp = btt_seq_next(s0) == s1;
	return 0;
}

/* v1.1 at 4 KiB first (the kernel's choice without a claim class),
 * then v2.0 at 0. */
int xmem__btt_probe(const uint8_t *base, uint64_t len, uint64_t *btt_off,
		    uint16_t *major)
{
	if (len >= BTT_V11_OFFSET + BTT_INFO_SIZE &&
	    memcmp(base + BTT_V11_OFFSET, BTT_SIG, BTT_SIG_LEN) == 0) {
		*btt_off = BTT_V11_OFFSET;
		*major = 1;
		return 0;
	}
	if (len >= BTT_INFO_SIZE && memcmp(base, BTT_SIG, BTT_SIG_LEN) == 0) {
		*btt_off = 0;
		*major = 2;
		return 0;
	}
	return xmem__err(XMEM_E_NOREGION,
			 "no BTT info block at namespace offset 4096 (v1.1) "
			 "or 0 (v2.0)");
}

/* The geometry of one arena of `size` bytes, as the kernel's alloc_arena
 * computes it. */
static void arena_geometry(struct btt_info *ib, uint64_t size, uint32_t lbasize)
{
	uint64_t avail = align_down(size, BTT_PG) - 2 * BTT_PG;
	uint64_t logsz = align_up(BTT_NFREE * BTT_FLOG_GROUP_SIZE, BTT_PG);
	uint32_t in = (uint32_t)align_up(lbasize, BTT_INT_LBA_ALIGN);
	uint64_t mapsz, datasz;

	avail -= logsz;
	ib->internal_lbasize = le32(in);
	ib->external_lbasize = le32(lbasize);
	ib->nfree = le32(BTT_NFREE);
	ib->internal_nlba =
		le32((uint32_t)((avail - BTT_PG) / (in + BTT_MAP_ENT_SIZE)));
	ib->external_nlba = le32(le32(ib->internal_nlba) - BTT_NFREE);
	mapsz = align_up((uint64_t)le32(ib->external_nlba) * BTT_MAP_ENT_SIZE,
			 BTT_PG);
	datasz = avail - mapsz;
	ib->dataoff = le64(BTT_PG);
	ib->mapoff = le64(BTT_PG + datasz);
	ib->logoff = le64(BTT_PG + datasz + mapsz);
	ib->info2off = le64(BTT_PG + datasz + mapsz + logsz);
	ib->infosize = le32(BTT_INFO_SIZE);
}

/* Writes one arena's map (all zero-flagged identity entries, reading as
 * zeroes) and its initial flog; made durable by the caller's fence. */
static void arena_init(uint8_t *a, const struct btt_info *ib,
		       const struct xmem_persist_ops *ops)
{
	uint32_t *map = (uint32_t *)(a + le64(ib->mapoff));
	struct btt_flog_group *flog =
		(struct btt_flog_group *)(a + le64(ib->logoff));
	uint32_t ext = le32(ib->external_nlba);

	for (uint32_t i = 0; i < ext; i++)
		map[i] = le32(BTT_MAP_Z | i);
	ops->flush(map, (size_t)ext * BTT_MAP_ENT_SIZE);
	ops->memset(flog, 0, le64(ib->info2off) - le64(ib->logoff),
		    XMEM_F_MEM_NODRAIN);
	for (uint32_t i = 0; i < BTT_NFREE; i++) {
		flog[i].ent[0].lba = le32(i);
		flog[i].ent[0].old_map = le32(ext + i);
		flog[i].ent[0].new_map = le32(ext + i);
		flog[i].ent[0].seq = le32(BTT_SEQ_INIT);
	}
	ops->flush(flog, BTT_NFREE * sizeof(*flog));
}

/* Checks the format options and where the BTT will start. */
static int format_opts_check(const struct xmem_blk_format_opts *o, uint64_t len,
			     uint64_t *btt_off, uint32_t *lbasize)
{
	uint16_t maj = o && o->version_major ? o->version_major : 1;
	uint16_t min = o && o->version_major ? o->version_minor : 1;

	*lbasize = o && o->lbasize ? o->lbasize : 4096;
	if (!lbasize_ok(*lbasize))
		return xmem__err(-EINVAL,
				 "BTT format: sector size %u not supported "
				 "(512, 520, 528, 4096, 4104, 4160, 4224)",
				 *lbasize);
	if (!((maj == 1 && min == 1) || (maj == 2 && min == 0)))
		return xmem__err(-EINVAL,
				 "BTT format: version %u.%u not supported "
				 "(1.1 or 2.0)",
				 maj, min);
	*btt_off = maj == 1 ? BTT_V11_OFFSET : 0;
	if (len < *btt_off + BTT_ARENA_MIN)
		return xmem__err(-EINVAL,
				 "BTT format: namespace of %" PRIu64
				 " bytes is smaller than %" PRIu64,
				 len, (uint64_t)(*btt_off + BTT_ARENA_MIN));
	return 0;
}

/* Fills the fields every arena's info block shares. */
static int info_template(struct btt_info *ib,
			 const struct xmem_blk_format_opts *o)
{
	static const uint8_t zero[16];

	memset(ib, 0, sizeof(*ib));
	memcpy(ib->sig, BTT_SIG, BTT_SIG_LEN);
	ib->version_major = le16(o && o->version_major ? o->version_major : 1);
	ib->version_minor = le16(o && o->version_major ? o->version_minor : 1);
	if (o && memcmp(o->uuid, zero, 16) != 0) {
		memcpy(ib->uuid, o->uuid, 16);
	} else {
		if (getrandom(ib->uuid, 16, 0) != 16)
			return xmem__err(-EIO, "BTT format: no random uuid");
		ib->uuid[6] = (ib->uuid[6] & 0x0f) | 0x40;
		ib->uuid[8] = (ib->uuid[8] & 0x3f) | 0x80;
	}
	if (o)
		memcpy(ib->parent_uuid, o->parent_uuid, 16);
	return 0;
}

/* Invalidates an older BTT before its map is rewritten. */
static void old_btt_wipe(uint8_t *base, uint64_t len,
			 const struct xmem_persist_ops *ops)
{
	/* The signature line of both possible first info blocks: one line
	 * each, so a crash leaves the old BTT whole or none. */
	ops->memset(base, 0, XMEM_CACHELINE, XMEM_F_MEM_NODRAIN);
	if (len >= BTT_V11_OFFSET + BTT_INFO_SIZE)
		ops->memset(base + BTT_V11_OFFSET, 0, XMEM_CACHELINE,
			    XMEM_F_MEM_NODRAIN);
	/* The old primaries are gone before their backups go: a crash in
	 * between leaves no BTT, never a BTT with a damaged backup. */
	ops->drain();
	/* Then the backups, so that no stale copy of an older BTT invites a
	 * restore after an interrupted format. */
	for (int v11 = 0; v11 < 2; v11++)
		if (xmem__btt_backup_off(len, v11))
			ops->memset(base + xmem__btt_backup_off(len, v11), 0,
				    XMEM_CACHELINE, XMEM_F_MEM_NODRAIN);
	ops->drain();
}

struct arena_plan {
	uint64_t off;
	struct btt_info ib;
};

/* Cuts [btt_off, len) into arenas as the kernel's create_arenas does and
 * writes each one's map and flog; *planp is malloc'ed. */
static int arenas_lay_out(uint8_t *base, uint64_t len, uint64_t btt_off,
			  const struct btt_info *tmpl, uint32_t lbasize,
			  const struct xmem_persist_ops *ops,
			  struct arena_plan **planp, unsigned *np)
{
	uint64_t remaining = len - btt_off, cur = btt_off;
	struct arena_plan *ar = NULL;
	unsigned n = 0;

	while (remaining >= BTT_ARENA_MIN) {
		uint64_t sz = MIN(xmem__btt_arena_max, remaining);
		void *p = realloc(ar, (n + 1) * sizeof(*ar));

		if (!p) {
			free(ar);
			return xmem__err(-ENOMEM, "BTT format: out of memory");
		}
		ar = p;
		remaining -= sz;
		ar[n].off = cur;
		ar[n].ib = *tmpl;
		arena_geometry(&ar[n].ib, sz, lbasize);
		ar[n].ib.nextoff = le64(remaining >= BTT_ARENA_MIN ? sz : 0);
		ar[n].ib.checksum = le64(
			xmem__fletcher64(&ar[n].ib, BTT_INFO_SIZE,
					 offsetof(struct btt_info, checksum)));
		arena_init(base + cur, &ar[n].ib, ops);
		cur += sz;
		n++;
	}
	*planp = ar;
	*np = n;
	return 0;
}

/* Wipe the old BTT, lay out the arenas, then commit the info blocks.
 * O(nlba) for the map, independent of the data area. */
XMEM_EXPORT int xmem_blk_format_mem(void *addr, uint64_t len,
				    const struct xmem_persist_ops *ops,
				    const struct xmem_blk_format_opts *opts)
{
	uint8_t *base = addr;
	struct arena_plan *ar = NULL;
	struct btt_info ib;
	uint64_t btt_off = 0;
	uint32_t lbasize;
	unsigned n = 0;
	int rc;

	if (!addr || !ops)
		return xmem__err(-EINVAL, "BTT format: no namespace");
	rc = format_opts_check(opts, len, &btt_off, &lbasize);
	if (rc == 0)
		rc = info_template(&ib, opts);
	if (rc)
		return rc;
	old_btt_wipe(base, len, ops);
	rc = arenas_lay_out(base, len, btt_off, &ib, lbasize, ops, &ar, &n);
	if (rc)
		return rc;
	/* Map and flog of every arena durable before any info block. */
	ops->drain();
	/* Info blocks last arena first, so arena 0's is the commit point. */
	for (unsigned i = n; i-- > 0;) {
		uint8_t *a = base + ar[i].off;
		const uint8_t *src = (const uint8_t *)&ar[i].ib;

		ops->memcpy(a + le64(ar[i].ib.info2off), src, BTT_INFO_SIZE,
			    XMEM_F_MEM_NODRAIN);
		ops->memcpy(a + XMEM_CACHELINE, src + XMEM_CACHELINE,
			    BTT_INFO_SIZE - XMEM_CACHELINE, XMEM_F_MEM_NODRAIN);
		/* The info block minus its signature line is durable before
		 * the signature line makes it a valid info block. */
		ops->drain();
		ops->memcpy(a, src, XMEM_CACHELINE, XMEM_F_MEM_NODRAIN);
		/* This arena is complete before the arena in front of it,
		 * whose info block makes it reachable. */
		ops->drain();
	}
	free(ar);
	return 0;
}
