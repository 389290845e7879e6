/* SPDX-License-Identifier: MIT */
/*
 * heap.c - creating, opening and closing a heap; lanes; the root object;
 * reference conversion.
 *
 * Open costs O(lanes x log size) for recovery plus O(chunks) for the
 * chunk header scan (4096 headers per GiB); it does not depend on the
 * number of objects: run bitmaps are read on first use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"

static _Atomic uint64_t heap_gen_counter = 1;

/* Per-thread lane cache: which lane this thread uses in which heap, and
 * how deeply it holds it. */
struct tls_lane {
	uint64_t gen;
	unsigned idx;
	int depth;
};
/* initial-exec: read at a fixed offset from the thread pointer, also
 * from the shared library (no __tls_get_addr call per operation); 100
 * bytes of the static TLS reserve */
#define TLS_IE __attribute__((tls_model("initial-exec")))
static __thread TLS_IE struct tls_lane tls_lanes[4];
static __thread TLS_IE unsigned tls_next;
static __thread TLS_IE unsigned tls_last; /* the entry found last */

/* Finds (or assigns) the calling thread's lane entry for heap h. */
static struct tls_lane *tls_find_slow(struct xmem_heap *h)
{
	struct tls_lane *t;

	for (unsigned i = 0; i < ARRAY_SIZE(tls_lanes); i++)
		if (tls_lanes[i].gen == h->gen) {
			tls_last = i;
			return &tls_lanes[i];
		}
	for (unsigned i = 0; i < ARRAY_SIZE(tls_lanes); i++)
		if (!tls_lanes[i].depth) {
			unsigned k = (tls_next + i) % ARRAY_SIZE(tls_lanes);

			t = &tls_lanes[k];
			if (t->depth)
				continue;
			tls_next++;
			tls_last = k;
			t->gen = h->gen;
			t->idx = atomic_fetch_add(&h->lane_rr, 1) % HEAP_NLANES;
			return t;
		}
	return NULL;
}

/* The same; inline, the entry found last tried first. */
static inline struct tls_lane *tls_find(struct xmem_heap *h)
{
	struct tls_lane *t = &tls_lanes[tls_last];

	return likely(t->gen == h->gen) ? t : tls_find_slow(h);
}

/* Takes the calling thread's lane (re-entrant). NULL if the thread
 * already holds lanes of four other heaps. */
struct heap_lane *xmem__heap_lane_get(struct xmem_heap *h)
{
	struct tls_lane *t = tls_find(h);
	struct heap_lane *l;

	if (!t) {
		xmem__err(-EBUSY, "heap: thread holds lanes of 4 heaps");
		return NULL;
	}
	l = &h->lanes[t->idx];
	if (!t->depth++)
		pthread_mutex_lock(&l->lock);
	return l;
}

/* Releases one hold of the lane. */
void xmem__heap_lane_put(struct xmem_heap *h, struct heap_lane *l)
{
	struct tls_lane *t = tls_find(h);

	if (t && t->depth && !--t->depth)
		pthread_mutex_unlock(&l->lock);
}

_Static_assert(offsetof(struct xmem_heap, base) == 0 &&
		       sizeof(((struct xmem_heap *)0)->base) ==
			       sizeof(((struct xmem_heap_head *)0)->base),
	       "xmem_heap_ptr() reads the base as the heap's first member");

/* The lane the calling thread holds in h, or NULL. */
struct heap_lane *xmem__heap_lane_mine(struct xmem_heap *h)
{
	for (unsigned i = 0; i < ARRAY_SIZE(tls_lanes); i++)
		if (tls_lanes[i].gen == h->gen && tls_lanes[i].depth)
			return &h->lanes[tls_lanes[i].idx];
	return NULL;
}

