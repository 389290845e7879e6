/* SPDX-License-Identifier: MIT */
/*
 * heap_log.c - redo records: building one, committing it with a single
 * fence, applying it, retiring records by checkpoint. See heap_layout.h
 * for the protocol.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"
#include "persist/nt_store.h"

/* Flushes at the heap's granularity (no ordering). */
void xmem__heap_flush(struct xmem_heap *h, const void *p, size_t len)
{
	if (!len)
		return;
	xmem__shadow_flush(h, (uint64_t)((const uint8_t *)p - h->base), len);
	h->ops->flush(p, len);
}

/* Waits for earlier flushes; counted on the lane for the statistics. */
void xmem__heap_fence(struct xmem_heap *h, struct heap_lane *l)
{
	h->ops->drain();
	if (l)
		l->fences++;
}

/* Grows a vector; out of memory is reported for the log. */
static int grow(void **v, size_t *cap, size_t need, size_t esz)
{
	if (xmem__vec_grow(v, cap, need, esz))
		return xmem__err(-ENOMEM, "heap: out of memory for a log");
	return 0;
}

/* Makes room in the record being built for `nbytes` more bytes of
 * entries touching `nents` more ranges (a large record is then built
 * without its buffers being copied as they grow). */
int xmem__heap_rec_reserve(struct heap_lane *l, size_t nbytes, size_t nents)
{
	int rc;

	if ((rc = grow((void **)&l->rbuf, &l->rcap, l->rlen + nbytes + 24, 1)))
		return rc;
	return grow((void **)&l->pend, &l->cappend, l->npend + nents + 1,
		    sizeof(*l->pend));
}

/* Starts a new record on the lane. */
void xmem__heap_rec_reset(struct heap_lane *l)
{
	l->rlen = 0;
	l->npend = 0;
	l->rdata = 0;
	l->nntw = 0;
	xmem__heap_bits_drop(l);
}

/* Appends a DATA entry with the object's current contents; the commit
 * rewrites them in place with non-temporal stores, so they are durable
 * at its fence (no range for a checkpoint to flush). */
int xmem__heap_rec_add_data(struct xmem_heap *h, struct heap_lane *l,
			    uint64_t off, uint64_t len)
{
	size_t n = heap_ent_len((uint64_t)HEAP_REDO_DATA << 56, len);
	uint64_t w[2] = { (uint64_t)HEAP_REDO_DATA << 56 | off, len };
	int rc;

	if ((rc = xmem__heap_rec_reserve(l, n, 1)) ||
	    (rc = grow((void **)&l->ntw, &l->capntw, l->nntw + 1,
		       sizeof(*l->ntw))))
		return rc;
	l->ntw[l->nntw++] = (struct heap_range){ off, len };
	if (!l->rdata) /* the done word, for the checkpoint to flush */
		l->pend[l->npend++] = (struct heap_range){
			HEAP_DONE_OFF + (uint64_t)l->idx * 64, 8
		};
	memcpy(l->rbuf + l->rlen, w, 16);
	memcpy(l->rbuf + l->rlen + 16, h->base + off, len);
	memset(l->rbuf + l->rlen + 16 + len, 0, n - 16 - len);
	l->rlen += n;
	l->rdata = 1;
	return 0;
}

/* Size in bytes of the entry at p, or 0 if malformed. */
static size_t ent_size(const uint8_t *p, size_t left)
{
	uint64_t w0;
	unsigned op;

	if (left < 16)
		return 0;
	memcpy(&w0, p, 8);
	op = w0 >> 56;
	if (op == HEAP_REDO_CSET)
		return left >= 24 ? 24 : 0;
	if (op == HEAP_REDO_DATA) {
		uint64_t len;

		memcpy(&len, p + 8, 8);
		if (!len || len > HEAP_DATA_MAX || heap_ent_len(w0, len) > left)
			return 0;
		return heap_ent_len(w0, len);
	}
	return (op >= HEAP_REDO_SET && op <= HEAP_REDO_USET) || heap_op_bits(op)
		       ? 16
		       : 0;
}

/* 1 if an entry of kind op may write [off, off+len): allocator entries
 * only the chunk metadata zone, publishing entries only user data (and
 * CSET the root word). Logs are untrusted: nothing else is reachable. */
static int target_ok(const struct heap_header *hd, uint64_t size, unsigned op,
		     uint64_t off, uint64_t len)
{
	if (op == HEAP_REDO_CSET && off == HEAP_ROOT_OFF)
		return 1;
	if (op == HEAP_REDO_CSET || op == HEAP_REDO_USET ||
	    op == HEAP_REDO_DATA)
		return off >= hd->data_off && range_fits(off, len, size);
	return off >= hd->meta_off && range_fits(off, len, hd->data_off);
}

/* Validates one entry (w: its words); 0 or XMEM_E_CORRUPT. */
static int ent_valid(const struct heap_header *hd, uint64_t size,
		     const uint64_t *w)
{
	unsigned op = w[0] >> 56, sz = (w[0] >> 48) & 0xff;
	uint64_t off = w[0] & HEAP_REDO_OFF_MASK;

	if (op == HEAP_REDO_ZERO)
		return target_ok(hd, size, op, off, w[1]) ? 0 : XMEM_E_CORRUPT;
	if (op == HEAP_REDO_DATA)
		return !(off & 7) && target_ok(hd, size, op, off, w[1])
			       ? 0
			       : XMEM_E_CORRUPT;
	if (op == HEAP_REDO_SET && sz == 2)
		return !(off & 1) && target_ok(hd, size, op, off, 2)
			       ? 0
			       : XMEM_E_CORRUPT;
	if (op == HEAP_REDO_OR2 || op == HEAP_REDO_ANDN2) /* both in a line */
		return sz == 8 && !(off & 7) && (off & 63) < 32 &&
				       target_ok(hd, size, op, off, 40)
			       ? 0
			       : XMEM_E_CORRUPT;
	return sz == 8 && !(off & 7) && target_ok(hd, size, op, off, 8)
		       ? 0
		       : XMEM_E_CORRUPT;
}

