/* SPDX-License-Identifier: MIT */
/* heap_recover.h - walking lane logs, shared by recovery and check. */
#ifndef XMEM_HEAP_RECOVER_H
#define XMEM_HEAP_RECOVER_H

#include <stdint.h>
#include "heap/heap_layout.h"

typedef int (*heap_rec_fn)(const struct heap_rec_hdr *rh, unsigned lane,
			   uint32_t pos, void *arg);
typedef int (*heap_undo_fn)(const struct heap_undo_hdr *u, const uint8_t *data,
			    void *arg);

/* Calls fn for each valid record of a lane's ring with seq > c; *endp
 * (optional) gets the ring offset where the walk stopped. */
int xmem__heap_ring_walk(const uint8_t *base, unsigned lane, uint32_t epoch,
			 uint64_t c, heap_rec_fn fn, void *arg,
			 uint64_t *tail_seq, uint32_t *endp);

/* Calls fn for each snapshot of the lane's last transaction (id > c). */
int xmem__heap_undo_walk(const uint8_t *base, uint64_t size,
			 const struct heap_header *hd, unsigned lane,
			 uint64_t c, heap_undo_fn fn, void *arg,
			 uint64_t *txid_out);

/* 1 if the lane's live transaction has a damaged snapshot entry. */
int xmem__heap_undo_damaged(const uint8_t *base, uint64_t size,
			    const struct heap_header *hd, unsigned lane,
			    uint64_t c, uint64_t *pos_out, uint64_t *txid_out);

#endif /* XMEM_HEAP_RECOVER_H */
