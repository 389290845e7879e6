/* SPDX-License-Identifier: MIT */
/*
 * heap_alloc.c - the allocator: size classes in runs (bitmaps in the
 * metadata zone), extents of whole chunks for large objects, per-lane run
 * caches, and the redo entries that make allocation state durable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"

const uint32_t xmem__heap_class_size[HEAP_NCLASSES] = {
	32,   64,    96,    128,   160,	  192,	 256,	 320,  384,
	512,  640,   768,   1024,  1536,  2048,	 3072,	 4096, 6144,
	8192, 12288, 16384, 24576, 32768, 65536, 131072,
};

uint64_t xmem__heap_obj_nt_len(uint64_t off, uint64_t size, uint32_t cls)
{
	if (size > HEAP_OBJ_NT_MAX)
		return 0;
	if (cls != UINT32_MAX && !(xmem__heap_class_size[cls] % 64) &&
	    !(off % 64))
		size = MIN(align_up(size, 64),
			   (uint64_t)xmem__heap_class_size[cls]);
	return size;
}

/* Number of size classes. */
unsigned xmem__heap_nclasses(void)
{
	return HEAP_NCLASSES;
}

/* Smallest class holding `size` bytes, or -1 for an extent. */
int xmem__heap_class_of(uint64_t size)
{
	if (size <= HEAP_MIN_CLASS)
		return 0;
	for (int i = 1; i < HEAP_NCLASSES; i++)
		if (size <= xmem__heap_class_size[i])
			return i;
	return -1;
}

static uint32_t class_slots(unsigned cls)
{
	return HEAP_CHUNK_SIZE / xmem__heap_class_size[cls];
}

/* Checksum of a chunk header (csum field taken as 0). */
uint32_t xmem__heap_chunk_csum(const struct heap_chunk_hdr *c)
{
	return xmem__csum_struct(c, sizeof(*c),
				 offsetof(struct heap_chunk_hdr, csum));
}

/* 1 if the header belongs to this heap and is intact, 0 if it is from
 * another epoch (a free chunk), -1 if it is damaged. */
int xmem__heap_chunk_hdr_valid(const struct heap_chunk_hdr *c, uint32_t epoch)
{
	struct heap_chunk_hdr t;

	memcpy(&t, c, sizeof(t));
	if (t.epoch != epoch)
		return 0;
	if (xmem__heap_chunk_csum(&t) != t.csum || t.kind > 3 ||
	    (t.kind == HEAP_CHUNK_RUN && t.cls >= HEAP_NCLASSES) ||
	    (t.kind == HEAP_CHUNK_EXTENT && !t.nchunks))
		return -1;
	return 1;
}

/* Marks chunks [c, c+n) free (1) or used (0) in the volatile map. */
static void freemap_set(struct xmem_heap *h, uint64_t c, uint64_t n, int f)
{
	for (uint64_t i = c; i < c + n; i++) {
		if (f)
			h->freemap[i / 64] |= 1ull << (i % 64);
		else
			h->freemap[i / 64] &= ~(1ull << (i % 64));
	}
}

/* Adds chunk c to the run pool of its class (chunk_lock held). */
static int pool_add(struct xmem_heap *h, unsigned cls, int32_t c)
{
	typeof(h->pool[0]) *p = &h->pool[cls];

	if (xmem__vec_grow((void **)&p->runs, &p->cap, p->n + 1,
			   sizeof(*p->runs)))
		return xmem__err(-ENOMEM, "heap: no memory for runs");
	p->runs[p->n++] = c;
	return 0;
}

/* Reads one more chunk header (or extent) into the volatile state
 * (chunk_lock held). A damaged header stops the scan for good. */
