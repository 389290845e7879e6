/* SPDX-License-Identifier: MIT */
/*
 * heap_atomic.c - atomic (non-transactional) allocation, free and
 * realloc: each is one redo record, so one fence (plus one before it when
 * the new object's contents must be durable first: zeroed or constructed
 * objects over HEAP_DATA_MAX bytes, whose contents do not ride in the
 * record, and copied ones).
 */
#include <errno.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "heap/heap_internal.h"

/* Checks that dest is an 8-byte aligned location inside the heap's data
 * area (or the root line). */
static int dest_ok(struct xmem_heap *h, const xmem_oid *dest)
{
	const uint8_t *p = (const uint8_t *)dest;

	if (p == h->base + HEAP_ROOT_OFF)
		return 0;
	if (!dest || p < h->base + h->hdr.data_off ||
	    p + 8 > h->base + h->size || ((uintptr_t)p & 7))
		return xmem__err(-EINVAL,
				 "heap: the destination of an atomic "
				 "operation must be an aligned location in "
				 "the heap");
	return 0;
}

/* Allocates and publishes into *dest (see xmem_heap_alloc). */
int xmem__heap_alloc_dest(struct xmem_heap *h, xmem_oid *dest, size_t size,
			  uint32_t type, unsigned flags, xmem_heap_ctor ctor,
			  void *arg)
{
	struct heap_lane *l;
	uint64_t off;
	uint32_t cls;
	int rc;

	if ((rc = dest_ok(h, dest)))
		return rc;
	if (!size || type > XMEM_HEAP_TYPE_MAX || (flags & ~XMEM_F_HEAP_ZERO))
		return xmem__err(-EINVAL, "heap: alloc: bad size, type or "
					  "flags");
	if (!(l = xmem__heap_lane_get(h)))
		return -EBUSY;
	if ((rc = xmem__heap_reserve(h, l, size, &off, &cls)))
		goto out;
	if (flags & XMEM_F_HEAP_ZERO)
		memset(h->base + off, 0, size);
	if (ctor && (rc = ctor(h->base + off, size, arg))) {
		xmem__heap_unreserve(h, l, off, cls);
		goto out;
	}
	xmem__heap_rec_reset(l);
	if ((flags & XMEM_F_HEAP_ZERO) || ctor) {
		uint64_t n = xmem__heap_obj_nt_len(off, size, cls);

		if (n && n <= HEAP_DATA_MAX) {
			/* carried in the record (see heap_layout.h): one
			 * fence for contents and record */
			rc = xmem__heap_rec_add_data(h, l, off, n);
		} else {
			xmem__heap_flush(h, h->base + off, size);
			/* The new object's contents must be durable before
			 * the record that publishes it. */
			xmem__heap_fence(h, l);
		}
	}
	/* the publication first, the bitmap updates last (a lookup that
	 * sees the bit sees the rest) */
	if (rc ||
	    (rc = xmem__heap_rec_add(l, HEAP_REDO_CSET, 8,
				     (uint64_t)((uint8_t *)dest - h->base), off,
				     *dest)) ||
	    (rc = xmem__heap_rec_alloc(h, l, off, cls, type)) ||
	    (rc = xmem__heap_rec_commit(h, l, HEAP_REC_OP, 0))) {
		xmem__heap_rec_reset(l);
		xmem__heap_unreserve(h, l, off, cls);
	}
out:
	xmem__heap_lane_put(h, l);
	return rc;
}

XMEM_EXPORT int xmem_heap_alloc(struct xmem_heap *h, xmem_oid *dest,
				size_t size, uint32_t type, unsigned flags,
				xmem_heap_ctor ctor, void *arg)
{
	if (!h)
		return xmem__err(-EINVAL, "heap: NULL heap");
	if ((const uint8_t *)dest == h->base + HEAP_ROOT_OFF)
		return xmem__err(-EINVAL, "heap: the root line is not a "
					  "destination");
	return xmem__heap_alloc_dest(h, dest, size, type, flags, ctor, arg);
}

XMEM_EXPORT int xmem_heap_free(struct xmem_heap *h, xmem_oid *dest)
{
	struct heap_lane *l;
	xmem_oid oid;
	int rc, ext;

	if (!h || (rc = dest_ok(h, dest)))
		return h ? rc : -EINVAL;
	if (!(oid = *dest))
		return 0;
	if (!(l = xmem__heap_lane_get(h)))
		return -EBUSY;
	xmem__heap_rec_reset(l);
	if ((rc = xmem__heap_rec_add(l, HEAP_REDO_CSET, 8,
				     (uint64_t)((uint8_t *)dest - h->base), 0,
				     oid)) ||
	    (rc = xmem__heap_rec_free(h, l, oid, &ext)) ||
	    (rc = xmem__heap_rec_commit(h, l, HEAP_REC_OP, 0)))
		xmem__heap_rec_reset(l);
	else /* reused once a checkpoint retires the record */
		xmem__heap_defer_free(h, l, oid);
	xmem__heap_lane_put(h, l);
	return rc;
}

XMEM_EXPORT int xmem_heap_realloc(struct xmem_heap *h, xmem_oid *dest,
				  size_t size, uint32_t type, unsigned flags)
{
	uint64_t osize, off, keep;
	uint32_t otype, ocls, cls;
	struct heap_lane *l;
	xmem_oid old;
	int rc, ext;

	if (!h || (rc = dest_ok(h, dest)))
		return h ? rc : -EINVAL;
	if (!(old = *dest))
		return xmem_heap_alloc(h, dest, size, type, flags, NULL, NULL);
	if (!size || type > XMEM_HEAP_TYPE_MAX)
		return xmem__err(-EINVAL, "heap: realloc: bad size or type");
	if ((rc = xmem__heap_lookup(h, old, &osize, &otype, &ocls)))
		return xmem__err(rc,
				 "heap: realloc of %#llx: not a live "
				 "object",
				 (unsigned long long)old);
	if (!(l = xmem__heap_lane_get(h)))
		return -EBUSY;
	if ((rc = xmem__heap_reserve(h, l, size, &off, &cls)))
		goto out;
	keep = MIN(osize, (uint64_t)size);
	memcpy(h->base + off, h->base + old, keep);
	if ((flags & XMEM_F_HEAP_ZERO) && size > keep)
		memset(h->base + off + keep, 0, size - keep);
	xmem__heap_flush(h, h->base + off, size);
	/* The copy must be durable before the record that publishes it. */
	xmem__heap_fence(h, l);
	xmem__heap_rec_reset(l);
	if ((rc = xmem__heap_rec_add(l, HEAP_REDO_CSET, 8,
				     (uint64_t)((uint8_t *)dest - h->base), off,
				     old)) ||
	    (rc = xmem__heap_rec_alloc(h, l, off, cls, type)) ||
	    (rc = xmem__heap_rec_free(h, l, old, &ext)) ||
	    (rc = xmem__heap_rec_commit(h, l, HEAP_REC_OP, 0))) {
		xmem__heap_rec_reset(l);
		xmem__heap_unreserve(h, l, off, cls);
	} else { /* reused once a checkpoint retires the record */
		xmem__heap_defer_free(h, l, old);
	}
out:
	xmem__heap_lane_put(h, l);
	return rc;
}
