/* SPDX-License-Identifier: MIT */
/*
 * heap_tx.c - transactions: undo snapshots (one fence per add_range of
 * new bytes), words set at commit, allocations and frees deferred to one
 * COMMIT record.
 *
 * Fences: add_range 1 (if it snapshots anything); set64 0; commit 1,
 * plus 1 first when new objects or large snapshots must be flushed;
 * abort 2.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"
#include "heap/heap_recover.h"

#define SNAP_COPY_MAX 1024u /* snapshots kept in DRAM for CSET words */

/* Frees a transaction's vectors. */
void xmem__heap_tx_fini(struct heap_tx *tx)
{
	free(tx->snaps);
	free(tx->objs);
	free(tx->frees);
	free(tx->idx);
	free(tx->xsegs);
	free(tx->lkeys);
	free(tx->lmasks);
	free(tx->bigs);
	free(tx->sets);
	free(tx->sidx);
	free(tx->sbloom);
	free(tx->scand);
	memset(tx, 0, sizeof(*tx));
}

/* Grows a vector; out of memory is reported for the transaction. */
static int vgrow(void **v, size_t *cap, size_t need, size_t esz)
{
	if (xmem__vec_grow(v, cap, need, esz))
		return xmem__err(-ENOMEM, "heap: transaction: out of memory");
	return 0;
}

/* Drops the Bloom filter of set words and its list of possible
 * repeats (see xmem_tx_set64). */
static void sets_unbloom(struct heap_tx *tx)
{
	free(tx->sbloom);
	free(tx->scand);
	tx->sbloom = tx->scand = NULL;
	tx->sbloom_bits = tx->nscand = tx->capscand = 0;
}

/* Drops the index of allocations and frees (built by large
 * transactions only). */
static void idx_clear(struct heap_tx *tx)
{
	free(tx->idx);
	tx->idx = NULL;
	tx->idxcap = tx->idxused = 0;
}

/* Ends the transaction's bookkeeping (the lane stays held). */
static void tx_reset(struct xmem_heap *h, struct heap_lane *l)
{
	struct heap_tx *tx = &l->tx;

	for (size_t i = 0; i < tx->nxsegs; i++)
		xmem__heap_extent_unreserve(
			h,
			(tx->xsegs[i].off - h->hdr.data_off) >>
				HEAP_CHUNK_SHIFT,
			tx->xsegs[i].len >> HEAP_CHUNK_SHIFT);
	tx->nsnaps = tx->nobjs = tx->nfrees = tx->nxsegs = tx->nbigs = 0;
	idx_clear(tx);
	if (tx->nsets) { /* (srecent may stay: it is checked against nsets) */
		tx->nsets = 0;
		free(tx->sidx);
		tx->sidx = NULL;
		tx->sidxcap = 0;
		sets_unbloom(tx);
	}
	if (tx->capsets > 65536) { /* a large transaction's: not kept */
		free(tx->sets);
		tx->sets = NULL;
		tx->capsets = 0;
	}
	tx->copied = 0;
	if (tx->lcount <= ARRAY_SIZE(tx->lused)) {
		/* a small transaction: clear just its slots */
		for (size_t i = 0; i < tx->lcount; i++)
			tx->lkeys[tx->lused[i]] = 0;
		tx->lcount = 0;
	} else {
		if (tx->lcap > 4096) {
			free(tx->lkeys);
			free(tx->lmasks);
			tx->lkeys = tx->lmasks = NULL;
			tx->lcap = 0;
		} else {
			memset(tx->lkeys, 0, tx->lcap * 8);
		}
		tx->lcount = 0;
	}
	tx->txid = 0;
	tx->aborted = 0;
	tx->useg = NULL;
	/* release: the records are applied before a checkpoint may pass
	 * the transaction */
	atomic_store_explicit(&l->busy, 0, memory_order_release);
}

/* The calling thread's lane if it is inside a live transaction. */
static int tx_cur(struct xmem_heap *h, struct heap_lane **lp)
{
	struct heap_lane *l = h ? xmem__heap_lane_mine(h) : NULL;

	if (!l || !l->tx.depth)
		return xmem__err(XMEM_E_TXSTATE, "heap: no transaction");
	if (l->tx.aborted)
		return xmem__err(XMEM_E_TXABORTED,
				 "heap: the transaction was aborted");
	*lp = l;
	return 0;
}

XMEM_EXPORT int xmem_tx_begin(struct xmem_heap *h)
{
	struct heap_lane *l;

	if (!h)
		return xmem__err(-EINVAL, "heap: NULL heap");
	if (!(l = xmem__heap_lane_get(h)))
		return -EBUSY;
	if (!l->tx.depth) {
		int rc = xmem__heap_ring_prepare(h, l);

		if (rc) {
			xmem__heap_lane_put(h, l);
			return rc;
		}
		l->tx.aborted = 0;
		l->tx.txid = 0;
	}
	l->tx.depth++;
	return 0;
}

XMEM_EXPORT int xmem_tx_depth(struct xmem_heap *h)
{
	struct heap_lane *l = h ? xmem__heap_lane_mine(h) : NULL;

	return l ? l->tx.depth : 0;
}

#define SNAP_SMALL 4096u

/* Slot of cache line `line` in the snapshot line set (inserting it if
 * `add`); -1 when absent, or out of memory. */