static int scan_one(struct xmem_heap *h)
{
	uint64_t c = h->scanned, n = h->nchunks;
	struct heap_chunk_hdr *ch = heap_chunk_hdr(h, c);
	int v = xmem__heap_chunk_hdr_valid(ch, h->hdr.epoch), rc;

	if (v < 0 ||
	    (v && ch->kind == HEAP_CHUNK_EXTENT && ch->nchunks > n - c)) {
		h->scan_err = XMEM_E_CORRUPT;
		return xmem__err(XMEM_E_CORRUPT,
				 "heap: chunk %llu header at offset %llu is "
				 "damaged (run 'xmem heap check --repair')",
				 (unsigned long long)c,
				 (unsigned long long)heap_meta_off(h, c));
	}
	if (!v || ch->kind == HEAP_CHUNK_FREE) {
		freemap_set(h, c, 1, 1);
		/* release: a reader that sees the count sees the chunk */
		__atomic_store_n(&h->scanned, c + 1, __ATOMIC_RELEASE);
		return 0;
	}
	h->chunks[c].cls = ch->cls;
	h->chunks[c].type = ch->type;
	if (ch->kind == HEAP_CHUNK_RUN &&
	    (rc = pool_add(h, ch->cls, (int32_t)c)))
		return rc;
	if (ch->kind == HEAP_CHUNK_EXTENT)
		h->chunks[c].nchunks = ch->nchunks;
	__atomic_store_n(&h->chunks[c].kind, ch->kind, __ATOMIC_RELAXED);
	__atomic_store_n(&h->scanned,
			 c + (ch->kind == HEAP_CHUNK_EXTENT ? ch->nchunks : 1),
			 __ATOMIC_RELEASE);
	return 0;
}

/* Scans chunk headers up to chunk `upto` (chunk_lock held). */
static int scan_to(struct xmem_heap *h, uint64_t upto)
{
	int rc;

	if (h->scan_err)
		return xmem__err(h->scan_err, "heap: a chunk header is "
					      "damaged (run 'xmem heap check "
					      "--repair')");
	while (h->scanned < upto && h->scanned < h->nchunks)
		if ((rc = scan_one(h)))
			return rc;
	return 0;
}

/* Scans a larger stretch: doubles what has been read. */
static int scan_more(struct xmem_heap *h, uint64_t atleast)
{
	return scan_to(h, h->scanned * 2 + atleast + 64);
}

/* Reads every chunk header (statistics). */
int xmem__heap_scan_all(struct xmem_heap *h)
{
	int rc;

	pthread_mutex_lock(&h->chunk_lock);
	rc = scan_to(h, h->nchunks);
	pthread_mutex_unlock(&h->chunk_lock);
	return rc;
}

/*
 * Sets up the volatile allocator state: O(1) work at open. Chunk headers
 * are read lazily, in growing stretches, when allocation needs free
 * chunks or runs (or a free names a chunk not read yet); run bitmaps are
 * read on a run's first use.
 */
int xmem__heap_alloc_init(struct xmem_heap *h)
{
	uint64_t n = h->nchunks;

	h->chunks = calloc(n, sizeof(*h->chunks));
	h->freemap = calloc((n + 63) / 64, 8);
	if (!h->chunks || !h->freemap)
		return xmem__err(-ENOMEM, "heap: no memory for chunk state");
	h->scanned = 0;
	return 0;
}

/* A new heap: every chunk is free, nothing to read. */
void xmem__heap_alloc_fresh(struct xmem_heap *h)
{
	pthread_mutex_lock(&h->chunk_lock);
	freemap_set(h, 0, h->nchunks, 1);
	__atomic_store_n(&h->scanned, h->nchunks, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&h->chunk_lock);
}

/* Frees the volatile allocator state. */
void xmem__heap_alloc_fini(struct xmem_heap *h)
{
	if (h->chunks)
		for (uint64_t c = 0; c < h->nchunks; c++)
			free(atomic_load(&h->chunks[c].run));
	free(h->chunks);
	free(h->freemap);
	for (unsigned i = 0; i < HEAP_NCLASSES; i++)
		free(h->pool[i].runs);
}

/* Bitmap word w of chunk c. */
static uint64_t *bm_word(struct xmem_heap *h, uint64_t c, unsigned w)
{
	return (uint64_t *)(h->base + heap_meta_off(h, c) + HEAP_BM_OFF(w));
}

/* Returns the run state of chunk c, loading its bitmap on first use
 * (chunk_lock held). */
static struct heap_run *run_load(struct xmem_heap *h, uint64_t c)
{
	struct heap_run *r = atomic_load(&h->chunks[c].run);
	uint32_t nfree = 0;

