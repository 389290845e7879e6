/* SPDX-License-Identifier: MIT */
/*
 * persist_memops.c - one memory variant (argv[1]: avx512f, avx2, sse2 or
 * generic) against libc: memcpy for every source and destination
 * alignment 0..63 at a dense set of sizes from 0 to 1 MiB, memset at
 * every destination alignment, memmove with overlaps in both directions.
 * Bytes around the destination must stay untouched. Skips when this CPU
 * cannot run the variant.
 */
#include <stdint.h>

#include <xmem.h>

#include "persist/dispatch.h"
#include "test.h"

#define MAXLEN (1u << 20)
#define GUARD 256u
#define BUFSZ (MAXLEN + 4096) /* room for alignments and guards */

static unsigned char *dst, *src, *ref;
static unsigned flags_now;

/*
 * Under ThreadSanitizer (which has nothing to find in this one-thread
 * test, and makes every access slow) sizes above 4 KiB are checked at
 * the alignments 0, 1, 31 and 63 only, instead of all 64.
 */
#ifdef __SANITIZE_THREAD__
#define FULL_PAIRS_MAX 4096u
#else
#define FULL_PAIRS_MAX ((size_t)-1)
#endif

/* The next alignment to try after a: all of them, or a sample. */
static size_t next_align(size_t a, size_t n)
{
	if (n <= FULL_PAIRS_MAX)
		return a + 1;
	return a == 0 ? 1 : a == 1 ? 31 : a == 31 ? 63 : 64;
}

/* Sizes: every one up to 140 (0..2 lines and their edges), every 7th up
 * to 520, then each side of line, page and power-of-two boundaries up to
 * 1 MiB. */
static size_t sizes[256];
static size_t nsizes;

