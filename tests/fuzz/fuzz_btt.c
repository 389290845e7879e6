/* SPDX-License-Identifier: MIT */
/*
 * fuzz_btt.c - opening a BTT from corrupted metadata. The input is a list
 * of patches applied to a freshly formatted namespace:
 *
 *   byte 0     flags: bit 0 reseal the info block checksum after patching
 *              (so the fuzzer gets past it), bit 1 use 512-byte sectors,
 *              bit 2 format as v2.0, bits 4-7 cut that many 4 KiB pages
 *              off the namespace length
 *   then 4-byte patches: region (1 byte: info, backup info, flog, map),
 *              offset within it (2 bytes, little-endian), value (1 byte)
 *
 * Check, repair, open (read-only and read-write), a few reads and writes
 * must never crash, hang or touch memory outside the namespace.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "blk/btt.h"
#include "core/checksum.h"

#define NS ((16ull << 20) + 2 * 4096)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *pristine[8], *ns;

/* The pristine namespace for a flags combination, formatted once. */
static const uint8_t *base_for(unsigned f)
{
	const struct xmem_persist_ops *ops = xmem_persist_ops(XMEM_GRAN_BYTE);

	if (!pristine[f]) {
		struct xmem_blk_format_opts o = { .lbasize = f & 2 ? 512 : 4096,
						  .version_major =
							  f & 4 ? 2 : 1,
						  .version_minor =
							  f & 4 ? 0 : 1 };

		pristine[f] = aligned_alloc(4096, NS);
		if (!pristine[f])
			abort();
		memset(pristine[f], 0, NS);
		if (xmem_blk_format_mem(pristine[f], NS, ops, &o))
			abort();
	}
	return pristine[f];
}

/* Applies one patch; region sizes come from the pristine info block. */
static void patch(const struct btt_info *ib, uint64_t boff, const uint8_t *p)
{
	uint64_t off = (uint64_t)(p[1] | p[2] << 8), start, len;

	switch (p[0] & 3) {
	case 0:
		start = boff, len = BTT_INFO_SIZE;
		break;
	case 1:
		start = boff + ib->info2off, len = BTT_INFO_SIZE;
		break;
	case 2:
		start = boff + ib->logoff, len = BTT_NFREE * 64;
		break;
	default:
		start = boff + ib->mapoff, len = 65536;
		break;
	}
	if (len > NS - start)
		len = NS - start;
	ns[start + off % len] = p[3];
}

static void exercise(uint64_t len)
{
	const struct xmem_persist_ops *ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	struct xmem_blk *b = NULL;
	uint8_t buf[4096 * 2];
	unsigned np;

	xmem_blk_check_mem(ns, len, NULL, NULL, &np);
	/* What repair restores must open (or be refused) cleanly too. */
	xmem_blk_repair_mem(ns, len, ops, &np);
	if (xmem_blk_open_mem(ns, len, ops, XMEM_F_BLK_RDONLY, &b) == 0) {
		xmem_blk_read(b, 0, buf, 1);
		xmem_blk_read(b, xmem_blk_nlba(b) - 1, buf, 1);
		xmem_blk_close(&b);
	}
	if (xmem_blk_open_mem(ns, len, ops, 0, &b) != 0)
		return;
	memset(buf, 0x5a, sizeof(buf));
	for (uint64_t i = 0; i < 300; i++) /* recycles every free block */
		xmem_blk_write(b, (i * 37) % xmem_blk_nlba(b), buf, 1);
	xmem_blk_read(b, 1, buf, 2);
	xmem_blk_write_zeroes(b, 2, 1);
	xmem_blk_set_error(b, 3);
	xmem_blk_read(b, 3, buf, 1);
	xmem_blk_close(&b);
	if (xmem_blk_open_mem(ns, len, ops, 0, &b) == 0)
		xmem_blk_close(&b);
	xmem_blk_check_mem(ns, len, NULL, NULL, &np);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned f = size ? data[0] & 7 : 0;
	const uint8_t *base = base_for(f);
	uint64_t boff = f & 4 ? 0 : BTT_V11_OFFSET;
	const struct btt_info *ib = (const void *)(base + boff);
	uint64_t len = NS - (size ? (uint64_t)(data[0] >> 4) * 4096 : 0);

	if (!ns && !(ns = aligned_alloc(4096, NS)))
		abort();
	memcpy(ns, base, NS);
	for (size_t i = 1; i + 4 <= size && i < 4 * 256; i += 4)
		patch(ib, boff, data + i);
	if (size && (data[0] & 1)) {
		struct btt_info *w = (void *)(ns + boff);

		w->checksum = xmem__fletcher64(
			w, BTT_INFO_SIZE, offsetof(struct btt_info, checksum));
	}
	exercise(len);
	return 0;
}