	if (r)
		return r;
	/* line-aligned: two runs never share a line (each is written by
	 * its own lane's operations) */
	if (!(r = aligned_alloc(64, align_up(sizeof(*r), 64))))
		return NULL;
	memset(r, 0, sizeof(*r));
	r->cls = h->chunks[c].cls;
	r->nslots = class_slots(r->cls);
	for (unsigned w = 0; w < HEAP_BITMAP_WORDS; w++) {
		uint64_t v =
			__atomic_load_n(bm_word(h, c, w), __ATOMIC_RELAXED);
		uint64_t lim = r->nslots > w * 64 ? r->nslots - w * 64 : 0;

		if (lim < 64)
			v |= ~0ull << lim; /* slots past the run's end */
		atomic_store(&r->taken[w], v);
		nfree += 64 - __builtin_popcountll(v);
	}
	atomic_store(&r->nfree, nfree);
	atomic_store(&r->owner, -1);
	/* no owner: shared, until a lane takes it (xmem__heap_bits_owned) */
	atomic_store(&r->shared, RUN_SHARED);
	atomic_store(&h->chunks[c].run, r);
	return r;
}

/* Returns the run of chunk c, loading it if needed. */
static struct heap_run *run_get(struct xmem_heap *h, uint64_t c)
{
	struct heap_run *r = atomic_load(&h->chunks[c].run);

	if (r)
		return r;
	pthread_mutex_lock(&h->chunk_lock);
	r = run_load(h, c);
	pthread_mutex_unlock(&h->chunk_lock);
	return r;
}

/* First-fit search for n free chunks (chunk_lock held); -1 if none. */
static int64_t freemap_find(struct xmem_heap *h, uint64_t n)
{
	uint64_t run = 0, start = 0;

	for (uint64_t c = 0; c < h->scanned; c++) {
		if (!(c % 64) && h->freemap[c / 64] == 0) {
			run = 0;
			c += 63;
			continue;
		}
		if (h->freemap[c / 64] & (1ull << (c % 64))) {
			if (!run++)
				start = c;
			if (run == n)
				return (int64_t)start;
		} else {
			run = 0;
		}
	}
	return -1;
}

/* Drops chunk c from the run pool of class cls (chunk_lock held). */
static void pool_del(struct xmem_heap *h, unsigned cls, int32_t c)
{
	typeof(h->pool[0]) *p = &h->pool[cls];

	for (size_t i = 0; i < p->n; i++)
		if (p->runs[i] == c) {
			p->runs[i] = p->runs[--p->n];
			return;
		}
}

#define RECLAIM_MAX 512 /* runs returned to free chunks per record */

/*
 * Returns empty runs that no lane caches to the free chunks, with one
 * record (one fence). Called when a chunk allocation finds no room.
 * Returns the number of chunks freed, or an error.
 */
static int reclaim_runs(struct xmem_heap *h, struct heap_lane *l)
{
	int32_t got[RECLAIM_MAX];
	int n = 0, rc = 0;

	pthread_mutex_lock(&h->chunk_lock);
	if (scan_to(h, h->nchunks) == 0)
		for (unsigned k = 0; k < HEAP_NCLASSES && n < RECLAIM_MAX; k++)
			for (size_t i = 0; i < h->pool[k].n && n < RECLAIM_MAX;
			     i++) {
				int32_t c = h->pool[k].runs[i];
				struct heap_run *r = run_load(h, (uint64_t)c);
				int none = -1;

				if (r && atomic_load(&r->nfree) == r->nslots &&
				    atomic_compare_exchange_strong(&r->owner,
								   &none, -2)) {
					/* a foreign release that made it
					 * empty may still read it */
					if (atomic_load(&r->inflight))
						atomic_store(&r->owner, -1);
					else
						got[n++] = c;
				}
			}
	pthread_mutex_unlock(&h->chunk_lock);
	if (!n)
		return 0;
	xmem__heap_rec_reset(l);
	for (int i = 0; i < n && !rc; i++) {
		uint64_t moff = heap_meta_off(h, (uint64_t)got[i]);

		if (!(rc = xmem__heap_rec_add(l, HEAP_REDO_SET, 8, moff, 0, 0)))
			rc = xmem__heap_rec_add(l, HEAP_REDO_SET, 8, moff + 8,
						0, 0);
	}
	if (!rc)
		rc = xmem__heap_rec_commit(h, l, HEAP_REC_OP, 0);
	pthread_mutex_lock(&h->chunk_lock);
	for (int i = 0; i < n; i++) {
		struct heap_chunk *ch = &h->chunks[got[i]];
		struct heap_run *r = atomic_load(&ch->run);

		if (rc) {
			atomic_store(&r->owner, -1);
			continue;
		}
		pool_del(h, ch->cls, got[i]);
		atomic_store(&ch->run, NULL);
		free(r);
		__atomic_store_n(&ch->kind, HEAP_CHUNK_FREE, __ATOMIC_RELAXED);
		ch->cls = 0;
		freemap_set(h, (uint64_t)got[i], 1, 1);
	}
	pthread_mutex_unlock(&h->chunk_lock);
	if (rc)
		xmem__heap_rec_reset(l);
	return rc ? rc : n;
}

