/* SPDX-License-Identifier: MIT */
/* heap_internal.h - volatile state of an open heap (internal). */
#ifndef XMEM_HEAP_INTERNAL_H
#define XMEM_HEAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <xmem/heap.h>

#include "core/util.h"
#include "heap/heap_layout.h"
#include "heap/heap_shadow.h"

#define HEAP_NCLASSES 25
#define HEAP_BUSY_PENDING UINT64_MAX
/* user words a lane's ring records can name: every such entry takes at
 * least 16 bytes of the ring */
#define HEAP_UWORDS_MAX (HEAP_RING_SIZE / 16u)
/* line ranges a lane's ring records can dirty: one per entry at most */
#define HEAP_DIRTY_MAX (HEAP_RING_SIZE / 16u)
#define HEAP_SEEN_BITS 10 /* lines a checkpoint remembers flushing: 2^n */
#define HEAP_RECENT 4	  /* lines a lane remembers appending */

/* Bytes of a redo entry whose first words are w0, w1: exact for a
 * well-formed entry, and at least 16 for any (a length past
 * HEAP_DATA_MAX counts as HEAP_DATA_MAX), so a walk always moves on. */
static inline size_t heap_ent_len(uint64_t w0, uint64_t w1)
{
	unsigned op = (unsigned)(w0 >> 56);

	if (w1 > HEAP_DATA_MAX)
		w1 = HEAP_DATA_MAX;
	return op == HEAP_REDO_CSET || op == HEAP_REDO_EXT ? 24
	       : op == HEAP_REDO_DATA ? 16 + (((size_t)w1 + 7) & ~(size_t)7)
				      : 16;
}

/* An entry that changes a run's bitmap (applied by heap_bits.c). */
static inline int heap_op_bits(unsigned op)
{
	return op == HEAP_REDO_OR || op == HEAP_REDO_ANDN ||
	       op == HEAP_REDO_OR2 || op == HEAP_REDO_ANDN2;
}

/* Bytes a redo entry writes in place (from its first byte). */
static inline uint64_t heap_ent_span(uint64_t w0, uint64_t w1)
{
	unsigned op = (unsigned)(w0 >> 56);

	return op == HEAP_REDO_ZERO || op == HEAP_REDO_DATA ? w1
	       : op == HEAP_REDO_SET			    ? (w0 >> 48) & 0xff
	       : op == HEAP_REDO_OR2 || op == HEAP_REDO_ANDN2 ? 40
							      : 8;
}

#define HEAP_OBJ_NT_MAX 4096u /* new objects written back by NT stores */

/* Bytes of a new object (at off, of `size` bytes, class cls or
 * UINT32_MAX) to rewrite with non-temporal stores, or 0 to flush it
 * instead. A slot of a class that is a multiple of 64 bytes is made of
 * whole lines that are all the object's: rounding up to them lets every
 * line take non-temporal stores (a partial line would be stored and
 * flushed). */
uint64_t xmem__heap_obj_nt_len(uint64_t off, uint64_t size, uint32_t cls);

/* Volatile state of one run, created on the run's first use. */
struct heap_run {
	_Alignas(
		64) _Atomic uint64_t taken[HEAP_BITMAP_WORDS]; /* or reserved */
	_Atomic uint32_t nfree;
	uint32_t nslots;
	uint32_t cls;
	uint32_t hint;	   /* word to search first (owner only) */
	_Atomic int owner; /* lane index, or -1 */
	/*
	 * Who may update the run's persistent bitmap words without a
	 * locked instruction (see heap_bits.c): its owner while `shared` is
	 * RUN_PRIVATE. Any other lane first makes it RUN_SHARED (once) and
	 * counts itself in `inflight` until its update is applied.
	 */
	_Atomic int shared;
	_Atomic uint32_t inflight;
};

enum { RUN_PRIVATE = 0, RUN_SHARING = 1, RUN_SHARED = 2 };
/* Volatile view of a chunk; kind and nchunks change under chunk_lock. */
struct heap_chunk {
	uint8_t kind;
	uint8_t cls;
	uint16_t type;
	uint32_t nchunks;
	struct heap_run *_Atomic run;
};

