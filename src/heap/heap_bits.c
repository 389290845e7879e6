/* SPDX-License-Identifier: MIT */
/*
 * heap_bits.c - applying a record's bitmap updates at run time.
 *
 * Each alloc or free sets or clears a bit of its run's persistent bitmap
 * (and of the mirror word). Frees of other lanes may clear bits of the
 * same word, so the update used to be a locked OR or AND NOT. Applied
 * right after the record's fence, that locked instruction waited for the
 * fence's non-temporal stores to drain, where a plain store would have
 * let the lane go on: about 40 ns of a 360 ns alloc+free pair, and 17 ns
 * of a 210 ns transactional alloc, measured here.
 *
 * So the lane that owns a run updates its words with a plain load and
 * store, as long as the run is RUN_PRIVATE; it does so inside a window
 * (l->win odd) that it opens before it reads `shared`. Any other lane
 * (a free into another lane's run, or into a run no lane owns) first
 * counts itself in r->inflight, and makes the run RUN_SHARED if it is
 * not: it marks it RUN_SHARING, runs a process-wide memory barrier
 * (membarrier), and waits until every other lane that was inside a
 * window has left it. After the barrier an owner either sees the mark,
 * or had opened its window before it (and is waited for). Every update
 * of a shared run is locked.
 *
 * The barrier costs about 0.3 us with one thread running and 17 us with
 * two here, once per run until a lane takes the run again: a refill
 * makes it private again when no other lane's update is in flight. It is
 * needed only while the run has an owner: a run no lane owns is shared
 * (read from the media so, and an owner that lets a full run go marks it
 * shared itself, outside its windows). Without membarrier (an old
 * kernel), every update is locked.
 *
 * Costs: O(1) per update; a run's first foreign update O(lanes) plus the
 * barrier.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"

static int membarrier_ok;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
	membarrier_ok =
		syscall(__NR_membarrier,
			MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* 1 if owners may update their runs' bitmaps without locks (the process
 * could register for expedited membarrier). */
int xmem__heap_bits_init(void)
{
	pthread_once(&membarrier_once, membarrier_register);
	return membarrier_ok;
}

/* Opens lane l's window. The
 * membarrier of a lane making a run shared orders the opening before the
 * reads of the runs' state that follow it. */
static void win_open(struct heap_lane *l)
{
	uint64_t w = atomic_load_explicit(&l->win, memory_order_relaxed);

	atomic_store_explicit(&l->win, w + 1, memory_order_relaxed);
	/* nor may the compiler move those reads above the opening (the
	 * barrier orders only the processor) */
	atomic_signal_fence(memory_order_seq_cst);
}

void xmem__heap_bits_close(struct heap_lane *l)
{
	atomic_store_explicit(
		&l->win,
		atomic_load_explicit(&l->win, memory_order_relaxed) + 1,
		memory_order_release);
}

/* Makes r shared before lane l's foreign update of it (l counted in
 * r->inflight already). */
static void run_share(struct xmem_heap *h, struct heap_lane *l,
		      struct heap_run *r)
{
	int s = atomic_load(&r->shared);

	if (s == RUN_PRIVATE &&
	    atomic_compare_exchange_strong(&r->shared, &s, RUN_SHARING)) {
		/* every other thread passes a full barrier: an owner that
		 * read RUN_PRIVATE had its window open before it */
		if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED,
			    0, 0)) /* registered at open: not expected */
			(void)syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0,
				      0);
		for (unsigned i = 0; i < HEAP_NLANES; i++) {
			struct heap_lane *o = &h->lanes[i];
			uint64_t w;

			if (o == l)
				continue;
			w = atomic_load_explicit(&o->win, memory_order_acquire);
			while ((w & 1) &&
			       atomic_load_explicit(&o->win,
						    memory_order_acquire) == w)
				sched_yield(); /* a window holds no lock */
		}
		atomic_store_explicit(&r->shared, RUN_SHARED,
				      memory_order_release);
		return;
	}
	/* another lane is making it shared */
	while (atomic_load_explicit(&r->shared, memory_order_acquire) ==
	       RUN_SHARING)
		sched_yield();
}

/*
 * Called as the record gains the update of a bit of run r (its entries
 * are in the record already): a run the lane does not own is counted
 * and made shared first, and listed until the record is applied or
 * dropped. Updates of the lane's own runs need nothing here.
 */
