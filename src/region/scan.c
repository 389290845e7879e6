/* SPDX-License-Identifier: MIT */
/*
 * scan.c - validation of region metadata: the parser that open, check and
 * the fuzz target share. It only reads; every structure is bounds-checked
 * against the mapped length before it is looked at.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "region_int.h"

struct scan_ctx {
	struct xmem__region_scan *s;
	xmem_check_fn fn;
	void *arg;
	int repairable; /* the problems reported now have a good copy */
};

/* Reports one problem; the first fatal one becomes s->msg. */
static void report(struct scan_ctx *c, const char *structure, uint64_t off,
		   int fatal, int note, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void report(struct scan_ctx *c, const char *structure, uint64_t off,
		   int fatal, int note, const char *fmt, ...)
{
	struct xmem_check_problem p = { 0 };
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (fatal && c->s->status == 0) {
		c->s->status = XMEM_E_CORRUPT;
		snprintf(c->s->msg, sizeof(c->s->msg),
			 "%s at offset %" PRIu64 ": %s", structure, off, what);
		c->s->repairable = c->repairable;
	}
	if (!note)
		c->s->nproblems++;
	if (c->fn) {
		p.structure = structure;
		p.offset = off;
		p.what = what;
		p.fatal = fatal;
		p.note = note;
		c->fn(&p, c->arg);
	}
}

/* 0 if the 16-byte uuid is all zero. */
static int uuid_nonzero(const uint8_t *u)
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return 1;
	return 0;
}

/* The superblock's identity: magic, checksum, version, size, flags and
 * uuid. 0, XMEM_E_VERSION or XMEM_E_CORRUPT with the reason in why. */
static int sb_check_header(const struct xmem_sb_layout *sb, char *why,
			   size_t len)
{
	uint32_t sum;

	if (memcmp(sb->magic, XMEM_SB_MAGIC, 8))
		return snprintf(why, len, "bad magic"), XMEM_E_CORRUPT;
	sum = xmem__csum_struct(sb, sizeof(*sb),
				offsetof(struct xmem_sb_layout, csum));
	if (le32(sb->csum) != sum)
		return snprintf(why, len,
				"bad checksum (stored 0x%08x, computed 0x%08x)",
				le32(sb->csum), sum),
		       XMEM_E_CORRUPT;
	if (le32(sb->version) != XMEM_REGION_LAYOUT_VERSION)
		return snprintf(why, len, "unsupported layout version %u",
				le32(sb->version)),
		       XMEM_E_VERSION;
	if (le32(sb->sb_size) != sizeof(*sb) || le32(sb->flags) != 0 ||
	    !uuid_nonzero(sb->uuid))
		return snprintf(why, len, "bad size, flags or uuid"),
		       XMEM_E_CORRUPT;
	return 0;
}

/* The geometry a superblock records: label area, alignment, data area
 * and region size against the device. 0 or XMEM_E_CORRUPT. */
static int sb_check_geometry(const struct xmem_sb_layout *sb, uint64_t dev_size,
			     char *why, size_t len)
{
	uint64_t a = le64(sb->dev_align), d = le64(sb->data_off);
	uint64_t dsize = le64(sb->data_size), end = le64(sb->region_size);

	if (le64(sb->index_off[0]) != XMEM_INDEX_OFF(0) ||
	    le64(sb->index_off[1]) != XMEM_INDEX_OFF(1) ||
	    le32(sb->index_size) != sizeof(struct xmem_index_layout) ||
	    le32(sb->slot_count) != XMEM_LABEL_SLOTS ||
	    le64(sb->slots_off) != XMEM_SLOTS_OFF ||
	    le32(sb->slot_size) != XMEM_LABEL_SIZE)
		return snprintf(why, len,
				"label area geometry is not the "
				"version 1 layout"),
		       XMEM_E_CORRUPT;
	if (!is_pow2(a) || a < XMEM_ALIGN_4K || a > XMEM_ALIGN_1G)
		return snprintf(why, len, "bad device alignment %" PRIu64, a),
		       XMEM_E_CORRUPT;
	if (d < XMEM_REGION_DATA_OFFSET || d % XMEM_REGION_DATA_OFFSET ||
	    d % a || !dsize || dsize % a || dsize % XMEM_ALIGN_4K ||
	    !range_fits(d, dsize, end))
		return snprintf(why, len,
				"bad data area %" PRIu64 "+%" PRIu64
				" in a region of %" PRIu64 " bytes",
				d, dsize, end),
		       XMEM_E_CORRUPT;
	if (end > dev_size)
		return snprintf(why, len,
				"region size %" PRIu64 " exceeds the device "
				"size %" PRIu64 " (device truncated?)",
				end, dev_size),
		       XMEM_E_CORRUPT;
	return 0;
}