struct heap_range {
	uint64_t off, len;
};

/* A byte range snapshotted by the current transaction. */
struct heap_snap {
	uint64_t off, len;
	uint8_t *copy; /* the bytes before the tx (NULL when large) */
};

/* An object allocated by the current transaction. */
struct heap_txobj {
	uint64_t off, size;
	uint32_t cls; /* class, or UINT32_MAX for an extent */
	uint16_t type;
	uint8_t *before; /* contents when handed out (small objects) */
};

struct heap_tx {
	int depth;
	int aborted;
	uint64_t txid;		 /* 0 until the first snapshot */
	struct heap_snap *snaps; /* in snapshot order */
	size_t nsnaps, capsnaps;
	uint64_t slo, shi; /* the span of all snapshots */
	uint64_t copied;   /* bytes of the snapshots' DRAM copies, in cbuf */
	uint8_t cbuf[HEAP_INLINE_MAX];
	/* bytes snapshotted so far: per cache line a 64-bit mask (ranges
	 * up to 4 KiB), and the list of larger ranges */
	uint64_t *lkeys, *lmasks;
	size_t lcap, lcount;
	uint32_t lused[32]; /* slots of the first 32 lines (quick reset) */
	struct heap_range *bigs;
	size_t nbigs, capbigs;
	struct heap_txobj *objs;
	size_t nobjs, capobjs;
	uint64_t *frees;
	size_t nfrees, capfrees;
	/* objs and frees by offset, once they hold TX_IDX_MIN entries:
	 * open addressing; a value is an index into objs, or (bit 31)
	 * into frees; key 0 is empty, 1 a removed entry */
	struct heap_txidx {
		uint64_t key;
		uint32_t val;
	} * idx;
	size_t idxcap, idxused;
	/* words set with xmem_tx_set64, stored at commit (redo), in set
	 * order (off 0: stored early by add_range; until then nothing else
	 * may store to the word). Unique while fewer than TX_IDX_MIN or
	 * once sidx exists (open addressing by offset, off 0 empty), else a
	 * word may repeat (see heap_tx.c); srecent: index + 1 of a recent
	 * set by word (kept across transactions: valid only below nsets,
	 * and if the set names the word). */
	struct heap_txset {
		uint64_t off, val;
		uint64_t old; /* the word when first set: the commit reads
				 no line the set already read */
	} * sets;
	size_t nsets, capsets;
	struct heap_sidx {
		uint64_t off, i;
	} * sidx;
	size_t sidxcap;
	uint32_t srecent[16];
	/* without sidx, past TX_IDX_MIN: a Bloom filter of the pending
	 * words (two bits each, 16 bits per word), and the words it may
	 * have held already (every repeat is among them) */
	uint64_t *sbloom;
	size_t sbloom_bits;
	uint64_t *scand;
	size_t nscand, capscand;
	/* undo writer */
	uint8_t *useg;	   /* current segment (mapped) */
	uint64_t useg_off; /* its heap offset */
	uint64_t useg_len;
	uint64_t upos;		  /* write position in the segment */
	struct heap_range *xsegs; /* overflow segments (extents) */
	size_t nxsegs, capxsegs;
};

