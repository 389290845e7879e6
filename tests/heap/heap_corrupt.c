/* SPDX-License-Identifier: MIT */
/*
 * heap_corrupt - planted corruption: check must find and name it, open
 * must refuse what it cannot trust, and check --repair must fix or
 * quarantine it and say so, leaving a heap that checks clean:
 *   - a run bitmap word changed (bitmap and mirror disagree),
 *   - bits set past a run's last slot,
 *   - an extent header changed (bad checksum),
 *   - an extent header rewritten valid but overlapping a run,
 *   - a committed redo record damaged with a later record after it,
 *   - a snapshot entry of a live transaction damaged,
 *   - the primary heap header damaged,
 *   - one checkpoint copy damaged (the other is used), both damaged,
 *   - crafted redo records whose entries target what their kind may not
 *     write (the checkpoint line, allocator metadata through a
 *     publishing entry, the heap header): recovery refuses them,
 *   - a retired record's header damaged with a live record after it
 *     (the ring walk would end early): refused, not skipped,
 *   - a heap of the previous layout version (opened and marked), and
 *     one of a later version (refused).
 */
#include <string.h>
#include <sys/wait.h>

#include <xmem.h>
#include "core/checksum.h"
#include "heap/heap_layout.h"
#include "test.h"

#define SIZE (16ull << 20)

static char path[256];
static struct xmem_device *dev;
static struct xmem_map *map;
static uint8_t *base;
static char seen[4096];

static void problem_fn(const struct xmem_check_problem *p, void *arg)
{
	(void)arg;
	printf("  %s @%llu: %s%s\n", p->structure,
	       (unsigned long long)p->offset, p->what,
	       p->repaired ? " [repaired]" : "");
	strncat(seen, p->structure, sizeof(seen) - strlen(seen) - 2);
	strncat(seen, "|", sizeof(seen) - strlen(seen) - 1);
}

struct root {
	xmem_oid small[8];
	xmem_oid big;
	uint64_t v[4];
};

/* A fresh heap with small objects (chunk 0 a run) and an extent. */
static struct root *fresh(struct xmem_heap **hp)
{
	xmem_oid r;
	struct root *rt;

	REQUIRE_OK(xmem_heap_create_map(map, 0, hp));
	REQUIRE_OK(xmem_heap_root(*hp, sizeof(struct root), 1, &r));
	rt = xmem_heap_ptr(*hp, r);
	for (int i = 0; i < 8; i++)
		REQUIRE_OK(xmem_heap_alloc(*hp, &rt->small[i], 64, 2, 0, NULL,
					   NULL));
	REQUIRE_OK(xmem_heap_alloc(*hp, &rt->big, 1u << 20, 3, 0, NULL, NULL));
	return rt;
}

static const struct heap_header *hdr(void)
{
	return (const struct heap_header *)base;
}

/* Rewrites both header copies with layout version v. */
static void set_version(uint32_t v)
{
	struct heap_header hd;

	memcpy(&hd, base, sizeof(hd));
	hd.version = v;
	hd.csum = xmem__csum_struct(&hd, sizeof(hd),
				    offsetof(struct heap_header, csum));
	memcpy(base, &hd, sizeof(hd));
	memcpy(base + HEAP_HDR_BACKUP_OFF, &hd, sizeof(hd));
}

static uint64_t meta(uint64_t chunk)
{
	return hdr()->meta_off + chunk * HEAP_META_SIZE;
}

/* Chunk index of an object. */
static uint64_t chunk_of(xmem_oid o)
{
	return (o - hdr()->data_off) / HEAP_CHUNK_SIZE;
}

/* Runs check (no repair) expecting `what` named, then repair, then a
 * clean check and a successful open. */