/* Validates superblock copy i; 0, XMEM_E_VERSION or XMEM_E_CORRUPT. */
static int sb_validate(const uint8_t *base, uint64_t maplen, uint64_t dev_size,
		       int i, struct xmem_sb_layout *sb, char *why, size_t len)
{
	uint64_t off = XMEM_SB_OFF(i);
	int rc;

	if (!range_fits(off, sizeof(*sb), maplen))
		return snprintf(why, len,
				"truncated: device holds %" PRIu64 " bytes",
				dev_size),
		       XMEM_E_CORRUPT;
	memcpy(sb, base + off, sizeof(*sb));
	rc = sb_check_header(sb, why, len);
	return rc ? rc : sb_check_geometry(sb, dev_size, why, len);
}

int xmem__index_validate(const uint8_t *base, uint64_t maplen,
			 const struct xmem_sb_layout *sb, int i,
			 struct xmem_index_layout *ix, char *why, size_t len)
{
	uint64_t off = XMEM_INDEX_OFF(i);
	uint32_t sum, pop = 0;

	if (!range_fits(off, sizeof(*ix), maplen))
		return snprintf(why, len, "truncated"), XMEM_E_CORRUPT;
	memcpy(ix, base + off, sizeof(*ix));
	if (memcmp(ix->magic, XMEM_INDEX_MAGIC, 8))
		return snprintf(why, len, "bad magic"), XMEM_E_CORRUPT;
	sum = xmem__csum_struct(ix, sizeof(*ix),
				offsetof(struct xmem_index_layout, csum));
	if (le32(ix->csum) != sum)
		return snprintf(why, len,
				"bad checksum (stored 0x%08x, computed 0x%08x)",
				le32(ix->csum), sum),
		       XMEM_E_CORRUPT;
	if (le32(ix->version) != XMEM_REGION_LAYOUT_VERSION)
		return snprintf(why, len, "unsupported layout version %u",
				le32(ix->version)),
		       XMEM_E_CORRUPT;
	if ((le64(ix->seq) & 1) != (uint64_t)i)
		return snprintf(why, len,
				"sequence number %" PRIu64 " belongs to "
				"the other block",
				le64(ix->seq)),
		       XMEM_E_CORRUPT;
	if (memcmp(ix->uuid, sb->uuid, 16))
		return snprintf(why, len, "belongs to another region (uuid)"),
		       XMEM_E_CORRUPT;
	if (le32(ix->slot_count) != le32(sb->slot_count))
		return snprintf(why, len, "slot count %u, superblock says %u",
				le32(ix->slot_count), le32(sb->slot_count)),
		       XMEM_E_CORRUPT;
	for (size_t b = 0; b < sizeof(ix->used); b++)
		pop += (uint32_t)__builtin_popcount(ix->used[b]);
	if (pop != le32(ix->nused))
		return snprintf(why, len, "%u slots marked, count says %u", pop,
				le32(ix->nused)),
		       XMEM_E_CORRUPT;
	return 0;
}

int xmem__range_name_check(const char *name, char *why, size_t len)
{
	size_t n = strnlen(name, XMEM_RANGE_NAME_MAX + 1);

	if (n == 0 || n > XMEM_RANGE_NAME_MAX)
		return snprintf(why, len, "name must be 1 to %d bytes",
				XMEM_RANGE_NAME_MAX),
		       -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		/* no ':' (the CLI's DEVICE:RANGE separator), '/', blanks
		 * or control bytes */
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("._+@-", ch)))
			return snprintf(why, len,
					"name may hold only letters, digits "
					"and . _ + @ - (byte %zu is 0x%02x)",
					i, (unsigned)(uint8_t)ch),
			       -EINVAL;
	}
	return 0;
}

/* Validates the label in slot `slot` into ri; 0 or a reason in why. */
static int label_validate(const uint8_t *base, uint64_t maplen,
			  const struct xmem_sb_layout *sb, uint32_t slot,
			  struct xmem_range_info *ri, char *why, size_t len)
{
	struct xmem_label_layout l;
	uint64_t off = XMEM_SLOT_OFF(slot), a, dstart, dend;
	uint32_t sum;

