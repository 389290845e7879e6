/* SPDX-License-Identifier: MIT */
/*
 * xmem/heap.h - a crash-consistent transactional persistent heap.
 *
 * A heap lives on a range in mode XMEM_RANGE_HEAP (or, for tools and
 * tests, directly on a mapping). Objects are named by xmem_oid, an offset
 * from the start of the heap, so references stay valid wherever the range
 * is mapped; 0 is the null reference. Every object carries a type number
 * (0..65535) and the heap can be iterated by type.
 *
 * Atomic operations (xmem_heap_alloc/free/realloc) publish or clear a
 * reference in a persistent location inside the heap: after a crash the
 * object is either allocated and published, or neither.
 *
 * Transactions are per thread and return errors (no setjmp):
 *
 *	if ((rc = xmem_tx_begin(h)))
 *		return rc;
 *	rc = xmem_tx_add_range(h, &root->count, sizeof(root->count));
 *	if (!rc)
 *		root->count++;
 *	rc = rc ? xmem_tx_abort(h), rc : xmem_tx_commit(h);
 *
 * Nested begins flatten into the outermost transaction. After an abort at
 * any depth, further calls in the transaction fail with XMEM_E_TXABORTED
 * until the outermost level ends (commit then returns XMEM_E_TXABORTED).
 *
 * Direct stores to heap memory outside transactions are the caller's to
 * make durable, with xmem_heap_persist() and not another flush: the
 * contents of a new object of up to 256 bytes (zeroed, constructed, or
 * allocated in a transaction) ride in the record that allocates it, and
 * until a checkpoint retires that record recovery may write them back
 * unless a word saying they reached the media is durable first, which
 * xmem_heap_persist() sees to. One caveat of the lazily retired
 * logs: a direct store that puts back the exact value a location held
 * before a heap operation changed it, within that operation's lane
 * window (until the next checkpoint), may be redone by recovery; use a
 * transaction, or call xmem_heap_checkpoint() first, when that matters.
 *
 * Freed space is reused once a checkpoint has retired the free's log
 * record (checkpoints run as lane logs fill, when the heap runs out of
 * space, and at xmem_heap_checkpoint()): until then a live record may
 * still name the old object's memory.
 *
 * Costs (fences): an atomic alloc or free is one fence (two when an object
 * over 256 bytes is zeroed or constructed, or realloc copies one); a
 * transaction costs one per add_range of new bytes (none per
 * xmem_tx_set64) and one at commit
 * (two with snapshots over 1 KiB, or new objects over 256 bytes or over
 * 512 bytes in all); a commit whose allocation and free entries exceed
 * 16 KiB (some 300 small objects) writes them to free chunks first, one
 * more fence. Limits: those entries need that many contiguous free
 * chunks (256 KiB each, about 5,000 small allocations per chunk), and
 * the records a transaction writes before it commits (a new run for
 * each class it fills) must fit in its lane's 64 KiB log; else commit
 * fails with XMEM_E_NOSPACE and the caller aborts. A transaction left
 * open holds back log retirement for every thread (others wait once
 * their logs fill).
 *
 * Threads: each thread works through a lane of its own, which caches a
 * run of slots per size class. Allocations and frees in the lane's own
 * runs take no locked instruction on their bitmaps. The first free into
 * a run another thread caches (or none does) costs a process-wide memory
 * barrier (membarrier(2); some microseconds with other threads running),
 * after which that run's updates are locked until a thread takes the run
 * again.
 */
#ifndef XMEM_HEAP_H
#define XMEM_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include "region.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t xmem_oid;
#define XMEM_OID_NULL ((xmem_oid)0)

#define XMEM_HEAP_TYPE_MAX 65535u
#define XMEM_HEAP_NCLASSES 25

struct xmem_heap;

/* Flags of xmem_heap_create/open. */
#define XMEM_F_HEAP_NORECOVER (1u << 8) /* open: fail if logs are pending */

