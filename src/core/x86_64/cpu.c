/* SPDX-License-Identifier: MIT */
/* cpu.c - x86-64 feature detection with cpuid, and the SSE4.2 CRC-32C. */
#include <cpuid.h>
#include <string.h>

#include "../checksum.h"
#include "../cpu.h"

static struct xmem__cpu cpu;
static int detected;

/* True when the OS saves the AVX (and, with `zmm`, AVX-512) state. */
static int os_saves(int zmm)
{
	uint32_t lo, hi;
	uint32_t want = zmm ? 0xe6 : 0x6;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	(void)hi;
	return (lo & want) == want;
}

__attribute__((constructor)) static void cpu_detect(void)
{
	unsigned a, b, c, d;

	if (detected)
		return;
	detected = 1;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	cpu.clflush = !!(d & (1u << 19)); /* CLFSH */
	cpu.sse2 = !!(d & bit_SSE2);
	cpu.sse42 = !!(c & bit_SSE4_2);
	cpu.avx = (c & bit_AVX) && (c & bit_OSXSAVE) && os_saves(0);
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	cpu.clflushopt = !!(b & bit_CLFLUSHOPT);
	cpu.clwb = !!(b & bit_CLWB);
	cpu.avx2 = cpu.avx && (b & bit_AVX2);
	cpu.avx512f = cpu.avx && (b & bit_AVX512F) && os_saves(1);
	cpu.movdir64b = !!(c & (1u << 28));
}

/* Constructors of other files may run first, so detection is also lazy;
 * it is idempotent and gives the same answer on every thread. */
const struct xmem__cpu *xmem__cpu(void)
{
	cpu_detect();
	return &cpu;
}

int xmem__cpu_has_crc32c(void)
{
	return xmem__cpu()->sse42;
}

__attribute__((target("sse4.2"))) uint32_t
xmem__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