	if (!range_fits(off, sizeof(l), maplen))
		return snprintf(why, len, "truncated"), -1;
	memcpy(&l, base + off, sizeof(l));
	if (memcmp(l.magic, XMEM_LABEL_MAGIC, 8))
		return snprintf(why, len, "bad magic"), -1;
	sum = xmem__csum_struct(&l, sizeof(l),
				offsetof(struct xmem_label_layout, csum));
	if (le32(l.csum) != sum)
		return snprintf(why, len,
				"bad checksum (stored 0x%08x, computed 0x%08x)",
				le32(l.csum), sum),
		       -1;
	if (le32(l.version) != XMEM_REGION_LAYOUT_VERSION || le32(l.flags))
		return snprintf(why, len, "bad version or flags"), -1;
	if (memchr(l.name, 0, sizeof(l.name)) == NULL)
		return snprintf(why, len, "name is not terminated"), -1;
	if (xmem__range_name_check(l.name, why, len))
		return -1;
	for (size_t i = strlen(l.name); i < sizeof(l.name); i++)
		if (l.name[i])
			return snprintf(why, len, "junk after the name"), -1;
	a = le64(l.align);
	if (a != XMEM_ALIGN_4K && a != XMEM_ALIGN_2M && a != XMEM_ALIGN_1G)
		return snprintf(why, len, "bad alignment %" PRIu64, a), -1;
	dstart = le64(sb->data_off);
	dend = dstart + le64(sb->data_size);
	if (!le64(l.size) || le64(l.size) % a || le64(l.offset) % a ||
	    le64(l.offset) < dstart ||
	    !range_fits(le64(l.offset), le64(l.size), dend))
		return snprintf(why, len,
				"range '%s' extent %" PRIu64 "+%" PRIu64
				" is misaligned or outside the data area",
				l.name, le64(l.offset), le64(l.size)),
		       -1;
	if (le32(l.mode) > XMEM_RANGE_TIER)
		return snprintf(why, len, "bad mode %u", le32(l.mode)), -1;
	memset(ri, 0, sizeof(*ri));
	memcpy(ri->name, l.name, sizeof(ri->name));
	memcpy(ri->uuid, l.uuid, 16);
	ri->offset = le64(l.offset);
	ri->size = le64(l.size);
	ri->align = a;
	ri->mode = (enum xmem_range_mode)le32(l.mode);
	ri->slot = slot;
	ri->created = le64(l.created);
	return 0;
}