static long line_slot(struct heap_tx *tx, uint64_t line, int add)
{
	uint64_t key = line + 1;

	if (add && (tx->lcount + 1) * 2 > tx->lcap) {
		size_t ncap = tx->lcap ? tx->lcap * 2 : 256;
		uint64_t *nk = calloc(ncap, 8), *nm = calloc(ncap, 8);

		if (!nk || !nm) {
			free(nk);
			free(nm);
			return -1;
		}
		for (size_t i = 0; i < tx->lcap; i++) {
			if (!tx->lkeys[i])
				continue;
			size_t j = (tx->lkeys[i] * 0x9e3779b97f4a7c15ull) &
				   (ncap - 1);
			while (nk[j])
				j = (j + 1) & (ncap - 1);
			nk[j] = tx->lkeys[i];
			nm[j] = tx->lmasks[i];
		}
		free(tx->lkeys);
		free(tx->lmasks);
		tx->lkeys = nk;
		tx->lmasks = nm;
		tx->lcap = ncap;
	}
	if (!tx->lcap)
		return -1;
	size_t j = (key * 0x9e3779b97f4a7c15ull) & (tx->lcap - 1);
	while (tx->lkeys[j] && tx->lkeys[j] != key)
		j = (j + 1) & (tx->lcap - 1);
	if (!tx->lkeys[j]) {
		if (!add)
			return -1;
		tx->lkeys[j] = key;
		tx->lmasks[j] = 0;
		if (tx->lcount < ARRAY_SIZE(tx->lused)) /* before any growth */
			tx->lused[tx->lcount] = (uint32_t)j;
		tx->lcount++;
	}
	return (long)j;
}

/* Mask of the bytes of [off, end) that fall in cache line `line`. */
static uint64_t line_mask(uint64_t line, uint64_t off, uint64_t end)
{
	uint64_t lo = MAX(off, line * 64) - line * 64;
	uint64_t hi = MIN(end, line * 64 + 64) - line * 64;

	return (hi - lo == 64 ? ~0ull : ((1ull << (hi - lo)) - 1)) << lo;
}

/* 1 if a large snapshot already covers [off, end). */
static int big_covers(const struct heap_tx *tx, uint64_t off, uint64_t end)
{
	for (size_t i = 0; i < tx->nbigs; i++)
		if (tx->bigs[i].off <= off &&
		    end <= tx->bigs[i].off + tx->bigs[i].len)
			return 1;
	return 0;
}

/* Opens a new undo segment of at least `need` bytes (an extent taken
 * from the free chunks for the transaction's life) and links to it. */
static int undo_grow(struct xmem_heap *h, struct heap_lane *l, uint64_t need)
{
	struct heap_tx *tx = &l->tx;
	struct heap_undo_hdr u;
	uint64_t n = (need + 128 + HEAP_CHUNK_SIZE - 1) >> HEAP_CHUNK_SHIFT;
	uint64_t first;
	int rc;

	if ((rc = vgrow((void **)&tx->xsegs, &tx->capxsegs, tx->nxsegs + 1,
			sizeof(*tx->xsegs))) ||
	    (rc = xmem__heap_chunks_reserve(h, l, n, &first)))
		return rc;
	tx->xsegs[tx->nxsegs].off = heap_chunk_off(h, first);
	tx->xsegs[tx->nxsegs++].len = n << HEAP_CHUNK_SHIFT;
	memset(&u, 0, sizeof(u));
	u.magic = le32(HEAP_UNDO_MAGIC);
	u.kind = HEAP_UNDO_LINK;
	u.epoch = h->hdr.epoch;
	u.txid = tx->txid;
	u.off = heap_chunk_off(h, first);
	u.len = n << HEAP_CHUNK_SHIFT;
	u.csum = xmem__crc32c(0, &u, sizeof(u));
	memcpy(tx->useg + tx->upos, &u, sizeof(u));
	xmem__heap_flush(h, tx->useg + tx->upos, sizeof(u));
	tx->useg = h->base + u.off;
	tx->useg_off = u.off;
	tx->useg_len = u.len;
	tx->upos = 0;
	return 0;
}

#define UNDO_NT_MAX 512u /* entries written with non-temporal stores */

/* Appends one undo entry holding the current bytes of [off, off+len). */
static int undo_append(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
		       uint64_t len)
{
	struct heap_tx *tx = &l->tx;
	uint64_t need = sizeof(struct heap_undo_hdr) + align_up(len, 64);
	struct heap_undo_hdr u;
	int rc;

	if (!tx->useg) {
		tx->useg = h->base + HEAP_LANES_OFF +
			   (uint64_t)l->idx * HEAP_LANE_SIZE + HEAP_RING_SIZE;
		tx->useg_len = HEAP_UNDO_SIZE;
		tx->upos = 0;
	}
	if (tx->upos + need + sizeof(u) > tx->useg_len &&
	    (rc = undo_grow(h, l, need + sizeof(u))))
		return rc;
	memset(&u, 0, sizeof(u));
	u.magic = le32(HEAP_UNDO_MAGIC);
	u.kind = HEAP_UNDO_RANGE;
	u.epoch = h->hdr.epoch;
	u.txid = tx->txid;
	u.off = off;
	u.len = len;
	if (need <= UNDO_NT_MAX) {
		/* a small entry is assembled and written with non-temporal
		 * stores (the fence after them waits less than after
		 * write-backs, and the next transaction rewrites the same
		 * lines); add_range's fence makes it durable */
		_Alignas(64) uint8_t buf[UNDO_NT_MAX];

		memcpy(buf + sizeof(u), h->base + off, len);
		memset(buf + sizeof(u) + len, 0, need - sizeof(u) - len);
		u.csum = xmem__crc32c(xmem__crc32c(0, &u, sizeof(u)),
				      buf + sizeof(u), len);
		memcpy(buf, &u, sizeof(u));
		h->ops->memcpy(tx->useg + tx->upos, buf, need,
			       XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NODRAIN);
		tx->upos += need;
		return 0;
	}
	u.csum = xmem__crc32c(xmem__crc32c(0, &u, sizeof(u)), h->base + off,
			      len);
	h->ops->memcpy(tx->useg + tx->upos + sizeof(u), h->base + off, len,
		       XMEM_F_MEM_NODRAIN);
	memcpy(tx->useg + tx->upos, &u, sizeof(u));
	xmem__heap_flush(h, tx->useg + tx->upos, sizeof(u));
	tx->upos += need;
	return 0;
}