struct heap_lane {
	/* lanes start on their own lines: no line is written by two */
	_Alignas(64) pthread_mutex_t lock; /* held for an op or a tx */
	unsigned idx;
	pthread_t holder;
	int held;
	uint32_t ring_pos;
	uint64_t last_seq; /* this lane's last record */
	/* the seq in the lane's done word (0: none since open); read by
	 * threads making heap memory durable */
	_Atomic uint64_t done_seq;
	int rdata; /* the record being built has DATA entries */
	/* the runs of its bitmap updates that the lane does not own, each
	 * counted in its inflight (see heap_bits.c) */
	struct heap_run **bits;
	size_t nbits, capbits;
	/* odd while the lane applies bitmap updates of runs it owns
	 * (see heap_bits.c) */
	_Atomic uint64_t win;
	int32_t cur_run[HEAP_NCLASSES]; /* chunk of the cached run, or -1 */
	uint64_t fences;
	_Atomic uint64_t busy; /* in-flight seq/txid, PENDING, or 0 */
	/* lines the lane's applied records changed in place, not flushed
	 * (a checkpoint flushes them): appended by the owner after each
	 * record is applied (count released), read by any checkpoint up to
	 * the count; [0, nflushed) are flushed. Reset, and nflushed
	 * written, only under ckpt_lock. In front of the list, the last
	 * lines of one-line ranges (line + 1, 0: none): every checkpoint
	 * flushes them, and a line leaving them is appended to the list
	 * (see dirty_add). */
	struct heap_range *dirty; /* HEAP_DIRTY_MAX entries */
	_Atomic uint32_t ndirty;
	uint32_t nflushed;
	unsigned rnext;
	_Atomic uint64_t recent[HEAP_RECENT];
	/* the record being built */
	uint8_t *rbuf;
	size_t rlen, rcap;
	struct heap_range *pend; /* lines the record will touch */
	size_t npend, cappend;
	/* objects the record carries in DATA entries, rewritten in place
	 * with non-temporal stores only once its seq is taken (the locked
	 * instruction that takes it would wait for them to drain, a wait
	 * the record's own fence then repeats) */
	struct heap_range *ntw;
	size_t nntw, capntw;
	/* user words (CSET/USET targets) of the records in the ring since
	 * it was last reset: appended by the owner before the record takes
	 * its seq, read by any lane's flushed commit (count acquire) */
	struct heap_uword {
		uint64_t off, seq; /* seq UINT64_MAX until the record has one */
	} * uwords;		   /* HEAP_UWORDS_MAX entries */
	_Atomic uint32_t nuwords;
	/* a record's word did not fit in uwords: the lane retires its
	 * records before it lets go of the record's words (see
	 * xmem__heap_uwords_check) */
	int uw_over;
	/* frees committed but not yet retired by a checkpoint: their space
	 * is reused only once C >= seq (no live entry may target it) */
	struct heap_defer {
		uint64_t off, seq;
		uint64_t nchunks; /* 0: an object; else a record's segment */
	} * defer;
	size_t ndefer, hdefer, capdefer; /* count, first live, capacity */
	struct heap_tx tx;
};

struct xmem_heap {
	uint8_t *base; /* first: xmem_heap_ptr() reads it (xmem/heap.h) */
	uint64_t size;
	struct xmem_map *map;	  /* the mapping (owned if own_map) */
	struct xmem_range *range; /* when opened on a range */
	const struct xmem_persist_ops *ops;
	struct heap_header hdr; /* validated copy */
	uint64_t gen;		/* unique per open, for thread caches */
	uint64_t nchunks;
	struct heap_chunk *chunks;
	pthread_mutex_t chunk_lock; /* chunk kinds, free chunk map, pools */
	uint64_t *freemap;	    /* bit per chunk: free */
	uint64_t scanned;	    /* chunk headers read so far (lazy) */
	int scan_err;		    /* sticky: a damaged header was met */
	uint64_t free_hint;
	struct {
		int32_t *runs; /* chunks that are runs of this class */
		size_t n, cap;
	} pool[HEAP_NCLASSES];
	/* written by every record: alone in its line, so that the fields
	 * every operation reads do not move with it between cores */
	_Alignas(64) _Atomic uint64_t next_seq;
	_Alignas(64) pthread_mutex_t ckpt_lock;
	pthread_mutex_t root_lock;
	_Atomic uint64_t ckpt_seq; /* durable C */
	_Atomic uint64_t nckpt;
	_Atomic unsigned lane_rr;
	int bits_plain; /* owners may update bitmaps without locks */
	struct xmem_shadow *shadow; /* -Dheap_shadow=true only */
	uint64_t recovered;
	struct heap_uword *uwords_all; /* the lanes' uwords, one block */
	struct heap_range *dirty_all;  /* the lanes' dirty lists, one block */
	/* lines the running checkpoint flushed (ckpt_lock) */
	struct heap_seen {
		uint64_t line, gen;
	} ckpt_seen[1u << HEAP_SEEN_BITS];
	uint64_t ckpt_gen;
	struct heap_lane lanes[HEAP_NLANES];
};

