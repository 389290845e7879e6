/* SPDX-License-Identifier: MIT */
/*
 * heap_data - the contents of a small object allocated in a transaction
 * ride in its COMMIT record, so one fence commits both; recovery writes
 * them back only while the lane's done word is below the record.
 *
 * Images are copies of a heap file taken while the heap is open (its
 * records live), then changed as a crash could have left them:
 *   1. the object's line lost, no done word: recovery restores it;
 *   2. a later change persisted with xmem_heap_persist (done word
 *      durable): recovery keeps the change;
 *   3. the done word damaged: open refuses, naming it; check reports
 *      it, repair clears it, and the next open writes the contents back.
 * The same holds for an atomic allocation with a constructor.
 *   4. a DATA entry whose length is hostile (checksums made to match):
 *      open refuses the record, and returns.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <xmem.h>
#include "core/checksum.h"
#include "core/util.h"
#include "heap/heap_layout.h"
#include "heap_test.h"

#define SIZE (8ull << 20)

static char path[256], img[256];

struct root {
	xmem_oid o;
	xmem_oid a; /* an atomic allocation's object */
};

static void snapshot(void)
{
	test_file_copy(path, img);
}

static void poke(uint64_t off, const void *src, size_t len)
{
	test_file_poke(img, off, src, len);
}

static int img_open(struct test_heap *x)
{
	return test_heap_open(x, img, SIZE);
}

/* 1 if the image's object published in root slot `which` (0: o, 1: a)
 * holds 64 x c. */
static int img_holds_in(struct test_heap *x, int which, int c)
{
	xmem_oid ro, o;
	uint8_t want[64];
	struct root *r;

	if (xmem_heap_root(x->h, sizeof(struct root), 1, &ro))
		return 0;
	r = xmem_heap_ptr(x->h, ro);
	o = which ? r->a : r->o;
	memset(want, c, sizeof(want));
	return o && !memcmp(xmem_heap_ptr(x->h, o), want, 64);
}

static int img_holds(struct test_heap *x, int c)
{
	return img_holds_in(x, 0, c);
}

static int fill(void *obj, size_t size, void *arg)
{
	memset(obj, (int)(uintptr_t)arg, size);
	return 0;
}

/* Gives the last DATA entry of lane 0's ring in the image (that of a
 * live record) the length len, and its record matching checksums. 0, or
 * -1 if there is none. */
static int forge_data_len(uint64_t len)
{
	static uint8_t ring[HEAP_RING_SIZE];
	int fd = open(img, O_RDWR);
	uint32_t rpos = 0, epos = 0;
	int found = 0;

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, ring, sizeof(ring), HEAP_LANES_OFF) ==
		(ssize_t)sizeof(ring));
	for (uint32_t pos = 0; pos + 64 <= HEAP_RING_SIZE;) {
		struct heap_rec_hdr rh;

		memcpy(&rh, ring + pos, sizeof(rh));
		if (rh.magic != HEAP_REC_MAGIC ||
		    rh.nbytes > HEAP_RING_SIZE - pos - 64)
			break;
		for (uint32_t q = 0; q + 16 <= rh.nbytes;) {
			uint64_t w0, w1;

			memcpy(&w0, ring + pos + 64 + q, 8);
			memcpy(&w1, ring + pos + 64 + q + 8, 8);
			if (w0 >> 56 == HEAP_REDO_DATA) {
				rpos = pos;
				epos = pos + 64 + q;
				found = 1;
			}
			q += w0 >> 56 == HEAP_REDO_CSET ? 24
			     : w0 >> 56 == HEAP_REDO_DATA
				     ? 16 + ((w1 + 7) & ~7u)
				     : 16;
		}
		pos += 64 + ((rh.nbytes + 63) & ~63u);
	}
	if (found) {
		struct heap_rec_hdr rh;

		memcpy(&rh, ring + rpos, sizeof(rh));
		memcpy(ring + epos + 8, &len, 8);
		rh.pcsum = xmem__crc32c(0, ring + rpos + 64, rh.nbytes);
		rh.hcsum = 0;
		rh.hcsum = xmem__crc32c(0, &rh, sizeof(rh));
		memcpy(ring + rpos, &rh, sizeof(rh));
		REQUIRE(pwrite(fd, ring, sizeof(ring), HEAP_LANES_OFF) ==
			(ssize_t)sizeof(ring));
	}
	close(fd);
	return found ? 0 : -1;
}