/* Reserves n chunks; when none are free, first returns empty runs to the
 * free chunks (lane l commits that) and tries again. */
int xmem__heap_chunks_reserve(struct xmem_heap *h, struct heap_lane *l,
			      uint64_t n, uint64_t *first)
{
	int rc;

	if (l)
		xmem__heap_release_due(h, l);
	rc = xmem__heap_extent_reserve(h, n, first);
	if (rc == XMEM_E_NOSPACE && l && xmem__heap_defer_retire(h, l))
		rc = xmem__heap_extent_reserve(h, n, first);
	if (rc != XMEM_E_NOSPACE || !l || reclaim_runs(h, l) <= 0)
		return rc;
	return xmem__heap_extent_reserve(h, n, first);
}

/* Takes n free chunks off the volatile free map. */
int xmem__heap_extent_reserve(struct xmem_heap *h, uint64_t n, uint64_t *first)
{
	int64_t c;

	pthread_mutex_lock(&h->chunk_lock);
	while ((c = freemap_find(h, n)) < 0 && h->scanned < h->nchunks)
		if (scan_more(h, n)) {
			pthread_mutex_unlock(&h->chunk_lock);
			return h->scan_err ? XMEM_E_CORRUPT : -ENOMEM;
		}
	if (c >= 0) {
		freemap_set(h, (uint64_t)c, n, 0);
		__atomic_store_n(&h->chunks[c].kind, HEAP_CHUNK_EXTENT,
				 __ATOMIC_RELAXED);
		h->chunks[c].nchunks = (uint32_t)n;
	}
	pthread_mutex_unlock(&h->chunk_lock);
	if (c < 0)
		return xmem__err(XMEM_E_NOSPACE,
				 "heap: no %llu contiguous free chunks "
				 "(%llu bytes)",
				 (unsigned long long)n,
				 (unsigned long long)n * HEAP_CHUNK_SIZE);
	*first = (uint64_t)c;
	return 0;
}

/* Returns reserved chunks to the free map. */
void xmem__heap_extent_unreserve(struct xmem_heap *h, uint64_t first,
				 uint64_t n)
{
	pthread_mutex_lock(&h->chunk_lock);
	__atomic_store_n(&h->chunks[first].kind, HEAP_CHUNK_FREE,
			 __ATOMIC_RELAXED);
	h->chunks[first].nchunks = 0;
	freemap_set(h, first, n, 1);
	pthread_mutex_unlock(&h->chunk_lock);
}

/* Fills a chunk header with its checksum. */
static void chunk_hdr_make(struct xmem_heap *h, struct heap_chunk_hdr *ch,
			   unsigned kind, unsigned cls, unsigned type,
			   uint32_t n)
{
	memset(ch, 0, sizeof(*ch));
	ch->kind = (uint8_t)kind;
	ch->cls = (uint8_t)cls;
	ch->type = (uint16_t)type;
	ch->nchunks = n;
	ch->epoch = h->hdr.epoch;
	ch->csum = xmem__heap_chunk_csum(ch);
}

/* Adds the two SET entries writing chunk c's header. */
static int rec_chunk_hdr(struct xmem_heap *h, struct heap_lane *l, uint64_t c,
			 const struct heap_chunk_hdr *ch)
{
	uint64_t w[2];
	int rc;

	memcpy(w, ch, 16);
	if ((rc = xmem__heap_rec_add(l, HEAP_REDO_SET, 8, heap_meta_off(h, c),
				     w[0], 0)))
		return rc;
	return xmem__heap_rec_add(l, HEAP_REDO_SET, 8, heap_meta_off(h, c) + 8,
				  w[1], 0);
}

/*
 * Turns a free chunk into an empty run of class cls, owned by lane l,
 * with its own record (one fence; once per 256 KiB chunk). Returns the
 * chunk or -1.
 */