/* Creates a heap on an open range (mode heap), replacing what it held. */
int xmem_heap_create(struct xmem_range *r, unsigned flags,
		     struct xmem_heap **hp);

/* Opens the heap on a range, running recovery. */
int xmem_heap_open(struct xmem_range *r, unsigned flags, struct xmem_heap **hp);

/* The same on a mapping the caller keeps (tools, tests, benchmarks). */
int xmem_heap_create_map(struct xmem_map *m, unsigned flags,
			 struct xmem_heap **hp);
int xmem_heap_open_map(struct xmem_map *m, unsigned flags,
		       struct xmem_heap **hp);

/* Closes the heap (checkpointing its logs). Sets *hp to NULL. */
void xmem_heap_close(struct xmem_heap **hp);

void *xmem_heap_base(const struct xmem_heap *h);
uint64_t xmem_heap_size(const struct xmem_heap *h);

/* Unchecked conversions: oid 0 <-> NULL. The heap's first member is its
 * base address (part of the ABI), so this one is inline. */
struct xmem_heap_head {
	unsigned char *base;
};
static inline void *xmem_heap_ptr(const struct xmem_heap *h, xmem_oid oid)
{
	const struct xmem_heap_head *hh = (const struct xmem_heap_head *)h;

	return oid ? (char *)hh->base + oid : (void *)0;
}
xmem_oid xmem_heap_oid(const struct xmem_heap *h, const void *ptr);

/* Checked conversion: oid must name a live object of type `type`
 * (XMEM_HEAP_ANY_TYPE accepts any). XMEM_E_BADOID otherwise. */
#define XMEM_HEAP_ANY_TYPE 0xffffffffu
int xmem_heap_get(const struct xmem_heap *h, xmem_oid oid, uint32_t type,
		  void **ptr);

/* Usable size and type of a live object. */
int xmem_heap_object_info(const struct xmem_heap *h, xmem_oid oid,
			  uint64_t *size, uint32_t *type);

/* The root object: allocated zeroed at the first call with its size;
 * later calls return it (a larger size than the existing root fails). */
int xmem_heap_root(struct xmem_heap *h, size_t size, uint32_t type,
		   xmem_oid *oid);

/* Flags of the allocation calls. */
#define XMEM_F_HEAP_ZERO (1u << 0) /* zero the new object */

/* Optional constructor for xmem_heap_alloc(): fills the new object before
 * it is published. Returns 0, or an error that cancels the allocation. */
typedef int (*xmem_heap_ctor)(void *obj, size_t size, void *arg);

/*
 * Allocates `size` bytes of type `type` and publishes the reference in
 * *dest, which must lie in the heap. All-or-nothing across a crash.
 */
int xmem_heap_alloc(struct xmem_heap *h, xmem_oid *dest, size_t size,
		    uint32_t type, unsigned flags, xmem_heap_ctor ctor,
		    void *arg);

/* Frees *dest and stores 0 there, atomically. *dest 0 is a no-op. */
int xmem_heap_free(struct xmem_heap *h, xmem_oid *dest);

/* Resizes *dest (moving it; the contents up to the smaller size are
 * kept) and republishes it atomically. *dest 0 allocates. */
int xmem_heap_realloc(struct xmem_heap *h, xmem_oid *dest, size_t size,
		      uint32_t type, unsigned flags);

/* Makes a direct store durable (flush + fence at the heap's granularity). */
void xmem_heap_persist(struct xmem_heap *h, const void *addr, size_t len);

/* Retires every lane's logs now (2 fences). */
int xmem_heap_checkpoint(struct xmem_heap *h);

/* Calls fn for every live object of `type` (XMEM_HEAP_ANY_TYPE: all) in
 * offset order; a non-zero return from fn stops the walk and is returned. */
typedef int (*xmem_heap_iter_fn)(xmem_oid oid, uint64_t size, uint32_t type,
				 void *arg);
