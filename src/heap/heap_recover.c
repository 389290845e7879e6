/* SPDX-License-Identifier: MIT */
/*
 * heap_recover.c - recovery on open: replays committed redo records and
 * rolls back unfinished transactions, in sequence order.
 *
 * Cost: O(lanes x (ring size + undo log size)); nothing here depends on
 * the number of objects in the heap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"
#include "heap/heap_recover.h"

/* Validates the record at `pos` of a ring (its entries too unless
 * hdr_only); returns its length or 0. */
static size_t rec_check(const uint8_t *ring, uint32_t pos, uint32_t epoch,
			uint64_t prev_seq, int hdr_only,
			const struct heap_rec_hdr **out)
{
	const struct heap_rec_hdr *rh = (const void *)(ring + pos);
	size_t len;

	if (pos + sizeof(*rh) > HEAP_RING_SIZE)
		return 0;
	if (le32(rh->magic) != HEAP_REC_MAGIC || rh->epoch != epoch ||
	    xmem__csum_struct(rh, sizeof(*rh),
			      offsetof(struct heap_rec_hdr, hcsum)) !=
		    rh->hcsum)
		return 0;
	len = sizeof(*rh) + align_up(rh->nbytes, 64);
	if (rh->seq <= prev_seq || len > HEAP_RING_SIZE - pos ||
	    rh->kind < HEAP_REC_OP || rh->kind > HEAP_REC_ABORT)
		return 0;
	if (!hdr_only && xmem__crc32c(0, rh + 1, rh->nbytes) != rh->pcsum)
		return 0;
	*out = rh;
	return len;
}

/* Validates a record header and its entries. */
static size_t rec_valid(const uint8_t *ring, uint32_t pos, uint32_t epoch,
			uint64_t prev_seq, const struct heap_rec_hdr **out)
{
	return rec_check(ring, pos, epoch, prev_seq, 0, out);
}

/* Steps over the retired records (seq <= C) at a ring's start: only
 * their headers are needed. Sets *pos past them and *prev to the seq a
 * live record must exceed. */
static void skip_retired(const uint8_t *ring, uint32_t epoch, uint64_t c,
			 uint32_t *pos, uint64_t *prev)
{
	const struct heap_rec_hdr *rh;
	size_t len;

	*pos = 0;
	*prev = 0;
	while ((len = rec_check(ring, *pos, epoch, *prev, 1, &rh)) &&
	       rh->seq <= c) {
		*prev = rh->seq;
		*pos += (uint32_t)len;
	}
	*prev = MAX(*prev, c);
}

/* Records past a ring's end are left from earlier passes, all retired
 * (a lane restarts its ring only once C covers it): a valid record newer
 * than C there means the walk was cut by damage (say, a retired
 * record's header), not by a crash. O(ring size / 64). */
static int live_past_end(const uint8_t *ring, unsigned lane, uint32_t end,
			 uint32_t epoch, uint64_t c)
{
	const struct heap_rec_hdr *rh;

	for (uint32_t p = end + 64; p + 64 <= HEAP_RING_SIZE; p += 64)
		if (rec_valid(ring, p, epoch, c, &rh))
			return xmem__err(XMEM_E_CORRUPT,
					 "heap: lane %u redo log is cut at "
					 "ring offset %u by damage: record seq "
					 "%llu at offset %u is live but "
					 "unreachable (run 'xmem heap check "
					 "--repair')",
					 lane, end, (unsigned long long)rh->seq,
					 p);
	return 0;
}

/*
 * Calls fn for each valid record of lane `lane` with seq > C. A lane's
 * ring holds the records written since it last restarted at offset 0,
 * in increasing seq; a checkpoint may retire the first of them while
 * the lane goes on appending (it ran while the lane had a record or a
 * transaction in flight), so retired records (seq <= C, their headers
 * intact) are stepped over, not taken for the end. The ring ends at the
 * first record that is invalid or not newer than the one before it
 * (what is left of an earlier pass); *endp (when not NULL) gets the ring
 * offset where the walk stopped: the ring's end, or the record fn
 * refused.
 */
