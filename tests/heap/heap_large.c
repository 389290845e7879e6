/* SPDX-License-Identifier: MIT */
/*
 * heap_large - an object larger than 16 GiB: a 17 GiB extent in a
 * 20 GiB heap on a sparse file (only the pages touched are allocated),
 * its first and last bytes written, kept across reopen, checked, freed.
 * Skips when the file system has less than 2 GiB free (the full check
 * makes the chunk metadata resident).
 */
#include <sys/statvfs.h>

#include <xmem.h>
#include "test.h"

#define GiB (1ull << 30)

struct root {
	xmem_oid big;
};

int main(void)
{
	char path[256];
	struct xmem_device *dev;
	struct xmem_map *m;
	struct xmem_heap *h;
	struct root *r;
	xmem_oid ro;
	uint64_t size;
	uint32_t type;
	unsigned np;
	uint8_t *p;

	test_path(path, sizeof(path), "heap-large");
	unlink(path);
	/* the check reads every chunk header: about 320 MiB of metadata
	 * pages become resident */
	struct statvfs vfs;
	char dir[256];
	snprintf(dir, sizeof(dir), "%s",
		 getenv("XMEM_TEST_DIR") ? getenv("XMEM_TEST_DIR")
					 : "/dev/shm");
	if (statvfs(dir, &vfs) ||
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < 2 * GiB)
		SKIP("less than 2 GiB free in %s", dir);
	if (xmem_device_open(&dev, path, 20 * GiB, XMEM_F_CREATE))
		SKIP("cannot create a 20 GiB sparse file: %s", xmem_errormsg());
	if (xmem_device_map(dev, 0, 20 * GiB, 0, 0, &m)) {
		xmem_device_close(&dev);
		unlink(path);
		SKIP("cannot map 20 GiB: %s", xmem_errormsg());
	}
	REQUIRE_OK(xmem_heap_create_map(m, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, sizeof(*r), 1, &ro));
	r = xmem_heap_ptr(h, ro);
	CHECK_OK(xmem_heap_alloc(h, &r->big, 17 * GiB, 5, 0, NULL, NULL));
	CHECK_OK(xmem_heap_object_info(h, r->big, &size, &type));
	CHECK(size >= 17 * GiB && type == 5);
	p = xmem_heap_ptr(h, r->big);
	p[0] = 1;
	p[17 * GiB - 1] = 2;
	xmem_heap_persist(h, p, 1);
	xmem_heap_persist(h, p + 17 * GiB - 1, 1);
	xmem_heap_close(&h);

	REQUIRE_OK(xmem_heap_open_map(m, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, sizeof(*r), 1, &ro));
	r = xmem_heap_ptr(h, ro);
	p = xmem_heap_ptr(h, r->big);
	CHECK(p[0] == 1 && p[17 * GiB - 1] == 2);
	CHECK_OK(xmem_heap_check(h, 0, NULL, NULL, &np));
	CHECK(np == 0);
	CHECK_OK(xmem_heap_free(h, &r->big));
	CHECK(r->big == 0);
	xmem_heap_close(&h);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