/* Computes the layout for a heap of `size` bytes into hd. */
static int layout(struct heap_header *hd, uint64_t size)
{
	uint64_t meta_off =
		HEAP_LANES_OFF + (uint64_t)HEAP_NLANES * HEAP_LANE_SIZE;
	uint64_t n;

	if (size < HEAP_MIN_SIZE)
		return xmem__err(-EINVAL,
				 "heap: %llu bytes is below the minimum "
				 "heap size of 4 MiB",
				 (unsigned long long)size);
	n = (size - meta_off) / (HEAP_CHUNK_SIZE + HEAP_META_SIZE);
	while (n && align_up(meta_off + n * HEAP_META_SIZE, XMEM_PAGE) +
				    n * HEAP_CHUNK_SIZE >
			    size)
		n--;
	if (!n)
		return xmem__err(-EINVAL, "heap: no room for a chunk");
	hd->heap_size = size;
	hd->nlanes = HEAP_NLANES;
	hd->lane_size = HEAP_LANE_SIZE;
	hd->ring_size = HEAP_RING_SIZE;
	hd->chunk_size = HEAP_CHUNK_SIZE;
	hd->meta_size = HEAP_META_SIZE;
	hd->lanes_off = HEAP_LANES_OFF;
	hd->meta_off = meta_off;
	hd->data_off = align_up(meta_off + n * HEAP_META_SIZE, XMEM_PAGE);
	hd->nchunks = n;
	return 0;
}

/* Validates a header read from a heap of `size` bytes; 0 or -1 with why. */
int xmem__heap_header_valid(const struct heap_header *hd, uint64_t size,
			    char *why, size_t whylen)
{
	struct heap_header want;

	if (memcmp(hd->magic, HEAP_MAGIC, 8)) {
		snprintf(why, whylen, "no heap magic");
		return -1;
	}
	if (xmem__csum_struct(hd, sizeof(*hd),
			      offsetof(struct heap_header, csum)) != hd->csum) {
		snprintf(why, whylen, "checksum mismatch");
		return -1;
	}
	if (le32(hd->version) < HEAP_VERSION_MIN ||
	    le32(hd->version) > HEAP_VERSION) {
		snprintf(why, whylen, "layout version %u (this is %u)",
			 le32(hd->version), HEAP_VERSION);
		return -2;
	}
	memset(&want, 0, sizeof(want));
	if (hd->heap_size > size || layout(&want, hd->heap_size) ||
	    hd->meta_off != want.meta_off || hd->data_off != want.data_off ||
	    hd->nchunks != want.nchunks || hd->nlanes != HEAP_NLANES ||
	    hd->lane_size != HEAP_LANE_SIZE || !hd->epoch ||
	    hd->chunk_size != HEAP_CHUNK_SIZE ||
	    hd->meta_size != HEAP_META_SIZE) {
		snprintf(why, whylen,
			 "geometry does not match a %llu-byte heap in a "
			 "%llu-byte mapping",
			 (unsigned long long)hd->heap_size,
			 (unsigned long long)size);
		return -1;
	}
	return 0;
}

/* Allocates the volatile heap object for [base, base+size). */
static int heap_new(uint8_t *base, uint64_t size,
		    const struct xmem_persist_ops *ops, struct xmem_heap **hp)
{
	/* line-aligned: its hot fields and lanes sit in lines of their own */
	struct xmem_heap *h = aligned_alloc(64, align_up(sizeof(*h), 64));

	if (!h)
		return xmem__err(-ENOMEM, "heap: out of memory");
	memset(h, 0, sizeof(*h));
	h->base = base;
	h->size = size;
	h->ops = ops;
	h->gen = atomic_fetch_add(&heap_gen_counter, 1);
	h->bits_plain = xmem__heap_bits_init();
	xmem__shadow_open(h);
	pthread_mutex_init(&h->chunk_lock, NULL);
	pthread_mutex_init(&h->ckpt_lock, NULL);
	pthread_mutex_init(&h->root_lock, NULL);
	/* zero pages until a lane's records write user words */
	h->uwords_all = calloc((size_t)HEAP_NLANES * HEAP_UWORDS_MAX,
			       sizeof(*h->uwords_all));
	h->dirty_all = calloc((size_t)HEAP_NLANES * HEAP_DIRTY_MAX,
			      sizeof(*h->dirty_all));
	if (!h->uwords_all || !h->dirty_all) {
		free(h->uwords_all);
		free(h->dirty_all);
		free(h);
		return xmem__err(-ENOMEM, "heap: out of memory");
	}
	for (unsigned i = 0; i < HEAP_NLANES; i++) {
		struct heap_lane *l = &h->lanes[i];

		pthread_mutex_init(&l->lock, NULL);
		l->idx = i;
		l->uwords = h->uwords_all + (size_t)i * HEAP_UWORDS_MAX;
		l->dirty = h->dirty_all + (size_t)i * HEAP_DIRTY_MAX;
		for (unsigned c = 0; c < HEAP_NCLASSES; c++)
			l->cur_run[c] = -1;
	}
	*hp = h;
	return 0;
}

