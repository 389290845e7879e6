/* SPDX-License-Identifier: MIT */
/*
 * test.h - the tiny harness of xmem's tests.
 *
 * Every test is a standalone program: exit 0 to pass, 1 to fail, 77 to
 * skip (with the reason printed). CHECK() reports the failing expression
 * with its file and line and fails the test at the end of main via
 * test_result(); REQUIRE() fails at once.
 */
#ifndef XMEM_TEST_H
#define XMEM_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xmem/core.h>

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77

static int test_failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			test_failures++;                                       \
		}                                                              \
	} while (0)

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: requirement failed: %s\n",     \
				__FILE__, __LINE__, #cond);                    \
			exit(T_FAIL);                                          \
		}                                                              \
	} while (0)

/* Whether an xmem call failed (rc != 0), printing the call and its error
 * if it did. */
static inline int test_call_failed(int rc, const char *file, int line,
				   const char *call)
{
	if (rc == 0)
		return 0;
	fprintf(stderr, "%s:%d: %s returned %d (%s): %s\n", file, line, call,
		rc, xmem_strerror(rc), xmem_errormsg());
	return 1;
}

/* CHECK that an xmem call returned 0, printing its error if not. */
#define CHECK_OK(call)                                                         \
	do {                                                                   \
		if (test_call_failed((call), __FILE__, __LINE__, #call))       \
			test_failures++;                                       \
	} while (0)

/* REQUIRE that an xmem call returned 0. */
#define REQUIRE_OK(call)                                                       \
	do {                                                                   \
		if (test_call_failed((call), __FILE__, __LINE__, #call))       \
			exit(T_FAIL);                                          \
	} while (0)

#define SKIP(...)                                                              \
	do {                                                                   \
		printf("SKIP: ");                                              \
		printf(__VA_ARGS__);                                           \
		printf("\n");                                                  \
		exit(T_SKIP);                                                  \
	} while (0)

static inline int test_result(void)
{
	return test_failures ? T_FAIL : T_PASS;
}

/* A scratch path unique to this process: "<dir>/<name>.<pid>". The dir
 * is $XMEM_TEST_DIR, else /dev/shm. */
static inline const char *test_path(char *buf, size_t len, const char *name)
{
	const char *dir = getenv("XMEM_TEST_DIR");

	snprintf(buf, len, "%s/xmem-test-%s.%d", dir ? dir : "/dev/shm", name,
		 (int)getpid());
	return buf;
}

#endif /* XMEM_TEST_H */