static void make_sizes(void)
{
	static const size_t big[] = { 575,   576,   577,    1023,  1024,
				      1025,  2047,  2048,   4095,  4096,
				      4097,  8191,  12345,  16384, 65535,
				      65600, 99999, 262207, MAXLEN };

	for (size_t s = 0; s <= 520; s += s < 140 ? 1 : 7)
		sizes[nsizes++] = s;
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		sizes[nsizes++] = big[i];
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

/* dst must equal ref except [off, off+n) == want; then repaired. */
static int check_and_restore(size_t off, const unsigned char *want, size_t n,
			     const char *what, size_t sa)
{
	size_t lo = off - GUARD, hi = off + n + GUARD;
	int bad = 0;

	if (memcmp(dst + lo, ref + lo, GUARD) ||
	    memcmp(dst + off + n, ref + off + n, GUARD)) {
		fprintf(stderr,
			"%s: len %zu dst+%zu src+%zu: bytes outside "
			"the destination changed\n",
			what, n, off - GUARD, sa);
		bad = 1;
	}
	if (want && memcmp(dst + off, want, n)) {
		fprintf(stderr, "%s: len %zu dst+%zu src+%zu: wrong data\n",
			what, n, off - GUARD, sa);
		bad = 1;
	}
	memcpy(dst + lo, ref + lo, hi - lo);
	return bad;
}

static int check_memset(size_t off, int c, size_t n)
{
	size_t lo = off - GUARD;
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		if (dst[off + i] != (unsigned char)c) {
			fprintf(stderr,
				"memset: len %zu dst+%zu: byte %zu "
				"is %#x\n",
				n, off - GUARD, i, dst[off + i]);
			bad = 1;
			break;
		}
	bad |= check_and_restore(off, NULL, n, "memset", 0);
	memcpy(dst + lo, ref + lo, n + 2 * GUARD);
	return bad;
}

static int run_memcpy(void)
{
	int bad = 0;

	for (size_t i = 0; i < nsizes && !bad; i++) {
		size_t n = sizes[i];

		for (size_t da = 0; da < 64 && !bad; da = next_align(da, n))
			for (size_t sa = 0; sa < 64 && !bad;
			     sa = next_align(sa, n)) {
				size_t off = GUARD + da;

				xmem_memcpy(dst + off, src + sa, n, flags_now);
				bad |= check_and_restore(off, src + sa, n,
							 "memcpy", sa);
			}
	}
	return bad;
}

static int run_memset(void)
{
	int bad = 0;

	for (size_t i = 0; i < nsizes && !bad; i++)
		for (size_t da = 0; da < 64 && !bad;
		     da = next_align(da, sizes[i])) {
			int c = (int)(i * 64 + da) & 0xff;

			xmem_memset(dst + GUARD + da, c, sizes[i], flags_now);
			bad |= check_memset(GUARD + da, c, sizes[i]);
		}
	return bad;
}

/* memmove within dst: source `delta` bytes away, both directions; the
 * window around both ranges must match libc's memmove of the same. */
static int move_one(unsigned char *exp, size_t n, size_t off, long delta)
{
	size_t soff = (size_t)((long)off + delta);
	size_t lo = (off < soff ? off : soff) - GUARD;
	size_t hi = (off > soff ? off : soff) + n + GUARD;
	int bad = 0;

	memcpy(exp + lo, ref + lo, hi - lo);
	memmove(exp + off, exp + soff, n);
	xmem_memmove(dst + off, dst + soff, n, flags_now);
	if (memcmp(dst + lo, exp + lo, hi - lo)) {
		fprintf(stderr, "memmove: len %zu dst+%zu delta %ld: wrong\n",
			n, off, delta);
		bad = 1;
	}
	memcpy(dst + lo, ref + lo, hi - lo);
	return bad;
}

static int run_memmove(void)
{
	static const long deltas[] = { 1, 7, 31, 63, 64, 65, 127, 200, 4095 };
	unsigned char *exp = malloc(BUFSZ);
	int bad = 0;

	REQUIRE(exp);
	for (size_t i = 0; i < nsizes && !bad; i++) {
		size_t n = sizes[i];

		if (n > 65536)
			continue;
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++)
			for (size_t a = 0; a < 64 && !bad; a += 3) {
				size_t off = GUARD + 4096 + a;

				bad |= move_one(exp, n, off, deltas[d]);
				bad |= move_one(exp, n, off, -deltas[d]);
			}
	}
	free(exp);
	return bad;
}

int main(int argc, char **argv)
{
	static const unsigned flagsets[] = { XMEM_F_MEM_NONTEMPORAL,
					     XMEM_F_MEM_TEMPORAL, 0 };
	const char *v = argc > 1 ? argv[1] : "generic";
	int rc = xmem__persist_variant_set(v);

	if (rc == -ENOTSUP)
		SKIP("this CPU cannot run the %s variant", v);
	REQUIRE(rc == 0);
	make_sizes();
	dst = aligned_alloc(4096, BUFSZ);
	src = aligned_alloc(4096, BUFSZ);
	ref = aligned_alloc(4096, BUFSZ);
	REQUIRE(dst && src && ref);
	fill(src, BUFSZ, 1);
	fill(ref, BUFSZ, 2);
	memcpy(dst, ref, BUFSZ);

	/* NONTEMPORAL sends every size through the variant's code; the
	 * other flag sets check the dispatch around it. */
	printf("%s: %zu sizes (0 to %zu) x 64 x 64 alignments\n", v, nsizes,
	       sizes[nsizes - 1]);
	for (size_t f = 0; f < sizeof(flagsets) / sizeof(flagsets[0]); f++) {
		flags_now = flagsets[f];
		if (f > 0 && nsizes > 40)
			nsizes = 40; /* the dispatch needs no 1 MiB runs */
		CHECK(run_memcpy() == 0);
		CHECK(run_memset() == 0);
		CHECK(run_memmove() == 0);
	}
	free(dst);
	free(src);
	free(ref);
	return test_result();
}