/* Frees the volatile heap object. */
static void heap_free(struct xmem_heap *h)
{
	xmem__heap_alloc_fini(h);
	for (unsigned i = 0; i < HEAP_NLANES; i++) {
		struct heap_lane *l = &h->lanes[i];

		xmem__heap_tx_fini(&l->tx);
		free(l->rbuf);
		free(l->pend);
		free(l->bits);
		free(l->ntw);
		free(l->defer);
		pthread_mutex_destroy(&l->lock);
	}
	xmem__shadow_close(h);
	pthread_mutex_destroy(&h->chunk_lock);
	pthread_mutex_destroy(&h->ckpt_lock);
	pthread_mutex_destroy(&h->root_lock);
	free(h->uwords_all);
	free(h->dirty_all);
	free(h);
}

/*
 * Writes a fresh heap into [base, base+size): headers, checkpoint, root
 * line and done words. Old chunk metadata and logs are left alone: the new
 * epoch makes them void. One fence.
 */
int xmem__heap_create_mem(uint8_t *base, uint64_t size,
			  const struct xmem_persist_ops *ops)
{
	struct heap_header hd;
	int rc;

	memset(&hd, 0, sizeof(hd));
	if ((rc = layout(&hd, size)))
		return rc;
	memcpy(hd.magic, HEAP_MAGIC, 8);
	hd.version = le32(HEAP_VERSION);
	hd.created = (uint64_t)time(NULL);
	do {
		if (getrandom(&hd.epoch, sizeof(hd.epoch), 0) != 4 ||
		    getrandom(hd.uuid, sizeof(hd.uuid), 0) != 16)
			return xmem__err(-errno, "heap: getrandom failed");
	} while (!hd.epoch);
	hd.csum = xmem__csum_struct(&hd, sizeof(hd),
				    offsetof(struct heap_header, csum));
	/* checkpoint copies (C = 0) around the empty root line */
	memset(base + HEAP_CKPT_OFF, 0, 192);
	xmem__heap_ckpt_make((struct heap_ckpt *)(base + HEAP_CKPT_OFF), 0,
			     hd.epoch);
	xmem__heap_ckpt_make((struct heap_ckpt *)(base + HEAP_CKPT_B_OFF), 0,
			     hd.epoch);
	/* no done word yet: a word left by an older heap would read as
	 * damage */
	memset(base + HEAP_DONE_OFF, 0, HEAP_NLANES * 64);
	memcpy(base + HEAP_HDR_BACKUP_OFF, &hd, sizeof(hd));
	memcpy(base + HEAP_HDR_OFF, &hd, sizeof(hd));
	ops->flush(base + HEAP_DONE_OFF, HEAP_NLANES * 64);
	ops->flush(base + HEAP_CKPT_OFF, 192);
	ops->flush(base + HEAP_HDR_BACKUP_OFF, sizeof(hd));
	ops->flush(base + HEAP_HDR_OFF, sizeof(hd));
	/* The new header, checkpoint and empty root must be durable before
	 * the heap is used. */
	ops->drain();
	return 0;
}

/*
 * Marks a heap of an older layout version (already recovered) with this
 * one before anything writes entries the older code would reject. The
 * backup copy first: a crash between the two leaves the primary old,
 * and the next open does this again. Two fences.
 */
static void header_upgrade(struct xmem_heap *h)
{
	struct heap_header hd = h->hdr;

	if (le32(hd.version) == HEAP_VERSION)
		return;
	hd.version = le32(HEAP_VERSION);
	hd.csum = xmem__csum_struct(&hd, sizeof(hd),
				    offsetof(struct heap_header, csum));
	memcpy(h->base + HEAP_HDR_BACKUP_OFF, &hd, sizeof(hd));
	h->ops->flush(h->base + HEAP_HDR_BACKUP_OFF, sizeof(hd));
	h->ops->drain();
	memcpy(h->base + HEAP_HDR_OFF, &hd, sizeof(hd));
	h->ops->flush(h->base + HEAP_HDR_OFF, sizeof(hd));
	/* durable before any record of this version */
	h->ops->drain();
	h->hdr = hd;
}

