/* SPDX-License-Identifier: MIT */
/*
 * persist_flags.c - CPU dispatch and its environment overrides, every
 * flush variant this CPU runs, the mem* flags, xmem_cpu_info() and the
 * granularity names.
 */
#include <stdint.h>
#include <stdlib.h>

#include <xmem.h>

#include "persist/dispatch.h"
#include "test.h"

static const char *const env_vars[] = {
	"XMEM_NO_CLWB", "XMEM_NO_CLFLUSHOPT", "XMEM_NO_AVX512F",
	"XMEM_NO_AVX2", "XMEM_NO_MOVNT",      "XMEM_MOVNT_THRESHOLD",
};

static void env_clear(void)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	xmem__persist_reinit();
}

static struct xmem_cpu_info info_with(const char *var, const char *val)
{
	struct xmem_cpu_info ci;

	env_clear();
	setenv(var, val, 1);
	xmem__persist_reinit();
	xmem_cpu_info(&ci);
	return ci;
}

/* The defaults follow the CPU: best flush and widest vectors. */
static void test_defaults(void)
{
	struct xmem_cpu_info ci;

	env_clear();
	xmem_cpu_info(&ci);
	CHECK(ci.clflush);
	CHECK(ci.sse2);
	CHECK(!strcmp(ci.flush_insn, ci.clwb	     ? "clwb"
				     : ci.clflushopt ? "clflushopt"
						     : "clflush"));
	CHECK(!strcmp(ci.memcpy_impl, ci.avx512f ? "avx512f"
				      : ci.avx2	 ? "avx2"
						 : "sse2"));
	CHECK(ci.movnt_threshold == 256);
	printf("flush %s, memcpy %s, threshold %zu\n", ci.flush_insn,
	       ci.memcpy_impl, ci.movnt_threshold);
}

static void test_overrides(void)
{
	struct xmem_cpu_info ci;

	ci = info_with("XMEM_NO_CLWB", "1");
	CHECK(!ci.clwb && strcmp(ci.flush_insn, "clwb") != 0);
	ci = info_with("XMEM_NO_CLFLUSHOPT", "1");
	CHECK(!ci.clflushopt && strcmp(ci.flush_insn, "clflushopt") != 0);
	setenv("XMEM_NO_CLWB", "1", 1);
	xmem__persist_reinit();
	xmem_cpu_info(&ci);
	CHECK(!strcmp(ci.flush_insn, "clflush"));
	ci = info_with("XMEM_NO_AVX512F", "1");
	CHECK(!ci.avx512f && strcmp(ci.memcpy_impl, "avx512f") != 0);
	setenv("XMEM_NO_AVX2", "1", 1);
	xmem__persist_reinit();
	xmem_cpu_info(&ci);
	CHECK(!strcmp(ci.memcpy_impl, "sse2"));
	ci = info_with("XMEM_NO_MOVNT", "1");
	CHECK(!strcmp(ci.memcpy_impl, "generic"));
	ci = info_with("XMEM_NO_MOVNT", "0"); /* "0" means not set */
	CHECK(strcmp(ci.memcpy_impl, "generic") != 0);
	ci = info_with("XMEM_MOVNT_THRESHOLD", "4096");
	CHECK(ci.movnt_threshold == 4096);
	ci = info_with("XMEM_MOVNT_THRESHOLD", "0x100");
	CHECK(ci.movnt_threshold == 256);
	ci = info_with("XMEM_MOVNT_THRESHOLD", "lots");
	CHECK(ci.movnt_threshold == 256);
	ci = info_with("XMEM_MOVNT_THRESHOLD", "-5");
	CHECK(ci.movnt_threshold == 256);
	env_clear();
}

static void test_variant_names(void)
{
	int avail, nflush = 0, nmem = 0;
	const char *n;

	for (size_t i = 0; (n = xmem__persist_variant_name(0, i, &avail));
	     i++) {
		int rc = xmem__persist_variant_set(n);

		CHECK(rc == (avail ? 0 : -ENOTSUP));
		nflush++;
	}
	for (size_t i = 0; (n = xmem__persist_variant_name(1, i, &avail));
	     i++) {
		int rc = xmem__persist_variant_set(n);

		CHECK(rc == (avail ? 0 : -ENOTSUP));
		nmem++;
	}
	CHECK(nflush == 3);
	CHECK(nmem == 4);
	CHECK(xmem__persist_variant_set("avx1024") == -EINVAL);
	env_clear();
}

/* Every flush instruction and every flag set leaves the right bytes. */
static void test_flush_variants_and_flags(void)
{
	static const unsigned fl[] = {
		0,
		XMEM_F_MEM_NODRAIN,
		XMEM_F_MEM_NONTEMPORAL,
		XMEM_F_MEM_TEMPORAL,
		XMEM_F_MEM_NOFLUSH,
		XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NODRAIN,
		XMEM_F_MEM_TEMPORAL | XMEM_F_MEM_NOFLUSH,
		XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_TEMPORAL,
	};
	size_t n = 3 * 4096 + 77;
	unsigned char *a = aligned_alloc(64, (n + 127) & ~(size_t)63);
	unsigned char *b = malloc(n);
	int avail;
	const char *name;

	REQUIRE(a && b);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 7 + 1);
	for (size_t v = 0; (name = xmem__persist_variant_name(0, v, &avail));
	     v++) {
		if (!avail)
			continue;
		REQUIRE(xmem__persist_variant_set(name) == 0);
		for (size_t f = 0; f < sizeof(fl) / sizeof(fl[0]); f++)
			for (size_t len = 1; len < n; len = len * 3 + 1) {
				memset(a, 0, n + 64);
				CHECK(xmem_memcpy(a + 3, b, len, fl[f]) ==
				      a + 3);
				CHECK(!memcmp(a + 3, b, len));
				CHECK(a[2] == 0 && a[3 + len] == 0);
				CHECK(xmem_memset(a + 5, 0xee, len, fl[f]) ==
				      a + 5);
				CHECK(a[5] == 0xee && a[4 + len] == 0xee);
				CHECK(a[4] != 0xee || a[5 + len] != 0xee);
				CHECK(xmem_memmove(a + 1, a + 5, len, fl[f]) ==
				      a + 1);
				CHECK(a[1] == 0xee && a[len] == 0xee);
				xmem_flush(a, len);
				xmem_drain();
				xmem_persist(a, len);
				xmem_persist(a, 0);
			}
	}
	free(a);
	free(b);
	env_clear();
}

int main(void)
{
	CHECK(!strcmp(xmem_granularity_name(XMEM_GRAN_BYTE), "byte"));
	CHECK(!strcmp(xmem_granularity_name(XMEM_GRAN_CACHELINE), "cacheline"));
	CHECK(!strcmp(xmem_granularity_name(XMEM_GRAN_PAGE), "page"));
	CHECK(!strcmp(xmem_granularity_name((enum xmem_granularity)9),
		      "unknown"));
	test_defaults();
	test_overrides();
	test_variant_names();
	test_flush_variants_and_flags();
	return test_result();
}