#define APPLY_PF_MIN 4096u /* records from this size prefetch targets */
#define APPLY_AHEAD 12u	   /* entries (about) prefetched ahead */

/*
 * Applies one entry (its words w; data: a DATA entry's contents) to the
 * heap at base. Inline: the commit's walk of its own record calls it
 * too.
 */
static inline void ent_apply(uint8_t *base, const uint64_t w[3],
			     const uint8_t *data)
{
	uint8_t *p = base + (w[0] & HEAP_REDO_OFF_MASK);
	unsigned op = (unsigned)(w[0] >> 56);

	switch (op) {
	case HEAP_REDO_SET:
		if (((w[0] >> 48) & 0xff) == 2)
			__atomic_store_n((uint16_t *)p, (uint16_t)w[1],
					 __ATOMIC_RELAXED);
		else
			__atomic_store_n((uint64_t *)p, w[1], __ATOMIC_RELAXED);
		break;
	case HEAP_REDO_OR:
	case HEAP_REDO_OR2: /* and the mirror 32 bytes on */
		for (unsigned k = 0; k <= (op == HEAP_REDO_OR2); k++)
			__atomic_fetch_or((uint64_t *)(p + 32 * k), w[1],
					  __ATOMIC_RELAXED);
		break;
	case HEAP_REDO_ANDN:
	case HEAP_REDO_ANDN2:
		for (unsigned k = 0; k <= (op == HEAP_REDO_ANDN2); k++)
			__atomic_fetch_and((uint64_t *)(p + 32 * k), ~w[1],
					   __ATOMIC_RELAXED);
		break;
	case HEAP_REDO_CSET:
		/* the word is the caller's (held or synchronized by the
		 * application): no locked instruction needed */
		if (__atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED) == w[2])
			__atomic_store_n((uint64_t *)p, w[1], __ATOMIC_RELAXED);
		break;
	case HEAP_REDO_USET:
		__atomic_store_n((uint64_t *)p, w[1], __ATOMIC_RELAXED);
		break;
	case HEAP_REDO_ZERO:
		memset(p, 0, w[1]);
		break;
	case HEAP_REDO_DATA: /* a snapshot may lie over the log */
		memmove(p, data, w[1]);
		break;
	}
}

/*
 * Applies (or only validates: see mode) redo entries against the heap
 * at base. HEAP_APPLY_CHECK checks every target against what its kind
 * may write (logs are untrusted); the other modes apply entries that
 * passed it, or that this process built.
 */
int xmem__heap_redo_apply(uint8_t *base, uint64_t size,
			  const struct heap_header *hd, const uint8_t *ents,
			  size_t nbytes, int mode)
{
	size_t pos = 0, n, ahead = 0;
	uint64_t w[3] = { 0, 0, 0 };
	/* a large record's targets are scattered: each is prefetched
	 * APPLY_AHEAD entries before it is applied, so their misses
	 * overlap (entries that passed the check only) */
	unsigned lead = mode != HEAP_APPLY_CHECK && nbytes >= APPLY_PF_MIN
				? APPLY_AHEAD
				: 0;

	while (pos < nbytes) {
		for (; lead && ahead < nbytes && ahead - pos < lead * 24;) {
			size_t m = ent_size(ents + ahead, nbytes - ahead);
			uint64_t a;

			if (!m)
				break;
			memcpy(&a, ents + ahead, 8);
			if ((a & HEAP_REDO_OFF_MASK) < size)
				__builtin_prefetch(
					base + (a & HEAP_REDO_OFF_MASK), 1);
			ahead += m;
		}
		if (!(n = ent_size(ents + pos, nbytes - pos)))
			return XMEM_E_CORRUPT;
		memcpy(w, ents + pos, 16);
		if (n > 16)
			memcpy(&w[2], ents + pos + 16, 8);
		if (mode == HEAP_APPLY_CHECK && ent_valid(hd, size, w))
			return XMEM_E_CORRUPT;
		pos += n;
		if (mode == HEAP_APPLY_CHECK ||
		    (mode == HEAP_APPLY_DATA) !=
			    (w[0] >> 56 == HEAP_REDO_DATA) ||
		    (mode == HEAP_APPLY_NOBITS && heap_op_bits(w[0] >> 56)))
			continue;
		ent_apply(base, w, ents + pos - n + 16);
	}
	return 0;
}