int xmem__heap_ring_walk(const uint8_t *base, unsigned lane, uint32_t epoch,
			 uint64_t c, heap_rec_fn fn, void *arg,
			 uint64_t *tail_seq, uint32_t *endp)
{
	const uint8_t *ring =
		base + HEAP_LANES_OFF + (uint64_t)lane * HEAP_LANE_SIZE;
	const struct heap_rec_hdr *rh;
	uint64_t prev = 0;
	uint32_t pos = 0;
	size_t len;
	int rc = 0;

	if (tail_seq)
		*tail_seq = 0;
	skip_retired(ring, epoch, c, &pos, &prev);
	while ((len = rec_valid(ring, pos, epoch, prev, &rh))) {
		if ((rc = fn(rh, lane, pos, arg)))
			break;
		prev = rh->seq;
		pos += (uint32_t)len;
	}
	if (endp)
		*endp = pos;
	if (rc)
		return rc;
	/* A torn record can only be the last one: an intact header with
	 * damaged entries followed by a valid record is damage. */
	rh = (const void *)(ring + pos);
	if (pos + sizeof(*rh) <= HEAP_RING_SIZE &&
	    le32(rh->magic) == HEAP_REC_MAGIC && rh->epoch == epoch &&
	    rh->seq > prev && rh->nbytes <= HEAP_RING_SIZE &&
	    xmem__csum_struct(rh, sizeof(*rh),
			      offsetof(struct heap_rec_hdr, hcsum)) ==
		    rh->hcsum) {
		uint64_t nxt = pos + sizeof(*rh) + align_up(rh->nbytes, 64);
		const struct heap_rec_hdr *n2;

		/* a torn last record took a seq: C must pass it */
		if (tail_seq)
			*tail_seq = rh->seq;

		if (nxt < HEAP_RING_SIZE &&
		    rec_valid(ring, (uint32_t)nxt, epoch, rh->seq, &n2))
			return xmem__err(XMEM_E_CORRUPT,
					 "heap: lane %u redo record seq %llu "
					 "at ring offset %u is damaged "
					 "(run 'xmem heap check --repair')",
					 lane, (unsigned long long)rh->seq,
					 pos);
	}
	return live_past_end(ring, lane, pos, epoch, c);
}

/* Validates one undo entry header of segment [seg, seg+seglen). */
static int undo_valid(const uint8_t *base, uint64_t size, uint64_t data_off,
		      const uint8_t *e, uint64_t left, uint32_t epoch,
		      uint64_t txid)
{
	const struct heap_undo_hdr *u = (const void *)e;
	uint32_t crc;
	struct heap_undo_hdr tmp;

	if (left < sizeof(*u) || le32(u->magic) != HEAP_UNDO_MAGIC ||
	    u->epoch != epoch || (txid && u->txid != txid) || !u->txid)
		return 0;
	if (u->kind == HEAP_UNDO_RANGE) {
		if (u->len > left - sizeof(*u) ||
		    align_up(u->len, 64) > left - sizeof(*u) ||
		    !range_fits(u->off, u->len, size) || u->off < data_off)
			return 0;
	} else if (u->kind == HEAP_UNDO_LINK) {
		if (!range_fits(u->off, u->len, size) || u->off < data_off ||
		    u->len < 128 || (u->off & 63))
			return 0;
	} else if (u->kind != HEAP_UNDO_END) {
		return 0;
	}
	tmp = *u;
	tmp.csum = 0;
	crc = xmem__crc32c(0, &tmp, sizeof(tmp));
	if (u->kind == HEAP_UNDO_RANGE)
		crc = xmem__crc32c(crc, e + sizeof(*u), u->len);
	(void)base;
	return crc == u->csum;
}

/*
 * Calls fn for each snapshot of the lane's last transaction if its id is
 * above C; *txid_out gets the id (0 if none). Follows LINK entries; a
 * loop of links is cut after 1<<20 segments.
 */