/* Opens the heap at [base, base+size): validates, recovers, scans. */
int xmem__heap_open_mem(uint8_t *base, uint64_t size,
			const struct xmem_persist_ops *ops, unsigned flags,
			struct xmem_heap **hp)
{
	struct heap_header hd, bk;
	struct xmem_heap *h = NULL;
	char why[160], bwhy[160];
	int rc, v;

	if (size < HEAP_MIN_SIZE)
		return xmem__err(XMEM_E_CORRUPT,
				 "heap: mapping of %llu bytes is too small",
				 (unsigned long long)size);
	memcpy(&hd, base + HEAP_HDR_OFF, sizeof(hd));
	if ((v = xmem__heap_header_valid(&hd, size, why, sizeof(why)))) {
		memcpy(&bk, base + HEAP_HDR_BACKUP_OFF, sizeof(bk));
		int bv = xmem__heap_header_valid(&bk, size, bwhy, sizeof(bwhy));
		if (v == -2)
			return xmem__err(XMEM_E_VERSION, "heap header: %s",
					 why);
		return xmem__err(XMEM_E_CORRUPT,
				 "heap header at offset 0: %s%s", why,
				 bv ? ""
				    : " (the backup copy at 2048 is "
				      "intact: run 'xmem heap check "
				      "--repair')");
	}
	if ((rc = heap_new(base, size, ops, &h)))
		return rc;
	h->hdr = hd;
	h->nchunks = hd.nchunks;
	if (flags & HEAP_OPEN_FRESH) {
		/* just created with a new epoch: no log record is valid, so
		 * recovery has nothing to read (C = 0) */
		atomic_store(&h->next_seq, 1);
	} else if ((rc = xmem__heap_recover(h))) {
		heap_free(h);
		return rc;
	}
	if ((rc = xmem__heap_alloc_init(h))) {
		heap_free(h);
		return rc;
	}
	header_upgrade(h);
	(void)flags;
	*hp = h;
	return 0;
}

XMEM_EXPORT int xmem_heap_create_map(struct xmem_map *m, unsigned flags,
				     struct xmem_heap **hp)
{
	int rc;

	if (!m || !hp)
		return xmem__err(-EINVAL, "heap: NULL argument");
	rc = xmem__heap_create_mem(xmem_map_addr(m), xmem_map_size(m),
				   xmem_map_ops(m));
	if (!rc && !(rc = xmem__heap_open_mem(xmem_map_addr(m),
					      xmem_map_size(m), xmem_map_ops(m),
					      flags | HEAP_OPEN_FRESH, hp))) {
		(*hp)->map = m;
		xmem__heap_alloc_fresh(*hp);
	}
	return rc;
}

XMEM_EXPORT int xmem_heap_open_map(struct xmem_map *m, unsigned flags,
				   struct xmem_heap **hp)
{
	int rc;

	if (!m || !hp)
		return xmem__err(-EINVAL, "heap: NULL argument");
	rc = xmem__heap_open_mem(xmem_map_addr(m), xmem_map_size(m),
				 xmem_map_ops(m), flags, hp);
	if (!rc)
		(*hp)->map = m;
	return rc;
}

/* Maps a range and checks its mode; the map is owned by the heap. */
static int range_heap(struct xmem_range *r, unsigned flags, int create,
		      struct xmem_heap **hp)
{
	const struct xmem_range_info *ri;
	struct xmem_map *m = NULL;
	int rc;

	if (!r || !hp)
		return xmem__err(-EINVAL, "heap: NULL argument");
	ri = xmem_range_get_info(r);
	if (ri->mode != XMEM_RANGE_HEAP)
		return xmem__err(XMEM_E_MODE,
				 "range '%s' has mode %s, not heap", ri->name,
				 xmem_range_mode_name(ri->mode));
	if ((rc = xmem_range_map(r, 0, &m)))
		return rc;
	rc = create ? xmem_heap_create_map(m, flags, hp)
		    : xmem_heap_open_map(m, flags, hp);
	if (rc) {
		xmem_map_delete(&m);
		return rc;
	}
	(*hp)->range = r;
	return 0;
}

XMEM_EXPORT int xmem_heap_create(struct xmem_range *r, unsigned flags,
				 struct xmem_heap **hp)
{
	return range_heap(r, flags, 1, hp);
}