int xmem__heap_rec_entries(const uint8_t *base, uint64_t size,
			   const struct heap_header *hd,
			   const struct heap_rec_hdr *rh, const uint8_t **ents,
			   size_t *nbytes, void **owned)
{
	const uint8_t *e = (const uint8_t *)(rh + 1);
	uint64_t w[3], off;
	uint8_t *copy;

	*ents = e;
	*nbytes = rh->nbytes;
	*owned = NULL;
	if (rh->nbytes != 24)
		return 0;
	memcpy(w, e, sizeof(w));
	if (w[0] >> 56 != HEAP_REDO_EXT)
		return 0;
	off = w[0] & HEAP_REDO_OFF_MASK;
	int in = off >= hd->data_off && !(off & 63) && w[1] && !(w[1] & 7) &&
		 range_fits(off, w[1], size) && !(w[2] >> 32);
	/* a copy: applying the entries may write over the segment (it is
	 * in the data area), and what was validated must be what is
	 * applied */
	if (in && !(copy = malloc(w[1])))
		return xmem__err(-ENOMEM,
				 "heap: no memory for the %llu-byte "
				 "segment of redo record seq %llu",
				 (unsigned long long)w[1],
				 (unsigned long long)rh->seq);
	if (in)
		memcpy(copy, base + off, w[1]);
	if (!in || xmem__crc32c(0, copy, w[1]) != (uint32_t)w[2]) {
		if (in)
			free(copy);
		return xmem__err(XMEM_E_CORRUPT,
				 "heap: redo record seq %llu names a segment "
				 "of %llu bytes at offset %llu that is out of "
				 "bounds or fails its checksum (run 'xmem "
				 "heap check --repair')",
				 (unsigned long long)rh->seq,
				 (unsigned long long)w[1],
				 (unsigned long long)off);
	}
	*ents = copy;
	*nbytes = w[1];
	*owned = copy;
	return 0;
}

/* Forgets the lane's user words: its ring restarts, every record in it
 * is retired. */
static void uwords_reset(struct heap_lane *l)
{
	atomic_store_explicit(&l->nuwords, 0, memory_order_release);
	l->uw_over = 0;
}

#define UW_RECENT 8 /* entries a new word is compared with */
#define UW_REUSE 16 /* entries one record may make live again */

/* The entries a record adds to its lane's list, or makes live again. */
struct uw_pending {
	uint32_t n0, nre;
	uint32_t re[UW_REUSE];
};

/*
 * Appends the user words of the record being built to the lane's list,
 * before the record takes its seq: a commit that takes a later seq and
 * reads the list finds them. A word one of the last entries already
 * names (a hot word rewritten record after record) reuses that entry,
 * made live again (seq UINT64_MAX until the record has one).
 */
static void uwords_add(struct heap_lane *l, struct uw_pending *pd)
{
	uint32_t n = atomic_load_explicit(&l->nuwords, memory_order_relaxed);

	pd->n0 = n;
	pd->nre = 0;
	for (size_t pos = 0; pos + 16 <= l->rlen;) {
		uint64_t w0, w1, off;
		unsigned op;

		memcpy(&w0, l->rbuf + pos, 8);
		memcpy(&w1, l->rbuf + pos + 8, 8);
		op = w0 >> 56;
		pos += heap_ent_len(w0, w1);
		if (op != HEAP_REDO_CSET && op != HEAP_REDO_USET)
			continue;
		off = w0 & HEAP_REDO_OFF_MASK;
		uint32_t k = n, lo = n > UW_RECENT ? n - UW_RECENT : 0;
		while (k > lo && l->uwords[k - 1].off != off)
			k--;
		if (k > lo && pd->nre < UW_REUSE) {
			/* relaxed: take_seq's locked add, which follows,
			 * publishes it to any commit that takes a later
			 * seq (and a locked store would wait for every
			 * store before it) */
			__atomic_store_n(&l->uwords[k - 1].seq, UINT64_MAX,
					 __ATOMIC_RELAXED);
			pd->re[pd->nre++] = k - 1;
		} else if (n < HEAP_UWORDS_MAX) {
			__atomic_store_n(&l->uwords[n].off, off,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&l->uwords[n++].seq, UINT64_MAX,
					 __ATOMIC_RELAXED);
		} else {
			l->uw_over = 1;
		}
	}
	atomic_store_explicit(&l->nuwords, n, memory_order_release);
}

/* Gives the entries the record added or reused its seq. */
static void uwords_seq(struct heap_lane *l, const struct uw_pending *pd,
		       uint64_t seq)
{
	uint32_t n = atomic_load_explicit(&l->nuwords, memory_order_relaxed);

	for (uint32_t i = pd->n0; i < n; i++)
		__atomic_store_n(&l->uwords[i].seq, seq, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < pd->nre; i++)
		__atomic_store_n(&l->uwords[pd->re[i]].seq, seq,
				 __ATOMIC_RELAXED);
}

/* Orders offsets. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Adds to the lane's record a USET entry (the word's current value) for
 * every user word that a live record of any lane wrote and that `in`
 * reports rewritten outside the records. O(live user words).
 */