static int cmp_offset(const void *a, const void *b)
{
	const struct xmem_range_info *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_name(const void *a, const void *b)
{
	const struct xmem_range_info *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Overlaps and duplicate names among the sorted ranges. */
static int ranges_cross_check(struct scan_ctx *c)
{
	struct xmem__region_scan *s = c->s;
	const struct xmem_range_info **byname;
	char what[40];

	for (uint32_t i = 1; i < s->n; i++) {
		const struct xmem_range_info *p = &s->ranges[i - 1];
		if (p->offset + p->size > s->ranges[i].offset)
			report(c, "label slot",
			       XMEM_SLOT_OFF(s->ranges[i].slot), 1, 0,
			       "range '%s' overlaps range '%s'",
			       s->ranges[i].name, p->name);
	}
	byname = malloc((s->n ? s->n : 1) * sizeof(*byname));
	if (!byname)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->n; i++)
		byname[i] = &s->ranges[i];
	qsort(byname, s->n, sizeof(*byname), cmp_name);
	for (uint32_t i = 1; i < s->n; i++) {
		if (strcmp(byname[i - 1]->name, byname[i]->name))
			continue;
		snprintf(what, sizeof(what), "label slot %u", byname[i]->slot);
		report(c, what, XMEM_SLOT_OFF(byname[i]->slot), 1, 0,
		       "range name '%s' is used twice", byname[i]->name);
	}
	free(byname);
	return 0;
}

/* Validates every label the active index lists and cross-checks them. */
static int scan_labels(struct scan_ctx *c, const uint8_t *base, uint64_t maplen)
{
	struct xmem__region_scan *s = c->s;
	const struct xmem_index_layout *ix = &s->idx[s->active];
	char why[200], what[40];

	s->ranges = calloc(XMEM_LABEL_SLOTS, sizeof(*s->ranges));
	if (!s->ranges)
		return -ENOMEM;
	for (uint32_t slot = 0; slot < le32(s->sb.slot_count); slot++) {
		if (!(ix->used[slot / 8] & (1u << (slot % 8))))
			continue;
		s->labels_checked++;
		if (label_validate(base, maplen, &s->sb, slot, &s->ranges[s->n],
				   why, sizeof(why))) {
			snprintf(what, sizeof(what), "label slot %u", slot);
			report(c, what, XMEM_SLOT_OFF(slot), 1, 0,
			       "%s (listed by label index %d)", why, s->active);
			continue;
		}
		s->n++;
	}
	qsort(s->ranges, s->n, sizeof(*s->ranges), cmp_offset);
	return ranges_cross_check(c);
}

/*
 * The labels that only a valid inactive index lists (after an interrupted
 * update, the state before it). They are never overwritten while that
 * index is valid, so a bad one is damage (not fatal: the active index does
 * not use it); repair rewrites the inactive index from the active one.
 * Cost: O(S/8) plus the few slots in which the two indexes differ.
 */
static void scan_inactive_labels(struct scan_ctx *c, const uint8_t *base,
				 uint64_t maplen)
{
	struct xmem__region_scan *s = c->s;
	const struct xmem_index_layout *a = &s->idx[s->active];
	const struct xmem_index_layout *o = &s->idx[!s->active];
	struct xmem_range_info ri;
	char why[200], what[40];

	if (!s->idx_ok[!s->active])
		return;
	for (uint32_t slot = 0; slot < le32(s->sb.slot_count); slot++) {
		uint8_t bit = (uint8_t)(1u << (slot % 8));

		if (!(o->used[slot / 8] & bit) || (a->used[slot / 8] & bit))
			continue;
		s->labels_checked++;
		if (!label_validate(base, maplen, &s->sb, slot, &ri, why,
				    sizeof(why)))
			continue;
		s->inactive_bad = 1;
		snprintf(what, sizeof(what), "label slot %u", slot);
		report(c, what, XMEM_SLOT_OFF(slot), 0, 0,
		       "%s (listed only by the inactive label index %d)", why,
		       !s->active);
	}
}

/* Reports the inactive block if it is invalid or lists other ranges than
 * the active one: at rest both hold the current state, so either is
 * damage or the remains of an interrupted update, and --repair copies
 * the active block over it. A note, not a problem: the active block holds
 * the current state, and a crash between the two index writes must leave
 * a region that checks clean. */
static void report_inactive(struct scan_ctx *c, const char *why)
{
	struct xmem__region_scan *s = c->s;
	int i = !s->active;
	char name[24];

	snprintf(name, sizeof(name), "label index %d", i);
	c->repairable = 1;
	if (!s->idx_ok[i])
		report(c, name, XMEM_INDEX_OFF(i), 0, 1,
		       "%s; label index %d holds the current state (an "
		       "interrupted update also leaves this; --repair copies "
		       "it)",
		       why, s->active);
	else if (memcmp(s->idx[i].used, s->idx[s->active].used,
			sizeof(s->idx[i].used)))
		report(c, name, XMEM_INDEX_OFF(i), 0, 1,
		       "lists other label slots than label index %d "
		       "(sequence %" PRIu64 "), which holds the current state "
		       "(an interrupted update also leaves this; --repair "
		       "copies it)",
		       s->active, le64(s->idx[s->active].seq));
	c->repairable = 0;
}

/* Picks the active index block and reports the other if it is not a
 * copy of the active one. */
static void scan_indexes(struct scan_ctx *c, const uint8_t *base,
			 uint64_t maplen)
{
	struct xmem__region_scan *s = c->s;
	char why[2][200], name[24];

	for (int i = 0; i < 2; i++)
		s->idx_ok[i] = !xmem__index_validate(base, maplen, &s->sb, i,
						     &s->idx[i], why[i],
						     sizeof(why[i]));
	s->active = -1;
	if (s->idx_ok[0] && s->idx_ok[1])
		s->active = le64(s->idx[1].seq) > le64(s->idx[0].seq);
	else if (s->idx_ok[0] || s->idx_ok[1])
		s->active = s->idx_ok[1];
	if (s->active >= 0) {
		report_inactive(c, why[!s->active]);
		return;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "label index %d", i);
		report(c, name, XMEM_INDEX_OFF(i), 1, 0, "%s", why[i]);
	}
	s->status = XMEM_E_CORRUPT;
	snprintf(s->msg, sizeof(s->msg),
		 "label index 0 at offset %d and label index 1 at "
		 "offset %d: neither is valid (%s; %s)",
		 (int)XMEM_INDEX_OFF(0), (int)XMEM_INDEX_OFF(1), why[0],
		 why[1]);
}

