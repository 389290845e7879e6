/* SPDX-License-Identifier: MIT */
/*
 * heap_txbig - transactions whose redo entries do not fit in a lane's
 * ring: 20,000 allocations in one transaction, then 20,000 frees. Their
 * COMMIT records name segments of free chunks that hold the entries.
 *
 *   1. both commit, statistics and check agree, and the segments'
 *      chunks come back once a checkpoint retires the records; inside
 *      the frees' transaction a second free of an object is refused, and
 *      objects it allocates and frees itself vanish;
 *   2. an image taken while the allocations' record is live (a crash
 *      before the checkpoint) recovers every object, and checks clean;
 *   3. the same image with a byte of the segment changed: open refuses,
 *      naming the segment; check reports it; repair discards the record
 *      and says the operation is lost; the heap then opens and checks
 *      clean. (A copy of a live heap's file holds its applied stores too,
 *      so what the lost record did stays in it; a real crash would have
 *      lost the stores no checkpoint flushed.)
 */
#include <errno.h>
#include <string.h>

#include <xmem.h>
#include "heap/heap_layout.h"
#include "heap_test.h"

#define SIZE (64ull << 20)
#define N 20000

static char path[256], img[256];
/* Offset of the segment named by the last EXT record of lane 0's ring
 * in the image, or 0. */
static uint64_t find_segment(void)
{
	static uint8_t ring[HEAP_RING_SIZE];
	int fd = open(img, O_RDONLY);
	uint64_t seg = 0;

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, ring, sizeof(ring), HEAP_LANES_OFF) ==
		(ssize_t)sizeof(ring));
	close(fd);
	for (uint32_t pos = 0; pos + 64 <= HEAP_RING_SIZE;) {
		struct heap_rec_hdr rh;
		uint64_t w0;

		memcpy(&rh, ring + pos, sizeof(rh));
		if (rh.magic != HEAP_REC_MAGIC ||
		    rh.nbytes > HEAP_RING_SIZE - pos - 64)
			break;
		memcpy(&w0, ring + pos + 64, 8);
		if (rh.nbytes == 24 && w0 >> 56 == HEAP_REDO_EXT)
			seg = w0 & HEAP_REDO_OFF_MASK;
		pos += 64 + ((rh.nbytes + 63) & ~63u);
	}
	return seg;
}

static uint64_t count_objects(struct xmem_heap *h)
{
	struct xmem_heap_stats st;

	REQUIRE_OK(xmem_heap_stats(h, &st));
	return st.objects;
}

int main(void)
{
	struct test_problems tp = { "redo log", 0 };
	unsigned problems;
	static xmem_oid o[N];
	struct xmem_heap_stats st;
	struct test_heap t, x;
	struct xmem_heap *h;
	uint64_t free0, seg, f;
	xmem_oid *root;
	uint8_t b;

	test_path(path, sizeof(path), "heap-txbig");
	test_path(img, sizeof(img), "heap-txbig-img");
	root = test_heap_create(&t, path, SIZE, 64);
	h = t.h;
	xmem_heap_checkpoint(h);
	REQUIRE_OK(xmem_heap_stats(h, &st));
	free0 = st.free;
	f = st.fences;

	/* 1. */
	REQUIRE_OK(xmem_tx_begin(h));
	for (unsigned i = 0; i < N; i++) {
		REQUIRE_OK(xmem_tx_alloc(h, 64, 3, 0, &o[i]));
		memset(xmem_heap_ptr(h, o[i]), (int)(i & 0xff), 64);
	}
	REQUIRE_OK(xmem_tx_add_range(h, root, 8));
	*root = o[N - 1];
	CHECK_OK(xmem_tx_commit(h));
	REQUIRE_OK(xmem_heap_stats(h, &st));
	printf("%u allocations in one transaction: %llu fences, %llu "
	       "objects\n",
	       N, (unsigned long long)(st.fences - f),
	       (unsigned long long)st.objects);
	CHECK(st.objects == N + 1);

	/* 2. the allocations' record is live in this image */
	test_file_copy(path, img);
	REQUIRE(test_heap_open(&x, img, SIZE) == 0);
	CHECK(count_objects(x.h) == N + 1);
	CHECK_OK(xmem_heap_check(x.h, 0, test_on_problem, &tp, &problems));
	test_heap_close(&x);

	/* 3. */
	test_file_copy(path, img);
	seg = find_segment();
	REQUIRE(seg != 0);
	int fd = open(img, O_RDONLY);

	REQUIRE(fd >= 0 && pread(fd, &b, 1, (off_t)seg + 100) == 1);
	close(fd);
	b ^= 0x40;
	test_file_poke(img, seg + 100, &b, 1);
	test_refused_then_repaired(img, SIZE, "segment", &tp);
	REQUIRE(test_heap_open(&x, img, SIZE) == 0);
	problems = 0;
	CHECK_OK(xmem_heap_check(x.h, 0, test_on_problem, &tp, &problems));
	CHECK(problems == 0);
	test_heap_close(&x);

	/* 1, continued: the frees, with (past the transaction's index
	 * threshold) a second free of one object, refused, and an object
	 * allocated and freed inside the transaction */
	REQUIRE_OK(xmem_tx_begin(h));
	for (unsigned i = 0; i < N; i++) {
		REQUIRE_OK(xmem_tx_free(h, o[i]));
		if (i == 1000) {
			xmem_oid t1, t2;

			CHECK(xmem_tx_free(h, o[500]) == -EINVAL);
			REQUIRE_OK(xmem_tx_alloc(h, 64, 4, 0, &t1));
			REQUIRE_OK(xmem_tx_alloc(h, 64, 4, 0, &t2));
			CHECK_OK(xmem_tx_free(h, t1));
			CHECK(xmem_tx_free(h, t1) == XMEM_E_BADOID);
			CHECK_OK(xmem_tx_free(h, t2));
		}
	}
	REQUIRE_OK(xmem_tx_add_range(h, root, 8));
	*root = 0;
	CHECK_OK(xmem_tx_commit(h));
	CHECK(count_objects(h) == 1);
	CHECK_OK(xmem_heap_check(h, 0, test_on_problem, &tp, &problems));
	/* a checkpoint retires both records: the segments and the freed
	 * space come back */
	REQUIRE_OK(xmem_heap_checkpoint(h));
	REQUIRE_OK(xmem_tx_begin(h));
	REQUIRE_OK(xmem_tx_alloc(h, 64, 3, 0, &o[0]));
	REQUIRE_OK(xmem_tx_free(h, o[0]));
	REQUIRE_OK(xmem_tx_commit(h));
	REQUIRE_OK(xmem_heap_stats(h, &st));
	printf("free bytes: %llu before, %llu after\n",
	       (unsigned long long)free0, (unsigned long long)st.free);
	CHECK(st.free == free0);

	test_heap_close(&t);
	unlink(path);
	unlink(img);
	return test_result();
}
