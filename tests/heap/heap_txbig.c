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
 *   4. a forged segment (checksums matching) whose first entry rewrites
 *      a later entry into a store into the heap header: recovery applies
 *      what it validated, and the header stays as it was;
 *   5. in a large transaction, snapshots inside its new objects are
 *      skipped, one of an older object is not, and an abort undoes it.
 */
#include <errno.h>
#include <string.h>

#include <xmem.h>
#include "core/checksum.h"
#include "heap/heap_layout.h"
#include "heap_test.h"

#define SIZE (64ull << 20)
#define N 20000

static char path[256], img[256];
/* Offset of the segment named by the last EXT record of lane 0's ring
 * in the image (0 if none); *rpos gets that record's ring offset. */
static uint64_t find_segment(uint32_t *rpos)
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
		if (rh.nbytes == 24 && w0 >> 56 == HEAP_REDO_EXT) {
			seg = w0 & HEAP_REDO_OFF_MASK;
			*rpos = pos;
		}
		pos += 64 + ((rh.nbytes + 63) & ~63u);
	}
	return seg;
}

/*
 * Rewrites the image's segment at seg (record at ring offset rpos) so
 * that its first entry, a CSET, turns the head of the second entry into
 * a store into the heap header (offset 16) when it is applied; the
 * checksums are made to match. Returns the header's bytes at 16.
 */
static uint16_t forge_self_write(uint64_t seg, uint32_t rpos)
{
	uint64_t roff = HEAP_LANES_OFF + rpos, w[3], e0[3], e1;
	struct heap_rec_hdr rh;
	static uint8_t buf[1 << 20];
	uint16_t hdr16;
	int fd = open(img, O_RDWR);

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, &rh, sizeof(rh), (off_t)roff) == sizeof(rh));
	REQUIRE(pread(fd, w, sizeof(w), (off_t)roff + 64) == sizeof(w));
	REQUIRE(w[1] <= sizeof(buf));
	REQUIRE(pread(fd, buf, w[1], (off_t)seg) == (ssize_t)w[1]);
	REQUIRE(pread(fd, &hdr16, 2, 16) == 2);
	memcpy(e0, buf, sizeof(e0));
	memcpy(&e1, buf + 24, 8);
	REQUIRE(e0[0] >> 56 == HEAP_REDO_CSET);
	e0[0] = (uint64_t)HEAP_REDO_CSET << 56 | 8ull << 48 | (seg + 24);
	e0[2] = e1; /* old: the second entry's head as it is */
	e0[1] = (uint64_t)HEAP_REDO_SET << 56 | 2ull << 48 | 16;
	memcpy(buf, e0, sizeof(e0));
	w[2] = xmem__crc32c(0, buf, w[1]);
	rh.pcsum = xmem__crc32c(0, w, sizeof(w));
	rh.hcsum = 0;
	rh.hcsum = xmem__crc32c(0, &rh, sizeof(rh));
	REQUIRE(pwrite(fd, buf, w[1], (off_t)seg) == (ssize_t)w[1]);
	REQUIRE(pwrite(fd, w, sizeof(w), (off_t)roff + 64) == sizeof(w));
	REQUIRE(pwrite(fd, &rh, sizeof(rh), (off_t)roff) == sizeof(rh));
	close(fd);
	return hdr16;
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
	uint32_t rpos;
	uint16_t hdr16, now16;
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
	seg = find_segment(&rpos);
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

	/* 4. a segment whose first entry rewrites a later one: what is
	 * applied must be what was validated (a copy), so the header
	 * stays as it was */
	test_file_copy(path, img);
	seg = find_segment(&rpos);
	REQUIRE(seg != 0);
	hdr16 = forge_self_write(seg, rpos);
	if (test_heap_open(&x, img, SIZE) == 0)
		test_heap_close(&x);
	fd = open(img, O_RDONLY);
	REQUIRE(fd >= 0 && pread(fd, &now16, 2, 16) == 2);
	close(fd);
	printf("header bytes at 16: %#x before, %#x after recovery\n", hdr16,
	       now16);
	CHECK(now16 == hdr16);

	/* 5. snapshots inside objects the transaction allocated are
	 * skipped (found through its index: no fence each), one of an
	 * older object is taken, and an abort undoes it all */
	REQUIRE_OK(xmem_heap_stats(h, &st));
	f = st.fences;
	REQUIRE_OK(xmem_tx_begin(h));
	for (unsigned i = 0; i < 2000; i++) {
		xmem_oid n;
		uint64_t *p;

		REQUIRE_OK(xmem_tx_alloc(h, 64, 5, 0, &n));
		p = xmem_heap_ptr(h, n);
		REQUIRE_OK(xmem_tx_add_range(h, p + 1, 8));
		p[1] = i;
	}
	uint64_t *old = xmem_heap_ptr(h, o[7]), was = old[1];
	REQUIRE_OK(xmem_tx_add_range(h, old + 1, 8));
	old[1] = ~was;
	REQUIRE_OK(xmem_heap_stats(h, &st));
	printf("2000 allocations with a snapshot inside each, and one "
	       "older snapshot: %llu fences\n",
	       (unsigned long long)(st.fences - f));
	CHECK(st.fences - f <= 4);
	REQUIRE_OK(xmem_tx_abort(h));
	CHECK(old[1] == was);
	CHECK(count_objects(h) == N + 1);

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