int xmem__heap_supersede(struct xmem_heap *h, struct heap_lane *l,
			 int (*in)(uint64_t off, void *arg), void *arg)
{
	uint64_t *v = NULL, w, val;
	uint64_t c = atomic_load_explicit(&h->ckpt_seq, memory_order_acquire);
	size_t n = 0, cap = 0;
	int rc = 0;

	for (unsigned i = 0; i < HEAP_NLANES && !rc; i++) {
		struct heap_lane *o = &h->lanes[i];
		uint32_t m =
			atomic_load_explicit(&o->nuwords, memory_order_acquire);

		for (uint32_t k = 0; k < m && !rc; k++) {
			w = __atomic_load_n(&o->uwords[k].off,
					    __ATOMIC_RELAXED);
			/* a word whose record a checkpoint retired is never
			 * replayed */
			if (__atomic_load_n(&o->uwords[k].seq,
					    __ATOMIC_RELAXED) <= c ||
			    w < h->hdr.data_off || !in(w, arg))
				continue;
			if ((rc = grow((void **)&v, &cap, n + 1, sizeof(*v))))
				break;
			v[n++] = w;
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t k = 0; k < n && !rc; k++) {
		if (k && v[k] == v[k - 1])
			continue;
		memcpy(&val, h->base + v[k], 8);
		rc = xmem__heap_rec_add(l, HEAP_REDO_USET, 8, v[k], val, 0);
	}
	free(v);
	return rc;
}

/*
 * Appends the ranges of the record just applied to the lane's dirty
 * list, for a checkpoint to flush. A one-line range goes through the
 * lane's recent lines instead: a line among them needs no entry, as
 * every checkpoint flushes them; a new one takes the place of the
 * oldest, which is appended to the list first. No store of this record
 * needs to be ordered before anything here: the checkpoint that retires
 * the record reads the lane's busy mark after the lane clears it, so it
 * sees these stores, the recent lines and the list, and flushes after
 * that. (A checkpoint that reads a recent slot the lane just replaced
 * reads the list after it, and finds the line it replaced there.)
 *
 * Returns 1 if the list is full (not expected: each entry of the ring
 * adds two ranges at most, and the list restarts with the ring); the
 * ranges are then flushed here and the caller fences.
 */
static int dirty_add(struct xmem_heap *h, struct heap_lane *l)
{
	uint32_t n = atomic_load_explicit(&l->ndirty, memory_order_relaxed);
	uint64_t rc[HEAP_RECENT]; /* the slots as this record leaves them */
	unsigned nput = 0;

	_Static_assert(HEAP_RECENT == 4, "the test below reads four slots");
	if (n + 2 * l->npend > HEAP_DIRTY_MAX) {
		for (size_t i = 0; i < l->npend; i++)
			xmem__heap_flush(h, h->base + l->pend[i].off,
					 l->pend[i].len);
		return 1;
	}
	for (unsigned k = 0; k < HEAP_RECENT; k++) /* only we write them */
		rc[k] = atomic_load_explicit(&l->recent[k],
					     memory_order_relaxed);
	for (size_t i = 0; i < l->npend; i++) {
		const struct heap_range *r = &l->pend[i];
		uint64_t ln = r->off >> 6, x = ln + 1, *slot;

		if (!r->len || (r->off + r->len - 1) >> 6 != ln) {
			l->dirty[n++] = *r;
			continue;
		}
		/* (no early exit: which slot hits varies) */
		if ((rc[0] == x) | (rc[1] == x) | (rc[2] == x) | (rc[3] == x))
			continue;
		/* the oldest slot takes it; its line goes to the list */
		slot = &rc[(l->rnext + nput++) % HEAP_RECENT];
		if (*slot)
			l->dirty[n++] =
				(struct heap_range){ (*slot - 1) << 6, 64 };
		*slot = x;
	}
	/* release: a checkpoint that reads the count reads the ranges */
	atomic_store_explicit(&l->ndirty, n, memory_order_release);
	/* after the count: a checkpoint that reads a new slot (acquire)
	 * then reads a count that holds the line it replaced */
	for (unsigned k = 0; k < MIN(nput, HEAP_RECENT); k++) {
		unsigned s = (l->rnext + k) % HEAP_RECENT;

		atomic_store_explicit(&l->recent[s], rc[s],
				      memory_order_release);
	}
	l->rnext += nput;
	return 0;
}

/* Flushes the line ln unless this checkpoint (gen) flushed it already:
 * a second write-back of a line whose first is still in flight waits for
 * it (about 60 ns here, against a few for a line flushed once). A table
 * slot remembers one line; a line it forgot is flushed again, which
 * costs time only. */
static void flush_line_once(struct xmem_heap *h, uint64_t ln, uint64_t gen)
{
	struct heap_seen *s = &h->ckpt_seen[(ln * 0x9e3779b97f4a7c15ull) >>
					    (64 - HEAP_SEEN_BITS)];

	if (s->line == ln && s->gen == gen)
		return;
	s->line = ln;
	s->gen = gen;
	xmem__heap_flush(h, h->base + (ln << 6), 64);
}

/* What a checkpoint reads of a lane before it flushes anything. */
struct dirty_snap {
	uint64_t recent[HEAP_RECENT];
	uint32_t n;
};

/* Reads lane l's recent lines, then its count (see dirty_add). */
static void dirty_snap(const struct heap_lane *l, struct dirty_snap *sn)
{
	for (unsigned k = 0; k < HEAP_RECENT; k++)
		sn->recent[k] = atomic_load_explicit(&l->recent[k],
						     memory_order_acquire);
	sn->n = atomic_load_explicit(&l->ndirty, memory_order_acquire);
}

/*
 * Flushes lane l's recent lines and the ranges of its dirty list that no
 * checkpoint flushed yet, as read in sn, each line once per checkpoint
 * (ckpt_lock held). The ranges up to the count never change until the
 * owner resets the list, which it does under ckpt_lock.
 *
 * Every lane is read before any line is flushed: a line is flushed once
 * per checkpoint, so each store that the checkpoint must make durable
 * has to be visible before that one flush. A store of a record the
 * checkpoint retires is (the lane cleared its busy mark after it, before
 * the checkpoint read the marks); a store made after the snapshot is
 * another record's, and its range is past the count read here or in a
 * recent slot the next checkpoint reads.
 */
static void dirty_flush(struct xmem_heap *h, struct heap_lane *l,
			const struct dirty_snap *sn, uint64_t gen)
{
	uint64_t last = UINT64_MAX; /* the line just seen: repeats are common
				       (a bitmap word and its mirror share
				       a line) */

	for (unsigned k = 0; k < HEAP_RECENT; k++) {
		uint64_t ln = sn->recent[k];

		if (ln && range_fits((ln - 1) << 6, 64, h->size))
			flush_line_once(h, ln - 1, gen);
	}
	for (uint32_t i = l->nflushed; i < sn->n; i++) {
		uint64_t off = l->dirty[i].off, len = l->dirty[i].len;

		if (!len || !range_fits(off, len, h->size))
			continue;
		if (len > 8 * 64) { /* large: flushed whole */
			xmem__heap_flush(h, h->base + off, len);
			continue;
		}
		for (uint64_t ln = off >> 6; ln <= (off + len - 1) >> 6; ln++)
			if (ln != last)
				flush_line_once(h, last = ln, gen);
	}
	l->nflushed = sn->n;
}

/* The lane's done word. */
static uint64_t *done_word(const struct xmem_heap *h, unsigned lane)
{
	return (uint64_t *)(h->base + HEAP_DONE_OFF + (uint64_t)lane * 64);
}

/* Stores seq in the lane's done word (after the fence of its record);
 * flushed by whoever makes a later change durable, or a checkpoint. */
static void done_store(struct xmem_heap *h, struct heap_lane *l, uint64_t seq)
{
	__atomic_store_n(done_word(h, l->idx),
			 heap_done_word(seq, h->hdr.epoch), __ATOMIC_RELAXED);
	/* release: a thread that sees the seq flushes the word after it */
	atomic_store_explicit(&l->done_seq, seq, memory_order_release);
}

void xmem__heap_flush_done(struct xmem_heap *h)
{
	uint64_t c = atomic_load_explicit(&h->ckpt_seq, memory_order_acquire);

	for (unsigned i = 0; i < HEAP_NLANES; i++)
		if (atomic_load_explicit(&h->lanes[i].done_seq,
					 memory_order_acquire) > c)
			xmem__heap_flush(h, done_word(h, i), 8);
}

int xmem__heap_done_read(const uint8_t *base, uint32_t epoch, unsigned lane,
			 uint64_t *seq)
{
	uint64_t w;

	memcpy(&w, base + HEAP_DONE_OFF + (uint64_t)lane * 64, 8);
	*seq = w & HEAP_DONE_SEQ_MASK;
	if (!w) /* never written (or a heap of layout version 2) */
		return 0;
	return heap_done_word(*seq, epoch) == w ? 0 : XMEM_E_CORRUPT;
}

/*
 * Takes a sequence number; the lane's busy mark keeps a checkpoint from
 * passing it until the record is applied. With two threads the shared
 * counter's line moves between their cores at every record: this is
 * what keeps two threads on one heap below two on two heaps (in rounds
 * where the line moves slowly, a quarter of the time goes to the locked
 * add). Measured and rejected: numbers from the synchronized TSC (with
 * a locked exchange of the busy mark, then RDTSCP, so that a checkpoint
 * that misses the mark reads an earlier time): the slow rounds went, but
 * one thread lost 47 ns per alloc+free pair; and spinning before
 * yielding while a checkpoint waits for another lane (no change).
 *
 * Also slower, in a rough trial: per-lane counters, each record taking
 * one more than the highest counter any lane has published (a locked
 * exchange of the busy mark, then plain loads). One thread lost 8 ns
 * per pair, and two threads on one heap ran at 220 to 460 ns per pair
 * against 183 to 310: each record now moves two lines, the lane's own
 * counter to its writer and the other lane's to its reader.
 */
static uint64_t take_seq(struct xmem_heap *h, struct heap_lane *l)
{
	uint64_t seq;

	if (atomic_load_explicit(&l->busy, memory_order_relaxed))
		return atomic_fetch_add(&h->next_seq, 1);
	/* the locked add orders the PENDING mark before the seq is taken,
	 * so a checkpoint that sees neither cannot pass the seq */
	atomic_store_explicit(&l->busy, HEAP_BUSY_PENDING,
			      memory_order_relaxed);
	seq = atomic_fetch_add(&h->next_seq, 1);
	atomic_store_explicit(&l->busy, seq, memory_order_release);
	return seq;
}

/* Makes room in the lane's ring before a transaction starts, so that
 * its records rarely meet a full ring while its id holds C back. */
int xmem__heap_ring_prepare(struct xmem_heap *h, struct heap_lane *l)
{
	return l->ring_pos <= HEAP_RING_SIZE / 2
		       ? 0
		       : xmem__heap_ring_restart(h, l);
}

/* Retires every record of the lane (a checkpoint) and restarts its ring
 * and the lists that follow it. */
int xmem__heap_ring_restart(struct xmem_heap *h, struct heap_lane *l)
{
	int rc;

	if ((rc = xmem__heap_checkpoint(h, l, l->last_seq, 1)))
		return rc;
	l->ring_pos = 0;
	uwords_reset(l);
	return 0;
}

/*
 * A record whose user words did not all fit in the lane's list (a
 * transaction that set thousands of words) must be retired before the
 * lane lets go of them: a commit that rewrites such a word outside the
 * records would not know to supersede it. Called by the lane's owner
 * with no transaction open, so before the words can pass to another
 * thread; a racing transaction on the same words would be the
 * application's data race.
 */
void xmem__heap_uwords_check(struct xmem_heap *h, struct heap_lane *l)
{
	/* (a checkpoint waits until it can pass: it does not fail) */
	if (l->uw_over)
		(void)xmem__heap_ring_restart(h, l);
}

/* Gives the lane's transaction its id (first snapshot). */
uint64_t xmem__heap_take_txid(struct xmem_heap *h, struct heap_lane *l)
{
	return take_seq(h, l);
}

/* Records up to this size are written to the ring with non-temporal
 * stores: on cache-line granularity the fence after them waits less than
 * after write-backs of cached lines. */
#define REC_NT_MAX 1024u

/* Writes the record header and the entries ents[0..nbytes) into the ring
 * at the lane's position and flushes them (or writes them with
 * non-temporal stores); the commit's fence makes them durable. */
static void write_record(struct xmem_heap *h, struct heap_lane *l,
			 unsigned kind, uint64_t seq, uint64_t txid,
			 const uint8_t *ents, size_t nbytes)
{
	uint8_t *dst = h->base + HEAP_LANES_OFF +
		       (uint64_t)l->idx * HEAP_LANE_SIZE + l->ring_pos;
	size_t padded = align_up(nbytes, 64), len = 64 + padded;
	uint64_t hw[8]; /* struct heap_rec_hdr, word by word */

	/* built in words, not fields: the checksums and the copies below
	 * read whole words, and a word read back from narrower stores just
	 * made waits for them to retire */
	hw[0] = HEAP_REC_MAGIC | (uint64_t)kind << 32; /* flags 0 */
	hw[1] = h->hdr.epoch | (uint64_t)nbytes << 32;
	hw[2] = seq;
	hw[3] = txid;
	hw[4] = xmem__crc32c(0, nbytes ? (const void *)ents : hw, nbytes);
	hw[5] = hw[6] = hw[7] = 0;
	hw[4] |= (uint64_t)xmem__crc32c(0, hw, sizeof(hw)) << 32; /* hcsum */
	if (len <= REC_NT_MAX && h->ops->gran == XMEM_GRAN_CACHELINE) {
		/* no fence: the commit's fence orders these stores */
		xmem__nt_store_words((uint64_t *)dst, hw, 8);
		xmem__nt_store_words((uint64_t *)(dst + 64),
				     (const uint64_t *)ents, nbytes / 8);
		xmem__nt_store_words((uint64_t *)(dst + 64 + nbytes), NULL,
				     (padded - nbytes) / 8);
	} else if (len <= REC_NT_MAX) {
		_Alignas(64) uint8_t buf[REC_NT_MAX];

		memcpy(buf, hw, sizeof(hw));
		if (nbytes) /* NULL until a lane's first entry */
			memcpy(buf + 64, ents, nbytes);
		memset(buf + 64 + nbytes, 0, padded - nbytes);
		h->ops->memcpy(dst, buf, len,
			       XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NODRAIN);
	} else {
		memcpy(dst, hw, sizeof(hw));	/* larger than REC_NT_MAX: */
		memcpy(dst + 64, ents, nbytes); /* nbytes > 0 */
		memset(dst + 64 + nbytes, 0, padded - nbytes);
		xmem__heap_flush(h, dst, len);
	}
	l->ring_pos += (uint32_t)len;
}

/* Writes the record's entries into a segment of free chunks (reserved
 * until a checkpoint retires the record) and fences: the segment is
 * durable before the record that names it. ent gets the EXT entry. */
static int write_segment(struct xmem_heap *h, struct heap_lane *l,
			 uint64_t ent[3], uint64_t *first, uint64_t *n)
{
	int rc;

	*n = (l->rlen + HEAP_CHUNK_SIZE - 1) >> HEAP_CHUNK_SHIFT;
	rc = xmem__heap_extent_reserve(h, *n, first);
	if (rc == XMEM_E_NOSPACE && xmem__heap_defer_retire(h, l))
		rc = xmem__heap_extent_reserve(h, *n, first);
	if (rc)
		return xmem__err(rc,
				 "heap: no %llu free chunks for a record "
				 "of %zu bytes",
				 (unsigned long long)*n, l->rlen);
	h->ops->memcpy(h->base + heap_chunk_off(h, *first), l->rbuf, l->rlen,
		       XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NODRAIN);
	ent[0] = (uint64_t)HEAP_REDO_EXT << 56 | heap_chunk_off(h, *first);
	ent[1] = l->rlen;
	ent[2] = xmem__crc32c(0, l->rbuf, l->rlen);
	/* the segment must be durable before the record naming it */
	xmem__heap_fence(h, l);
	return 0;
}

/*
 * Applies the record the lane built, as xmem__heap_redo_apply does in
 * HEAP_APPLY_NOBITS mode, in a leaner walk: the entries are this
 * process's own, so nothing is checked, and a commit's stores behind its
 * fence are fewer.
 */
static void apply_built(struct xmem_heap *h, const struct heap_lane *l)
{
	const uint8_t *e = l->rbuf, *end = l->rbuf + l->rlen;

	while (e < end) {
		uint64_t w[3];
		unsigned op;

		memcpy(&w[0], e, 8);
		memcpy(&w[1], e + 8, 8);
		op = (unsigned)(w[0] >> 56);
		if (op == HEAP_REDO_CSET)
			memcpy(&w[2], e + 16, 8);
		/* bitmaps: heap_bits.c; DATA: in place already */
		if (!heap_op_bits(op) && op != HEAP_REDO_DATA)
			ent_apply(h->base, w, NULL);
		e += heap_ent_len(w[0], w[1]);
	}
}

/*
 * Commits the lane's record: one fence makes it durable (the commit
 * point), then its entries are applied in place; the checkpoint that
 * retires the record flushes them.
 */
int xmem__heap_rec_commit(struct xmem_heap *h, struct heap_lane *l,
			  unsigned kind, uint64_t txid)
{
	int ext = l->rlen > HEAP_EXT_MIN;
	size_t reclen = sizeof(struct heap_rec_hdr) +
			(ext ? 64 : align_up(l->rlen, 64));
	uint64_t seq, seg = 0, segn = 0, ent[3], stamp;
	struct uw_pending pd;
	int rc = 0;

	if (l->ring_pos + reclen > HEAP_RING_SIZE) {
		/* the ring can be reused only once C covers this lane's
		 * records; C stays below the lane's open transaction */
		if (l->tx.txid && l->last_seq >= l->tx.txid)
			return xmem__err(XMEM_E_NOSPACE,
					 "heap: the transaction's records "
					 "exceed the lane log (%u bytes)",
					 HEAP_RING_SIZE);
		if ((rc = xmem__heap_ring_restart(h, l)))
			return rc;
	}
	if (ext && (rc = write_segment(h, l, ent, &seg, &segn)))
		return rc;
	uwords_add(l, &pd);
	seq = take_seq(h, l);
	uwords_seq(l, &pd, seq);
	for (size_t i = 0; i < l->nntw; i++)
		h->ops->memmove(h->base + l->ntw[i].off,
				h->base + l->ntw[i].off, l->ntw[i].len,
				XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NODRAIN);
	/* (one call: inlined) */
	write_record(h, l, kind, seq, txid,
		     ext ? (const uint8_t *)ent : l->rbuf, /* EXT: the only */
		     ext ? sizeof(ent) : l->rlen);	   /* entry */
	/* The record must be durable before any entry is applied in place:
	 * this is the commit point. */
	xmem__heap_fence(h, l);
	if (ext) /* (without memory: reserved until the next open) */
		(void)xmem__heap_defer_segment(l, seg, segn, seq);
	/*
	 * Applied in place and not flushed: recovery replays every record
	 * a checkpoint has not retired, so the lines need to be durable
	 * only before the checkpoint that retires this record, which
	 * flushes the lane's dirty list. The fence above thus waits only
	 * for the record's own non-temporal stores (about 110 ns here),
	 * not for write-backs of the lines earlier records changed (about
	 * 170 ns).
	 *
	 * Cached stores, not 8-byte non-temporal ones: on a cache-line
	 * mapping a fence after a MOVNTI of part of a line waits about as
	 * long as after a line's write-back (only whole lines, as the
	 * record's, are cheaper), a later locked instruction or read of the
	 * word waits for it. Measured with every 8-byte entry so stored
	 * (one thread): atomic alloc+free +11%, tx alloc -38%; with only
	 * the user words: no change.
	 *
	 * The bitmap updates come last, by the lane's own list: plain
	 * stores in runs the lane owns, locked ones elsewhere (see
	 * heap_bits.c).
	 */
	if (l->rdata) /* the DATA entries' contents are durable in place */
		done_store(h, l, seq);
	stamp = xmem__shadow_stamp(h);
	if (l->rlen < APPLY_PF_MIN)
		apply_built(h, l);
	else /* (prefetches the targets) */
		xmem__heap_redo_apply(h->base, h->size, &h->hdr, l->rbuf,
				      l->rlen, HEAP_APPLY_NOBITS);
	xmem__heap_bits_apply(h, l);
	for (size_t i = 0; i < l->npend; i++)
		xmem__shadow_write(h, l->pend[i].off, l->pend[i].len, seq,
				   stamp);
	if (dirty_add(h, l))
		xmem__heap_fence(h, l); /* durable now instead */
	l->last_seq = seq;
	if (!l->tx.txid)
		atomic_store_explicit(&l->busy, 0, memory_order_release);
	xmem__heap_rec_reset(l);
	if (!l->tx.depth)
		xmem__heap_uwords_check(h, l);
	return rc;
}

#define CKPT_SPIN 4096u /* tries before a waiter sleeps */

/* A short wait in a spin loop. */
static inline void spin_pause(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#endif
}

/*
 * Takes ckpt_lock. A checkpoint holds it for a few microseconds (its
 * flushes and two fences), while a futex wait and its wake-up cost tens
 * of microseconds here: with two threads checkpointing, sleeping on the
 * lock cost a quarter of their throughput in some runs. So a waiter
 * tries about as long as a checkpoint takes before it sleeps. Returns 1,
 * without the lock, if meanwhile another checkpoint made C reach need
 * and the caller does not restart its ring.
 */
static int ckpt_lock_take(struct xmem_heap *h, uint64_t need, int restart)
{
	for (unsigned i = 0; i < CKPT_SPIN; i++) {
		if (!pthread_mutex_trylock(&h->ckpt_lock))
			return 0;
		if (!restart &&
		    atomic_load_explicit(&h->ckpt_seq, memory_order_acquire) >=
			    need)
			return 1;
		spin_pause();
	}
	pthread_mutex_lock(&h->ckpt_lock);
	return 0;
}

/*
 * Retires records: every record with seq <= C has its applied lines
 * durable. C is the highest sequence number below every in-flight record
 * or transaction; waits (yielding) until C >= need. Two fences.
 */
int xmem__heap_checkpoint(struct xmem_heap *h, struct heap_lane *self,
			  uint64_t need, int restart)
{
	struct dirty_snap snap[HEAP_NLANES];
	uint64_t hi, b, gen;

	if (ckpt_lock_take(h, need, restart))
		return 0; /* C >= need already */
	for (;;) {
		hi = atomic_load(&h->next_seq) - 1;
		for (unsigned i = 0; i < HEAP_NLANES; i++) {
			while ((b = atomic_load(&h->lanes[i].busy)) ==
			       HEAP_BUSY_PENDING)
				sched_yield();
			if (b && b - 1 < hi)
				hi = b - 1;
		}
		if (hi >= need)
			break;
		pthread_mutex_unlock(&h->ckpt_lock);
		sched_yield();
		if (ckpt_lock_take(h, need, restart))
			return 0;
	}
	gen = ++h->ckpt_gen;
	/* every lane read before any line is flushed (see dirty_flush) */
	for (unsigned i = 0; i < HEAP_NLANES; i++)
		dirty_snap(&h->lanes[i], &snap[i]);
	xmem__shadow_pause(h, 0); /* (a race's window, for the shadow) */
	for (unsigned i = 0; i < HEAP_NLANES; i++)
		dirty_flush(h, &h->lanes[i], &snap[i], gen);
	/* The applied lines of every record up to hi must be durable
	 * before C says they are. */
	xmem__heap_fence(h, self);
	xmem__shadow_retire(h, hi);
	if (hi > atomic_load(&h->ckpt_seq)) {
		xmem__heap_ckpt_write(h, self, hi);
		atomic_store(&h->ckpt_seq, hi);
	}
	if (restart) { /* the caller's ring restarts: so does its list */
		atomic_store_explicit(&self->ndirty, 0, memory_order_relaxed);
		self->nflushed = 0;
		for (unsigned k = 0; k < HEAP_RECENT; k++)
			atomic_store_explicit(&self->recent[k], 0,
					      memory_order_relaxed);
	}
	atomic_fetch_add(&h->nckpt, 1);
	pthread_mutex_unlock(&h->ckpt_lock);
	return 0;
}

/* Fills a checkpoint copy holding C. */
void xmem__heap_ckpt_make(struct heap_ckpt *ck, uint64_t c, uint32_t epoch)
{
	memset(ck, 0, sizeof(*ck));
	ck->seq = le64(c);
	ck->magic = le32(HEAP_CKPT_MAGIC);
	ck->csum = xmem__crc32c(xmem__crc32c(0, ck, 12), &epoch, 4);
}

/* 1 if the checkpoint copy at p is intact. */
static int ckpt_ok(const uint8_t *p, uint32_t epoch)
{
	struct heap_ckpt ck;

	memcpy(&ck, p, sizeof(ck));
	return le32(ck.magic) == HEAP_CKPT_MAGIC &&
	       xmem__crc32c(xmem__crc32c(0, &ck, 12), &epoch, 4) == ck.csum;
}

/*
 * Reads C: the higher seq of the intact copies. *bad gets bit 0 (copy A)
 * and bit 1 (copy B) for damaged copies; both damaged is XMEM_E_CORRUPT.
 */
int xmem__heap_ckpt_read(const uint8_t *base, uint32_t epoch, uint64_t *c,
			 unsigned *bad)
{
	const struct heap_ckpt *a = (const void *)(base + HEAP_CKPT_OFF);
	const struct heap_ckpt *b = (const void *)(base + HEAP_CKPT_B_OFF);
	int av = ckpt_ok(base + HEAP_CKPT_OFF, epoch);
	int bv = ckpt_ok(base + HEAP_CKPT_B_OFF, epoch);

	*bad = (av ? 0u : 1u) | (bv ? 0u : 2u);
	if (!av && !bv)
		return xmem__err(XMEM_E_CORRUPT,
				 "heap: checkpoint at offset %u and its copy "
				 "at offset %u are both damaged (run 'xmem "
				 "heap check --repair')",
				 HEAP_CKPT_OFF, HEAP_CKPT_B_OFF);
	*c = av && bv ? MAX(le64(a->seq), le64(b->seq))
	     : av     ? le64(a->seq)
		      : le64(b->seq);
	return 0;
}

/* Writes C into copy A, then copy B: one fence each, so a crash tears at
 * most one of them and the other holds an old or the new C. */
void xmem__heap_ckpt_write(struct xmem_heap *h, struct heap_lane *l, uint64_t c)
{
	struct heap_ckpt ck;

	xmem__heap_ckpt_make(&ck, c, h->hdr.epoch);
	memcpy(h->base + HEAP_CKPT_OFF, &ck, 16);
	xmem__heap_flush(h, h->base + HEAP_CKPT_OFF, 16);
	/* copy A must be durable before copy B changes */
	xmem__heap_fence(h, l);
	memcpy(h->base + HEAP_CKPT_B_OFF, &ck, 16);
	xmem__heap_flush(h, h->base + HEAP_CKPT_B_OFF, 16);
	/* C must be durable before a lane's ring is reused */
	xmem__heap_fence(h, l);
}
