/* SPDX-License-Identifier: MIT */
/*
 * heap_defer.c - frees wait for the checkpoint that retires their record
 * before their space is reused: until then a live redo entry may still
 * target the freed memory (a reference published into the old object),
 * and replaying it must not land in a new object. A lane queues its
 * frees in sequence order and releases the retired ones when it next
 * reserves space; a full heap forces a checkpoint first.
 */
#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "heap/heap_internal.h"

/* Appends to the lane's queue (in seq order); -ENOMEM without memory. */
static int defer_push(struct heap_lane *l, uint64_t off, uint64_t nchunks,
		      uint64_t seq)
{
	if (xmem__vec_grow((void **)&l->defer, &l->capdefer, l->ndefer + 1,
			   sizeof(*l->defer)))
		return -ENOMEM;
	l->defer[l->ndefer++] = (struct heap_defer){ .off = off,
						     .seq = seq,
						     .nchunks = nchunks };
	return 0;
}

/* Queues a committed free (the lane's last record) until a checkpoint
 * retires that record; without memory the space stays unused until the
 * heap is opened again. */
int xmem__heap_defer_free(struct xmem_heap *h, struct heap_lane *l,
			  uint64_t off)
{
	/* a lane that only frees still gives space back */
	xmem__heap_release_due(h, l);
	if (l->hdefer && l->hdefer * 2 >= l->ndefer) {
		memmove(l->defer, l->defer + l->hdefer,
			(l->ndefer - l->hdefer) * sizeof(*l->defer));
		l->ndefer -= l->hdefer;
		l->hdefer = 0;
	}
	return defer_push(l, off, 0, l->last_seq);
}

/* Without memory to note it, the segment stays reserved until the heap
 * is opened again. */
int xmem__heap_defer_segment(struct heap_lane *l, uint64_t first, uint64_t n,
			     uint64_t seq)
{
	return defer_push(l, first, n, seq);
}

/* Releases the lane's deferred frees that a checkpoint has retired. */
void xmem__heap_release_due(struct xmem_heap *h, struct heap_lane *l)
{
	uint64_t c;

	if (l->hdefer == l->ndefer)
		return;
	c = atomic_load_explicit(&h->ckpt_seq, memory_order_acquire);
	while (l->hdefer < l->ndefer && l->defer[l->hdefer].seq <= c) {
		const struct heap_defer *d = &l->defer[l->hdefer++];

		if (d->nchunks) /* a segment of a retired record */
			xmem__heap_extent_unreserve(h, d->off, d->nchunks);
		else
			xmem__heap_release_free(h, l, d->off);
	}
	if (l->hdefer == l->ndefer)
		l->hdefer = l->ndefer = 0;
}

/*
 * Retires deferred frees with a checkpoint (when the heap is full) and
 * releases them: the lane's own, and those of every other lane that is
 * not held right now (a held lane releases its own at its next alloc or
 * free). The checkpoint cannot pass the lane's open transaction. Returns
 * 1 if it ran.
 */
int xmem__heap_defer_retire(struct xmem_heap *h, struct heap_lane *l)
{
	uint64_t need = atomic_load(&h->next_seq) - 1;

	if (l->tx.txid)
		need = MIN(need, l->tx.txid - 1);
	if (need <= atomic_load(&h->ckpt_seq) ||
	    xmem__heap_checkpoint(h, l, need, 0))
		return 0;
	xmem__heap_release_due(h, l);
	for (unsigned i = 0; i < HEAP_NLANES; i++) {
		struct heap_lane *o = &h->lanes[i];

		if (o == l || pthread_mutex_trylock(&o->lock))
			continue;
		xmem__heap_release_due(h, o);
		pthread_mutex_unlock(&o->lock);
	}
	return 1;
}
