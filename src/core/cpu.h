/* SPDX-License-Identifier: MIT */
/*
 * cpu.h - what the CPU can do (internal). Implemented per architecture in
 * src/core/<arch>/cpu.c; the rest of the code asks only these questions.
 * Features are read once, at load time, before any override.
 */
#ifndef XMEM_CPU_H
#define XMEM_CPU_H

#include <stddef.h>
#include <stdint.h>

struct xmem__cpu {
	int clflush, clflushopt, clwb;
	int sse2, sse42, avx, avx2, avx512f;
	int movdir64b;
};

/* Raw features as the CPU reports them (no environment overrides). */
const struct xmem__cpu *xmem__cpu(void);

int xmem__cpu_has_crc32c(void);

#endif /* XMEM_CPU_H */