static void expect(const char *label, const char *what, int open_fails)
{
	struct xmem_heap *h;
	unsigned np = 0;
	int rc;

	printf("%s:\n", label);
	seen[0] = 0;
	rc = xmem_heap_check_map(map, 0, problem_fn, NULL, &np);
	CHECK(rc == XMEM_E_CORRUPT && np > 0);
	if (!strstr(seen, what)) {
		fprintf(stderr, "%s: expected a problem in '%s', got '%s'\n",
			label, what, seen);
		CHECK(0);
	}
	if (open_fails == 1) {
		rc = xmem_heap_open_map(map, 0, &h);
		CHECK(rc == XMEM_E_CORRUPT);
		if (!rc)
			xmem_heap_close(&h);
		else
			printf("  open: %s\n", xmem_errormsg());
	} else if (open_fails == 2) {
		/* chunk headers are read lazily: open succeeds, the first
		 * call that reads the damaged header fails */
		struct xmem_heap_stats st;
		REQUIRE_OK(xmem_heap_open_map(map, 0, &h));
		rc = xmem_heap_stats(h, &st);
		CHECK(rc == XMEM_E_CORRUPT);
		printf("  stats: %s\n", xmem_errormsg());
		xmem_heap_close(&h);
	}
	CHECK_OK(
		xmem_heap_check_map(map, XMEM_F_REPAIR, problem_fn, NULL, &np));
	seen[0] = 0;
	CHECK_OK(xmem_heap_check_map(map, 0, problem_fn, NULL, &np));
	CHECK(np == 0);
	CHECK_OK(xmem_heap_open_map(map, 0, &h));
	if (h) {
		CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, &np));
		CHECK(np == 0);
		xmem_heap_close(&h);
	}
}

/* Rewrites a chunk header with a valid checksum. */
static void put_chunk_hdr(uint64_t c, struct heap_chunk_hdr *ch)
{
	ch->csum = 0;
	ch->csum = xmem__crc32c(0, ch, sizeof(*ch));
	memcpy(base + meta(c), ch, sizeof(*ch));
}

/* Runs fn in a child that exits without closing the heap, so its
 * records (and undo) stay pending on the media. */
static void in_child(void (*fn)(struct xmem_heap *h, struct root *r))
{
	pid_t pid;
	int st;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct xmem_heap *h;
		xmem_oid r;
		if (xmem_heap_open_map(map, 0, &h) ||
		    xmem_heap_root(h, sizeof(struct root), 1, &r))
			_exit(1);
		fn(h, xmem_heap_ptr(h, r));
		_exit(0);
	}
	REQUIRE(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		WEXITSTATUS(st) == 0);
}

static void two_frees(struct xmem_heap *h, struct root *r)
{
	xmem_heap_free(h, &r->small[0]);
	xmem_heap_free(h, &r->small[1]);
}

/* A record, a checkpoint retiring it, a live record after it. */
static void free_ckpt_free(struct xmem_heap *h, struct root *r)
{
	xmem_heap_free(h, &r->small[0]);
	xmem_heap_checkpoint(h);
	xmem_heap_free(h, &r->small[1]);
}

static void open_tx(struct xmem_heap *h, struct root *r)
{
	xmem_tx_begin(h);
	xmem_tx_add_range(h, &r->v[0], 8);
	xmem_tx_add_range(h, &r->v[2], 8);
	r->v[0] = 1;
	/* exits inside the transaction */
}

/* The checkpoint C in copy A (raw). */
static uint64_t ckpt_a(void)
{
	uint64_t c;

	memcpy(&c, base + HEAP_CKPT_OFF, 8);
	return c;
}

/* Writes a valid OP record with one entry at lane 0's ring start. */
static void craft_record(unsigned op, unsigned sz, uint64_t off, uint64_t v)
{
	struct heap_rec_hdr rh;
	uint64_t e[4] = { (uint64_t)op << 56 | (uint64_t)sz << 48 | off, v, 0,
			  0 };
	uint32_t n = op == HEAP_REDO_CSET ? 24 : 16;

	memset(&rh, 0, sizeof(rh));
	rh.magic = HEAP_REC_MAGIC;
	rh.kind = HEAP_REC_OP;
	rh.epoch = hdr()->epoch;
	rh.nbytes = n;
	rh.seq = ckpt_a() + 1;
	rh.pcsum = xmem__crc32c(0, e, n);
	rh.hcsum = xmem__crc32c(0, &rh, sizeof(rh));
	memcpy(base + HEAP_LANES_OFF, &rh, sizeof(rh));
	memset(base + HEAP_LANES_OFF + 64, 0, 64);
	memcpy(base + HEAP_LANES_OFF + 64, e, n);
	/* no valid record after it */
	memset(base + HEAP_LANES_OFF + 128, 0, 64);
}