int xmem__heap_undo_walk(const uint8_t *base, uint64_t size,
			 const struct heap_header *hd, unsigned lane,
			 uint64_t c, heap_undo_fn fn, void *arg,
			 uint64_t *txid_out)
{
	const uint8_t *seg = base + HEAP_LANES_OFF +
			     (uint64_t)lane * HEAP_LANE_SIZE + HEAP_RING_SIZE;
	uint64_t seglen = HEAP_UNDO_SIZE, pos = 0, txid = 0;
	unsigned hops = 0;
	int rc;

	*txid_out = 0;
	for (;;) {
		const struct heap_undo_hdr *u = (const void *)(seg + pos);

		if (!undo_valid(base, size, hd->data_off, seg + pos,
				seglen - pos, hd->epoch, txid))
			break;
		if (!txid) {
			if (u->txid <= c)
				break;
			txid = u->txid;
			*txid_out = txid;
		}
		if (u->kind == HEAP_UNDO_END)
			break;
		if (u->kind == HEAP_UNDO_LINK) {
			if (++hops > (1u << 20))
				break;
			seg = base + u->off;
			seglen = u->len;
			pos = 0;
			continue;
		}
		if ((rc = fn(u, (const uint8_t *)(u + 1), arg)))
			return rc;
		pos += sizeof(*u) + align_up(u->len, 64);
	}
	return 0;
}

/*
 * Looks for damage in the lane's undo area: an entry carrying the magic,
 * epoch and id of the live transaction whose checksum fails while an
 * intact entry of the same transaction follows it (a torn append can
 * only be the last). Returns 1 with *pos and *txid set, else 0.
 */
int xmem__heap_undo_damaged(const uint8_t *base, uint64_t size,
			    const struct heap_header *hd, unsigned lane,
			    uint64_t c, uint64_t *pos_out, uint64_t *txid_out)
{
	const uint8_t *seg = base + HEAP_LANES_OFF +
			     (uint64_t)lane * HEAP_LANE_SIZE + HEAP_RING_SIZE;
	const struct heap_undo_hdr *u = (const void *)seg;
	uint64_t txid = u->txid, pos = 0;

	if (le32(u->magic) != HEAP_UNDO_MAGIC || u->epoch != hd->epoch ||
	    txid <= c)
		return 0;
	while (pos + 64 <= HEAP_UNDO_SIZE) {
		u = (const void *)(seg + pos);
		if (le32(u->magic) != HEAP_UNDO_MAGIC || u->txid != txid ||
		    u->epoch != hd->epoch || u->kind != HEAP_UNDO_RANGE ||
		    u->len > HEAP_UNDO_SIZE)
			return 0;
		uint64_t nxt = pos + 64 + align_up(u->len, 64);
		if (!undo_valid(base, size, hd->data_off, seg + pos,
				HEAP_UNDO_SIZE - pos, hd->epoch, txid)) {
			if (nxt + 64 > HEAP_UNDO_SIZE ||
			    !undo_valid(base, size, hd->data_off, seg + nxt,
					HEAP_UNDO_SIZE - nxt, hd->epoch, txid))
				return 0;
			*pos_out = pos;
			*txid_out = txid;
			return 1;
		}
		pos = nxt;
	}
	return 0;
}

struct action {
	uint64_t seq;
	int rollback;
	unsigned lane;
	const struct heap_rec_hdr *rh;
	/* the record's entries, once validated (owned: a segment's copy) */
	const uint8_t *e;
	size_t n;
	void *owned;
};

struct collect {
	struct action *a;
	size_t n, cap;
	uint64_t maxseq;
	uint64_t done_tx[HEAP_NLANES]; /* COMMIT/ABORT txids per lane */
	size_t ndone[HEAP_NLANES];
};

/* Adds an action to the list. */
static int push(struct collect *c, struct action a)
{
	if (xmem__vec_grow((void **)&c->a, &c->cap, c->n + 1, sizeof(*c->a)))
		return -ENOMEM;
	c->a[c->n++] = a;
	if (a.seq > c->maxseq)
		c->maxseq = a.seq;
	return 0;
}

/* heap_rec_fn collecting a lane's records. */
static int collect_rec(const struct heap_rec_hdr *rh, unsigned lane,
		       uint32_t pos, void *arg)
{
	struct collect *c = arg;
	struct action a = { .seq = rh->seq, .lane = lane, .rh = rh };

	(void)pos;
	if (rh->kind != HEAP_REC_OP && rh->txid)
		c->done_tx[lane] = rh->txid; /* a lane runs one tx at a time */
	return push(c, a);
}