static int64_t run_create(struct xmem_heap *h, struct heap_lane *l,
			  unsigned cls)
{
	struct heap_chunk_hdr ch;
	uint64_t c;
	int rc;

	if (xmem__heap_chunks_reserve(h, l, 1, &c))
		return -1;
	chunk_hdr_make(h, &ch, HEAP_CHUNK_RUN, cls, 0, 0);
	xmem__heap_rec_reset(l);
	if ((rc = xmem__heap_rec_add(l, HEAP_REDO_ZERO, 0,
				     heap_meta_off(h, c) + HEAP_META_BITMAP,
				     HEAP_BITMAP_BYTES, 0)) ||
	    (rc = rec_chunk_hdr(h, l, c, &ch)) ||
	    (rc = xmem__heap_rec_commit(h, l, HEAP_REC_OP, 0))) {
		xmem__heap_rec_reset(l);
		xmem__heap_extent_unreserve(h, c, 1);
		return -1;
	}
	pthread_mutex_lock(&h->chunk_lock);
	__atomic_store_n(&h->chunks[c].kind, HEAP_CHUNK_RUN, __ATOMIC_RELAXED);
	h->chunks[c].cls = (uint8_t)cls;
	h->chunks[c].nchunks = 0;
	struct heap_run *r = run_load(h, c);

	/* owned before the pool shows it: another lane's refill could
	 * otherwise take it too, and both would claim from it */
	if (r) {
		atomic_store(&r->owner, (int)l->idx);
		/* no other lane knows it yet */
		if (h->bits_plain)
			atomic_store(&r->shared, RUN_PRIVATE);
	}
	rc = r ? pool_add(h, cls, (int32_t)c) : -ENOMEM;
	pthread_mutex_unlock(&h->chunk_lock);
	return rc ? -1 : (int64_t)c;
}

/* Finds a run of class cls with free slots that no lane owns, and takes
 * it for lane l; creates one if none. Returns the chunk or -1. */
static int64_t run_refill(struct xmem_heap *h, struct heap_lane *l,
			  unsigned cls)
{
	typeof(h->pool[0]) *p = &h->pool[cls];
	int64_t found = -1;
	int scanned_more = 0;

	pthread_mutex_lock(&h->chunk_lock);
	for (size_t i = 0;;) {
		for (; i < p->n && found < 0; i++) {
			struct heap_run *r = run_load(h, (uint64_t)p->runs[i]);
			int none = -1;

			if (r && atomic_load(&r->nfree) &&
			    atomic_compare_exchange_strong(&r->owner, &none,
							   (int)l->idx)) {
				found = p->runs[i];
				xmem__heap_bits_owned(h, r);
			}
		}
		/* read one more stretch of headers before starting a new
		 * run (the stretches double, so the scan stays O(chunks)
		 * over the heap's life) */
		if (found >= 0 || scanned_more || h->scanned >= h->nchunks ||
		    scan_more(h, 1))
			break;
		scanned_more = 1;
	}
	pthread_mutex_unlock(&h->chunk_lock);
	if (found >= 0)
		return found;
	return run_create(h, l, cls);
}

/* Adds d to r's free count: plainly inside the owner's window, else
 * locked (see heap_bits.c). */
static void nfree_add(struct heap_run *r, int d, int plain)
{
	if (plain)
		atomic_store_explicit(
			&r->nfree,
			atomic_load_explicit(&r->nfree, memory_order_relaxed) +
				(uint32_t)d,
			memory_order_relaxed);
	else
		atomic_fetch_add(&r->nfree, (uint32_t)d);
}

/* Claims a free slot of run r, which lane l owns; returns the slot or
 * -1. Plain stores while the run is private (see heap_bits.c). */
static int64_t run_claim(struct xmem_heap *h, struct heap_lane *l,
			 struct heap_run *r)
{
	int plain = xmem__heap_bits_open(h, l, r);
	int64_t slot = -1;

	for (unsigned k = 0; k < HEAP_BITMAP_WORDS && slot < 0; k++) {
		unsigned w = (r->hint + k) % HEAP_BITMAP_WORDS;
		uint64_t v = atomic_load(&r->taken[w]);

		while (v != ~0ull) {
			uint64_t bit = ~v & (v + 1);

			if (plain) {
				xmem__shadow_pause(h, 1); /* (see heap_bits) */
				atomic_store_explicit(&r->taken[w], v | bit,
						      memory_order_relaxed);
			} else if (!atomic_compare_exchange_weak(&r->taken[w],
								 &v, v | bit))
				continue;
			nfree_add(r, -1, plain);
			r->hint = w;
			slot = (int64_t)w * 64 + __builtin_ctzll(bit);
			break;
		}
	}
	if (plain)
		xmem__heap_bits_close(l);
	return slot;
}

