/* SPDX-License-Identifier: MIT */
/*
 * guest_util.h - small helpers of the kernel-device guest checks: sysfs
 * attributes, smaps fields and data patterns.
 */
#ifndef XMEM_GUEST_UTIL_H
#define XMEM_GUEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads a sysfs attribute as text (newline stripped). 0 or -errno. */
int guest_read_str(const char *path, char *buf, size_t len);

/* Reads a decimal or 0x-prefixed sysfs attribute. 0 or -errno. */
int guest_read_u64(const char *path, uint64_t *v);

/* The nd region's persistence_domain ("" when absent or empty). */
void guest_persistence_domain(const char *region, char *buf, size_t len);

/* Reads "<field> N kB" of the VMA starting at addr from /proc/self/smaps,
 * in bytes. 0, or -1 if there is no such VMA or field. */
int guest_smaps_field(const void *addr, const char *field, uint64_t *bytes);

/* Fills buf with bytes that depend on seed and each byte's position. */
void guest_pattern_fill(void *buf, size_t len, uint64_t seed);

/* Offset of the first byte differing from guest_pattern_fill(seed), or
 * (size_t)-1 when all match. */
size_t guest_pattern_check(const void *buf, size_t len, uint64_t seed);

#endif /* XMEM_GUEST_UTIL_H */
