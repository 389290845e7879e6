/* SPDX-License-Identifier: MIT */
/*
 * guest_fsdax.c - xmem on a file of a kernel file system, with and
 * without DAX.
 *
 *   guest_fsdax create CHECK FILE GRANULARITY
 *   guest_fsdax reopen CHECK FILE GRANULARITY
 *
 * create makes FILE a region with one 2 MiB-aligned range full of a
 * pattern; reopen opens it again (typically after a remount without DAX)
 * and checks the data. Both check the kind (fsdax exactly when a
 * MAP_SHARED_VALIDATE|MAP_SYNC mapping works, as probed here) and that the
 * detected granularity is GRANULARITY.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "guest.h"
#include "guest_util.h"

#define FILE_SIZE (64ull << 20)
#define RANGE_SIZE (16ull << 20)

/* Probes MAP_SYNC on the file directly: 1 works, 0 refused. */
static int map_sync_works(const char *path, int *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	void *p;

	*err = 0;
	if (fd < 0) {
		*err = errno;
		return 0;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED)
		*err = errno;
	else
		munmap(p, 4096);
	close(fd);
	return p != MAP_FAILED;
}

/* Kind and granularity must match what the kernel allows. */
static int check_device(const char *check, struct xmem_device *dev,
			const char *path, const char *want_gran, char *desc,
			size_t len)
{
	int err, sync = map_sync_works(path, &err);
	enum xmem_device_kind want_kind =
		sync ? XMEM_DEVICE_FSDAX : XMEM_DEVICE_FILE;
	const char *gran = xmem_granularity_name(xmem_device_granularity(dev));

	if (xmem_device_kind(dev) != want_kind || strcmp(gran, want_gran)) {
		GUEST_FAIL(check,
			   "kind %s granularity %s; expected kind %s (MAP_SYNC "
			   "%s) granularity %s",
			   xmem_device_kind_name(xmem_device_kind(dev)), gran,
			   xmem_device_kind_name(want_kind),
			   sync ? "works" : strerror(err), want_gran);
		return -1;
	}
	snprintf(desc, len, "kind %s, granularity %s, MAP_SYNC %s",
		 xmem_device_kind_name(want_kind), gran,
		 sync ? "works" : strerror(err));
	return 0;
}

/* Creates the region and range "f", fills and persists it. */
static int create(const char *check, struct xmem_device *dev,
		  struct xmem_region **reg, struct xmem_range **r,
		  struct xmem_map **map)
{
	struct xmem_range_info info;
	int rc = xmem_region_create(dev, reg);

	if (rc == -EEXIST) {
		rc = xmem_region_destroy(dev, XMEM_F_FORCE);
		if (!rc)
			rc = xmem_region_create(dev, reg);
	}
	if (!rc)
		rc = xmem_range_create(*reg, "f", RANGE_SIZE, XMEM_ALIGN_2M,
				       XMEM_RANGE_RAW, &info);
	if (!rc)
		rc = xmem_range_open(*reg, "f", 0, r);
	if (!rc)
		rc = xmem_range_map(*r, 0, map);
	if (rc) {
		GUEST_FAIL_RC(check, "region, range and map", rc);
		return rc;
	}
	guest_pattern_fill(xmem_map_addr(*map), RANGE_SIZE, 7);
	xmem_map_persist(*map, xmem_map_addr(*map), RANGE_SIZE);
	return 0;
}

/* Opens the region and checks range "f"'s data. */
static int reopen(const char *check, struct xmem_device *dev,
		  struct xmem_region **reg, struct xmem_range **r,
		  struct xmem_map **map)
{
	size_t bad;
	int rc = xmem_region_open(dev, reg);

	if (!rc)
		rc = xmem_range_open(*reg, "f", 0, r);
	if (!rc)
		rc = xmem_range_map(*r, XMEM_F_MAP_RDONLY, map);
	if (rc) {
		GUEST_FAIL_RC(check, "reopen region and range", rc);
		return rc;
	}
	bad = guest_pattern_check(xmem_map_addr(*map), xmem_map_size(*map), 7);
	if (bad != (size_t)-1) {
		GUEST_FAIL(check, "range data differs at byte %zu", bad);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = NULL;
	struct xmem_range *r = NULL;
	struct xmem_map *map = NULL;
	struct xmem_map_pmd st = { 0 };
	char desc[200];
	int rc, creating;

	if (argc != 5) {
		fprintf(stderr, "usage: %s create|reopen CHECK FILE GRAN\n",
			argv[0]);
		return 2;
	}
	creating = strcmp(argv[1], "create") == 0;
	rc = xmem_device_open(&dev, argv[3], creating ? FILE_SIZE : 0,
			      creating ? XMEM_F_CREATE : 0);
	if (rc) {
		GUEST_FAIL_RC(argv[2], "xmem_device_open", rc);
		return guest_exit();
	}
	if (check_device(argv[2], dev, argv[3], argv[4], desc, sizeof(desc)) ==
	    0) {
		rc = creating ? create(argv[2], dev, &reg, &r, &map)
			      : reopen(argv[2], dev, &reg, &r, &map);
		if (!rc && (rc = xmem_map_pmd_status(map, &st)) != 0)
			GUEST_FAIL_RC(argv[2], "xmem_map_pmd_status", rc);
		if (!rc)
			GUEST_PASS(
				argv[2],
				"%s; region %s, 16 MiB range at a 2 MiB-"
				"aligned address; xmem_map_pmd_status: %" PRIu64
				" MiB PMD-mapped%s%s",
				desc,
				creating ? "created and filled"
					 : "reopened, data intact",
				st.pmd_mapped >> 20, st.reason[0] ? ", " : "",
				st.reason);
	}
	xmem_map_delete(&map);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	return guest_exit();
}
