/* SPDX-License-Identifier: MIT */
/*
 * btt_layout.h - the on-media layout of a BTT (Block Translation Table),
 * as the UEFI/NVDIMM namespace specification defines it and as Linux's
 * nd_btt writes it, so that either one reads what the other wrote.
 *
 * A BTT lives in a namespace (here: a range, or a raw image). Version 1.1
 * (the kernel's choice for label-less and v1.1-label namespaces) starts
 * 4 KiB into the namespace; version 2.0 (claim class BTT2) at offset 0.
 * From there, the space is cut into arenas of at most 512 GiB; a tail
 * smaller than 16 MiB is left unused. Each arena:
 *
 *   +0            info block (4 KiB, struct btt_info)
 *   +dataoff      internal_nlba data blocks of internal_lbasize bytes
 *   +mapoff       external_nlba map entries (4 bytes), padded to 4 KiB
 *   +logoff       nfree flog groups (64 bytes), padded to 4 KiB
 *   +info2off     backup info block (the arena's last 4 KiB)
 *
 * All offsets in the info block are relative to the arena's start, except
 * nextoff, which is the distance to the next arena's info block (0 in
 * the last arena). All fields are little-endian.
 */
#ifndef XMEM_BTT_LAYOUT_H
#define XMEM_BTT_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define BTT_SIG "BTT_ARENA_INFO\0" /* 16 bytes with both NULs */
#define BTT_SIG_LEN 16
#define BTT_INFO_SIZE 4096u
#define BTT_PG 4096u
#define BTT_ARENA_MIN (1ull << 24) /* 16 MiB */
#define BTT_ARENA_MAX (1ull << 39) /* 512 GiB */
#define BTT_NFREE 256u		   /* free blocks per arena (kernel: lanes) */
#define BTT_INT_LBA_ALIGN 64u	   /* internal_lbasize = roundup(ext, 64) */
#define BTT_V11_OFFSET 4096u	   /* namespace offset of a v1.1 BTT */

#define BTT_IB_FLAG_ERROR 0x1u /* arena info flag: arena in error */

/*
 * A map entry: the low 30 bits are the post-map block; bit 31 is the zero
 * (trim) flag, bit 30 the error flag. Both set means a normal mapping;
 * both clear (the state after format by the kernel) means the identity
 * mapping premap == postmap.
 */
#define BTT_MAP_Z (1u << 31)
#define BTT_MAP_E (1u << 30)
#define BTT_MAP_NORMAL (BTT_MAP_Z | BTT_MAP_E)
#define BTT_MAP_LBA_MASK (~BTT_MAP_NORMAL)
#define BTT_MAP_ENT_SIZE 4u
#define BTT_MAX_NLBA (1u << 30) /* post-map blocks must fit in 30 bits */

/* One flog entry: a sector write in flight, committed by seq. */
struct btt_flog_ent {
	uint32_t lba;	  /* pre-map LBA within the arena */
	uint32_t old_map; /* block that held it (may carry the E flag) */
	uint32_t new_map; /* block written (now mapped) */
	uint32_t seq;	  /* 1, 2, 3, 1, ...; 0 means never used */
};

/*
 * One lane's flog group: two entries used alternately, the other two slots
 * are padding. Linux since 4.15 and the specification use slots (0, 1);
 * older kernels wrote (0, 2). The pair in use is found on open.
 */
struct btt_flog_group {
	struct btt_flog_ent ent[4];
};

#define BTT_FLOG_GROUP_SIZE 64u
#define BTT_SEQ_INIT 1u

struct btt_info {
	uint8_t sig[BTT_SIG_LEN];
	uint8_t uuid[16];
	uint8_t parent_uuid[16]; /* the namespace's uuid, or all zero */
	uint32_t flags;
	uint16_t version_major;
	uint16_t version_minor;
	uint32_t external_lbasize;
	uint32_t external_nlba;
	uint32_t internal_lbasize;
	uint32_t internal_nlba;
	uint32_t nfree;
	uint32_t infosize;
	uint64_t nextoff;
	uint64_t dataoff;
	uint64_t mapoff;
	uint64_t logoff;
	uint64_t info2off;
	uint8_t padding[3968];
	uint64_t checksum; /* Fletcher-64 over the 4 KiB, this field zero */
};

_Static_assert(sizeof(struct btt_flog_ent) == 16, "flog entry size");
_Static_assert(sizeof(struct btt_flog_group) == BTT_FLOG_GROUP_SIZE,
	       "flog group size");
_Static_assert(sizeof(struct btt_info) == BTT_INFO_SIZE, "info block size");
_Static_assert(offsetof(struct btt_info, uuid) == 16, "uuid offset");
_Static_assert(offsetof(struct btt_info, parent_uuid) == 32, "parent offset");
_Static_assert(offsetof(struct btt_info, flags) == 48, "flags offset");
_Static_assert(offsetof(struct btt_info, version_major) == 52, "ver offset");
_Static_assert(offsetof(struct btt_info, external_lbasize) == 56,
	       "external_lbasize offset");
_Static_assert(offsetof(struct btt_info, nfree) == 72, "nfree offset");
_Static_assert(offsetof(struct btt_info, infosize) == 76, "infosize offset");
_Static_assert(offsetof(struct btt_info, nextoff) == 80, "nextoff offset");
_Static_assert(offsetof(struct btt_info, info2off) == 112, "info2off offset");
_Static_assert(offsetof(struct btt_info, checksum) == 4088, "csum offset");

#endif /* XMEM_BTT_LAYOUT_H */