int xmem__heap_bits_add(struct xmem_heap *h, struct heap_lane *l,
			struct heap_run *r)
{
	if (!r) /* a slot's chunk always has its run loaded by now */
		return xmem__err(XMEM_E_CORRUPT,
				 "heap: a bitmap update names a chunk "
				 "with no run state");
	if (h->bits_plain &&
	    atomic_load_explicit(&r->owner, memory_order_relaxed) ==
		    (int)l->idx)
		return 0;
	if (xmem__vec_grow((void **)&l->bits, &l->capbits, l->nbits + 1,
			   sizeof(*l->bits)))
		return -ENOMEM;
	l->bits[l->nbits++] = r;
	xmem__heap_bits_foreign(h, l, r);
	return 0;
}

/*
 * Applies the bitmap updates (OR and AND NOT entries) of the record the
 * lane just made durable, which this process built: each targets a word
 * of a run's metadata, whose run is loaded.
 */
void xmem__heap_bits_apply(struct xmem_heap *h, struct heap_lane *l)
{
	size_t pos = 0, n;

	win_open(l);
	for (; pos < l->rlen; pos += n) {
		uint64_t e[2], c, *p;
		unsigned op;
		struct heap_run *r;
		int plain, set;

		memcpy(e, l->rbuf + pos, 16);
		n = heap_ent_len(e[0], e[1]);
		op = (unsigned)(e[0] >> 56);
		if (!heap_op_bits(op))
			continue;
		c = ((e[0] & HEAP_REDO_OFF_MASK) - h->hdr.meta_off) /
		    HEAP_META_SIZE;
		r = c < h->nchunks ? atomic_load_explicit(&h->chunks[c].run,
							  memory_order_relaxed)
				   : NULL;
		plain = r &&
			atomic_load_explicit(&r->owner, memory_order_relaxed) ==
				(int)l->idx &&
			atomic_load_explicit(&r->shared,
					     memory_order_relaxed) ==
				RUN_PRIVATE;
		plain = plain && h->bits_plain;
		p = (uint64_t *)(h->base + (e[0] & HEAP_REDO_OFF_MASK));
		set = op == HEAP_REDO_OR || op == HEAP_REDO_OR2;
		xmem__heap_bits_word(h, p, e[1], set, plain);
		if (op == HEAP_REDO_OR2 || op == HEAP_REDO_ANDN2) /* mirror */
			xmem__heap_bits_word(h, p + 4, e[1], set, plain);
	}
	xmem__heap_bits_close(l);
	xmem__heap_bits_drop(l);
}

/* Forgets the record's foreign runs (applied or abandoned). */
void xmem__heap_bits_drop(struct heap_lane *l)
{
	for (size_t i = 0; i < l->nbits; i++)
		xmem__heap_bits_foreign_done(l->bits[i]);
	l->nbits = 0;
}

/*
 * Called when a lane has just taken run r (its owner now): the run is
 * made private again unless another lane's update of it is in flight.
 * A lane that counts itself in inflight after the store of RUN_PRIVATE
 * reads RUN_PRIVATE and makes the run shared again (with the barrier).
 */
void xmem__heap_bits_owned(struct xmem_heap *h, struct heap_run *r)
{
	if (!h->bits_plain ||
	    atomic_load_explicit(&r->shared, memory_order_relaxed) ==
		    RUN_PRIVATE)
		return;
	if (atomic_load(&r->inflight))
		return;
	atomic_store(&r->shared, RUN_PRIVATE); /* full barrier, then: */
	if (atomic_load(&r->inflight))
		atomic_store(&r->shared, RUN_SHARED);
}

/*
 * The volatile slot map of a run (taken[] and nfree) follows the same
 * rule: its owner claims and releases slots with plain stores while the
 * run is private, inside its window; another lane counts itself in
 * inflight, makes the run shared, and uses locked instructions.
 */

/* Opens lane l's window if it owns r and r is private: 1 if it may then
 * update r plainly (and must call xmem__heap_bits_close), else 0. */
int xmem__heap_bits_open(struct xmem_heap *h, struct heap_lane *l,
			 struct heap_run *r)
{
	if (!h->bits_plain ||
	    atomic_load_explicit(&r->owner, memory_order_relaxed) !=
		    (int)l->idx)
		return 0;
	win_open(l);
	if (atomic_load_explicit(&r->shared, memory_order_relaxed) ==
	    RUN_PRIVATE)
		return 1;
	xmem__heap_bits_close(l);
	return 0;
}

/* Before lane l's locked update of run r, which it does not own. */
void xmem__heap_bits_foreign(struct xmem_heap *h, struct heap_lane *l,
			     struct heap_run *r)
{
	atomic_fetch_add(&r->inflight, 1);
	if (h->bits_plain)
		run_share(h, l, r);
}

/* After it (r may be reclaimed once the count is read as 0). */
void xmem__heap_bits_foreign_done(struct heap_run *r)
{
	atomic_fetch_sub_explicit(&r->inflight, 1, memory_order_release);
}