/* Appends a snapshot record [off, off+len) (copy kept when small). */
static int snap_push(struct heap_tx *tx, uint64_t off, uint64_t len,
		     const uint8_t *src)
{
	struct heap_snap *sn;
	int rc;

	if ((rc = vgrow((void **)&tx->snaps, &tx->capsnaps, tx->nsnaps + 1,
			sizeof(*tx->snaps))))
		return rc;
	sn = &tx->snaps[tx->nsnaps++];
	sn->off = off;
	sn->len = len;
	sn->copy = NULL;
	if (tx->nsnaps == 1 || off < tx->slo)
		tx->slo = off;
	if (tx->nsnaps == 1 || off + len > tx->shi)
		tx->shi = off + len;
	/* copies serve only a commit whose dirty data rides in the record
	 * (HEAP_INLINE_MAX bytes in all): past that none is kept */
	if (len <= SNAP_COPY_MAX && tx->copied + len <= HEAP_INLINE_MAX) {
		sn->copy = tx->cbuf + tx->copied;
		memcpy(sn->copy, src, len);
		tx->copied += len;
	}
	return 0;
}

/* Snapshots [off, off+len): undo entry plus the volatile record. */
static int snap_take(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
		     uint64_t len)
{
	int rc = undo_append(h, l, off, len);

	return rc ? rc : snap_push(&l->tx, off, len, h->base + off);
}

/* Snapshots the bytes of a small range not yet snapshotted, merging
 * with earlier snapshots at byte granularity. Sets *wrote. */
static int add_small(struct xmem_heap *h, struct heap_lane *l, uint64_t off,
		     uint64_t end, int *wrote)
{
	struct heap_tx *tx = &l->tx;
	uint64_t seg = 0, seglen = 0;
	int rc;

	for (uint64_t line = off / 64; line * 64 < end; line++) {
		long j = line_slot(tx, line, 1);
		uint64_t want = line_mask(line, off, end), need;

		if (j < 0)
			return xmem__err(-ENOMEM, "heap: add_range: no memory");
		/* the line's mask is set once its bytes are snapshotted
		 * (mark_small): a failed snapshot leaves them unmarked */
		need = want & ~tx->lmasks[j];
		while (need) { /* each run of bytes to take */
			unsigned b = (unsigned)__builtin_ctzll(need);
			uint64_t rest = ~need >> b; /* zero bits: the run */
			unsigned n =
				rest ? (unsigned)__builtin_ctzll(rest) : 64 - b;

			need &= n + b >= 64 ? 0 : ~0ull << (n + b);
			if (seglen && seg + seglen == line * 64 + b) {
				seglen += n;
				continue;
			}
			if (seglen && (rc = snap_take(h, l, seg, seglen)))
				return rc;
			*wrote |= seglen != 0;
			seg = line * 64 + b;
			seglen = n;
		}
	}
	if (seglen && (rc = snap_take(h, l, seg, seglen)))
		return rc;
	*wrote |= seglen != 0;
	return 0;
}

/* Marks the bytes of [off, end) snapshotted (after add_small took
 * them; its line_slot calls made every slot present). */
static void mark_small(struct heap_tx *tx, uint64_t off, uint64_t end)
{
	for (uint64_t line = off / 64; line * 64 < end; line++) {
		long j = line_slot(tx, line, 0);

		if (j >= 0)
			tx->lmasks[j] |= line_mask(line, off, end);
	}
}

/* 1 if the transaction snapshotted (and so may have rewritten) any
 * byte of the word at off (8-byte aligned). */
static int tx_wrote(uint64_t off, void *arg)
{
	struct heap_tx *tx = arg;
	long j;

	if (off + 8 <= tx->slo || off >= tx->shi) /* outside every snapshot */
		return 0;
	j = line_slot(tx, off / 64, 0);

	if (j >= 0 && (tx->lmasks[j] & (0xffull << (off % 64))))
		return 1;
	for (size_t i = 0; i < tx->nbigs; i++)
		if (off + 8 > tx->bigs[i].off &&
		    off < tx->bigs[i].off + tx->bigs[i].len)
			return 1;
	return 0;
}

/*
 * The transaction's allocations and frees by offset, so that a free in
 * a large transaction costs O(1) instead of a scan of both lists. Built
 * once they hold TX_IDX_MIN entries; smaller transactions scan.
 */
#define TX_IDX_MIN 32
#define TX_IDX_FREE (1u << 31)

/* First probe of key in an open-addressing table of cap (a power of
 * two) slots. */
