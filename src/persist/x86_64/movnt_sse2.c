/* SPDX-License-Identifier: MIT */
/* movnt_sse2.c - non-temporal copy and fill with 16-byte vectors. */
#include <emmintrin.h>

#include "movnt.h"

#define NT_ISA sse2
#define NT_TARGET "sse2"
#define NT_VEC __m128i
#define NT_W 16
#define NT_LOADU(p) _mm_loadu_si128((const __m128i *)(p))
#define NT_STREAM(p, v) _mm_stream_si128((__m128i *)(p), (v))
#define NT_SET1(c) _mm_set1_epi8(c)
#define NT_BATCH 4

#include "movnt_tmpl.h"
