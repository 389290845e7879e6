/* SPDX-License-Identifier: MIT */
/* movnt.h - the x86-64 non-temporal copy and fill variants (internal). */
#ifndef XMEM_PERSIST_MOVNT_H
#define XMEM_PERSIST_MOVNT_H

#include "../arch.h"

#define XMEM__MOVNT_DECL(isa)                                                  \
	void xmem__memmove_nt_##isa(void *dst, const void *src, size_t len,    \
				    xmem__flush_lines_fn flush);               \
	void xmem__memset_nt_##isa(void *dst, int c, size_t len,               \
				   xmem__flush_lines_fn flush)

XMEM__MOVNT_DECL(avx512f);
XMEM__MOVNT_DECL(avx2);
XMEM__MOVNT_DECL(sse2);

#endif /* XMEM_PERSIST_MOVNT_H */
