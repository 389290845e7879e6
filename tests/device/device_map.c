/* SPDX-License-Identifier: MIT */
/*
 * device_map.c - mappings land at the asked alignment, refuse misaligned
 * windows with a message, persist through the mapping's operations, and
 * report PMD status (with a reason when there is none).
 */
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <xmem.h>

#include "test.h"

static void test_alignment(void)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	char path[256];

	test_path(path, sizeof(path), "map");
	REQUIRE_OK(xmem_device_open(&dev, path, 16 << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 2 << 20, 4 << 20, 2 << 20, 0, &m));
	CHECK(((uintptr_t)xmem_map_addr(m) & ((2 << 20) - 1)) == 0);
	CHECK(xmem_map_size(m) == 4 << 20);
	CHECK(xmem_map_offset(m) == 2 << 20);
	xmem_map_delete(&m);
	CHECK(m == NULL);
	REQUIRE_OK(xmem_device_map(dev, 0, 4 << 20, 1ull << 30, 0, &m));
	CHECK(((uintptr_t)xmem_map_addr(m) & ((1ull << 30) - 1)) == 0);
	xmem_map_delete(&m);
	/* Misaligned offset, window past the end, alignment not a power of
	 * two. */
	CHECK(xmem_device_map(dev, 100, 4096, 0, 0, &m) == XMEM_E_ALIGN);
	CHECK(strstr(xmem_errormsg(), "device alignment 4 KiB") != NULL);
	CHECK(xmem_device_map(dev, 12 << 20, 8 << 20, 0, 0, &m) == -EINVAL);
	CHECK(strstr(xmem_errormsg(), "does not fit") != NULL);
	CHECK(xmem_device_map(dev, 0, 4096, 3 << 20, 0, &m) == XMEM_E_ALIGN);
	CHECK(xmem_device_map(dev, 0, 0, 0, 0, &m) == -EINVAL);
	xmem_device_close(&dev);
	unlink(path);
}

/* Data written through a page-granularity mapping reaches the file. */
static void test_persist_reaches_file(void)
{
	struct xmem_device *dev;
	struct xmem_map *m;
	char path[256], buf[16] = { 0 };
	FILE *f;

	test_path(path, sizeof(path), "persist");
	REQUIRE_OK(xmem_device_open(&dev, path, 1 << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, 1 << 20, 0, 0, &m));
	xmem_map_ops(m)->memcpy((char *)xmem_map_addr(m) + 8192, "durable", 8,
				0);
	CHECK_OK(xmem_map_deep_flush(m, xmem_map_addr(m), 1 << 20));
	f = fopen(path, "r");
	REQUIRE(f);
	fseek(f, 8192, SEEK_SET);
	CHECK(fread(buf, 1, 8, f) == 8);
	fclose(f);
	CHECK(!strcmp(buf, "durable"));
	xmem_map_delete(&m);
	/* A read-only device refuses writable maps. */
	xmem_device_close(&dev);
	REQUIRE_OK(xmem_device_open(&dev, path, 0, XMEM_F_RDONLY));
	CHECK(xmem_device_map(dev, 0, 4096, 0, 0, &m) == -EROFS);
	REQUIRE_OK(xmem_device_map(dev, 0, 4096, 0, XMEM_F_MAP_RDONLY, &m));
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
}

/* On /dev/shm without huge pages, the status says why there are none. */
static void test_pmd_reason(void)
{
	struct xmem_map_pmd st;
	struct xmem_device *dev;
	struct xmem_map *m;
	char path[256];

	test_path(path, sizeof(path), "pmd");
	REQUIRE_OK(xmem_device_open(&dev, path, 8 << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 0, 4 << 20, 2 << 20, 0, &m));
	CHECK_OK(xmem_map_pmd_status(m, &st));
	CHECK(st.resident == 0 && st.pmd_mapped == 0);
	CHECK(strstr(st.reason, "nothing resident") != NULL);
	memset(xmem_map_addr(m), 1, 4 << 20);
	CHECK_OK(xmem_map_pmd_status(m, &st));
	CHECK(st.resident == 4 << 20);
	if (!st.pmd_mapped) {
		printf("no PMD mapping on %s: %s\n", path, st.reason);
		CHECK(st.reason[0] != '\0');
	}
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	unlink(path);
}

/*
 * On a tmpfs mounted with huge=always, a 2 MiB-aligned mapping gets PMD
 * entries. Needs root (mount); skipped otherwise with the reason.
 */
static int test_pmd_huge_tmpfs(void)
{
	char dir[] = "/tmp/xmem-hugetmpfs-XXXXXX", path[300];
	struct xmem_map_pmd st;
	struct xmem_device *dev;
	struct xmem_map *m;

	if (!mkdtemp(dir))
		return 0;
	if (mount("xmem", dir, "tmpfs", 0, "huge=always,size=32m")) {
		printf("huge tmpfs check skipped: mount: %s\n",
		       strerror(errno));
		rmdir(dir);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/dev", dir);
	REQUIRE_OK(xmem_device_open(&dev, path, 16 << 20, XMEM_F_CREATE));
	REQUIRE_OK(xmem_device_map(dev, 2 << 20, 4 << 20, 2 << 20, 0, &m));
	memset(xmem_map_addr(m), 1, 4 << 20);
	CHECK_OK(xmem_map_pmd_status(m, &st));
	printf("huge tmpfs: %llu of %llu bytes PMD-mapped%s%s\n",
	       (unsigned long long)st.pmd_mapped,
	       (unsigned long long)st.resident, st.pmd_mapped ? "" : ": ",
	       st.pmd_mapped ? "" : st.reason);
	CHECK(st.pmd_mapped == 4 << 20);
	xmem_map_delete(&m);
	xmem_device_close(&dev);
	umount(dir);
	rmdir(dir);
	return 1;
}

int main(void)
{
	test_alignment();
	test_persist_reaches_file();
	test_pmd_reason();
	test_pmd_huge_tmpfs();
	return test_result();
}