/* Reserves a small object of class cls through lane l's cached run. */
static int reserve_small(struct xmem_heap *h, struct heap_lane *l, unsigned cls,
			 uint64_t *off)
{
	for (int tries = 0; tries < 4; tries++) {
		int32_t c = l->cur_run[cls];
		int64_t slot;

		if (c >= 0) {
			struct heap_run *r = atomic_load(&h->chunks[c].run);

			if ((slot = run_claim(h, l, r)) >= 0) {
				*off = heap_chunk_off(h, (uint64_t)c) +
				       (uint64_t)slot *
					       xmem__heap_class_size[cls];
				return 0;
			}
			/* the owner lets it go: shared from now on (no
			 * barrier needed, as no other lane may update it
			 * plainly), until a lane takes it again */
			atomic_store(&r->shared, RUN_SHARED);
			atomic_store(&r->owner, -1);
			l->cur_run[cls] = -1;
		}
		int64_t nc = run_refill(h, l, cls);
		if (nc < 0)
			break;
		l->cur_run[cls] = (int32_t)nc;
	}
	return xmem__err(XMEM_E_NOSPACE, "heap: no space for a %u-byte object",
			 xmem__heap_class_size[cls]);
}

/* Reserves without retrying (see xmem__heap_reserve). */
static int reserve_once(struct xmem_heap *h, struct heap_lane *l, uint64_t size,
			uint64_t *off, uint32_t *cls)
{
	int c = xmem__heap_class_of(size);
	uint64_t first, n;
	int rc;

	if (c >= 0) {
		*cls = (uint32_t)c;
		return reserve_small(h, l, (unsigned)c, off);
	}
	if (size > h->nchunks * (uint64_t)HEAP_CHUNK_SIZE)
		return xmem__err(XMEM_E_NOSPACE,
				 "heap: %llu bytes exceed the heap's data area",
				 (unsigned long long)size);
	n = (size + HEAP_CHUNK_SIZE - 1) >> HEAP_CHUNK_SHIFT;
	if ((rc = xmem__heap_chunks_reserve(h, l, n, &first)))
		return rc;
	*cls = UINT32_MAX;
	*off = heap_chunk_off(h, first);
	return 0;
}

/*
 * Reserves space for an object of `size` bytes (volatile only; a record
 * makes it allocated). *cls gets the class, or UINT32_MAX for an extent.
 * Space the lane freed comes back once a checkpoint retired the frees.
 */
int xmem__heap_reserve(struct xmem_heap *h, struct heap_lane *l, uint64_t size,
		       uint64_t *off, uint32_t *cls)
{
	int rc;

	xmem__heap_release_due(h, l);
	rc = reserve_once(h, l, size, off, cls);
	if (rc == XMEM_E_NOSPACE && xmem__heap_defer_retire(h, l))
		rc = reserve_once(h, l, size, off, cls);
	return rc;
}

/* Locates the slot of a small object: chunk, run class and slot index. */
static void slot_of(const struct xmem_heap *h, uint64_t off, uint64_t *c,
		    uint64_t *slot, unsigned cls)
{
	*c = (off - h->hdr.data_off) >> HEAP_CHUNK_SHIFT;
	*slot = ((off - h->hdr.data_off) & (HEAP_CHUNK_SIZE - 1)) /
		xmem__heap_class_size[cls];
}

/* Marks slot `slot` of run r free in its volatile map, as lane l: plain
 * stores in a private run of l's, else locked (see heap_bits.c). */
static void slot_release(struct xmem_heap *h, struct heap_lane *l,
			 struct heap_run *r, uint64_t slot)
{
	uint64_t bit = 1ull << (slot % 64);
	int own = atomic_load_explicit(&r->owner, memory_order_relaxed) ==
		  (int)l->idx;
	int plain = own && xmem__heap_bits_open(h, l, r);

	if (!own)
		xmem__heap_bits_foreign(h, l, r);
	/* a run loaded after the free already shows the slot free */
	if (xmem__heap_bits_word(h, (uint64_t *)&r->taken[slot / 64], bit, 0,
				 plain) &
	    bit)
		nfree_add(r, 1, plain);
	if (plain)
		xmem__heap_bits_close(l);
	if (!own)
		xmem__heap_bits_foreign_done(r);
}