int xmem_heap_foreach(struct xmem_heap *h, uint32_t type, xmem_heap_iter_fn fn,
		      void *arg);

/* Transactions (per thread, on one heap at a time). */
int xmem_tx_begin(struct xmem_heap *h);
int xmem_tx_add_range(struct xmem_heap *h, void *ptr, size_t len);
int xmem_tx_alloc(struct xmem_heap *h, size_t size, uint32_t type,
		  unsigned flags, xmem_oid *oid);
int xmem_tx_free(struct xmem_heap *h, xmem_oid oid);
/*
 * Sets the 8-byte word at ptr (aligned, in the heap's data area) to
 * value when the transaction commits: a redo entry of the commit record,
 * with no snapshot and no fence of its own. Until then the word keeps
 * its old value (reads in the transaction see it), except in an object
 * the transaction allocated or in bytes it snapshotted, where the store
 * is made at once. A later add_range over the word stores it then (after
 * which direct stores are fine); a later set replaces the value; abort
 * drops it. No direct store may change a pending word: the commit
 * writes it only where it still holds the value it had when first set. Setting
 * thousands of words in one transaction makes its commit retire the lane's log
 * (a checkpoint, 3 fences).
 */
int xmem_tx_set64(struct xmem_heap *h, uint64_t *ptr, uint64_t value);
int xmem_tx_commit(struct xmem_heap *h);
int xmem_tx_abort(struct xmem_heap *h);
/* Nesting depth of the calling thread's transaction (0: none). */
int xmem_tx_depth(struct xmem_heap *h);

struct xmem_heap_class_stats {
	uint64_t size;	/* object size of the class */
	uint64_t runs;	/* chunks used as runs of this class */
	uint64_t used;	/* objects allocated */
	uint64_t slots; /* objects the runs can hold */
};

struct xmem_heap_stats {
	uint64_t heap_size;
	uint64_t data_size; /* bytes of the chunk area */
	uint64_t chunk_size;
	uint64_t nchunks;
	uint64_t used;	       /* bytes in live objects (usable sizes) */
	uint64_t free;	       /* bytes free (free chunks + free slots) */
	uint64_t largest_free; /* largest run of free chunks, bytes */
	double fragmentation;  /* 1 - largest_free / free chunk bytes */
	uint64_t objects;
	uint64_t extents; /* live large objects */
	uint64_t fences;  /* fences issued since open */
	uint64_t checkpoints;
	uint64_t recovered_records; /* logs replayed or rolled back at open */
	struct xmem_heap_class_stats classes[XMEM_HEAP_NCLASSES];
	unsigned nclasses;
};
/* Loads every run's state (O(chunks + run bitmaps)). */
int xmem_heap_stats(struct xmem_heap *h, struct xmem_heap_stats *st);

/*
 * Validates all heap metadata: both header copies, the checkpoint, every
 * lane log, every chunk header, every run bitmap against its mirror copy,
 * every extent, and that no two allocations overlap. fn is called for
 * each problem (struct xmem_check_problem of xmem/region.h; offsets are
 * heap offsets). With XMEM_F_REPAIR, problems are fixed or quarantined
 * and `repaired` says so. Returns 0 if clean (or all repaired),
 * XMEM_E_CORRUPT otherwise.
 */
int xmem_heap_check(struct xmem_heap *h, unsigned flags, xmem_check_fn fn,
		    void *arg, unsigned *nproblems);
/* (On an open heap: read-only, XMEM_F_REPAIR gives -EBUSY, and no other
 * thread should change the heap meanwhile.) */
/* The same on a mapping that may not open (damaged header, pending logs
 * are reported, not applied, unless XMEM_F_REPAIR). */
int xmem_heap_check_map(struct xmem_map *m, unsigned flags, xmem_check_fn fn,
			void *arg, unsigned *nproblems);

#ifdef __cplusplus
}
#endif
#endif /* XMEM_HEAP_H */
