/* SPDX-License-Identifier: MIT */
/* checksum.h - checksums of on-media structures (internal). */
#ifndef XMEM_CHECKSUM_H
#define XMEM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), seeded with `crc` (0 to start). Inline: the
 * CPU's instruction when it has one (known after the first call). */
uint32_t xmem__crc32c_any(uint32_t crc, const void *buf, size_t len);
/* the CPU's instruction (core/x86_64/cpu.c), seeded the same way */
uint32_t xmem__crc32c_hw(uint32_t crc, const void *buf, size_t len);
extern int xmem__crc32c_hw_ok; /* -1 until the first call asks */

static inline uint32_t xmem__crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (__builtin_expect(
		    __atomic_load_n(&xmem__crc32c_hw_ok, __ATOMIC_RELAXED) > 0,
		    1))
		return xmem__crc32c_hw(crc, buf, len);
	return xmem__crc32c_any(crc, buf, len);
}

/*
 * CRC-32C of a structure whose checksum field (4 bytes at csum_off) is
 * taken as zero, so that a structure can be checksummed in place.
 */
uint32_t xmem__csum_struct(const void *buf, size_t len, size_t csum_off);

/* Fletcher-64 over 32-bit little-endian words, as the NVDIMM namespace
 * specification defines it for BTT info blocks; the 8-byte checksum
 * field at csum_off is taken as zero. len must be a multiple of 4. */
uint64_t xmem__fletcher64(const void *buf, size_t len, size_t csum_off);

#endif /* XMEM_CHECKSUM_H */
