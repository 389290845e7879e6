/* SPDX-License-Identifier: MIT */
/*
 * heap_check.c - validation of all heap metadata, and explicit repair.
 *
 * Cost: O(lanes x (ring + undo area) + chunks x HEAP_META_SIZE): every
 * header copy, every log record, every chunk header, every run bitmap
 * word and its mirror are read once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"
#include "heap/heap_recover.h"

struct ck {
	uint8_t *base;
	uint64_t size;
	const struct heap_header *hd;
	const struct xmem_persist_ops *ops;
	int repair;
	xmem_check_fn fn;
	void *arg;
	unsigned nproblems, unrepaired;
	uint64_t done_tx[HEAP_NLANES]; /* last COMMIT/ABORT txid per lane */
	uint64_t *skip; /* bitmap words pending records will change */
	size_t nskip, capskip;
};

/* Reports one problem; `fixed` says whether repair changed it. */
static void report(struct ck *k, const char *structure, uint64_t off, int fixed,
		   int fatal, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void report(struct ck *k, const char *structure, uint64_t off, int fixed,
		   int fatal, const char *fmt, ...)
{
	struct xmem_check_problem p;
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	p.structure = structure;
	p.offset = off;
	p.what = what;
	p.repaired = fixed;
	p.fatal = fatal;
	k->nproblems++;
	if (!fixed)
		k->unrepaired++;
	if (k->fn)
		k->fn(&p, k->arg);
}

/* Writes bytes durably (repair only). */
static void put(struct ck *k, uint64_t off, const void *src, size_t len)
{
	memcpy(k->base + off, src, len);
	k->ops->persist(k->base + off, len);
}

/* heap_rec_fn keeping the highest sequence number. */
static int max_rec(const struct heap_rec_hdr *rh, unsigned lane, uint32_t pos,
		   void *arg)
{
	uint64_t *m = arg;

	(void)lane;
	(void)pos;
	*m = MAX(*m, rh->seq);
	return 0;
}

/* heap_undo_fn that does nothing (the walk reports the txid). */
static int no_undo(const struct heap_undo_hdr *u, const uint8_t *d, void *arg)
{
	(void)u;
	(void)d;
	(void)arg;
	return 0;
}

/* The highest sequence number or transaction id in any lane's log. */
static uint64_t max_log_seq(struct ck *k)
{
	uint64_t m = 0, tail, txid;

	for (unsigned i = 0; i < HEAP_NLANES; i++) {
		xmem__heap_ring_walk(k->base, i, k->hd->epoch, 0, max_rec, &m,
				     &tail, NULL);
		xmem__heap_undo_walk(k->base, k->size, k->hd, i, 0, no_undo,
				     NULL, &txid);
		m = MAX(m, MAX(tail, txid));
	}
	return m;
}

/* Writes both checkpoint copies with C = c (repair). */
static void put_ckpt(struct ck *k, unsigned which, uint64_t c)
{
	struct heap_ckpt ck;

	xmem__heap_ckpt_make(&ck, c, k->hd->epoch);
	if (which & 1)
		put(k, HEAP_CKPT_OFF, &ck, sizeof(ck));
	if (which & 2)
		put(k, HEAP_CKPT_B_OFF, &ck, sizeof(ck));
}

/*
 * Checks the two checkpoint copies; *c gets C. One damaged copy is
 * rewritten from the other on repair. With both damaged the logs cannot
 * be read (which records are live is unknown): repair sets C to the
 * highest sequence number in the logs, retiring every record without
 * replay. Returns -1 if C is unknown.
 */
static int check_ckpt(struct ck *k, uint64_t *c)
{
	static const uint64_t off[2] = { HEAP_CKPT_OFF, HEAP_CKPT_B_OFF };
	unsigned bad;

	if (!xmem__heap_ckpt_read(k->base, k->hd->epoch, c, &bad)) {
		for (unsigned i = 0; i < 2; i++) {
			if (!(bad & (1u << i)))
				continue;
			if (k->repair)
				put_ckpt(k, 1u << i, *c);
			report(k, i ? "checkpoint (copy B)" : "checkpoint",
			       off[i], k->repair, 0,
			       "checksum mismatch (damaged, or torn by a "
			       "crash); the other copy holds C=%llu%s",
			       (unsigned long long)*c,
			       k->repair ? "; rewritten from it" : "");
		}
		return 0;
	}
	if (!k->repair) {
		report(k, "checkpoint", HEAP_CKPT_OFF, 0, 1,
		       "both copies (offsets %u and %u) are damaged: which "
		       "log records are live is unknown",
		       HEAP_CKPT_OFF, HEAP_CKPT_B_OFF);
		return -1;
	}
	*c = max_log_seq(k);
	put_ckpt(k, 3, *c);
	report(k, "checkpoint", HEAP_CKPT_OFF, 1, 0,
	       "both copies (offsets %u and %u) were damaged; rebuilt with "
	       "C=%llu, the highest sequence number in the logs: pending "
	       "records are retired without replay",
	       HEAP_CKPT_OFF, HEAP_CKPT_B_OFF, (unsigned long long)*c);
	return 0;
}

/* Checks both header copies; restores a damaged one from the other.
 * Returns 0 if a usable header is at offset 0 afterwards. */
static int check_headers(struct ck *k)
{
	struct heap_header p, b;
	char pw[160], bw[160];
	int pv, bv;

	memcpy(&p, k->base + HEAP_HDR_OFF, sizeof(p));
	memcpy(&b, k->base + HEAP_HDR_BACKUP_OFF, sizeof(b));
	pv = xmem__heap_header_valid(&p, k->size, pw, sizeof(pw));
	bv = xmem__heap_header_valid(&b, k->size, bw, sizeof(bw));
	if (pv && bv) {
		report(k, "heap header", HEAP_HDR_OFF, 0, 1,
		       "both copies damaged: primary: %s; backup: %s", pw, bw);
		return -1;
	}
	if (pv) {
		if (k->repair)
			put(k, HEAP_HDR_OFF, &b, sizeof(b));
		report(k, "heap header (primary)", HEAP_HDR_OFF, k->repair,
		       !k->repair, "%s%s", pw,
		       k->repair ? "; restored from the backup copy" : "");
		return k->repair ? 0 : -1;
	}
	if (bv || memcmp(&p, &b, sizeof(p))) {
		if (k->repair)
			put(k, HEAP_HDR_BACKUP_OFF, &p, sizeof(p));
		report(k, "heap header (backup)", HEAP_HDR_BACKUP_OFF,
		       k->repair, 0, "%s%s",
		       bv ? bw : "differs from the primary",
		       k->repair ? "; rewritten from the primary" : "");
	}
	return 0;
}

/* Remembers the bitmap words a pending record will change. */
static void note_pending(struct ck *k, const uint8_t *e, size_t nbytes)
{

	for (size_t pos = 0; pos + 16 <= nbytes;) {
		uint64_t w0, w1;
		unsigned op;

		memcpy(&w0, e + pos, 8);
		memcpy(&w1, e + pos + 8, 8);
		op = w0 >> 56;
		if ((heap_op_bits(op) || op == HEAP_REDO_ZERO ||
		     op == HEAP_REDO_SET) &&
		    k->nskip < 4096) {
			if (xmem__vec_grow((void **)&k->skip, &k->capskip,
					   k->nskip + 1, sizeof(*k->skip)))
				return;
			k->skip[k->nskip++] = w0 & HEAP_REDO_OFF_MASK;
		}
		pos += heap_ent_len(w0, w1);
	}
}

struct ring_ck {
	struct ck *k;
	unsigned *pending;
	uint32_t end;  /* ring offset where the walk stopped */
	int bad_entry; /* an intact record has a malformed entry (1), or
			  names a bad segment (2) */
};

/* heap_rec_fn: validates a pending record's entries. */
static int ring_rec(const struct heap_rec_hdr *rh, unsigned lane, uint32_t pos,
		    void *arg)
{
	struct ring_ck *r = arg;
	const uint8_t *e;
	void *owned;
	size_t n;

	(void)pos;
	if (xmem__heap_rec_entries(r->k->base, r->k->size, r->k->hd, rh, &e, &n,
				   &owned)) {
		r->bad_entry = 2;
		return XMEM_E_CORRUPT;
	}
	if (xmem__heap_redo_apply(r->k->base, r->k->size, r->k->hd, e, n,
				  HEAP_APPLY_CHECK)) {
		free(owned);
		r->bad_entry = 1;
		return XMEM_E_CORRUPT;
	}
	(*r->pending)++;
	if (rh->kind != HEAP_REC_OP && rh->txid)
		r->k->done_tx[lane] = rh->txid;
	note_pending(r->k, e, n);
	free(owned);
	return 0;
}

/* Discards (repair) the ring record at `end` and every later one that
 * is newer than C: the lane's log is cut there. */
static void discard_from(struct ck *k, uint64_t roff, uint32_t end, uint64_t c)
{
	uint32_t zero = 0;

	put(k, roff + end, &zero, 4);
	for (uint32_t p = end + 64; p + 64 <= HEAP_RING_SIZE; p += 64) {
		struct heap_rec_hdr *rh = (void *)(k->base + roff + p);

		if (le32(rh->magic) == HEAP_REC_MAGIC &&
		    rh->epoch == k->hd->epoch && rh->seq > c &&
		    xmem__csum_struct(rh, sizeof(*rh),
				      offsetof(struct heap_rec_hdr, hcsum)) ==
			    rh->hcsum)
			put(k, roff + p, &zero, 4);
	}
}

/* Checks a lane's ring: records above C must be intact; a damaged one
 * (not the torn tail) is reported and, with repair, discarded. */
static void check_ring(struct ck *k, unsigned lane, uint64_t c,
		       unsigned *pending)
{
	uint64_t roff = HEAP_LANES_OFF + (uint64_t)lane * HEAP_LANE_SIZE;
	struct ring_ck r = { k, pending, 0, 0 };
	char st[64];
	int rc;

	rc = xmem__heap_ring_walk(k->base, lane, k->hd->epoch, c, ring_rec, &r,
				  NULL, &r.end);
	if (!rc)
		return;
	snprintf(st, sizeof(st), "lane %u redo log", lane);
	struct heap_rec_hdr *rh = (void *)(k->base + roff + r.end);
	uint64_t seq = rh->seq;
	if (k->repair)
		discard_from(k, roff, r.end, c);
	report(k, st, roff + r.end, k->repair, 0,
	       "record seq %llu at ring offset %u: %s%s",
	       (unsigned long long)seq, r.end,
	       r.bad_entry == 2 ? "the segment holding its entries is out "
				  "of bounds or fails its checksum"
	       : r.bad_entry	? "an entry is malformed or writes outside "
				  "what its kind may change"
				: "damaged (checksum), and live records "
				  "follow it",
	       k->repair ? "; record discarded (its operation and the "
			   "lane's later records are lost)"
			 : "");
}

/* Checks the undo area of a lane for a damaged snapshot entry. */
static void check_undo(struct ck *k, unsigned lane, uint64_t c,
		       unsigned *pending)
{
	uint64_t uoff = HEAP_LANES_OFF + (uint64_t)lane * HEAP_LANE_SIZE +
			HEAP_RING_SIZE;
	uint64_t pos, txid;
	char st[64];

	(void)pending;
	if (!xmem__heap_undo_damaged(k->base, k->size, k->hd, lane, c, &pos,
				     &txid) ||
	    txid == k->done_tx[lane])
		return;
	snprintf(st, sizeof(st), "lane %u undo log", lane);
	if (k->repair) {
		uint32_t zero = 0;
		put(k, uoff + pos, &zero, 4);
	}
	report(k, st, uoff + pos, k->repair, 0,
	       "snapshot entry at offset %llu of transaction %llu is "
	       "damaged; the transaction cannot be fully rolled back%s",
	       (unsigned long long)pos, (unsigned long long)txid,
	       k->repair ? "; entry discarded, the snapshots before it "
			   "will be restored"
			 : "");
}

/* Checks a lane's done word (see heap_layout.h): damage is reported;
 * repair clears it, so recovery writes the pending records' DATA back. */
static void check_done(struct ck *k, unsigned lane)
{
	uint64_t seq, off = HEAP_DONE_OFF + (uint64_t)lane * 64, zero = 0;
	char st[64];

	if (!xmem__heap_done_read(k->base, k->hd->epoch, lane, &seq))
		return;
	snprintf(st, sizeof(st), "lane %u done word", lane);
	if (k->repair)
		put(k, off, &zero, 8);
	report(k, st, off, k->repair, 0,
	       "damaged (its tag does not match the heap)%s",
	       k->repair ? "; cleared: recovery writes the contents carried "
			   "by the lane's pending records back in place, "
			   "undoing later changes to those objects"
			 : "");
}

/* 1 if a pending record will change the word at off. */
static int skipped(const struct ck *k, uint64_t off)
{
	for (size_t i = 0; i < k->nskip; i++)
		if (k->skip[i] == off)
			return 1;
	return 0;
}

/* Checks a run's bitmap against its mirror and its slot count. */
static void check_run(struct ck *k, uint64_t c, unsigned cls, uint64_t *live)
{
	uint64_t moff = k->hd->meta_off + c * HEAP_META_SIZE;
	uint32_t nslots = HEAP_CHUNK_SIZE / xmem__heap_class_size[cls];
	char st[64];

	snprintf(st, sizeof(st), "chunk %llu run bitmap",
		 (unsigned long long)c);
	for (unsigned w = 0; w < HEAP_BITMAP_WORDS; w++) {
		uint64_t b, m;
		memcpy(&b, k->base + moff + HEAP_BM_OFF(w), 8);
		memcpy(&m, k->base + moff + HEAP_MIRROR_OFF(w), 8);
		uint64_t lim = nslots > w * 64 ? nslots - w * 64 : 0;
		uint64_t beyond = lim >= 64 ? 0 : ~0ull << lim;
		uint64_t woff = moff + HEAP_BM_OFF(w);

		if (b != m && !skipped(k, woff)) {
			uint64_t u = (b | m) & ~beyond;
			if (k->repair) {
				put(k, woff, &u, 8);
				put(k, moff + HEAP_MIRROR_OFF(w), &u, 8);
			}
			report(k, st, woff, k->repair, 0,
			       "word %u: bitmap %#llx and mirror %#llx differ"
			       "%s",
			       w, (unsigned long long)b, (unsigned long long)m,
			       k->repair ? "; both set to their union (slots "
					   "kept allocated, none dangling)"
					 : "");
			b = m = u;
		}
		if ((b | m) & beyond) {
			uint64_t u = b & ~beyond;
			if (k->repair) {
				put(k, woff, &u, 8);
				put(k, moff + HEAP_MIRROR_OFF(w), &u, 8);
			}
			report(k, st, woff, k->repair, 0,
			       "word %u: bits set past the run's %u slots%s", w,
			       nslots, k->repair ? "; cleared" : "");
			b = u;
		}
		*live += (uint64_t)__builtin_popcountll(b & ~beyond);
	}
}

/* Writes a quarantine header on chunk c (repair). */
static void quarantine(struct ck *k, uint64_t c)
{
	struct heap_chunk_hdr ch;

	memset(&ch, 0, sizeof(ch));
	ch.kind = HEAP_CHUNK_QUARANTINE;
	ch.epoch = k->hd->epoch;
	ch.csum = xmem__heap_chunk_csum(&ch);
	put(k, k->hd->meta_off + c * HEAP_META_SIZE, &ch, sizeof(ch));
}

/* Walks the chunk headers: validity, extents in bounds, no overlap. */
static void check_chunks(struct ck *k, uint64_t *live)
{
	uint64_t n = k->hd->nchunks;
	char st[64];

	for (uint64_t c = 0; c < n;) {
		uint64_t moff = k->hd->meta_off + c * HEAP_META_SIZE;
		struct heap_chunk_hdr *ch = (void *)(k->base + moff);
		int v = xmem__heap_chunk_hdr_valid(ch, k->hd->epoch);

		snprintf(st, sizeof(st), "chunk %llu header",
			 (unsigned long long)c);
		if (v < 0) {
			unsigned kind = ch->kind;
			if (k->repair)
				quarantine(k, c);
			report(k, st, moff, k->repair, 0,
			       "checksum or fields invalid (kind %u)%s", kind,
			       k->repair ? "; chunk quarantined" : "");
			c++;
			continue;
		}
		if (!v || ch->kind != HEAP_CHUNK_EXTENT) {
			if (v && ch->kind == HEAP_CHUNK_RUN)
				check_run(k, c, ch->cls, live);
			c++;
			continue;
		}
		uint64_t len = ch->nchunks, stop = len;
		if (len > n - c)
			stop = n - c;
		for (uint64_t i = 1; i < stop; i++) {
			struct heap_chunk_hdr *o =
				(void *)(k->base + moff + i * HEAP_META_SIZE);
			if (xmem__heap_chunk_hdr_valid(o, k->hd->epoch) &&
			    o->kind != HEAP_CHUNK_FREE) {
				stop = i;
				break;
			}
		}
		if (stop != len) {
			if (k->repair) {
				struct heap_chunk_hdr t = *ch;
				t.nchunks = (uint32_t)stop;
				t.csum = xmem__heap_chunk_csum(&t);
				put(k, moff, &t, sizeof(t));
			}
			report(k, st, moff, k->repair, 0,
			       "extent of %llu chunks %s at chunk %llu%s",
			       (unsigned long long)len,
			       stop < n - c ? "overlaps the allocation"
					    : "runs past the heap end",
			       (unsigned long long)(c + stop),
			       k->repair ? "; extent truncated there" : "");
		}
		(*live)++;
		c += stop;
	}
}

/* The root reference must be 0 or name a live object. */
static void check_root(struct ck *k, struct xmem_heap *h)
{
	struct heap_root *r = (void *)(k->base + HEAP_ROOT_OFF);
	uint64_t sz;
	uint32_t ty, cls;

	if (!r->oid || !xmem__heap_lookup(h, r->oid, &sz, &ty, &cls))
		return;
	report(k, "root line", HEAP_ROOT_OFF, 0, 0,
	       "root reference %#llx does not name a live object",
	       (unsigned long long)r->oid);
}

/* Checks (and with XMEM_F_REPAIR repairs) the heap in [base, base+size). */
int xmem__heap_check_mem(uint8_t *base, uint64_t size, unsigned flags,
			 const struct xmem_persist_ops *ops, xmem_check_fn fn,
			 void *arg, unsigned *nproblems)
{
	struct ck k = { .base = base,
			.size = size,
			.ops = ops,
			.repair = !!(flags & XMEM_F_REPAIR),
			.fn = fn,
			.arg = arg };
	struct heap_header hd;
	struct xmem_heap fake;
	unsigned pending = 0;
	uint64_t live = 0, c;

	if (size < HEAP_MIN_SIZE) {
		report(&k, "heap", 0, 0, 1, "mapping too small for a heap");
		goto out;
	}
	if (check_headers(&k))
		goto out;
	memcpy(&hd, base, sizeof(hd));
	k.hd = &hd;
	if (!check_ckpt(&k, &c))
		for (unsigned i = 0; i < HEAP_NLANES; i++) {
			check_ring(&k, i, c, &pending);
			check_undo(&k, i, c, &pending);
			check_done(&k, i);
		}
	if (pending && k.repair) {
		struct xmem_heap *h;
		if (!xmem__heap_open_mem(base, size, ops, 0, &h)) {
			xmem__heap_close_mem(h); /* recovery applied them */
			k.nskip = 0;
		}
	}
	check_chunks(&k, &live);
	memset(&fake, 0, sizeof(fake));
	fake.base = base;
	fake.size = size;
	fake.hdr = hd;
	fake.nchunks = hd.nchunks;
	check_root(&k, &fake);
out:
	free(k.skip);
	if (nproblems)
		*nproblems = k.nproblems;
	return k.unrepaired ? xmem__err(XMEM_E_CORRUPT,
					"heap: %u problem(s) found, %u not "
					"repaired",
					k.nproblems, k.unrepaired)
			    : 0;
}

/*
 * Checks the volatile state of every loaded run of the open heap h
 * against itself and the media (no thread may change the heap
 * meanwhile; chunk_lock held): its free count must match its slot map;
 * every slot the persistent bitmap marks live must be taken in it (else
 * the slot could be handed out again); and, with no transaction open,
 * every slot taken without its bit must be a free not yet released (in
 * a lane's queue), else the slot is lost until the heap is opened again.
 * O(chunks + loaded runs x bitmap words + queued frees).
 */
static void check_runs(struct ck *k, struct xmem_heap *h)
{
	uint32_t *queued = h->nchunks ? calloc(h->nchunks, 4) : NULL;
	int exact = queued != NULL;

	for (unsigned i = 0; i < HEAP_NLANES && queued; i++) {
		const struct heap_lane *l = &h->lanes[i];

		if (l->tx.depth)
			exact = 0;
		for (size_t d = l->hdefer; d < l->ndefer; d++)
			if (!l->defer[d].nchunks &&
			    l->defer[d].off >= h->hdr.data_off)
				queued[MIN(
					(l->defer[d].off - h->hdr.data_off) >>
						HEAP_CHUNK_SHIFT,
					h->nchunks - 1)]++;
	}
	for (uint64_t c = 0; h->chunks && c < h->nchunks; c++) {
		struct heap_run *r = atomic_load(&h->chunks[c].run);
		const uint8_t *meta = h->base + heap_meta_off(h, c);
		uint64_t zeros = 0, lost = 0, extra = 0;

		if (!r)
			continue;
		for (unsigned w = 0; w < HEAP_BITMAP_WORDS; w++) {
			uint64_t t = atomic_load(&r->taken[w]);
			uint64_t b = __atomic_load_n(
				(const uint64_t *)(meta + HEAP_BM_OFF(w)),
				__ATOMIC_RELAXED);
			uint64_t lim =
				r->nslots > w * 64 ? r->nslots - w * 64 : 0;

			zeros += (uint64_t)(64 - __builtin_popcountll(t));
			lost += (uint64_t)__builtin_popcountll(b & ~t);
			if (lim < 64) /* slots past the run's end */
				t &= ~(~0ull << lim);
			extra += (uint64_t)__builtin_popcountll(t & ~b);
		}
		if (zeros != atomic_load(&r->nfree))
			report(k, "run state", heap_meta_off(h, c), 0, 0,
			       "chunk %llu: free count %u, but %llu slots "
			       "are free in its slot map",
			       (unsigned long long)c, atomic_load(&r->nfree),
			       (unsigned long long)zeros);
		if (lost)
			report(k, "run state", heap_meta_off(h, c), 0, 0,
			       "chunk %llu: %llu live slots are free in its "
			       "slot map",
			       (unsigned long long)c, (unsigned long long)lost);
		if (exact && extra != queued[c])
			report(k, "run state", heap_meta_off(h, c), 0, 0,
			       "chunk %llu: %llu slots taken without their "
			       "bit, but %u frees of it wait for release",
			       (unsigned long long)c, (unsigned long long)extra,
			       queued[c]);
	}
	free(queued);
}

XMEM_EXPORT int xmem_heap_check(struct xmem_heap *h, unsigned flags,
				xmem_check_fn fn, void *arg,
				unsigned *nproblems)
{
	if (!h)
		return xmem__err(-EINVAL, "heap: NULL heap");
	if (flags & XMEM_F_REPAIR)
		return xmem__err(-EBUSY, "heap: repair needs the heap closed "
					 "(use xmem_heap_check_map)");
	struct ck k = { .fn = fn, .arg = arg };
	unsigned n = 0;
	int rc = xmem__heap_check_mem(h->base, h->size, 0, h->ops, fn, arg, &n);

	/* and the open heap's own view of its runs */
	pthread_mutex_lock(&h->chunk_lock);
	check_runs(&k, h);
	pthread_mutex_unlock(&h->chunk_lock);
	if (xmem__shadow_violations(h)) /* -Dheap_shadow=true only */
		report(&k, "durability shadow", 0, 0, 0,
		       "a checkpoint retired a record before a line it "
		       "changed was flushed");
	if (nproblems)
		*nproblems = n + k.nproblems;
	if (k.nproblems && !rc)
		rc = xmem__err(XMEM_E_CORRUPT,
			       "heap: %u run state problem(s) in the open "
			       "heap",
			       k.nproblems);
	return rc;
}

XMEM_EXPORT int xmem_heap_check_map(struct xmem_map *m, unsigned flags,
				    xmem_check_fn fn, void *arg,
				    unsigned *nproblems)
{
	if (!m)
		return xmem__err(-EINVAL, "heap: NULL map");
	return xmem__heap_check_mem(xmem_map_addr(m), xmem_map_size(m), flags,
				    xmem_map_ops(m), fn, arg, nproblems);
}