/* heap_undo_fn that does nothing: used to find a lane's txid. */
static int undo_none(const struct heap_undo_hdr *u, const uint8_t *d, void *arg)
{
	(void)u;
	(void)d;
	(void)arg;
	return 0;
}

/* One snapshot to restore, as the undo walk validated it: offset and
 * length are copied out of the log, since restoring a later snapshot may
 * overwrite an earlier entry's header on the device. */
struct undo_ref {
	uint64_t off, len;
	const uint8_t *data;
};

struct rollback {
	struct xmem_heap *h;
	struct undo_ref *e;
	size_t n, cap;
};

/* heap_undo_fn gathering a transaction's snapshots. */
static int undo_gather(const struct heap_undo_hdr *u, const uint8_t *d,
		       void *arg)
{
	struct rollback *r = arg;

	if (xmem__vec_grow((void **)&r->e, &r->cap, r->n + 1, sizeof(*r->e)))
		return -ENOMEM;
	r->e[r->n++] =
		(struct undo_ref){ u->off, u->len, (const uint8_t *)(u + 1) };
	(void)d;
	return 0;
}

/* Restores a transaction's snapshots, latest first. A snapshot may lie
 * over the log itself (crafted media), so the copy is a memmove. */
static int roll_back(struct xmem_heap *h, unsigned lane, uint64_t c)
{
	struct rollback r = { h, NULL, 0, 0 };
	uint64_t txid;
	int rc;

	rc = xmem__heap_undo_walk(h->base, h->size, &h->hdr, lane, c,
				  undo_gather, &r, &txid);
	for (size_t i = r.n; !rc && i-- > 0;) {
		memmove(h->base + r.e[i].off, r.e[i].data, r.e[i].len);
		xmem__heap_flush(h, h->base + r.e[i].off, r.e[i].len);
	}
	free(r.e);
	return rc;
}

/* Orders actions by sequence number. */
static int cmp_action(const void *a, const void *b)
{
	const struct action *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Walks a record's entries e[0..nbytes) (validated): flushes what the DATA
 * entries (data != 0) or all other entries (data == 0) write, if flush; returns
 * the number of DATA entries.
 */
static size_t rec_scan(struct xmem_heap *h, const uint8_t *e, size_t nbytes,
		       int data, int flush)
{
	size_t pos = 0, ndata = 0;

	while (pos + 16 <= nbytes) {
		uint64_t w[2];
		int is_data;

		memcpy(w, e + pos, 16);
		is_data = w[0] >> 56 == HEAP_REDO_DATA;
		ndata += (size_t)is_data;
		if (flush && is_data == !!data)
			xmem__heap_flush(h,
					 h->base + (w[0] & HEAP_REDO_OFF_MASK),
					 heap_ent_span(w[0], w[1]));
		pos += heap_ent_len(w[0], w[1]);
	}
	return ndata;
}

/*
 * Finds (rec_entries) and validates the entries of every record, once,
 * before anything is applied: O(live records + their entries).
 */
static int check_records(struct xmem_heap *h, struct action *a, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (a[i].rollback)
			continue;
		if ((rc = xmem__heap_rec_entries(h->base, h->size, &h->hdr,
						 a[i].rh, &a[i].e, &a[i].n,
						 &a[i].owned)))
			return rc;
		if (xmem__heap_redo_apply(h->base, h->size, &h->hdr, a[i].e,
					  a[i].n, HEAP_APPLY_CHECK))
			return xmem__err(XMEM_E_CORRUPT,
					 "heap: redo record seq %llu has an "
					 "entry that is malformed or writes "
					 "outside what its kind may change "
					 "(run 'xmem heap check --repair')",
					 (unsigned long long)a[i].rh->seq);
	}
	return 0;
}

/* Replays one record (but its DATA entries), flushing what it touched. */
static void replay(struct xmem_heap *h, const struct action *a)
{
	xmem__heap_redo_apply(h->base, h->size, &h->hdr, a->e, a->n,
			      HEAP_APPLY_ALL);
	rec_scan(h, a->e, a->n, 0, 1);
}

/*
 * Writes back the DATA entries of the records whose lane's done word is
 * below their seq (the contents may not have reached the media), flushes
 * them and fences, before any other entry is replayed: a crash during
 * recovery then finds none or all of them durable. O(live records).
 */