/* Size classes. */
extern const uint32_t xmem__heap_class_size[HEAP_NCLASSES];
unsigned xmem__heap_nclasses(void);
int xmem__heap_class_of(uint64_t size); /* -1: an extent */

static inline struct heap_chunk_hdr *heap_chunk_hdr(struct xmem_heap *h,
						    uint64_t c)
{
	return (struct heap_chunk_hdr *)(h->base + h->hdr.meta_off +
					 c * HEAP_META_SIZE);
}

static inline uint64_t heap_meta_off(struct xmem_heap *h, uint64_t c)
{
	return h->hdr.meta_off + c * HEAP_META_SIZE;
}

static inline uint64_t heap_chunk_off(struct xmem_heap *h, uint64_t c)
{
	return h->hdr.data_off + (c << HEAP_CHUNK_SHIFT);
}

/* heap_persist.c: fences counted per lane. */
void xmem__heap_flush(struct xmem_heap *h, const void *p, size_t len);
void xmem__heap_fence(struct xmem_heap *h, struct heap_lane *l);

/* heap_lane.c */
struct heap_lane *xmem__heap_lane_get(struct xmem_heap *h);
void xmem__heap_lane_put(struct xmem_heap *h, struct heap_lane *l);
struct heap_lane *xmem__heap_lane_mine(struct xmem_heap *h);

/* heap_bits.c: bitmap updates of the record being built. */
int xmem__heap_bits_add(struct xmem_heap *h, struct heap_lane *l,
			struct heap_run *r);
void xmem__heap_bits_apply(struct xmem_heap *h, struct heap_lane *l);
void xmem__heap_bits_drop(struct heap_lane *l);
void xmem__heap_bits_owned(struct xmem_heap *h, struct heap_run *r);
int xmem__heap_bits_open(struct xmem_heap *h, struct heap_lane *l,
			 struct heap_run *r);
void xmem__heap_bits_close(struct heap_lane *l);
void xmem__heap_bits_foreign(struct xmem_heap *h, struct heap_lane *l,
			     struct heap_run *r);
void xmem__heap_bits_foreign_done(struct heap_run *r);
int xmem__heap_bits_init(void);

/* heap_log.c: building, committing and replaying redo records. */
void xmem__heap_rec_reset(struct heap_lane *l);
int xmem__heap_rec_commit(struct xmem_heap *h, struct heap_lane *l,
			  unsigned kind, uint64_t txid);
uint64_t xmem__heap_take_txid(struct xmem_heap *h, struct heap_lane *l);
int xmem__heap_ring_prepare(struct xmem_heap *h, struct heap_lane *l);
int xmem__heap_ring_restart(struct xmem_heap *h, struct heap_lane *l);
int xmem__heap_rec_reserve(struct heap_lane *l, size_t nbytes, size_t nents);
void xmem__heap_uwords_check(struct xmem_heap *h, struct heap_lane *l);
int xmem__heap_checkpoint(struct xmem_heap *h, struct heap_lane *self,
			  uint64_t need, int restart);
int xmem__heap_recover(struct xmem_heap *h);
/* Walks a record's entries; used by recovery, check, repair and the
 * commit. mode: HEAP_APPLY_ALL (every entry but DATA, whose contents
 * are in place already when a record is applied at run time),
 * HEAP_APPLY_CHECK (validate only: entries read from the media must pass
 * it before either other mode applies them), HEAP_APPLY_DATA (the DATA
 * entries only), HEAP_APPLY_NOBITS (as ALL, without the bitmap updates:
 * the commit applies those from the lane's list). */