static size_t tab_home(uint64_t key, size_t cap)
{
	return (key * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

/* Replaces *tab by an empty table of esz-byte slots, at least twice
 * `need` (a power of two, 64 or more); *cap gets its size, 0 without
 * memory. */
static void tab_new(void **tab, size_t *cap, size_t need, size_t esz)
{
	size_t n = 64;

	while (n < 2 * need)
		n *= 2;
	free(*tab);
	*tab = calloc(n, esz);
	*cap = *tab ? n : 0;
	if (*tab)
		xmem__huge_advise(*tab, n * esz);
}

/* The slot of key in the index, or of the empty slot that ends its
 * probe (its key 0). */
static size_t idx_slot(const struct heap_tx *tx, uint64_t key)
{
	size_t i = tab_home(key, tx->idxcap);

	while (tx->idx[i].key && tx->idx[i].key != key)
		i = (i + 1) & (tx->idxcap - 1);
	return i;
}

/* Rebuilds the index from objs and frees at a capacity for `need`;
 * without memory there is none, and lookups scan the lists. */
static void idx_build(struct heap_tx *tx, size_t need)
{
	tab_new((void **)&tx->idx, &tx->idxcap, need, sizeof(*tx->idx));
	tx->idxused = 0;
	if (!tx->idx)
		return;
	for (size_t i = 0; i < tx->nobjs; i++) {
		size_t s = idx_slot(tx, tx->objs[i].off);

		tx->idx[s] =
			(struct heap_txidx){ tx->objs[i].off, (uint32_t)i };
		tx->idxused++;
	}
	for (size_t i = 0; i < tx->nfrees; i++) {
		size_t s = idx_slot(tx, tx->frees[i]);

		tx->idx[s] = (struct heap_txidx){ tx->frees[i],
						  (uint32_t)i | TX_IDX_FREE };
		tx->idxused++;
	}
}

/* Notes key -> val (objs or frees just grew by it). */
static void idx_put(struct heap_tx *tx, uint64_t key, uint32_t val)
{
	if (!tx->idx || 2 * (tx->idxused + 1) > tx->idxcap) {
		if (tx->nobjs + tx->nfrees >= TX_IDX_MIN) /* key included */
			idx_build(tx, tx->nobjs + tx->nfrees);
		return;
	}
	size_t s = idx_slot(tx, key);

	tx->idx[s] = (struct heap_txidx){ key, val };
	tx->idxused++;
}

/* Where oid is in objs (*objs = 1) or frees (0); -1 if in neither. */
static long tx_find(const struct heap_tx *tx, uint64_t oid, int *objs)
{
	if (tx->idx) {
		const struct heap_txidx *e = &tx->idx[idx_slot(tx, oid)];

		if (!e->key)
			return -1;
		*objs = !(e->val & TX_IDX_FREE);
		return (long)(e->val & ~TX_IDX_FREE);
	}
	for (size_t i = 0; i < tx->nobjs; i++)
		if (tx->objs[i].off == oid)
			return *objs = 1, (long)i;
	for (size_t i = 0; i < tx->nfrees; i++)
		if (tx->frees[i] == oid)
			return *objs = 0, (long)i;
	return -1;
}

/* Drops objs[i] (allocated and freed by the transaction): the last one
 * takes its place. The removed key stays in the index as 1 (a probe
 * goes on past it), re-pointing to nothing. */
static void obj_drop(struct heap_tx *tx, size_t i)
{
	uint64_t gone = tx->objs[i].off;

	tx->objs[i] = tx->objs[--tx->nobjs];
	if (!tx->idx)
		return;
	tx->idx[idx_slot(tx, gone)].key = 1;
	if (i < tx->nobjs)
		tx->idx[idx_slot(tx, tx->objs[i].off)].val = (uint32_t)i;
}

/* 1 if [off, off+len) lies inside an object this transaction allocated.
 * With the index: the slot holding off, when it is in a run, is looked
 * up (O(1)); else the list is scanned. */
static int in_new_object(const struct xmem_heap *h, const struct heap_tx *tx,
			 uint64_t off, uint64_t len)
{
	if (tx->idx && off >= h->hdr.data_off &&
	    off - h->hdr.data_off < h->nchunks << HEAP_CHUNK_SHIFT) {
		uint64_t in = off - h->hdr.data_off, c = in >> HEAP_CHUNK_SHIFT;
		const struct heap_chunk *ch = &h->chunks[c];

		if (__atomic_load_n(&ch->kind, __ATOMIC_RELAXED) ==
		    HEAP_CHUNK_RUN) {
			uint32_t csz = xmem__heap_class_size[ch->cls];
			uint64_t start =
				off - (in & (HEAP_CHUNK_SIZE - 1)) % csz;
			int objs = 0;
			long i = tx_find(tx, start, &objs);

			return i >= 0 && objs &&
			       off + len <= start + tx->objs[i].size;
		}
	}
	for (size_t i = 0; i < tx->nobjs; i++)
		if (off >= tx->objs[i].off &&
		    off + len <= tx->objs[i].off + tx->objs[i].size)
			return 1;
	return 0;
}

/*
 * Words set with xmem_tx_set64 wait in tx->sets until commit, which
 * writes them as CSET entries of its record (redo: no snapshot, no fence
 * of their own). A word the transaction may store directly (in an object
 * it allocated, or in bytes it snapshotted) is stored at once instead.
 *
 * The first TX_IDX_MIN sets are kept unique by scanning them. Past
 * that, a set appends without looking (a probe of a large index would
 * miss the cache at every call), save for a word one of the last few
 * sets named, and notes the word in a Bloom filter small enough to stay
 * in cache: a word whose bits were all set already may repeat. The
 * commit drops repeats (the last value wins) by looking up only those
 * words. An add_range that needs to find words builds an index of
 * them all instead (its probes prefetched; it drops repeats too), kept
 * from then on.
 */

/* The slot of word off in table t of cap slots, or of the empty slot
 * ending its probe. */
static size_t sidx_probe(const struct heap_sidx *t, size_t cap, uint64_t off)
{
	size_t i = tab_home(off >> 3, cap);

	while (t[i].off && t[i].off != off)
		i = (i + 1) & (cap - 1);
	return i;
}

/* The same in the set index. */
static size_t sidx_slot(const struct heap_tx *tx, uint64_t off)
{
	return sidx_probe(tx->sidx, tx->sidxcap, off);
}

#define SIDX_AHEAD 16 /* sets whose slot is prefetched ahead */

/* Builds the set index for `need` sets, dropping repeats of a word (the
 * last value goes to its first entry, which the index names). */
static int sidx_build(struct heap_tx *tx, size_t need)
{
	tab_new((void **)&tx->sidx, &tx->sidxcap, need, sizeof(*tx->sidx));
	if (!tx->sidx)
		return xmem__err(-ENOMEM,
				 "heap: tx_set64: no memory for "
				 "the index of %zu words",
				 tx->nsets);
	for (size_t i = 0; i < tx->nsets; i++) {
		struct heap_txset *s = &tx->sets[i];
		size_t k;

		if (i + SIDX_AHEAD < tx->nsets)
			__builtin_prefetch(
				&tx->sidx[tab_home(
					tx->sets[i + SIDX_AHEAD].off >> 3,
					tx->sidxcap)],
				1);
		if (!s->off)
			continue;
		k = sidx_slot(tx, s->off);
		if (tx->sidx[k].off) { /* a repeat */
			tx->sets[tx->sidx[k].i].val = s->val;
			s->off = 0;
		} else {
			tx->sidx[k].off = s->off;
			tx->sidx[k].i = i;
		}
	}
	return 0;
}

/* Makes every pending word appear once, and findable. */
static int sets_index(struct heap_tx *tx)
{
	if (tx->sidx || tx->nsets < TX_IDX_MIN)
		return 0;
	sets_unbloom(tx); /* the index drops every repeat */
	return sidx_build(tx, tx->nsets);
}

/* Sets bit pair of word off in the Bloom filter; 1 if both were set. */
static int bloom_add(struct heap_tx *tx, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ull;
	size_t m = tx->sbloom_bits - 1, a = (x >> 16) & m, b = (x >> 40) & m;
	uint64_t *wa = &tx->sbloom[a / 64], *wb = &tx->sbloom[b / 64];
	int had = (*wa >> (a % 64) & 1) && (*wb >> (b % 64) & 1);

	*wa |= 1ull << (a % 64);
	*wb |= 1ull << (b % 64);
	return had;
}

/* Notes word off as a possible repeat. */
static int cand_push(struct heap_tx *tx, uint64_t off)
{
	int rc = vgrow((void **)&tx->scand, &tx->capscand, tx->nscand + 1,
		       sizeof(*tx->scand));

	if (!rc)
		tx->scand[tx->nscand++] = off;
	return rc;
}

/* Rebuilds the Bloom filter at 16 bits per pending word (a power of two)
 * from all of them, noting the possible repeats again. */
static int bloom_build(struct heap_tx *tx)
{
	size_t bits = 1024;
	int rc = 0;

	while (bits < 16 * tx->nsets)
		bits *= 2;
	free(tx->sbloom);
	/* written once here, not read from untouched zero pages first */
	tx->sbloom = malloc(bits / 8);
	tx->sbloom_bits = tx->sbloom ? bits : 0;
	tx->nscand = 0;
	if (!tx->sbloom)
		return xmem__err(-ENOMEM, "heap: tx_set64: out of memory");
	xmem__huge_advise(tx->sbloom, bits / 8);
	memset(tx->sbloom, 0, bits / 8);
	for (size_t i = 0; i < tx->nsets && !rc; i++)
		if (tx->sets[i].off && bloom_add(tx, tx->sets[i].off))
			rc = cand_push(tx, tx->sets[i].off);
	return rc;
}

/*
 * Drops repeated words before the commit writes them, without an index
 * of every word: only the possible repeats the Bloom filter noted are
 * looked up, in a table of their own, while the sets are read in order
 * (the last value goes to a word's first entry).
 */
static int sets_dedupe(struct heap_tx *tx)
{
	struct heap_sidx *t = NULL;
	size_t cap = 0;

	if (tx->sidx || tx->nsets < TX_IDX_MIN || !tx->nscand)
		return 0;
	tab_new((void **)&t, &cap, tx->nscand, sizeof(*t));
	if (!t)
		return xmem__err(-ENOMEM, "heap: tx_set64: out of memory");
	for (size_t j = 0; j < tx->nscand; j++) {
		size_t k = sidx_probe(t, cap, tx->scand[j]);

		t[k].off = tx->scand[j];
		t[k].i = UINT64_MAX; /* its first set not met yet */
	}
	for (size_t i = 0; i < tx->nsets; i++) {
		struct heap_txset *s = &tx->sets[i];
		size_t k;

		if (!s->off)
			continue;
		k = sidx_probe(t, cap, s->off);
		if (!t[k].off)
			continue; /* met once only */
		if (t[k].i == UINT64_MAX) {
			t[k].i = i;
		} else {
			tx->sets[t[k].i].val = s->val;
			s->off = 0;
		}
	}
	free(t);
	tx->nscand = 0;
	return 0;
}

/* The pending set of word off, or NULL (sets_index done). */
static struct heap_txset *set_find(const struct heap_tx *tx, uint64_t off)
{
	if (tx->sidx) {
		const struct heap_sidx *e = &tx->sidx[sidx_slot(tx, off)];
		struct heap_txset *s = e->off ? &tx->sets[e->i] : NULL;

		return s && s->off == off ? s : NULL; /* not stored early */
	}
	for (size_t i = 0; i < tx->nsets; i++)
		if (tx->sets[i].off == off)
			return &tx->sets[i];
	return NULL;
}

/* 1 if the transaction may store the word at off directly: it lies in
 * an object the transaction allocated, or all its bytes are snapshotted. */
static int word_owned(const struct xmem_heap *h, const struct heap_tx *tx,
		      uint64_t off)
{
	long j = tx->lcap ? line_slot((struct heap_tx *)tx, off / 64, 0) : -1;

	return (j >= 0 && ((tx->lmasks[j] >> (off % 64)) & 0xff) == 0xff) ||
	       big_covers(tx, off, off + 8) || in_new_object(h, tx, off, 8);
}

/* Stores now the pending sets of the words add_range just snapshotted
 * (all of [off, end); a later direct store must land after them), and
 * drops them from the commit's list (sets_index done). */
static void sets_store_in(struct xmem_heap *h, struct heap_tx *tx, uint64_t off,
			  uint64_t end)
{
	uint64_t w0 = align_up(off, 8), w1 = align_down(end, 8);

	if (w1 <= w0)
		return;
	if ((w1 - w0) / 8 <= 64) {
		for (uint64_t w = w0; w < w1; w += 8) {
			struct heap_txset *s = set_find(tx, w);

			if (s) {
				memcpy(h->base + w, &s->val, 8);
				s->off = 0;
			}
		}
		return;
	}
	for (size_t i = 0; i < tx->nsets; i++) {
		struct heap_txset *s = &tx->sets[i];

		if (s->off >= w0 && s->off < w1) {
			memcpy(h->base + s->off, &s->val, 8);
			s->off = 0;
		}
	}
}

XMEM_EXPORT int xmem_tx_set64(struct xmem_heap *h, uint64_t *ptr,
			      uint64_t value)
{
	struct heap_lane *l;
	struct heap_tx *tx;
	struct heap_txset *s = NULL;
	uint64_t off;
	uint32_t *recent;
	int rc;

	if ((rc = tx_cur(h, &l)))
		return rc;
	tx = &l->tx;
	off = (uint64_t)((uint8_t *)ptr - h->base);
	if ((uint8_t *)ptr < h->base + h->hdr.data_off ||
	    !range_fits(off, 8, h->size) || off % 8)
		return xmem__err(-EINVAL,
				 "heap: tx_set64 at %p: not an aligned word "
				 "of the heap's data area",
				 (void *)ptr);
	if (word_owned(h, tx, off)) {
		memcpy(ptr, &value, 8);
		return 0;
	}
	recent = &tx->srecent[(off >> 3) % ARRAY_SIZE(tx->srecent)];
	if (tx->sidx || tx->nsets < TX_IDX_MIN)
		s = set_find(tx, off);
	else if (*recent && *recent <= tx->nsets &&
		 tx->sets[*recent - 1].off == off)
		s = &tx->sets[*recent - 1];
	if (s) {
		s->val = value;
		return 0;
	}
	if ((rc = vgrow((void **)&tx->sets, &tx->capsets, tx->nsets + 1,
			sizeof(*tx->sets))))
		return rc;
	tx->sets[tx->nsets++] = (struct heap_txset){ off, value, *ptr };
	*recent = (uint32_t)MIN(tx->nsets, UINT32_MAX);
	if (!tx->sidx) { /* unique so far, or noted in the Bloom filter */
		if (tx->nsets < TX_IDX_MIN)
			return 0;
		if (16 * tx->nsets > tx->sbloom_bits) /* grows: rebuilt */
			return bloom_build(tx);
		return bloom_add(tx, off) ? cand_push(tx, off) : 0;
	}
	if (2 * tx->nsets > tx->sidxcap) /* grows: rebuilt */
		return sidx_build(tx, tx->nsets);
	size_t k = sidx_slot(tx, off);

	tx->sidx[k].off = off;
	tx->sidx[k].i = tx->nsets - 1;
	return 0;
}

/* Widens [*off, *end) to whole words at an end whose word has a pending
 * set: add_range stores that word once it is snapshotted, so all of its
 * bytes must be (sets_index done). */
static void widen_to_sets(const struct heap_tx *tx, uint64_t *off,
			  uint64_t *end)
{
	if (*off % 8 && set_find(tx, align_down(*off, 8)))
		*off = align_down(*off, 8);
	if (*end % 8 && set_find(tx, align_down(*end, 8)))
		*end = align_up(*end, 8);
}

XMEM_EXPORT int xmem_tx_add_range(struct xmem_heap *h, void *ptr, size_t len)
{
	struct heap_lane *l;
	struct heap_tx *tx;
	uint64_t off, end;
	int rc, wrote = 0;

	if ((rc = tx_cur(h, &l)))
		return rc;
	tx = &l->tx;
	off = (uint64_t)((uint8_t *)ptr - h->base);
	if ((uint8_t *)ptr < h->base + h->hdr.data_off ||
	    !range_fits(off, len, h->size))
		return xmem__err(-EINVAL, "heap: add_range outside the heap's "
					  "data area");
	if (!len || in_new_object(h, tx, off, len))
		return 0;
	if (!tx->txid)
		tx->txid = xmem__heap_take_txid(h, l);
	end = off + len;
	if (tx->nsets) {
		if ((rc = sets_index(tx)))
			return rc;
		widen_to_sets(tx, &off, &end);
	}
	len = end - off;
	if (big_covers(tx, off, end))
		return 0;
	if (len <= SNAP_SMALL) {
		rc = add_small(h, l, off, end, &wrote);
	} else if (!(rc = vgrow((void **)&tx->bigs, &tx->capbigs, tx->nbigs + 1,
				sizeof(*tx->bigs))) &&
		   !(rc = snap_take(h, l, off, len))) {
		tx->bigs[tx->nbigs].off = off;
		tx->bigs[tx->nbigs++].len = len;
		wrote = 1;
	}
	/* The snapshot must be durable before the range is modified (also
	 * the part taken before a failure). */
	if (wrote)
		xmem__heap_fence(h, l);
	if (rc)
		return rc;
	if (len <= SNAP_SMALL)
		mark_small(tx, off, end);
	if (tx->nsets)
		sets_store_in(h, tx, off, end);
	return 0;
}

XMEM_EXPORT int xmem_tx_alloc(struct xmem_heap *h, size_t size, uint32_t type,
			      unsigned flags, xmem_oid *oid)
{
	struct heap_lane *l;
	struct heap_tx *tx;
	uint64_t off;
	uint32_t cls;
	int rc;

	if ((rc = tx_cur(h, &l)))
		return rc;
	tx = &l->tx;
	if (!size || type > XMEM_HEAP_TYPE_MAX || !oid)
		return xmem__err(-EINVAL, "heap: tx_alloc: bad size or type");
	if ((rc = vgrow((void **)&tx->objs, &tx->capobjs, tx->nobjs + 1,
			sizeof(*tx->objs))) ||
	    (rc = xmem__heap_reserve(h, l, size, &off, &cls)))
		return rc;
	if (flags & XMEM_F_HEAP_ZERO)
		memset(h->base + off, 0, size);
	tx->objs[tx->nobjs].off = off;
	tx->objs[tx->nobjs].size = size;
	tx->objs[tx->nobjs].cls = cls;
	tx->objs[tx->nobjs].type = (uint16_t)type;
	tx->nobjs++;
	*oid = off;
	idx_put(tx, off, (uint32_t)(tx->nobjs - 1));
	return 0;
}

XMEM_EXPORT int xmem_tx_free(struct xmem_heap *h, xmem_oid oid)
{
	struct heap_lane *l;
	struct heap_tx *tx;
	uint64_t size;
	uint32_t type, cls;
	long at;
	int rc, in_objs = 0;

	if ((rc = tx_cur(h, &l)))
		return rc;
	tx = &l->tx;
	if (!oid)
		return 0;
	at = tx_find(tx, oid, &in_objs);
	if (at >= 0 && in_objs) { /* allocated by this tx */
		xmem__heap_unreserve(h, l, oid, tx->objs[at].cls);
		obj_drop(tx, (size_t)at);
		return 0;
	}
	if (at >= 0)
		return xmem__err(-EINVAL, "heap: tx_free of %#llx twice",
				 (unsigned long long)oid);
	if ((rc = xmem__heap_lookup(h, oid, &size, &type, &cls)))
		return xmem__err(rc,
				 "heap: tx_free of %#llx: not a live "
				 "object",
				 (unsigned long long)oid);
	if ((rc = vgrow((void **)&tx->frees, &tx->capfrees, tx->nfrees + 1,
			sizeof(*tx->frees))))
		return rc;
	tx->frees[tx->nfrees++] = oid;
	idx_put(tx, oid, (uint32_t)(tx->nfrees - 1) | TX_IDX_FREE);
	return 0;
}

/* Leaves one nesting level; at the outermost, ends the transaction. */
static void tx_leave(struct xmem_heap *h, struct heap_lane *l)
{
	if (!--l->tx.depth) {
		tx_reset(h, l);
		xmem__heap_uwords_check(h, l);
	}
	xmem__heap_lane_put(h, l);
}

/* Adds CSET words carrying the new contents of small snapshots; returns
 * 1 if some dirty data must be flushed and fenced instead. */
static int add_inline_words(struct xmem_heap *h, struct heap_lane *l)
{
	struct heap_tx *tx = &l->tx;
	uint64_t total = 0;
	int rc;

	for (size_t i = 0; i < tx->nsnaps; i++) {
		if (!tx->snaps[i].copy)
			return 1;
		total += tx->snaps[i].len;
	}
	if (total > HEAP_INLINE_MAX)
		return 1;
	/* one CSET per word; a word's old value takes each byte from the
	 * earliest snapshot holding it, the rest from memory */
	uint64_t wd[HEAP_INLINE_MAX / 8 * 2 + 8], ow[ARRAY_SIZE(wd)];
	uint8_t have[ARRAY_SIZE(wd)];
	size_t nw = 0;

	for (size_t i = 0; i < tx->nsnaps; i++) {
		struct heap_snap *s = &tx->snaps[i];

		for (uint64_t w = align_down(s->off, 8); w < s->off + s->len;
		     w += 8) {
			size_t k = 0;

			while (k < nw && wd[k] != w)
				k++;
			if (k == nw) {
				if (nw == ARRAY_SIZE(wd))
					return 1;
				wd[nw] = w;
				memcpy(&ow[nw], h->base + w, 8);
				have[nw++] = 0;
			}
			for (unsigned b = 0; b < 8; b++)
				if (w + b >= s->off &&
				    w + b < s->off + s->len &&
				    !(have[k] & (1u << b))) {
					((uint8_t *)&ow[k])[b] =
						s->copy[w + b - s->off];
					have[k] |= (uint8_t)(1u << b);
				}
		}
	}
	for (size_t k = 0; k < nw; k++) {
		uint64_t cur;

		memcpy(&cur, h->base + wd[k], 8);
		if (cur != ow[k] &&
		    (rc = xmem__heap_rec_add(l, HEAP_REDO_CSET, 8, wd[k], cur,
					     ow[k])))
			return rc;
	}
	return 0;
}

/* Builds and commits the COMMIT record. */
static int tx_publish(struct xmem_heap *h, struct heap_lane *l)
{
	struct heap_tx *tx = &l->tx;
	int rc, ext, flush_data, fence_data = 0;
	uint64_t carried = 0;

	xmem__heap_rec_reset(l);
	flush_data = add_inline_words(h, l);
	if (flush_data < 0)
		return flush_data;
	if (flush_data) {
		xmem__heap_rec_reset(l);
		for (size_t i = 0; i < tx->nsnaps; i++)
			xmem__heap_flush(h, h->base + tx->snaps[i].off,
					 tx->snaps[i].len);
	}
	for (size_t i = 0; i < tx->nobjs; i++) {
		struct heap_txobj *o = &tx->objs[i];
		uint8_t *p = h->base + o->off;
		uint64_t n = xmem__heap_obj_nt_len(o->off, o->size, o->cls);

		/* a small object rides in the record (the commit rewrites
		 * it in place): its contents need no fence of their own */
		if (n && n <= HEAP_DATA_MAX && carried + n <= HEAP_DATA_TOTAL) {
			if ((rc = xmem__heap_rec_add_data(h, l, o->off, n)))
				return rc;
			carried += n;
			continue;
		}
		fence_data = 1;
		if (n) /* rewritten in place with non-temporal stores: the
			* fence below waits less than for write-backs */
			h->ops->memmove(p, p, n,
					XMEM_F_MEM_NONTEMPORAL |
						XMEM_F_MEM_NODRAIN);
		else
			xmem__heap_flush(h, p, o->size);
	}
	if (flush_data) /* see heap_layout.h, "done words" */
		xmem__heap_flush_done(h);
	/* Data the record does not carry must be durable before it. */
	if (flush_data || fence_data)
		xmem__heap_fence(h, l);
	/* the flushed data is the newest value of each word it holds:
	 * words that live records wrote get it in USET entries, else
	 * recovery would replay those records over it */
	if (flush_data && (rc = xmem__heap_supersede(h, l, tx_wrote, tx)))
		return rc;
	/* words set with xmem_tx_set64: CSET entries (before the
	 * allocations, whose bits are set last), each word once */
	if ((rc = sets_dedupe(tx)) ||
	    (tx->nsets > 64 &&
	     (rc = xmem__heap_rec_reserve(l, tx->nsets * 24, tx->nsets))))
		return rc;
	for (size_t i = 0; i < tx->nsets; i++) {
		const struct heap_txset *s = &tx->sets[i];

		if (s->off && s->val != s->old &&
		    (rc = xmem__heap_rec_add(l, HEAP_REDO_CSET, 8, s->off,
					     s->val, s->old)))
			return rc;
	}
	for (size_t i = 0; i < tx->nobjs; i++)
		if ((rc = xmem__heap_rec_alloc(h, l, tx->objs[i].off,
					       tx->objs[i].cls,
					       tx->objs[i].type)))
			return rc;
	for (size_t i = 0; i < tx->nfrees; i++)
		if ((rc = xmem__heap_rec_free(h, l, tx->frees[i], &ext)))
			return rc;
	if (!l->rlen && !tx->txid)
		return 0;
	return xmem__heap_rec_commit(h, l, HEAP_REC_COMMIT, tx->txid);
}

XMEM_EXPORT int xmem_tx_commit(struct xmem_heap *h)
{
	struct heap_lane *l = h ? xmem__heap_lane_mine(h) : NULL;
	struct heap_tx *tx;
	int rc;

	if (!l || !l->tx.depth)
		return xmem__err(XMEM_E_TXSTATE, "heap: commit without a "
						 "transaction");
	tx = &l->tx;
	if (tx->aborted) {
		tx_leave(h, l);
		return xmem__err(XMEM_E_TXABORTED,
				 "heap: the transaction was aborted");
	}
	if (tx->depth > 1) {
		tx_leave(h, l);
		return 0;
	}
	rc = tx_publish(h, l);
	if (rc == XMEM_E_NOSPACE && tx->txid > 1) {
		/* USET entries for words of records older than the
		 * transaction may overflow the log: retire those records
		 * (a checkpoint up to the tx) and build the record again */
		xmem__heap_rec_reset(l);
		if (!xmem__heap_checkpoint(h, l, tx->txid - 1, 0))
			rc = tx_publish(h, l);
	}
	if (rc) {
		xmem__heap_rec_reset(l);
		return rc; /* still in the transaction: the caller aborts */
	}
	/* freed space is reused once a checkpoint retires the record */
	for (size_t i = 0; i < tx->nfrees; i++)
		xmem__heap_defer_free(h, l, tx->frees[i]);
	tx->nobjs = tx->nfrees = 0;
	tx_leave(h, l);
	return 0;
}

/* heap_undo_fn restoring one snapshot in place. */
static int undo_restore(const struct heap_undo_hdr *u, const uint8_t *data,
			void *arg)
{
	struct xmem_heap *h = arg;

	memcpy(h->base + u->off, data, u->len);
	xmem__heap_flush(h, h->base + u->off, u->len);
	return 0;
}

/* Without room for an ABORT record: voids the first undo entry instead
 * (the restored bytes are durable already), so recovery rolls nothing
 * back. */
static int undo_void(struct xmem_heap *h, struct heap_lane *l)
{
	uint8_t *u = h->base + HEAP_LANES_OFF +
		     (uint64_t)l->idx * HEAP_LANE_SIZE + HEAP_RING_SIZE;

	memset(u, 0, 4);
	xmem__heap_flush(h, u, 4);
	/* the voided entry must be durable before the lane moves on */
	xmem__heap_fence(h, l);
	return 0;
}

XMEM_EXPORT int xmem_tx_abort(struct xmem_heap *h)
{
	struct heap_lane *l = h ? xmem__heap_lane_mine(h) : NULL;
	struct heap_tx *tx;
	uint64_t txid;
	int rc = 0;

	if (!l || !l->tx.depth)
		return xmem__err(XMEM_E_TXSTATE, "heap: abort without a "
						 "transaction");
	tx = &l->tx;
	if (!tx->aborted) {
		for (size_t i = 0; i < tx->nobjs; i++)
			xmem__heap_unreserve(h, l, tx->objs[i].off,
					     tx->objs[i].cls);
		tx->nobjs = tx->nfrees = 0;
		idx_clear(tx);
		if (tx->txid) {
			xmem__heap_undo_walk(h->base, h->size, &h->hdr, l->idx,
					     tx->txid - 1, undo_restore, h,
					     &txid);
			/* The restored bytes must be durable before the
			 * ABORT record retires the snapshots. */
			xmem__heap_fence(h, l);
			xmem__heap_rec_reset(l);
			rc = xmem__heap_rec_commit(h, l, HEAP_REC_ABORT,
						   tx->txid);
			if (rc)
				rc = undo_void(h, l);
		}
		tx->aborted = 1;
	}
	tx_leave(h, l);
	return rc;
}