/* Gives back a reservation that no record made durable. */
void xmem__heap_unreserve(struct xmem_heap *h, struct heap_lane *l,
			  uint64_t off, uint32_t cls)
{
	uint64_t c, slot;

	if (cls == UINT32_MAX) {
		c = (off - h->hdr.data_off) >> HEAP_CHUNK_SHIFT;
		xmem__heap_extent_unreserve(h, c, h->chunks[c].nchunks);
		return;
	}
	slot_of(h, off, &c, &slot, cls);
	slot_release(h, l, atomic_load(&h->chunks[c].run), slot);
}

/* Adds the entries that mark a reserved object allocated with `type`. */
int xmem__heap_rec_alloc(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
			 uint32_t cls, uint32_t type)
{
	uint64_t c, slot, moff;
	int rc;

	if (cls == UINT32_MAX) {
		struct heap_chunk_hdr ch;

		c = (off - h->hdr.data_off) >> HEAP_CHUNK_SHIFT;
		chunk_hdr_make(h, &ch, HEAP_CHUNK_EXTENT, 0, type,
			       h->chunks[c].nchunks);
		h->chunks[c].type = (uint16_t)type;
		return rec_chunk_hdr(h, l, c, &ch);
	}
	slot_of(h, off, &c, &slot, cls);
	moff = heap_meta_off(h, c);
	/* the type word first: a lookup that sees the bit sees the type.
	 * A slot that held an object of the same type keeps its type word
	 * (written and made durable by an earlier record). */
	if (__atomic_load_n(
		    (uint16_t *)(h->base + moff + HEAP_META_TYPES + slot * 2),
		    __ATOMIC_RELAXED) != type &&
	    (rc = xmem__heap_rec_add(l, HEAP_REDO_SET, 2,
				     moff + HEAP_META_TYPES + slot * 2, type,
				     0)))
		return rc;
	/* the bitmap word and its mirror, one entry */
	if ((rc = xmem__heap_rec_add(l, HEAP_REDO_OR2, 8,
				     moff + HEAP_BM_OFF(slot / 64),
				     1ull << (slot % 64), 0)))
		return rc;
	return xmem__heap_bits_add(h, l, atomic_load(&h->chunks[c].run));
}

/* The live slot at byte `in` of a run of class c, from its bitmap. */
static int run_slot(const struct xmem_heap *h, const uint8_t *meta, uint64_t in,
		    unsigned c, uint64_t *size, uint32_t *type, uint32_t *cls)
{
	uint32_t csz = xmem__heap_class_size[c];
	uint64_t slot = in / csz, w;

	(void)h;
	if (in % csz || slot >= class_slots(c))
		return XMEM_E_BADOID;
	w = __atomic_load_n((const uint64_t *)(meta + HEAP_BM_OFF(slot / 64)),
			    __ATOMIC_RELAXED);
	if (!(w & (1ull << (slot % 64))))
		return XMEM_E_BADOID;
	*size = csz;
	*type = __atomic_load_n((const uint16_t *)(meta + HEAP_META_TYPES) +
					slot,
				__ATOMIC_RELAXED);
	*cls = c;
	return 0;
}

/*
 * Looks up a live object from the persistent metadata. Returns 0 with
 * its usable size, type and class (UINT32_MAX: extent), or
 * XMEM_E_BADOID.
 */
int xmem__heap_lookup(const struct xmem_heap *h, uint64_t off, uint64_t *size,
		      uint32_t *type, uint32_t *cls)
{
	const struct heap_chunk_hdr *ch;
	uint64_t c, in;
	const uint8_t *meta;

	if (off < h->hdr.data_off ||
	    off >= h->hdr.data_off + (h->nchunks << HEAP_CHUNK_SHIFT))
		return XMEM_E_BADOID;
	c = (off - h->hdr.data_off) >> HEAP_CHUNK_SHIFT;
	in = (off - h->hdr.data_off) & (HEAP_CHUNK_SIZE - 1);
	meta = h->base + h->hdr.meta_off + c * HEAP_META_SIZE;
	ch = (const void *)meta;
	/* an open heap's runs are known (their headers were validated at
	 * open or written by us); anything else reads the header */
	if (h->chunks && __atomic_load_n(&h->chunks[c].kind,
					 __ATOMIC_RELAXED) == HEAP_CHUNK_RUN) {
		struct heap_chunk_hdr t;
		memcpy(&t, ch, sizeof(t));
		if (t.kind != HEAP_CHUNK_RUN || t.epoch != h->hdr.epoch ||
		    t.cls >= HEAP_NCLASSES)
			return XMEM_E_BADOID;
		return run_slot(h, meta, in, t.cls, size, type, cls);
	}
	if (xmem__heap_chunk_hdr_valid(ch, h->hdr.epoch) != 1)
		return XMEM_E_BADOID;
	if (ch->kind == HEAP_CHUNK_EXTENT) {
		/* The header is untrusted until a scan bounded it: an extent
		 * must end inside the heap. */
		if (in || ch->nchunks == 0 || ch->nchunks > h->nchunks - c)
			return XMEM_E_BADOID;
		*size = (uint64_t)ch->nchunks << HEAP_CHUNK_SHIFT;
		*type = ch->type;
		*cls = UINT32_MAX;
		return 0;
	}
	if (ch->kind != HEAP_CHUNK_RUN)
		return XMEM_E_BADOID;
	return run_slot(h, meta, in, ch->cls, size, type, cls);
}

