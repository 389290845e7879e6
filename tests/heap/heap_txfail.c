/* SPDX-License-Identifier: MIT */
/*
 * heap_txfail - a transaction call that fails leaves the transaction as
 * it was: an add_range whose snapshot could not be written (the undo log
 * cannot grow in a full heap) has not marked its bytes snapshotted, so a
 * retry snapshots them again (or fails again) instead of returning 0 and
 * letting the caller modify bytes that an abort would not restore.
 * Also: random overlapping snapshots (merged at byte granularity) are
 * all restored by an abort and all kept by a commit.
 */
#include <stdlib.h>
#include <string.h>

#include <xmem.h>
#include "heap_test.h"

#define SIZE (16ull << 20)
#define PIECE 1024u
#define NPIECE 48u

struct root {
	uint8_t data[NPIECE * PIECE];
	xmem_oid fill[64];
};

/* Random overlapping add_ranges with stores inside each, then abort
 * (nothing may change) or commit (every store kept). */
static void merge_rounds(struct xmem_heap *h, uint8_t *d, size_t size)
{
	uint8_t *want = malloc(size), *orig = malloc(size);
	uint64_t rnd = 0x9e3779b97f4a7c15ull;

	REQUIRE(want && orig);
	for (int round = 0; round < 400; round++) {
		int commit = round & 1;

		memcpy(orig, d, size);
		memcpy(want, d, size);
		REQUIRE_OK(xmem_tx_begin(h));
		for (int k = 0; k < 12; k++) {
			rnd = rnd * 6364136223846793005ull +
			      1442695040888963407ull;
			size_t off = (rnd >> 20) % (size - 300);
			size_t len = 1 + (rnd >> 40) % 300;

			REQUIRE_OK(xmem_tx_add_range(h, d + off, len));
			for (size_t b = 0; b < len; b += 1 + (rnd >> 58)) {
				d[off + b] ^= (uint8_t)(round + k + 1);
				want[off + b] = d[off + b];
			}
		}
		if (commit) {
			CHECK_OK(xmem_tx_commit(h));
		} else {
			xmem_tx_abort(h);
			memcpy(want, orig, size);
		}
		if (memcmp(d, want, size)) {
			fprintf(stderr, "round %d (%s): bytes differ\n", round,
				commit ? "commit" : "abort");
			CHECK(0);
			break;
		}
	}
	free(want);
	free(orig);
}

int main(void)
{
	struct test_heap t;
	struct xmem_heap *h;
	struct root *r;
	char path[256];
	unsigned i, nfill = 0;
	int rc = 0;

	test_path(path, sizeof(path), "heap-txfail");
	r = test_heap_create(&t, path, SIZE, sizeof(struct root));
	h = t.h;
	memset(r->data, 0x5a, sizeof(r->data));
	xmem_heap_persist(h, r->data, sizeof(r->data));
	/* no free chunk left: the undo log cannot grow past its lane area */
	while (nfill < 64 && xmem_heap_alloc(h, &r->fill[nfill], 256u << 10, 2,
					     0, NULL, NULL) == 0)
		nfill++;
	REQUIRE(nfill > 0 && nfill < 64);

	REQUIRE_OK(xmem_tx_begin(h));
	for (i = 0; i < NPIECE; i++)
		if ((rc = xmem_tx_add_range(h, r->data + i * PIECE, PIECE)))
			break;
	printf("add_range %u failed: %s\n", i, xmem_errormsg());
	CHECK(rc == XMEM_E_NOSPACE && i < NPIECE);
	/* the retry must not pretend the bytes are snapshotted */
	CHECK(xmem_tx_add_range(h, r->data + i * PIECE, PIECE) != 0);
	CHECK(xmem_tx_add_range(h, r->data + i * PIECE + 8, 8) != 0);
	/* bytes snapshotted before the failure are restored by abort */
	memset(r->data, 0x11, (size_t)i * PIECE);
	xmem_tx_abort(h);
	for (unsigned k = 0; k < i * PIECE; k++)
		if (r->data[k] != 0x5a) {
			fprintf(stderr, "byte %u not restored\n", k);
			CHECK(0);
			break;
		}

	/* space again: the same snapshots succeed */
	for (unsigned k = 0; k < nfill; k++)
		REQUIRE_OK(xmem_heap_free(h, &r->fill[k]));
	REQUIRE_OK(xmem_heap_checkpoint(h));
	REQUIRE_OK(xmem_tx_begin(h));
	for (i = 0; i < NPIECE; i++)
		CHECK_OK(xmem_tx_add_range(h, r->data + i * PIECE, PIECE));
	memset(r->data, 0x22, sizeof(r->data));
	xmem_tx_abort(h);
	CHECK(r->data[0] == 0x5a && r->data[sizeof(r->data) - 1] == 0x5a);

	merge_rounds(h, r->data, 8192);

	test_heap_close(&t);
	unlink(path);
	return test_result();
}
