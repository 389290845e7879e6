/* SPDX-License-Identifier: MIT */
/*
 * heap_shadow.h - a check of the rule that the lazy write-back rests on:
 * a checkpoint may retire a record only after every line the record
 * changed in place has been flushed since the change. Built in with
 * -Dheap_shadow=true (the sanitizer test build); otherwise every hook is
 * empty.
 */
#ifndef XMEM_HEAP_SHADOW_H
#define XMEM_HEAP_SHADOW_H

#include <stddef.h>
#include <stdint.h>

struct xmem_heap;

#ifdef XMEM_HEAP_SHADOW
void xmem__shadow_open(struct xmem_heap *h);
void xmem__shadow_close(struct xmem_heap *h);
uint64_t xmem__shadow_stamp(struct xmem_heap *h);
void xmem__shadow_write(struct xmem_heap *h, uint64_t off, uint64_t len,
			uint64_t seq, uint64_t stamp);
void xmem__shadow_flush(struct xmem_heap *h, uint64_t off, uint64_t len);
void xmem__shadow_retire(struct xmem_heap *h, uint64_t c);
void xmem__shadow_pause(struct xmem_heap *h, unsigned where);
uint64_t xmem__shadow_violations(struct xmem_heap *h);
#else
static inline void xmem__shadow_open(struct xmem_heap *h)
{
	(void)h;
}
static inline void xmem__shadow_close(struct xmem_heap *h)
{
	(void)h;
}
static inline uint64_t xmem__shadow_stamp(struct xmem_heap *h)
{
	(void)h;
	return 0;
}
static inline void xmem__shadow_write(struct xmem_heap *h, uint64_t off,
				      uint64_t len, uint64_t seq,
				      uint64_t stamp)
{
	(void)h, (void)off, (void)len, (void)seq, (void)stamp;
}
static inline void xmem__shadow_flush(struct xmem_heap *h, uint64_t off,
				      uint64_t len)
{
	(void)h, (void)off, (void)len;
}
static inline void xmem__shadow_retire(struct xmem_heap *h, uint64_t c)
{
	(void)h, (void)c;
}
static inline void xmem__shadow_pause(struct xmem_heap *h, unsigned where)
{
	(void)h, (void)where;
}
static inline uint64_t xmem__shadow_violations(struct xmem_heap *h)
{
	(void)h;
	return 0;
}
#endif

#endif