enum {
	HEAP_APPLY_ALL = 0,
	HEAP_APPLY_CHECK = 1,
	HEAP_APPLY_DATA = 2,
	HEAP_APPLY_NOBITS = 3
};
int xmem__heap_redo_apply(uint8_t *base, uint64_t size,
			  const struct heap_header *hd, const uint8_t *ents,
			  size_t nbytes, int mode);
/* The entries of a record: its own bytes, or a copy (*owned, for the
 * caller to free) of those of the segment its EXT entry names (bounds
 * and checksum checked: XMEM_E_CORRUPT; -ENOMEM without memory for the
 * copy). */
int xmem__heap_rec_entries(const uint8_t *base, uint64_t size,
			   const struct heap_header *hd,
			   const struct heap_rec_hdr *rh, const uint8_t **ents,
			   size_t *nbytes, void **owned);
/* Holds a record's segment (chunks first..first+n) until a checkpoint
 * retires the record seq. */
int xmem__heap_defer_segment(struct heap_lane *l, uint64_t first, uint64_t n,
			     uint64_t seq);
/* Appends a DATA entry carrying the len bytes at heap offset off. */
int xmem__heap_rec_add_data(struct xmem_heap *h, struct heap_lane *l,
			    uint64_t off, uint64_t len);
/* Flushes the done words newer than C (no fence): before a change to
 * heap memory is made durable outside the records. */
void xmem__heap_flush_done(struct xmem_heap *h);
/* Reads lane's done word: 0 with its seq (0 if none), or
 * XMEM_E_CORRUPT when it is damaged. */
int xmem__heap_done_read(const uint8_t *base, uint32_t epoch, unsigned lane,
			 uint64_t *seq);
/* Adds USET entries for the words live records wrote that `in` says the
 * caller rewrote outside the records. */
int xmem__heap_supersede(struct xmem_heap *h, struct heap_lane *l,
			 int (*in)(uint64_t off, void *arg), void *arg);
/* The checkpoint copies: reads C (bit 0/1 of *bad: copy A/B damaged;
 * XMEM_E_CORRUPT if both are); writes C into both, fencing each. */
int xmem__heap_ckpt_read(const uint8_t *base, uint32_t epoch, uint64_t *c,
			 unsigned *bad);
void xmem__heap_ckpt_write(struct xmem_heap *h, struct heap_lane *l,
			   uint64_t c);
void xmem__heap_ckpt_make(struct heap_ckpt *ck, uint64_t c, uint32_t epoch);

/* heap_alloc.c, heap_defer.c */
int xmem__heap_alloc_init(struct xmem_heap *h);
int xmem__heap_scan_all(struct xmem_heap *h);
void xmem__heap_alloc_fresh(struct xmem_heap *h);
void xmem__heap_alloc_fini(struct xmem_heap *h);
int xmem__heap_reserve(struct xmem_heap *h, struct heap_lane *l, uint64_t size,
		       uint64_t *off, uint32_t *cls);
void xmem__heap_unreserve(struct xmem_heap *h, struct heap_lane *l,
			  uint64_t off, uint32_t cls);
int xmem__heap_rec_alloc(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
			 uint32_t cls, uint32_t type);
int xmem__heap_rec_free(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
			int *extent_out);
void xmem__heap_release_free(struct xmem_heap *h, struct heap_lane *l,
			     uint64_t off);
int xmem__heap_defer_free(struct xmem_heap *h, struct heap_lane *l,
			  uint64_t off);
void xmem__heap_release_due(struct xmem_heap *h, struct heap_lane *l);
int xmem__heap_defer_retire(struct xmem_heap *h, struct heap_lane *l);
int xmem__heap_lookup(const struct xmem_heap *h, uint64_t off, uint64_t *size,
		      uint32_t *type, uint32_t *cls);
int xmem__heap_chunks_reserve(struct xmem_heap *h, struct heap_lane *l,
			      uint64_t n, uint64_t *first);
