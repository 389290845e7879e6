/* SPDX-License-Identifier: MIT */
/*
 * check.c - xmem_region_check: report every problem of the metadata and,
 * when asked, restore a damaged superblock or label index from its good
 * copy. Labels have no second copy: a bad label in use is reported, never
 * guessed at. Cost: one full validation, O(S/8 + n log n), plus a second
 * one after a repair.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "region_int.h"

/* Tells fn what a repair did. */
static void said(xmem_check_fn fn, void *arg, const char *structure,
		 uint64_t off, const char *what)
{
	struct xmem_check_problem p = { 0 };

	if (!fn)
		return;
	p.structure = structure;
	p.offset = off;
	p.what = what;
	p.repaired = 1;
	p.note = 1;
	fn(&p, arg);
}

/* Rewrites a bad or differing superblock copy from the good one. */
static int repair_sb(struct xmem_region *reg, const struct xmem__region_scan *s,
		     xmem_check_fn fn, void *arg)
{
	uint8_t block[4096] = { 0 };
	int bad, rc;
	char what[80];

	if (s->sb_used < 0)
		return 0;
	if (s->sb_ok[0] && s->sb_ok[1] &&
	    !memcmp(reg->base + XMEM_SB_OFF(0), reg->base + XMEM_SB_OFF(1),
		    sizeof(struct xmem_sb_layout)))
		return 0;
	bad = !s->sb_used;
	memcpy(block, &s->sb, sizeof(s->sb));
	/* the repaired copy is durable before check reports it */
	rc = xmem__meta_write(reg, XMEM_SB_OFF(bad), block, sizeof(block));
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "rewritten from superblock %d",
		 s->sb_used);
	said(fn, arg, bad ? "superblock 1" : "superblock 0", XMEM_SB_OFF(bad),
	     what);
	return 1;
}

/* Rewrites the inactive index block from the active one when it is
 * invalid or lists other slots (at rest both hold the same bitmap). */
static int repair_index(struct xmem_region *reg,
			const struct xmem__region_scan *s, xmem_check_fn fn,
			void *arg)
{
	struct xmem_index_layout ix;
	int bad = !s->active;
	uint64_t seq;
	int rc;
	char what[120], name[24];

	if (s->active < 0 || (s->idx_ok[bad] && !s->inactive_bad &&
			      !memcmp(s->idx[bad].used, s->idx[s->active].used,
				      sizeof(s->idx[bad].used))))
		return 0;
	ix = s->idx[s->active];
	seq = le64(ix.seq);
	ix.seq = le64(seq ? seq - 1 : seq + 1);
	ix.csum = 0;
	ix.csum = le32(xmem__csum_struct(
		&ix, sizeof(ix), offsetof(struct xmem_index_layout, csum)));
	/* the repaired block is durable before check reports it */
	rc = xmem__meta_write(reg, XMEM_INDEX_OFF(bad), &ix, sizeof(ix));
	if (rc)
		return rc;
	snprintf(what, sizeof(what),
		 "rewritten from label index %d (sequence %" PRIu64 ")",
		 s->active, le64(ix.seq));
	snprintf(name, sizeof(name), "label index %d", bad);
	said(fn, arg, name, XMEM_INDEX_OFF(bad), what);
	return 1;
}

/* Scans (and with XMEM_F_REPAIR repairs) with the region locked. */
static int check_locked(struct xmem_region *reg, unsigned flags,
			xmem_check_fn fn, void *arg, unsigned *np)
{
	struct xmem__region_scan s;
	uint64_t dsize = xmem_device_size(reg->dev);
	int rc, fixed = 0;

	rc = xmem__region_scan(reg->base, reg->maplen, dsize, &s, fn, arg);
	*np = s.nproblems;
	if (rc == -ENOMEM || rc == XMEM_E_NOREGION || rc == XMEM_E_VERSION) {
		xmem__region_scan_free(&s);
		return rc == -ENOMEM
			       ? xmem__err(rc, "out of memory")
			       : xmem__err(rc, "region on '%s': %s",
					   xmem_device_path(reg->dev), s.msg);
	}
	if (flags & XMEM_F_REPAIR) {
		int r1 = repair_sb(reg, &s, fn, arg);
		int r2 = r1 < 0 ? 0 : repair_index(reg, &s, fn, arg);

		if (r1 < 0 || r2 < 0) {
			xmem__region_scan_free(&s);
			return r1 < 0 ? r1 : r2;
		}
		fixed = r1 + r2;
	}
	if (fixed) {
		xmem__region_scan_free(&s);
		rc = xmem__region_scan(reg->base, reg->maplen, dsize, &s, NULL,
				       NULL);
	}
	if (rc == 0 && s.nproblems)
		rc = XMEM_E_CORRUPT; /* a non-fatal problem remains */
	if (rc == XMEM_E_CORRUPT)
		rc = xmem__err(
			rc, "region on '%s': %s%s", xmem_device_path(reg->dev),
			s.msg[0] ? s.msg : "problems remain",
			(flags & XMEM_F_REPAIR) ? "" : " (try --repair)");
	xmem__region_scan_free(&s);
	return rc;
}

XMEM_EXPORT int xmem_region_check(struct xmem_device *dev, unsigned flags,
				  xmem_check_fn fn, void *arg,
				  unsigned *nproblems)
{
	int repair = !!(flags & XMEM_F_REPAIR);
	struct xmem_region *reg;
	unsigned n = 0;
	int rc;

	rc = xmem__region_new(dev, &reg);
	if (rc)
		return rc;
	if (repair && reg->rdonly) {
		rc = xmem__err(-EROFS,
			       "device '%s' is open read-only: cannot "
			       "repair",
			       xmem_device_path(dev));
	} else {
		rc = xmem__region_lock(reg, repair);
		if (rc == 0) {
			rc = check_locked(reg, flags, fn, arg, &n);
			xmem__region_unlock(reg);
		}
	}
	xmem_region_close(&reg);
	if (nproblems)
		*nproblems = n;
	return rc;
}