int main(void)
{
	struct xmem_heap *h;
	struct root *r;
	struct heap_chunk_hdr ch;
	uint64_t c;

	test_path(path, sizeof(path), "heap-corrupt");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, SIZE, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, SIZE, 0, 0, &map));
	base = xmem_map_addr(map);

	/* 1. a run bitmap word changed */
	r = fresh(&h);
	c = chunk_of(r->small[0]);
	xmem_heap_close(&h);
	base[meta(c) + HEAP_META_BITMAP + 1] ^= 0x10;
	expect("run bitmap bit flipped", "run bitmap", 0);

	/* 2. bits past a run's end (class 131072: 2 slots) */
	r = fresh(&h);
	REQUIRE_OK(xmem_heap_alloc(h, &r->small[2], 100000, 4, 0, NULL, NULL));
	c = chunk_of(r->small[2]);
	xmem_heap_close(&h);
	base[meta(c) + HEAP_META_BITMAP] |= 0x80;
	base[meta(c) + HEAP_MIRROR_OFF(0)] |= 0x80;
	expect("bits past the run's end", "run bitmap", 0);

	/* 3. an extent header changed */
	r = fresh(&h);
	c = chunk_of(r->big);
	xmem_heap_close(&h);
	base[meta(c) + 8] ^= 0x02; /* nchunks */
	expect("extent header changed", "header", 2);

	/* 4. a valid extent header that overlaps a run */
	r = fresh(&h);
	uint64_t run = chunk_of(r->small[0]);
	xmem_heap_close(&h);
	memcpy(&ch, base + meta(run), sizeof(ch));
	memset(&ch, 0, sizeof(ch));
	ch.kind = HEAP_CHUNK_EXTENT;
	ch.nchunks = 3;
	ch.type = 3;
	ch.epoch = hdr()->epoch;
	/* the free chunk before the run, if any, else an extent after it */
	c = run > 0 ? run - 1 : run;
	if (run == 0) {
		/* put the extent on the chunk after the big object's head */
		c = chunk_of(r->big) + 4;
		ch.nchunks = 2;
		struct heap_chunk_hdr rh;
		memcpy(&rh, base + meta(run), sizeof(rh));
		put_chunk_hdr(c, &ch);
		/* and plant a run on the chunk after it */
		put_chunk_hdr(c + 1, &rh);
		memset(base + meta(c + 1) + HEAP_META_BITMAP, 0,
		       HEAP_BITMAP_BYTES);
	} else {
		put_chunk_hdr(c, &ch);
	}
	expect("extent overlapping a run", "header", 0);

	/* 5. a committed record damaged, a later one after it */
	r = fresh(&h);
	xmem_heap_close(&h);
	in_child(two_frees);
	{
		uint8_t *ring = base + HEAP_LANES_OFF; /* lane 0 */
		struct heap_rec_hdr *rh = (void *)ring;
		REQUIRE(rh->magic == HEAP_REC_MAGIC && rh->nbytes > 0);
		ring[64 + 3] ^= 0x40; /* first entry of the first record */
	}
	expect("redo record damaged", "redo log", 1);

	/* 6. a snapshot entry of a live transaction damaged */
	r = fresh(&h);
	xmem_heap_close(&h);
	in_child(open_tx);
	{
		uint8_t *undo = base + HEAP_LANES_OFF + HEAP_RING_SIZE;
		struct heap_undo_hdr *u = (void *)undo;
		REQUIRE(u->magic == HEAP_UNDO_MAGIC);
		undo[64] ^= 0x01; /* the first snapshot's data */
	}
	expect("undo entry damaged", "undo log", 0);

	/* 7. the primary header damaged */
	r = fresh(&h);
	xmem_heap_close(&h);
	base[40] ^= 0xff;
	expect("primary header damaged", "heap header (primary)", 1);

	/* 8. one checkpoint copy damaged: a high bit of C flipped would
	 * retire every live record; the copy is rejected, B is used */
	r = fresh(&h);
	xmem_heap_close(&h);
	in_child(two_frees);
	base[HEAP_CKPT_OFF + 5] ^= 0x01;
	expect("checkpoint copy damaged", "checkpoint", 0);
	CHECK(ckpt_a() < (1ull << 32));
	CHECK(!memcmp(base + HEAP_CKPT_OFF, base + HEAP_CKPT_B_OFF, 16));

	/* 9. both copies damaged: open refuses, repair rebuilds C */
	r = fresh(&h);
	xmem_heap_close(&h);
	in_child(two_frees);
	base[HEAP_CKPT_OFF + 1] ^= 0x20;
	base[HEAP_CKPT_B_OFF + 12] ^= 0x04;
	expect("both checkpoint copies damaged", "checkpoint", 1);

	/* 10. crafted records: each entry is valid in form but targets
	 * what its kind may not write */
	{
		static const struct {
			const char *what;
			unsigned op, sz;
			int meta; /* offset: 0 absolute, 1 chunk 0 bitmap */
			uint64_t off;
		} bad[] = {
			{ "SET into the checkpoint", HEAP_REDO_SET, 8, 0,
			  HEAP_CKPT_OFF },
			{ "SET into lane 1's ring", HEAP_REDO_SET, 8, 0,
			  HEAP_LANES_OFF + HEAP_LANE_SIZE },
			{ "CSET into a run bitmap", HEAP_REDO_CSET, 8, 1,
			  HEAP_META_BITMAP },
			{ "USET into a chunk header", HEAP_REDO_USET, 8, 1, 0 },
			{ "ZERO over the root line", HEAP_REDO_ZERO, 0, 0,
			  HEAP_ROOT_OFF },
			{ "OR past the metadata", HEAP_REDO_OR, 8, 2, 0 },
			{ "OR2 with its mirror in the next line", HEAP_REDO_OR2,
			  8, 1, HEAP_META_BITMAP + 32 },
			{ "ANDN2 past the metadata", HEAP_REDO_ANDN2, 8, 2, 0 },
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint64_t off = bad[i].off;

			r = fresh(&h);
			xmem_heap_close(&h);
			if (bad[i].meta == 1)
				off += meta(0);
			if (bad[i].meta == 2)
				off = hdr()->data_off + 64;
			craft_record(bad[i].op, bad[i].sz, off,
				     bad[i].op == HEAP_REDO_ZERO ? 64 : ~0ull);
			expect(bad[i].what, "redo log", 1);
		}
	}

	/* 11. a retired record's header damaged: the live record after it
	 * must not be skipped silently */
	r = fresh(&h);
	xmem_heap_close(&h);
	in_child(free_ckpt_free);
	{
		struct heap_rec_hdr *rh = (void *)(base + HEAP_LANES_OFF);
		REQUIRE(rh->magic == HEAP_REC_MAGIC && rh->seq <= ckpt_a());
		base[HEAP_LANES_OFF + 40] ^= 0x08; /* reserved byte */
	}
	expect("retired record header damaged", "redo log", 1);

	/* 12. layout versions: a heap of version 3 (no OR2, ANDN2) opens
	 * and is marked with this version, both header copies; a later
	 * version is refused */
	r = fresh(&h);
	xmem_heap_close(&h);
	set_version(3);
	REQUIRE_OK(xmem_heap_open_map(map, 0, &h));
	CHECK_OK(xmem_heap_check(h, 0, problem_fn, NULL, NULL));
	/* what it wrote with OR2 and ANDN2 */
	CHECK_OK(xmem_heap_free(h, &r->small[0]));
	CHECK_OK(xmem_heap_alloc(h, &r->small[0], 64, 2, 0, NULL, NULL));
	xmem_heap_close(&h);
	CHECK(hdr()->version == HEAP_VERSION);
	CHECK_OK(xmem_heap_check_map(map, 0, problem_fn, NULL, NULL));
	CHECK(!memcmp(base, base + HEAP_HDR_BACKUP_OFF,
		      sizeof(struct heap_header)));
	set_version(HEAP_VERSION + 1);
	CHECK(xmem_heap_open_map(map, 0, &h) == XMEM_E_VERSION);

	xmem_map_delete(&map);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