int xmem__heap_extent_reserve(struct xmem_heap *h, uint64_t nchunks,
			      uint64_t *first);
void xmem__heap_extent_unreserve(struct xmem_heap *h, uint64_t first,
				 uint64_t nchunks);

/* heap.c; open flag (internal): the heap was just created */
#define HEAP_OPEN_FRESH (1u << 31)
int xmem__heap_create_mem(uint8_t *base, uint64_t size,
			  const struct xmem_persist_ops *ops);
int xmem__heap_open_mem(uint8_t *base, uint64_t size,
			const struct xmem_persist_ops *ops, unsigned flags,
			struct xmem_heap **hp);
void xmem__heap_close_mem(struct xmem_heap *h);

/* heap_atomic.c */
int xmem__heap_alloc_dest(struct xmem_heap *h, xmem_oid *dest, size_t size,
			  uint32_t type, unsigned flags, xmem_heap_ctor ctor,
			  void *arg);

/* heap_tx.c */
void xmem__heap_tx_fini(struct heap_tx *tx);

/* heap_check.c */
int xmem__heap_check_mem(uint8_t *base, uint64_t size, unsigned flags,
			 const struct xmem_persist_ops *ops, xmem_check_fn fn,
			 void *arg, unsigned *nproblems);
int xmem__heap_header_valid(const struct heap_header *hd, uint64_t size,
			    char *why, size_t whylen);
int xmem__heap_chunk_hdr_valid(const struct heap_chunk_hdr *c, uint32_t epoch);
uint32_t xmem__heap_chunk_csum(const struct heap_chunk_hdr *c);

/*
 * Inline: these run several times per operation, and a call's saved
 * registers are stores. After a commit's fence, later stores wait in the
 * store queue until the record is durable; once it is full, the thread
 * stops. Fewer stores per operation let more of the next one run under
 * the fence.
 */

/* Sets (or clears) mask in the word at p: plain when the run is the
 * lane's and private, else locked (see heap_bits.c). Returns the word's
 * value before. */
static inline uint64_t xmem__heap_bits_word(struct xmem_heap *h, uint64_t *p,
					    uint64_t mask, int set, int plain)
{
	uint64_t v;

	if (!plain)
		return set ? __atomic_fetch_or(p, mask, __ATOMIC_RELAXED)
			   : __atomic_fetch_and(p, ~mask, __ATOMIC_RELAXED);
	v = __atomic_load_n(p, __ATOMIC_RELAXED);
	xmem__shadow_pause(h, 1); /* (a race's window, for the shadow) */
	__atomic_store_n(p, set ? v | mask : v & ~mask, __ATOMIC_RELAXED);
	return v;
}

/* Appends one redo entry (see enum heap_redo_op; never DATA) to the
 * record being built. */
static inline int xmem__heap_rec_add(struct heap_lane *l, unsigned op,
				     unsigned size, uint64_t off,
				     uint64_t value, uint64_t old)
{
	uint64_t w0 = (uint64_t)op << 56 | (uint64_t)size << 48;
	size_t len = l->rlen, np = l->npend;
	uint8_t *e;
	int rc;

	/* room for 24 bytes: the stores below are of a fixed size */
	if (unlikely(len + 24 > l->rcap || np >= l->cappend)) {
		if ((rc = xmem__heap_rec_reserve(l, 24, 1)))
			return rc;
	}
	e = l->rbuf + len;
	/* word by word: one wide load of words just stored one by one
	 * would wait for the stores to retire */
	memcpy(e, &(uint64_t){ w0 | off }, 8);
	memcpy(e + 8, &value, 8);
	memcpy(e + 16, &old, 8);
	l->pend[np] = (struct heap_range){ off, heap_ent_span(w0, value) };
	l->rlen = len + (op == HEAP_REDO_CSET ? 24 : 16);
	l->npend = np + 1;
	return 0;
}

#endif /* XMEM_HEAP_INTERNAL_H */