/* Decides from the two superblock copies; 1 to go on scanning. */
static int scan_superblocks(struct scan_ctx *c, const uint8_t *base,
			    uint64_t maplen, uint64_t dev_size)
{
	struct xmem__region_scan *s = c->s;
	struct xmem_sb_layout sb[2];
	char why[2][200];
	int rc[2];

	for (int i = 0; i < 2; i++) {
		rc[i] = sb_validate(base, maplen, dev_size, i, &sb[i], why[i],
				    sizeof(why[i]));
		s->sb_ok[i] = rc[i] == 0;
	}
	s->sb_magic0 = maplen >= 8 && !memcmp(base, XMEM_SB_MAGIC, 8);
	s->sb_used = s->sb_ok[0] ? 0 : s->sb_ok[1] ? 1 : -1;
	for (int i = 0; i < 2; i++) {
		if (rc[i] == XMEM_E_VERSION && s->sb_used < 0) {
			s->status = XMEM_E_VERSION;
			snprintf(s->msg, sizeof(s->msg),
				 "superblock %d at offset %" PRIu64 ": %s", i,
				 XMEM_SB_OFF(i), why[i]);
			return 0;
		}
	}
	if (s->sb_used < 0) {
		if (s->sb_magic0) {
			report(c, "superblock 0", 0, 1, 0, "%s", why[0]);
			report(c, "superblock 1", XMEM_SB_OFF(1), 1, 0, "%s",
			       why[1]);
		} else {
			s->status = XMEM_E_NOREGION;
			snprintf(s->msg, sizeof(s->msg),
				 "no xmem region: superblock 0 at offset 0: "
				 "%s; superblock 1 at offset 4096: %s",
				 why[0], why[1]);
		}
		return 0;
	}
	s->sb = sb[s->sb_used];
	c->repairable = 1;
	if (s->sb_ok[0] && s->sb_ok[1] && memcmp(&sb[0], &sb[1], sizeof(sb[0])))
		report(c, "superblock 1", XMEM_SB_OFF(1), 1, 0,
		       "differs from superblock 0");
	else if (!s->sb_ok[1])
		report(c, "superblock 1", XMEM_SB_OFF(1), 1, 0, "%s", why[1]);
	c->repairable = 0;
	/* copy 0 bad, copy 1 good: decided once the index is known */
	if (!s->sb_ok[0])
		snprintf(s->sb0_why, sizeof(s->sb0_why), "%s", why[0]);
	return 1;
}

int xmem__region_scan(const uint8_t *base, uint64_t maplen, uint64_t dev_size,
		      struct xmem__region_scan *s, xmem_check_fn fn, void *arg)
{
	struct scan_ctx c = { s, fn, arg, 0 };
	int rc;

	memset(s, 0, sizeof(*s));
	s->active = -1;
	if (!scan_superblocks(&c, base, maplen, dev_size))
		return s->status;
	scan_indexes(&c, base, maplen);
	if (!s->sb_ok[0]) {
		if (s->active >= 0 && le32(s->idx[s->active].nused) == 0 &&
		    s->status == 0) {
			/* An interrupted create or destroy: nothing to lose. */
			s->status = XMEM_E_NOREGION;
			snprintf(s->msg, sizeof(s->msg),
				 "no xmem region: superblock 0 at offset 0: "
				 "%s; superblock 1 and an empty label index "
				 "remain from an interrupted create or destroy",
				 s->sb0_why);
			return s->status;
		}
		c.repairable = 1;
		report(&c, "superblock 0", 0, 1, 0, "%s", s->sb0_why);
		c.repairable = 0;
	}
	if (s->active < 0)
		return s->status;
	rc = scan_labels(&c, base, maplen);
	if (rc < 0)
		return rc;
	scan_inactive_labels(&c, base, maplen);
	return s->status;
}

void xmem__region_scan_free(struct xmem__region_scan *s)
{
	free(s->ranges);
	s->ranges = NULL;
	s->n = 0;
}