int main(void)
{
	struct test_problems tp = { "done word", 0 };
	struct test_heap t;
	struct xmem_heap *h;
	struct xmem_heap_stats st;
	struct root *r;
	struct test_heap x;
	uint8_t zero[HEAP_NLANES * 64], junk[64];
	uint64_t f, bad;
	xmem_oid o;

	test_path(path, sizeof(path), "heap-data");
	test_path(img, sizeof(img), "heap-data-img");
	/* a root of 64 bytes: the class the objects below use has a run,
	 * and the fences counted are the operations' own */
	r = test_heap_create(&t, path, SIZE, 64);
	h = t.h;
	xmem_heap_checkpoint(h); /* the root's record retired */

	REQUIRE_OK(xmem_heap_stats(h, &st));
	f = st.fences;
	REQUIRE_OK(xmem_tx_begin(h));
	REQUIRE_OK(xmem_tx_alloc(h, 64, 3, 0, &o));
	memset(xmem_heap_ptr(h, o), 0x31, 64);
	REQUIRE_OK(xmem_tx_add_range(h, &r->o, 8));
	r->o = o;
	REQUIRE_OK(xmem_tx_commit(h));
	REQUIRE_OK(xmem_heap_stats(h, &st));
	printf("tx: a 64-byte object and an 8-byte snapshot: %llu fences\n",
	       (unsigned long long)(st.fences - f));
	/* one for the snapshot, one at commit: the object rides along */
	CHECK(st.fences - f == 2);

	/* 1. the object's line never reached the media */
	snapshot();
	memset(zero, 0, sizeof(zero));
	memset(junk, 0xee, sizeof(junk));
	poke(o, junk, sizeof(junk));
	poke(HEAP_DONE_OFF, zero, sizeof(zero));
	REQUIRE_OK(img_open(&x));
	CHECK(img_holds(&x, 0x31));
	test_heap_close(&x);

	/* the same for an atomic allocation with a constructor */
	REQUIRE_OK(xmem_heap_stats(h, &st));
	f = st.fences;
	REQUIRE_OK(xmem_heap_alloc(h, &r->a, 64, 4, 0, fill,
				   (void *)(uintptr_t)0x41));
	REQUIRE_OK(xmem_heap_stats(h, &st));
	printf("atomic alloc of a constructed 64-byte object: %llu fences\n",
	       (unsigned long long)(st.fences - f));
	CHECK(st.fences - f == 1);
	snapshot();
	poke(r->a, junk, sizeof(junk));
	poke(HEAP_DONE_OFF, zero, sizeof(zero));
	REQUIRE_OK(img_open(&x));
	CHECK(img_holds_in(&x, 1, 0x41));
	test_heap_close(&x);

	/* 2. a later change made durable with xmem_heap_persist */
	memset(xmem_heap_ptr(h, o), 0x32, 64);
	xmem_heap_persist(h, xmem_heap_ptr(h, o), 64);
	snapshot();
	REQUIRE_OK(img_open(&x));
	CHECK(img_holds(&x, 0x32));
	test_heap_close(&x);

	/* 3. a damaged done word */
	snapshot();
	bad = 0x1234567812345678ull; /* the lane of this thread: 0 */
	poke(HEAP_DONE_OFF, &bad, 8);
	test_refused_then_repaired(img, SIZE, "done word", &tp);
	REQUIRE_OK(img_open(&x));
	/* the contents the record carried are back: the later change is
	 * undone, as repair said */
	CHECK(img_holds(&x, 0x31));
	test_heap_close(&x);

	/* 4. hostile DATA lengths: one that a careless walk would step
	 * by 0 bytes (and loop), and one past the largest */
	uint64_t lens[] = { UINT64_MAX - 20, HEAP_DATA_MAX + 8, 0 };
	for (unsigned i = 0; i < ARRAY_SIZE(lens); i++) {
		snapshot();
		REQUIRE(forge_data_len(lens[i]) == 0);
		int rc = img_open(&x);

		printf("DATA length %#llx: %d %s\n",
		       (unsigned long long)lens[i], rc,
		       rc ? xmem_errormsg() : "opened");
		CHECK(rc == XMEM_E_CORRUPT);
		if (!rc)
			test_heap_close(&x);
	}

	test_heap_close(&t);
	unlink(path);
	unlink(img);
	return test_result();
}
