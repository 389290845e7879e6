/* SPDX-License-Identifier: MIT */
/*
 * heap_range - a heap on a range: create, reopen, a range of another mode
 * refused, and a second process refused with EBUSY while the heap is
 * open (ownership of the range); after close the other process opens it.
 * Also runs "xmem heap check" on a planted bitmap corruption when the CLI
 * is built (XMEM_TEST_BUILD).
 */
#include <sys/wait.h>

#include <xmem.h>
#include "heap/heap_layout.h"
#include "test.h"

static char path[256];

/* In a child process: try to open the heap; exit with 0 on success,
 * 10 on EBUSY, 1 otherwise. */
static int other_process(void)
{
	pid_t pid;
	int st;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct xmem_device *dev;
		struct xmem_region *reg;
		struct xmem_range *r;
		struct xmem_heap *h;
		int rc;

		if (xmem_device_open(&dev, path, 0, 0) ||
		    xmem_region_open(dev, &reg))
			_exit(1);
		rc = xmem_range_open(reg, "db", 0, &r);
		if (rc == -EBUSY) {
			fprintf(stderr, "second process: %s\n",
				xmem_errormsg());
			_exit(10);
		}
		if (rc || xmem_heap_open(r, 0, &h))
			_exit(1);
		xmem_heap_close(&h);
		xmem_range_close(&r);
		xmem_region_close(&reg);
		xmem_device_close(&dev);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r, *raw;
	struct xmem_heap *h;
	xmem_oid root;
	uint64_t *v;

	test_path(path, sizeof(path), "heap-range");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 128ull << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(xmem_range_create(reg, "db", 32ull << 20, XMEM_ALIGN_2M,
				     XMEM_RANGE_HEAP, NULL));
	REQUIRE_OK(xmem_range_create(reg, "raw", 8ull << 20, XMEM_ALIGN_2M,
				     XMEM_RANGE_RAW, NULL));
	REQUIRE_OK(xmem_range_open(reg, "raw", 0, &raw));
	CHECK(xmem_heap_create(raw, 0, &h) == XMEM_E_MODE);
	xmem_range_close(&raw);

	REQUIRE_OK(xmem_range_open(reg, "db", 0, &r));
	REQUIRE_OK(xmem_heap_create(r, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, 64, 1, &root));
	v = xmem_heap_ptr(h, root);
	*v = 4242;
	xmem_heap_persist(h, v, 8);
	CHECK(other_process() == 10); /* EBUSY while we hold it */
	xmem_heap_close(&h);
	xmem_range_close(&r);
	CHECK(other_process() == 0); /* free again */

	REQUIRE_OK(xmem_range_open(reg, "db", 0, &r));
	REQUIRE_OK(xmem_heap_open(r, 0, &h));
	REQUIRE_OK(xmem_heap_root(h, 64, 1, &root));
	CHECK(*(uint64_t *)xmem_heap_ptr(h, root) == 4242);
	xmem_heap_close(&h);
	xmem_range_close(&r);

	/* the CLI finds planted damage and repairs it */
	const char *b = getenv("XMEM_TEST_BUILD");
	char cmd[1024];
	if (b) {
		struct xmem_map *m;
		REQUIRE_OK(xmem_range_open(reg, "db", 0, &r));
		REQUIRE_OK(xmem_range_map(r, 0, &m));
		REQUIRE_OK(xmem_heap_open_map(m, 0, &h));
		xmem_oid o = 0;
		/* an object in the root's run; flip a bitmap bit */
		const struct heap_header *hd = xmem_map_addr(m);
		xmem_heap_close(&h);
		uint8_t *meta = (uint8_t *)xmem_map_addr(m) + hd->meta_off;
		meta[HEAP_META_BITMAP] ^= 0x02;
		xmem_map_persist(m, meta + HEAP_META_BITMAP, 8);
		(void)o;
		xmem_map_delete(&m);
		xmem_range_close(&r);
		snprintf(cmd, sizeof(cmd),
			 "%s/tools/xmem/xmem heap check -d %s db", b, path);
		CHECK(system(cmd) != 0); /* damage found: exit 1 */
		snprintf(cmd, sizeof(cmd),
			 "%s/tools/xmem/xmem heap check --repair -d %s db && "
			 "%s/tools/xmem/xmem heap check -d %s db --json",
			 b, path, b, path);
		CHECK(system(cmd) == 0);
	}
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
