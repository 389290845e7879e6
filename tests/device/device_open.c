/* SPDX-License-Identifier: MIT */
/*
 * device_open.c - devices: files created sparse, memfd and anonymous
 * memory, granularity detection and its override, and the errors of bad
 * paths and sizes.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <xmem.h>

#include "test.h"

static void test_file(void)
{
	struct xmem_device *dev;
	char path[256];
	struct stat st;

	test_path(path, sizeof(path), "dev");
	unlink(path);
	/* Without CREATE a missing file is ENOENT, with the path named. */
	CHECK(xmem_device_open(&dev, path, 0, 0) == -ENOENT);
	CHECK(strstr(xmem_errormsg(), path) != NULL);
	CHECK(dev == NULL);
	REQUIRE_OK(xmem_device_open(&dev, path, 64 << 20, XMEM_F_CREATE));
	CHECK(xmem_device_size(dev) == 64 << 20);
	CHECK(xmem_device_align(dev) == 4096);
	CHECK(!xmem_device_is_volatile(dev));
	/* A tmpfs or ext4 file has no MAP_SYNC: page granularity, unless
	 * the environment forces another. */
	if (!getenv("XMEM_FORCE_GRANULARITY")) {
		CHECK(xmem_device_kind(dev) == XMEM_DEVICE_FILE);
		CHECK(xmem_device_granularity(dev) == XMEM_GRAN_PAGE);
	}
	xmem_device_close(&dev);
	CHECK(dev == NULL);
	/* Created sparse. */
	REQUIRE(stat(path, &st) == 0);
	CHECK(st.st_size == 64 << 20);
	CHECK(st.st_blocks * 512 < (64 << 20));
	/* EXCL refuses an existing file; a size that is not whole pages is
	 * refused. */
	CHECK(xmem_device_open(&dev, path, 64 << 20,
			       XMEM_F_CREATE | XMEM_F_EXCL) == -EEXIST);
	CHECK(xmem_device_open(&dev, path, (128 << 20) + 1, XMEM_F_CREATE) ==
	      -EINVAL);
	CHECK(strstr(xmem_errormsg(), "multiple of 4 KiB") != NULL);
	unlink(path);
	/* A failed create leaves no file behind: a bad size, a size the file
	 * system refuses, and no size at all. */
	CHECK(xmem_device_open(&dev, path, 4097, XMEM_F_CREATE) == -EINVAL);
	CHECK(access(path, F_OK) != 0);
	CHECK(xmem_device_open(&dev, path, 1ull << 63, XMEM_F_CREATE) < 0);
	CHECK(access(path, F_OK) != 0);
	CHECK(xmem_device_open(&dev, path, 0, XMEM_F_CREATE) == -EINVAL);
	CHECK(access(path, F_OK) != 0);
}

static void test_forced_granularity(void)
{
	struct xmem_device *dev;
	char path[256];

	test_path(path, sizeof(path), "gran");
	setenv("XMEM_FORCE_GRANULARITY", "cacheline", 1);
	REQUIRE_OK(xmem_device_open(&dev, path, 1 << 20, XMEM_F_CREATE));
	CHECK(xmem_device_granularity(dev) == XMEM_GRAN_CACHELINE);
	xmem_device_close(&dev);
	setenv("XMEM_FORCE_GRANULARITY", "byte", 1);
	REQUIRE_OK(xmem_device_open(&dev, path, 0, 0));
	CHECK(xmem_device_granularity(dev) == XMEM_GRAN_BYTE);
	xmem_device_close(&dev);
	unsetenv("XMEM_FORCE_GRANULARITY");
	unlink(path);
}

static void test_volatile(void)
{
	struct xmem_device *dev;

	REQUIRE_OK(xmem_device_open(&dev, "memfd:test", 8 << 20, 0));
	CHECK(xmem_device_kind(dev) == XMEM_DEVICE_MEMFD);
	CHECK(xmem_device_is_volatile(dev));
	CHECK(xmem_device_size(dev) == 8 << 20);
	xmem_device_close(&dev);
	REQUIRE_OK(xmem_device_open(&dev, "anon", 4 << 20, 0));
	CHECK(xmem_device_kind(dev) == XMEM_DEVICE_ANON);
	xmem_device_close(&dev);
	CHECK(xmem_device_open(&dev, "anon", 0, 0) == -EINVAL);
	CHECK(xmem_device_open(&dev, "memfd:x", 1000, 0) == -EINVAL);
}

static void test_bad_paths(void)
{
	struct xmem_device *dev;

	CHECK(xmem_device_open(&dev, "", 0, 0) == -EINVAL);
	CHECK(xmem_device_open(&dev, "/proc", 0, 0) < 0);
	/* A character device that is not device DAX. */
	CHECK(xmem_device_open(&dev, "/dev/null", 0, 0) == -ENODEV);
	CHECK(strstr(xmem_errormsg(), "not device DAX") != NULL);
	CHECK(dev == NULL);
}

int main(void)
{
	unsetenv("XMEM_FORCE_GRANULARITY");
	test_file();
	test_forced_granularity();
	test_volatile();
	test_bad_paths();
	return test_result();
}
