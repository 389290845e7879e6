/* SPDX-License-Identifier: MIT */
/* heap_test.h - a heap in a new file, for the heap tests. */
#ifndef XMEM_HEAP_TEST_H
#define XMEM_HEAP_TEST_H

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

/* Closes what test_heap_create opened. */
static inline void test_heap_close(struct test_heap *t)
{
	xmem_heap_close(&t->h);
	xmem_map_delete(&t->map);
	xmem_device_close(&t->dev);
}

#endif /* XMEM_HEAP_TEST_H */
