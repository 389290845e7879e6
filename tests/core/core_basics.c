/* SPDX-License-Identifier: MIT */
/* core_basics.c - error codes, messages, checksums and size parsing. */
#include <errno.h>
#include <pthread.h>
#include <xmem.h>

#include "core/checksum.h"
#include "core/error.h"
#include "core/util.h"
#include "test.h"

/* Known CRC-32C vectors (RFC 3720 appendix B.4 and the "123456789" check). */
static void test_crc32c(void)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	CHECK(xmem__crc32c(0, "123456789", 9) == 0xe3069283u);
	CHECK(xmem__crc32c(0, zeros, 32) == 0x8a9136aau);
	CHECK(xmem__crc32c(0, ones, 32) == 0x62a8ab43u);
	CHECK(xmem__crc32c(0, inc, 32) == 0x46dd794eu);
	/* Chaining gives the same as one call. */
	CHECK(xmem__crc32c(xmem__crc32c(0, inc, 13), inc + 13, 19) ==
	      0x46dd794eu);
}

/* The checksum field is taken as zero wherever it lies. */
static void test_csum_struct(void)
{
	uint8_t a[64], b[64];

	for (int i = 0; i < 64; i++)
		a[i] = (uint8_t)(i * 7);
	memcpy(b, a, sizeof(b));
	memset(b + 20, 0, 4);
	CHECK(xmem__csum_struct(a, 64, 20) == xmem__crc32c(0, b, 64));
	a[21] ^= 1; /* inside the checksum field: no change */
	CHECK(xmem__csum_struct(a, 64, 20) == xmem__crc32c(0, b, 64));
	a[40] ^= 1; /* outside: changes */
	CHECK(xmem__csum_struct(a, 64, 20) != xmem__crc32c(0, b, 64));
}

/* Fletcher-64 over 32-bit words: lo is the sum, hi the sum of sums. */
static void test_fletcher64(void)
{
	uint32_t w[4] = { 1, 2, 3, 4 };
	uint64_t f = xmem__fletcher64(w, sizeof(w), 100);

	CHECK((uint32_t)f == 10);
	CHECK((f >> 32) == 1 + 3 + 6 + 10);
	/* The checksum field's two words count as zero. */
	f = xmem__fletcher64(w, sizeof(w), 4);
	CHECK((uint32_t)f == 5);
	CHECK((f >> 32) == 1 + 1 + 1 + 5);
}

static void test_sizes(void)
{
	uint64_t v = 0;
	char buf[32];

	CHECK(xmem__parse_size("4096", &v) == 0 && v == 4096);
	CHECK(xmem__parse_size("64M", &v) == 0 && v == 64ull << 20);
	CHECK(xmem__parse_size("2GiB", &v) == 0 && v == 2ull << 30);
	CHECK(xmem__parse_size("4k", &v) == 0 && v == 4096);
	CHECK(xmem__parse_size("1T", &v) == 0 && v == 1ull << 40);
	CHECK(xmem__parse_size("010K", &v) == 0 && v == 10 << 10);
	CHECK(xmem__parse_size("0x10", &v) == 0 && v == 16);
	CHECK(xmem__parse_size("0x", &v) == -EINVAL);
	CHECK(xmem__parse_size("", &v) == -EINVAL);
	CHECK(xmem__parse_size("12X", &v) == -EINVAL);
	CHECK(xmem__parse_size("-1", &v) == -EINVAL);
	CHECK(xmem__parse_size("99999999999999P", &v) != 0);
	CHECK(!strcmp(xmem__fmt_size(buf, sizeof(buf), 2ull << 20), "2 MiB"));
	CHECK(!strcmp(xmem__fmt_size(buf, sizeof(buf), 4097), "4097 B"));
	CHECK(!strcmp(xmem__fmt_size(buf, sizeof(buf), 1ull << 30), "1 GiB"));
}

static void *other_thread(void *arg)
{
	xmem__err(-EIO, "thread message");
	return arg;
}

/* Messages are per thread, and every code has a description. */
static void test_errors(void)
{
	pthread_t t;

	CHECK(XMEM_E_CORRUPT < -4095 && XMEM_E_LAST < XMEM_E_CORRUPT);
	for (int e = XMEM_E_BASE - 1; e > XMEM_E_LAST; e--)
		CHECK(strcmp(xmem_strerror(e), "unknown xmem error") != 0);
	CHECK(!strcmp(xmem_strerror(-ENOENT), strerror(ENOENT)));
	CHECK(xmem__err(XMEM_E_CORRUPT, "label %d bad", 3) == XMEM_E_CORRUPT);
	REQUIRE(pthread_create(&t, NULL, other_thread, NULL) == 0);
	pthread_join(t, NULL);
	CHECK(!strcmp(xmem_errormsg(), "label 3 bad"));
	xmem__err_prefix(XMEM_E_CORRUPT, "region '%s'", "r");
	CHECK(!strcmp(xmem_errormsg(), "region 'r': label 3 bad"));
	CHECK(!strcmp(xmem_version(), "0.1.0"));
}

int main(void)
{
	test_crc32c();
	test_csum_struct();
	test_fletcher64();
	test_sizes();
	test_errors();
	return test_result();
}