/*
 * Loads the run state of chunk c before a free of one of its slots is
 * committed: the slot is then taken in it until the free is released,
 * so the run cannot be reclaimed meanwhile (its state freed, or the
 * chunk made a run of another class whose slot the release would
 * clear).
 */
static int run_pin(struct xmem_heap *h, uint64_t c)
{
	int rc = 0;

	if (atomic_load(&h->chunks[c].run))
		return 0;
	pthread_mutex_lock(&h->chunk_lock);
	if (c >= h->scanned)
		rc = scan_to(h, c + 1);
	if (!rc && h->chunks[c].kind == HEAP_CHUNK_RUN && !run_load(h, c))
		rc = xmem__err(-ENOMEM, "heap: no memory for a run");
	pthread_mutex_unlock(&h->chunk_lock);
	return rc;
}

/* Adds the entries that free the live object at off. */
int xmem__heap_rec_free(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
			int *extent_out)
{
	uint64_t size, c, slot, moff;
	uint32_t type, cls;
	int rc;

	if ((rc = xmem__heap_lookup(h, off, &size, &type, &cls)))
		return xmem__err(rc, "heap: free of %#llx: not a live object",
				 (unsigned long long)off);
	*extent_out = cls == UINT32_MAX;
	if (cls == UINT32_MAX) {
		c = (off - h->hdr.data_off) >> HEAP_CHUNK_SHIFT;
		moff = heap_meta_off(h, c);
		if ((rc = xmem__heap_rec_add(l, HEAP_REDO_SET, 8, moff, 0, 0)))
			return rc;
		return xmem__heap_rec_add(l, HEAP_REDO_SET, 8, moff + 8, 0, 0);
	}
	slot_of(h, off, &c, &slot, cls);
	if ((rc = run_pin(h, c)))
		return rc;
	moff = heap_meta_off(h, c);
	if ((rc = xmem__heap_rec_add(l, HEAP_REDO_ANDN2, 8,
				     moff + HEAP_BM_OFF(slot / 64),
				     1ull << (slot % 64), 0)))
		return rc;
	return xmem__heap_bits_add(h, l, atomic_load(&h->chunks[c].run));
}

/* After a free is committed: makes the space available again. */
void xmem__heap_release_free(struct xmem_heap *h, struct heap_lane *l,
			     uint64_t off)
{
	uint64_t c = (off - h->hdr.data_off) >> HEAP_CHUNK_SHIFT;
	uint64_t slot;
	struct heap_run *r;

	/* the chunk lock only when the chunk's header is not read yet:
	 * frees of other threads do not meet on it */
	if (c >= __atomic_load_n(&h->scanned, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&h->chunk_lock);
		if (c >= h->scanned && scan_to(h, c + 1)) {
			pthread_mutex_unlock(&h->chunk_lock);
			return; /* damaged header: the space stays unused */
		}
		pthread_mutex_unlock(&h->chunk_lock);
	}
	if (__atomic_load_n(&h->chunks[c].kind, __ATOMIC_RELAXED) ==
		    HEAP_CHUNK_EXTENT &&
	    off == heap_chunk_off(h, c)) {
		xmem__heap_extent_unreserve(h, c, h->chunks[c].nchunks);
		return;
	}
	if (__atomic_load_n(&h->chunks[c].kind, __ATOMIC_RELAXED) !=
	    HEAP_CHUNK_RUN)
		return; /* read after the free: already free */
	if (!(r = run_get(h, c)))
		return; /* no memory: the slot stays unused until reopen */
	slot_of(h, off, &c, &slot, r->cls);
	slot_release(h, l, r, slot);
}
