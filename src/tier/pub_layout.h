/* SPDX-License-Identifier: MIT */
/*
 * pub_layout.h - live statistics of a tier in shared memory, read by
 * `xmem tier top` from another process. A segment is named
 * "/xmem-tier.<pid>.<n>" (in /dev/shm). It is untrusted to the reader:
 * every field is checked against the segment's size before use.
 *
 * The writer bumps seq to odd before an update and to even after; a
 * reader retries while seq is odd or changed (a sequence lock).
 */
#ifndef XMEM_TIER_PUB_LAYOUT_H
#define XMEM_TIER_PUB_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define TIER_PUB_MAGIC 0x4255505245495458ull /* "XTIERPUB" */
#define TIER_PUB_VERSION 1u
#define TIER_PUB_PREFIX "xmem-tier."

/* Cell byte: bits 0-1 where (enum xmem_tier_where), bits 2-7 heat 0..63. */
#define TIER_CELL_WHERE(c) ((c)&3u)
#define TIER_CELL_HEAT(c) ((c) >> 2)

struct tier_pub_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t seq;
	char name[32];
	uint64_t pid;
	uint64_t base, size, unit, nunits;
	uint64_t budget, used, peak;
	uint64_t dram_bytes, device_bytes;
	uint64_t first_touch, promotions, demotions, migrated_bytes;
	uint64_t hint_faults, samples, engine_cpu_ns, uptime_ns;
	uint64_t reserved[8];
	/* uint8_t cell[nunits] follows at hdr_size */
};

_Static_assert(sizeof(struct tier_pub_hdr) == 264, "tier_pub_hdr size");
_Static_assert(offsetof(struct tier_pub_hdr, name) == 24, "name offset");
_Static_assert(offsetof(struct tier_pub_hdr, base) == 64, "base offset");

#endif /* XMEM_TIER_PUB_LAYOUT_H */
