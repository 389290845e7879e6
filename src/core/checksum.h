/* SPDX-License-Identifier: MIT */
/* checksum.h - checksums of on-media structures (internal). */
#ifndef XMEM_CHECKSUM_H
#define XMEM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), seeded with `crc` (0 to start). */
uint32_t xmem__crc32c(uint32_t crc, const void *buf, size_t len);

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
