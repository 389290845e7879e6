/* SPDX-License-Identifier: MIT */
/* movnt_avx512f.c - non-temporal copy and fill with 64-byte vectors. */
#include <immintrin.h>

#include "movnt.h"

#define NT_ISA avx512f
#define NT_TARGET "avx512f"
#define NT_VEC __m512i
#define NT_W 64
#define NT_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define NT_STREAM(p, v) _mm512_stream_si512((void *)(p), (v))
#define NT_SET1(c) _mm512_set1_epi8(c)
#define NT_BATCH 16

#include "movnt_tmpl.h"