static int replay_data(struct xmem_heap *h, const struct action *a, size_t n)
{
	uint64_t done[HEAP_NLANES];
	uint32_t known = 0;
	int any = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned lane = a[i].lane;

		if (a[i].rollback || !rec_scan(h, a[i].e, a[i].n, 1, 0))
			continue;
		if (!(known & (1u << lane))) {
			if (xmem__heap_done_read(h->base, h->hdr.epoch, lane,
						 &done[lane]))
				return xmem__err(
					XMEM_E_CORRUPT,
					"heap: lane %u done word at offset "
					"%u is damaged (run 'xmem heap check "
					"--repair')",
					lane, HEAP_DONE_OFF + lane * 64);
			known |= 1u << lane;
		}
		if (done[lane] < a[i].seq) {
			xmem__heap_redo_apply(h->base, h->size, &h->hdr, a[i].e,
					      a[i].n, HEAP_APPLY_DATA);
			rec_scan(h, a[i].e, a[i].n, 1, 1);
			any = 1;
		}
	}
	if (any) /* contents durable before any other entry is replayed */
		xmem__heap_fence(h, &h->lanes[0]);
	return 0;
}

/*
 * Runs recovery: collects every lane's live records and its unfinished
 * transaction, applies them in sequence order, then moves the checkpoint
 * past all of them. Sets h->next_seq.
 */
int xmem__heap_recover(struct xmem_heap *h)
{
	struct collect col;
	uint64_t c;
	unsigned bad;
	int rc;

	if ((rc = xmem__heap_ckpt_read(h->base, h->hdr.epoch, &c, &bad)))
		return rc;
	memset(&col, 0, sizeof(col));
	col.maxseq = c;
	for (unsigned i = 0; i < HEAP_NLANES && !rc; i++) {
		uint64_t tail;

		rc = xmem__heap_ring_walk(h->base, i, h->hdr.epoch, c,
					  collect_rec, &col, &tail, NULL);
		col.maxseq = MAX(col.maxseq, tail);
	}
	for (unsigned i = 0; i < HEAP_NLANES && !rc; i++) {
		uint64_t txid, dpos;

		if (xmem__heap_undo_damaged(h->base, h->size, &h->hdr, i, c,
					    &dpos, &txid) &&
		    txid != col.done_tx[i]) {
			rc = xmem__err(XMEM_E_CORRUPT,
				       "heap: lane %u undo entry at offset "
				       "%llu of transaction %llu is damaged "
				       "(run 'xmem heap check --repair')",
				       i, (unsigned long long)dpos,
				       (unsigned long long)txid);
			break;
		}

		rc = xmem__heap_undo_walk(h->base, h->size, &h->hdr, i, c,
					  undo_none, NULL, &txid);
		if (!rc && txid && col.done_tx[i] != txid)
			rc = push(&col, (struct action){ .seq = txid,
							 .rollback = 1,
							 .lane = i });
		else if (!rc && txid > col.maxseq)
			col.maxseq = txid;
	}
	if (rc) {
		free(col.a);
		return rc == -ENOMEM
			       ? xmem__err(rc, "heap: recovery: no memory")
			       : rc;
	}
	if (col.n)
		qsort(col.a, col.n, sizeof(*col.a), cmp_action);
	if (!(rc = check_records(h, col.a, col.n)))
		rc = replay_data(h, col.a, col.n);
	for (size_t i = 0; i < col.n && !rc; i++) {
		if (col.a[i].rollback)
			rc = roll_back(h, col.a[i].lane, c);
		else
			replay(h, &col.a[i]);
	}
	h->recovered = col.n;
	for (size_t i = 0; i < col.n; i++)
		free(col.a[i].owned);
	free(col.a);
	if (rc)
		return rc;
	if (col.maxseq > c || bad) {
		/* Everything replayed must be durable before C retires it
		 * (a copy torn by a crash is rewritten here too). */
		xmem__heap_fence(h, &h->lanes[0]);
		xmem__heap_ckpt_write(h, &h->lanes[0], col.maxseq);
	}
	atomic_store(&h->ckpt_seq, col.maxseq);
	atomic_store(&h->next_seq, col.maxseq + 1);
	return 0;
}
