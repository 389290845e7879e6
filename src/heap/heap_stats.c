/* SPDX-License-Identifier: MIT */
/*
 * heap_stats.c - statistics and iteration by type, both read from the
 * persistent metadata: O(chunks + run bitmaps).
 */
#include <errno.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"

/* Largest run of free chunks in the volatile map (chunk_lock held). */
static uint64_t largest_free_run(struct xmem_heap *h, uint64_t *nfree)
{
	uint64_t best = 0, run = 0;

	*nfree = 0;
	for (uint64_t c = 0; c < h->nchunks; c++) {
		if (h->freemap[c / 64] & (1ull << (c % 64))) {
			(*nfree)++;
			if (++run > best)
				best = run;
		} else {
			run = 0;
		}
	}
	return best;
}

XMEM_EXPORT int xmem_heap_stats(struct xmem_heap *h, struct xmem_heap_stats *st)
{
	uint64_t nfree_chunks, largest, slot_free = 0;

	int rc;

	if (!h || !st)
		return xmem__err(-EINVAL, "heap: NULL argument");
	if ((rc = xmem__heap_scan_all(h)))
		return rc;
	memset(st, 0, sizeof(*st));
	st->heap_size = h->size;
	st->chunk_size = HEAP_CHUNK_SIZE;
	st->nchunks = h->nchunks;
	st->data_size = h->nchunks * (uint64_t)HEAP_CHUNK_SIZE;
	st->nclasses = HEAP_NCLASSES;
	for (unsigned i = 0; i < HEAP_NCLASSES; i++)
		st->classes[i].size = xmem__heap_class_size[i];
	pthread_mutex_lock(&h->chunk_lock);
	largest = largest_free_run(h, &nfree_chunks);
	for (uint64_t c = 0; c < h->nchunks; c++) {
		struct heap_chunk_hdr *ch = heap_chunk_hdr(h, c);
		int v = xmem__heap_chunk_hdr_valid(ch, h->hdr.epoch);

		if (v != 1)
			continue;
		if (ch->kind == HEAP_CHUNK_EXTENT) {
			st->extents++;
			st->objects++;
			st->used += (uint64_t)ch->nchunks * HEAP_CHUNK_SIZE;
			c += ch->nchunks ? ch->nchunks - 1 : 0;
		} else if (ch->kind == HEAP_CHUNK_RUN) {
			struct heap_class_stats_acc {
				uint64_t live;
			} a = { 0 };
			const uint8_t *meta = (const uint8_t *)ch;
			uint32_t csz = xmem__heap_class_size[ch->cls];
			uint32_t nslots = HEAP_CHUNK_SIZE / csz;

			for (unsigned w = 0; w < HEAP_BITMAP_WORDS; w++)
				a.live += (uint64_t)__builtin_popcountll(
					__atomic_load_n(
						(const uint64_t *)(meta +
								   HEAP_BM_OFF(
									   w)),
						__ATOMIC_RELAXED));
			st->classes[ch->cls].runs++;
			st->classes[ch->cls].slots += nslots;
			st->classes[ch->cls].used += a.live;
			st->objects += a.live;
			st->used += a.live * csz;
			slot_free += (nslots - a.live) * (uint64_t)csz;
		}
	}
	pthread_mutex_unlock(&h->chunk_lock);
	st->free = nfree_chunks * HEAP_CHUNK_SIZE + slot_free;
	st->largest_free = largest * HEAP_CHUNK_SIZE;
	st->fragmentation =
		nfree_chunks ? 1.0 - (double)largest / (double)nfree_chunks
			     : 0.0;
	for (unsigned i = 0; i < HEAP_NLANES; i++)
		st->fences += h->lanes[i].fences;
	st->checkpoints = atomic_load(&h->nckpt);
	st->recovered_records = h->recovered;
	return 0;
}

XMEM_EXPORT int xmem_heap_foreach(struct xmem_heap *h, uint32_t type,
				  xmem_heap_iter_fn fn, void *arg)
{
	int rc;

	if (!h || !fn)
		return xmem__err(-EINVAL, "heap: NULL argument");
	for (uint64_t c = 0; c < h->nchunks; c++) {
		struct heap_chunk_hdr *ch = heap_chunk_hdr(h, c);
		uint8_t *meta = (uint8_t *)ch;

		if (xmem__heap_chunk_hdr_valid(ch, h->hdr.epoch) != 1)
			continue;
		if (ch->kind == HEAP_CHUNK_EXTENT) {
			uint64_t n = ch->nchunks;

			/* An extent past the heap's end is damage for check
			 * to report; it lists nothing. */
			if (n == 0 || n > h->nchunks - c)
				continue;
			if ((type == XMEM_HEAP_ANY_TYPE || ch->type == type) &&
			    (rc = fn(heap_chunk_off(h, c),
				     n << HEAP_CHUNK_SHIFT, ch->type, arg)))
				return rc;
			c += n - 1;
			continue;
		}
		if (ch->kind != HEAP_CHUNK_RUN)
			continue;
		uint32_t csz = xmem__heap_class_size[ch->cls];
		uint32_t nslots = HEAP_CHUNK_SIZE / csz;
		const uint16_t *ty = (const uint16_t *)(meta + HEAP_META_TYPES);
		for (uint32_t s = 0; s < nslots; s++) {
			uint64_t w = __atomic_load_n(
				(const uint64_t *)(meta + HEAP_BM_OFF(s / 64)),
				__ATOMIC_RELAXED);
			if (!(w & (1ull << (s % 64))))
				continue;
			uint16_t t = __atomic_load_n(&ty[s], __ATOMIC_RELAXED);
			if ((type == XMEM_HEAP_ANY_TYPE || t == type) &&
			    (rc = fn(heap_chunk_off(h, c) + (uint64_t)s * csz,
				     csz, t, arg)))
				return rc;
		}
	}
	return 0;
}
