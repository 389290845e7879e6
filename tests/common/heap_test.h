/* SPDX-License-Identifier: MIT */
/* heap_test.h - a heap in a new file, for the heap tests. */
#ifndef XMEM_HEAP_TEST_H
#define XMEM_HEAP_TEST_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xmem.h>
#include "test.h"

struct test_heap {
	struct xmem_device *dev;
	struct xmem_map *map;
	struct xmem_heap *h;
};

/* Creates a heap of `size` bytes in a new file at path (an old one is
 * removed) with a root object of root_size bytes; returns the root. */
static inline void *test_heap_create(struct test_heap *t, const char *path,
				     uint64_t size, size_t root_size)
{
	xmem_oid ro;

	unlink(path);
	REQUIRE_OK(xmem_device_open(&t->dev, path, size, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(t->dev, 0, size, 0, 0, &t->map));
	REQUIRE_OK(xmem_heap_create_map(t->map, 0, &t->h));
	REQUIRE_OK(xmem_heap_root(t->h, root_size, 1, &ro));
	return xmem_heap_ptr(t->h, ro);
}

/* Opens the heap in the file at path (size bytes); on failure nothing
 * stays open. Returns the open's result. */
static inline int test_heap_open(struct test_heap *t, const char *path,
				 uint64_t size)
{
	int rc;

	REQUIRE_OK(xmem_device_open(&t->dev, path, size, 0));
	REQUIRE_OK(xmem_device_map(t->dev, 0, size, 0, 0, &t->map));
	if ((rc = xmem_heap_open_map(t->map, 0, &t->h))) {
		xmem_map_delete(&t->map);
		xmem_device_close(&t->dev);
	}
	return rc;
}

/* Copies a file (a live heap's current contents, as a crash image). */
static inline void test_file_copy(const char *src, const char *dst)
{
	static uint8_t buf[1 << 16];
	int in = open(src, O_RDONLY), out;
	ssize_t n;

	REQUIRE(in >= 0);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		REQUIRE(write(out, buf, (size_t)n) == n);
	REQUIRE(n == 0);
	close(in);
	close(out);
}

/* Writes len bytes at off of a file. */
static inline void test_file_poke(const char *path, uint64_t off,
				  const void *src, size_t len)
{
	int fd = open(path, O_WRONLY);

	REQUIRE(fd >= 0);
	REQUIRE(pwrite(fd, src, len, (off_t)off) == (ssize_t)len);
	close(fd);
}

/* A check callback (arg: struct test_problems) that prints each problem
 * and notes whether one named a structure containing `want`. */
struct test_problems {
	const char *want;
	int seen;
};

static inline void test_on_problem(const struct xmem_check_problem *p,
				   void *arg)
{
	struct test_problems *t = arg;

	printf("  check: %s @%llu: %s%s\n", p->structure,
	       (unsigned long long)p->offset, p->what,
	       p->repaired ? " [repaired]" : "");
	if (t && t->want && strstr(p->structure, t->want))
		t->seen = 1;
}

/* The heap image at path (size bytes) must refuse to open with
 * XMEM_E_CORRUPT, the message naming `what`; check must report a problem
 * in a structure whose name holds tp->want, and repair must fix it (and
 * say so). */
static inline void test_refused_then_repaired(const char *path, uint64_t size,
					      const char *what,
					      struct test_problems *tp)
{
	struct xmem_device *dev;
	struct xmem_map *map;
	struct xmem_heap *h;
	unsigned n;

	REQUIRE_OK(xmem_device_open(&dev, path, size, 0));
	REQUIRE_OK(xmem_device_map(dev, 0, size, 0, 0, &map));
	CHECK(xmem_heap_open_map(map, 0, &h) == XMEM_E_CORRUPT);
	printf("open: %s\n", xmem_errormsg());
	CHECK(strstr(xmem_errormsg(), what) != NULL);
	tp->seen = 0;
	CHECK(xmem_heap_check_map(map, 0, test_on_problem, tp, &n) ==
	      XMEM_E_CORRUPT);
	CHECK(tp->seen);
	tp->seen = 0;
	CHECK_OK(xmem_heap_check_map(map, XMEM_F_REPAIR, test_on_problem, tp,
				     &n));
	CHECK(tp->seen);
	xmem_map_delete(&map);
	xmem_device_close(&dev);
}

/* Closes what test_heap_create or test_heap_open opened. */
static inline void test_heap_close(struct test_heap *t)
{
	xmem_heap_close(&t->h);
	xmem_map_delete(&t->map);
	xmem_device_close(&t->dev);
}

#endif /* XMEM_HEAP_TEST_H */
