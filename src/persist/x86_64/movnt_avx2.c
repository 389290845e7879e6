/* SPDX-License-Identifier: MIT */
/* movnt_avx2.c - non-temporal copy and fill with 32-byte vectors. */
#include <immintrin.h>

#include "movnt.h"

#define NT_ISA avx2
#define NT_TARGET "avx2"
#define NT_VEC __m256i
#define NT_W 32
#define NT_LOADU(p) _mm256_loadu_si256((const __m256i *)(p))
#define NT_STREAM(p, v) _mm256_stream_si256((__m256i *)(p), (v))
#define NT_SET1(c) _mm256_set1_epi8(c)
#define NT_BATCH 4

#include "movnt_tmpl.h"
