/* SPDX-License-Identifier: MIT */
/* checksum.c - CRC-32C and Fletcher-64 for on-media structures. */
#include "checksum.h"
#include "cpu.h"
#include "util.h"

static uint32_t crc_table[8][256];

/* Builds the slicing-by-8 tables for the reflected Castagnoli polynomial. */
__attribute__((constructor)) static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] =
				(crc_table[t - 1][i] >> 8) ^
				crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* Table-driven CRC-32C, eight bytes per step. */
static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len >= 8) {
		uint64_t v;

		__builtin_memcpy(&v, p, 8);
		v ^= crc;
		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		      crc_table[5][(v >> 16) & 0xff] ^
		      crc_table[4][(v >> 24) & 0xff] ^
		      crc_table[3][(v >> 32) & 0xff] ^
		      crc_table[2][(v >> 40) & 0xff] ^
		      crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

/* every thread gets the same answer */
int xmem__crc32c_hw_ok = -1;

uint32_t xmem__crc32c_any(uint32_t crc, const void *buf, size_t len)
{
	int use = __atomic_load_n(&xmem__crc32c_hw_ok, __ATOMIC_RELAXED);

	if (use < 0) {
		use = xmem__cpu_has_crc32c();
		__atomic_store_n(&xmem__crc32c_hw_ok, use, __ATOMIC_RELAXED);
	}
	if (use)
		return xmem__crc32c_hw(crc, buf, len);
	return ~crc32c_sw(~crc, buf, len);
}

uint32_t xmem__csum_struct(const void *buf, size_t len, size_t csum_off)
{
	static const uint8_t zero[4];
	uint32_t c;

	c = xmem__crc32c(0, buf, csum_off);
	c = xmem__crc32c(c, zero, sizeof(zero));
	return xmem__crc32c(c, (const uint8_t *)buf + csum_off + 4,
			    len - csum_off - 4);
}

uint64_t xmem__fletcher64(const void *buf, size_t len, size_t csum_off)
{
	const uint8_t *p = buf;
	uint32_t lo = 0, hi = 0;

	for (size_t i = 0; i + 4 <= len; i += 4) {
		uint32_t w;

		if (i >= csum_off && i < csum_off + 8)
			w = 0;
		else
			__builtin_memcpy(&w, p + i, 4);
		lo += w;
		hi += lo;
	}
	return (uint64_t)hi << 32 | lo;
}