XMEM_EXPORT int xmem_heap_open(struct xmem_range *r, unsigned flags,
			       struct xmem_heap **hp)
{
	return range_heap(r, flags, 0, hp);
}

/* Closes the heap: a final checkpoint retires every log. */
void xmem__heap_close_mem(struct xmem_heap *h)
{
	xmem__heap_checkpoint(h, &h->lanes[0], 0, 0);
	heap_free(h);
}

XMEM_EXPORT void xmem_heap_close(struct xmem_heap **hp)
{
	struct xmem_heap *h;
	struct xmem_map *m;
	int own;

	if (!hp || !*hp)
		return;
	h = *hp;
	m = h->map;
	own = h->range != NULL;
	xmem__heap_close_mem(h);
	if (own)
		xmem_map_delete(&m);
	*hp = NULL;
}

XMEM_EXPORT void *xmem_heap_base(const struct xmem_heap *h)
{
	return h->base;
}

XMEM_EXPORT uint64_t xmem_heap_size(const struct xmem_heap *h)
{
	return h->size;
}

XMEM_EXPORT xmem_oid xmem_heap_oid(const struct xmem_heap *h, const void *ptr)
{
	const uint8_t *p = ptr;

	if (!p || p < h->base + h->hdr.data_off || p >= h->base + h->size)
		return XMEM_OID_NULL;
	return (xmem_oid)(p - h->base);
}

XMEM_EXPORT int xmem_heap_object_info(const struct xmem_heap *h, xmem_oid oid,
				      uint64_t *size, uint32_t *type)
{
	uint64_t sz;
	uint32_t ty, cls;
	int rc = xmem__heap_lookup(h, oid, &sz, &ty, &cls);

	if (rc)
		return xmem__err(rc, "heap: %#llx is not a live object",
				 (unsigned long long)oid);
	if (size)
		*size = sz;
	if (type)
		*type = ty;
	return 0;
}

XMEM_EXPORT int xmem_heap_get(const struct xmem_heap *h, xmem_oid oid,
			      uint32_t type, void **ptr)
{
	uint64_t sz;
	uint32_t ty, cls;
	int rc = xmem__heap_lookup(h, oid, &sz, &ty, &cls);

	if (rc)
		return xmem__err(rc, "heap: %#llx is not a live object",
				 (unsigned long long)oid);
	if (type != XMEM_HEAP_ANY_TYPE && ty != type)
		return xmem__err(XMEM_E_BADOID,
				 "heap: object %#llx has type %u, not %u",
				 (unsigned long long)oid, ty, type);
	*ptr = h->base + oid;
	return 0;
}

XMEM_EXPORT int xmem_heap_root(struct xmem_heap *h, size_t size, uint32_t type,
			       xmem_oid *oid)
{
	struct heap_root *root = (struct heap_root *)(h->base + HEAP_ROOT_OFF);
	uint64_t sz;
	uint32_t ty, cls;
	int rc = 0;

	pthread_mutex_lock(&h->root_lock);
	if (!root->oid) {
		rc = xmem__heap_alloc_dest(h, &root->oid, size, type,
					   XMEM_F_HEAP_ZERO, NULL, NULL);
	} else if (xmem__heap_lookup(h, root->oid, &sz, &ty, &cls)) {
		rc = xmem__err(XMEM_E_CORRUPT,
			       "heap: root reference %#llx is not a live "
			       "object",
			       (unsigned long long)root->oid);
	} else if (size > sz) {
		rc = xmem__err(-EINVAL,
			       "heap: root exists with %llu bytes, %zu asked",
			       (unsigned long long)sz, size);
	}
	if (!rc)
		*oid = root->oid;
	pthread_mutex_unlock(&h->root_lock);
	return rc;
}

XMEM_EXPORT void xmem_heap_persist(struct xmem_heap *h, const void *addr,
				   size_t len)
{
	h->ops->flush(addr, len);
	/* the change must not be durable while recovery could still write
	 * a DATA entry over it */
	xmem__heap_flush_done(h);
	h->ops->drain();
}

XMEM_EXPORT int xmem_heap_checkpoint(struct xmem_heap *h)
{
	struct heap_lane *l = xmem__heap_lane_get(h);
	int rc;

	if (!l)
		return xmem__err(-EBUSY, "heap: no lane");
	rc = xmem__heap_checkpoint(h, l, 0, 0);
	xmem__heap_lane_put(h, l);
	return rc;
}
