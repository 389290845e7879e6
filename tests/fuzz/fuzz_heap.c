/* SPDX-License-Identifier: MIT */
/*
 * fuzz_heap - heap open (validation, recovery, chunk scan), check and
 * repair on hostile images.
 *
 * A template heap is built once in memory with pending redo records in
 * two lanes (one with DATA entries, one naming a segment of entries) and
 * a live transaction's undo log. Each input patches it:
 *
 *   byte 0: flags; bit 0 re-checksums both header copies, bit 1 the
 *           chunk headers of chunks 0-3, bit 2 every record of lanes 0-1,
 *           bit 3 both checkpoint copies (so the fuzzer gets past the
 *           checksums)
 *   then patches: { u8 area, u16 offset (LE), u8 len, len bytes }
 *   areas: 0 header, 1 backup header, 2 checkpoint copies and root line,
 *          3 lane 0 ring, 4 lane 0 undo, 5 lane 1 ring, 6-9 chunk 0-3
 *          metadata, 10 chunk 0 data, 11 the lanes' done words
 *
 * Then: open (and, if it opens, check, iterate, stats, an alloc, a free,
 * a transaction, close); check; check --repair; open again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>
#include "core/checksum.h"
#include "heap/heap_internal.h"

#define FZ_SIZE (4ull << 20)

static uint8_t *tmpl, *img;

struct root {
	xmem_oid o[8];
	uint64_t v[8];
};

/* Builds the template: objects, pending records, a live transaction. */
static void build_template(void)
{
	const struct xmem_persist_ops *ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	struct xmem_heap *h;
	struct root *r;
	xmem_oid root;

	tmpl = aligned_alloc(4096, FZ_SIZE);
	img = aligned_alloc(4096, FZ_SIZE);
	if (!tmpl || !img)
		abort();
	memset(tmpl, 0, FZ_SIZE);
	if (xmem__heap_create_mem(tmpl, FZ_SIZE, ops) ||
	    xmem__heap_open_mem(tmpl, FZ_SIZE, ops, 0, &h) ||
	    xmem_heap_root(h, sizeof(*r), 1, &root))
		abort();
	r = xmem_heap_ptr(h, root);
	xmem_heap_alloc(h, &r->o[0], 64, 2, 0, NULL, NULL);
	xmem_heap_alloc(h, &r->o[1], 300 << 10, 3, XMEM_F_HEAP_ZERO, NULL,
			NULL);
	xmem_heap_alloc(h, &r->o[2], 1000, 4, 0, NULL, NULL);
	xmem_heap_free(h, &r->o[0]);
	/* records carrying contents (DATA entries), and a done word */
	xmem_heap_alloc(h, &r->o[3], 64, 5, XMEM_F_HEAP_ZERO, NULL, NULL);
	xmem_tx_begin(h);
	if (!xmem_tx_alloc(h, 128, 6, 0, &r->o[5]))
		memset(xmem_heap_ptr(h, r->o[5]), 0x5a, 128);
	xmem_tx_add_range(h, &r->o[4], 8);
	r->o[4] = r->o[5];
	xmem_tx_commit(h);
	/* a commit too large for the ring: its entries in a segment */
	xmem_tx_begin(h);
	for (int i = 0; i < 400; i++) {
		xmem_oid o;

		if (!xmem_tx_alloc(h, 64, 7, 0, &o) && i == 399) {
			xmem_tx_add_range(h, &r->o[6], 8);
			r->o[6] = o;
		}
	}
	xmem_tx_commit(h);
	xmem_tx_begin(h);
	xmem_tx_add_range(h, r->v, sizeof(r->v));
	r->v[0] = 7;
	memcpy(img, tmpl, FZ_SIZE); /* records pending, tx live */
	xmem_tx_abort(h);
	xmem__heap_close_mem(h);
	memcpy(tmpl, img, FZ_SIZE);
}

/* Area base and size for a patch. */
static void area(unsigned a, const struct heap_header *hd, uint64_t *off,
		 uint64_t *len)
{
	static const uint64_t fixed[][2] = {
		{ HEAP_HDR_OFF, 256 },
		{ HEAP_HDR_BACKUP_OFF, 256 },
		{ HEAP_CKPT_OFF, 192 },
		{ HEAP_LANES_OFF, 8192 },
		{ HEAP_LANES_OFF + HEAP_RING_SIZE, 8192 },
		{ HEAP_LANES_OFF + HEAP_LANE_SIZE, 8192 },
	};

	a %= 12;
	if (a == 11) {
		*off = HEAP_DONE_OFF;
		*len = HEAP_NLANES * 64;
	} else if (a < 6) {
		*off = fixed[a][0];
		*len = fixed[a][1];
	} else if (a < 10) {
		*off = hd->meta_off + (a - 6) * HEAP_META_SIZE;
		*len = HEAP_META_SIZE;
	} else {
		*off = hd->data_off;
		*len = 8192;
	}
}

/* Re-checksums the records of a lane's ring. */
static void fix_ring(unsigned lane)
{
	uint8_t *ring = img + HEAP_LANES_OFF + (uint64_t)lane * HEAP_LANE_SIZE;

	for (uint32_t pos = 0; pos + 64 <= HEAP_RING_SIZE;) {
		struct heap_rec_hdr *rh = (void *)(ring + pos);

		if (rh->magic != HEAP_REC_MAGIC ||
		    rh->nbytes > HEAP_RING_SIZE - pos - 64)
			break;
		rh->pcsum = xmem__crc32c(0, rh + 1, rh->nbytes);
		rh->hcsum = xmem__csum_struct(
			rh, sizeof(*rh), offsetof(struct heap_rec_hdr, hcsum));
		pos += 64 + (uint32_t)((rh->nbytes + 63) & ~63u);
	}
}

/* Applies the flags' checksum fixes. */
static void fixups(unsigned flags, const struct heap_header *hd)
{
	if (flags & 1)
		for (int i = 0; i < 2; i++) {
			struct heap_header *p =
				(void *)(img + (i ? HEAP_HDR_BACKUP_OFF : 0));
			p->csum = xmem__csum_struct(
				p, sizeof(*p),
				offsetof(struct heap_header, csum));
		}
	if (flags & 2)
		for (uint64_t c = 0; c < 4 && c < hd->nchunks; c++) {
			struct heap_chunk_hdr *ch =
				(void *)(img + hd->meta_off +
					 c * HEAP_META_SIZE);
			ch->csum = xmem__heap_chunk_csum(ch);
		}
	if (flags & 4) {
		fix_ring(0);
		fix_ring(1);
	}
	if (flags & 8)
		for (int i = 0; i < 2; i++) {
			struct heap_ckpt *ck =
				(void *)(img +
					 (i ? HEAP_CKPT_B_OFF : HEAP_CKPT_OFF));
			xmem__heap_ckpt_make(ck, ck->seq, hd->epoch);
		}
}

static int iter_fn(xmem_oid oid, uint64_t size, uint32_t type, void *arg)
{
	(void)oid;
	(void)size;
	(void)type;
	(*(int *)arg)++;
	return 0;
}

/* Uses an opened heap a little, then closes it. */
static void exercise(struct xmem_heap *h)
{
	struct xmem_heap_stats st;
	xmem_oid root;
	unsigned np;
	int n = 0;

	xmem_heap_check(h, 0, NULL, NULL, &np);
	xmem_heap_foreach(h, XMEM_HEAP_ANY_TYPE, iter_fn, &n);
	xmem_heap_stats(h, &st);
	if (!xmem_heap_root(h, sizeof(struct root), 1, &root)) {
		struct root *r = xmem_heap_ptr(h, root);
		void *p;

		for (int i = 0; i < 8; i++)
			if (!xmem_heap_get(h, r->o[i], XMEM_HEAP_ANY_TYPE, &p))
				xmem_heap_free(h, &r->o[i]);
		xmem_heap_alloc(h, &r->o[3], 128, 5, 0, NULL, NULL);
		if (!xmem_tx_begin(h)) {
			if (!xmem_tx_add_range(h, r->v, 16))
				r->v[1]++;
			xmem_tx_commit(h);
		}
	}
	xmem__heap_close_mem(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct xmem_persist_ops *ops;
	struct heap_header hd;
	struct xmem_heap *h;
	unsigned np, flags;
	size_t pos = 1;

	if (!tmpl)
		build_template();
	ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	memcpy(img, tmpl, FZ_SIZE);
	memcpy(&hd, tmpl, sizeof(hd));
	flags = size ? data[0] : 0;
	while (pos + 4 <= size) {
		uint64_t off, len;
		unsigned a = data[pos], o = data[pos + 1] | data[pos + 2] << 8;
		size_t n = data[pos + 3];

		pos += 4;
		if (n > size - pos)
			n = size - pos;
		area(a, &hd, &off, &len);
		o %= (unsigned)len;
		if (n > len - o)
			n = len - o;
		memcpy(img + off + o, data + pos, n);
		pos += n;
	}
	fixups(flags, &hd);
	if (!xmem__heap_open_mem(img, FZ_SIZE, ops, 0, &h))
		exercise(h);
	xmem__heap_check_mem(img, FZ_SIZE, 0, ops, NULL, NULL, &np);
	xmem__heap_check_mem(img, FZ_SIZE, XMEM_F_REPAIR, ops, NULL, NULL, &np);
	if (!xmem__heap_open_mem(img, FZ_SIZE, ops, 0, &h))
		exercise(h);
	return 0;
}
