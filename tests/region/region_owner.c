/* SPDX-License-Identifier: MIT */
/*
 * region_owner - range ownership across processes: a child holding a
 * range exclusively makes the parent's open, resize and destroy fail with
 * EBUSY; once the child is killed (SIGKILL) the parent opens it. Shared
 * opens coexist; an exclusive open excludes shared ones, also inside one
 * process. A forced destroy of damaged metadata (no index to name the
 * ranges) is refused too while any range of the region is open.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)

/* Child: opens the range (flags) and reports on the pipe, then sleeps. */
static pid_t holder(const char *path, const char *name, unsigned flags)
{
	int p[2];
	char c = 0;
	pid_t pid;

	REQUIRE(pipe(p) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct xmem_device *dev;
		struct xmem_region *reg;
		struct xmem_range *r;

		close(p[0]);
		c = 'x';
		if (xmem_device_open(&dev, path, 0, 0) == 0 &&
		    xmem_region_open(dev, &reg) == 0 &&
		    xmem_range_open(reg, name, flags, &r) == 0)
			c = 'k';
		if (write(p[1], &c, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(p[1]);
	REQUIRE(read(p[0], &c, 1) == 1);
	close(p[0]);
	REQUIRE(c == 'k');
	return pid;
}

static void reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r, *r2, *r3;
	static uint8_t saved[16384], bad[16384];
	char path[256];
	pid_t pid;

	test_path(path, sizeof(path), "region-owner");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 16 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	REQUIRE_OK(
		xmem_range_create(reg, "db", 2 * MiB, XMEM_ALIGN_2M, 0, NULL));
	REQUIRE_OK(xmem_range_create(reg, "other", 2 * MiB, XMEM_ALIGN_2M, 0,
				     NULL));

	/* exclusive holder in another process */
	pid = holder(path, "db", 0);
	CHECK(xmem_range_open(reg, "db", 0, &r) == -EBUSY);
	printf("second opener: %s\n", xmem_errormsg());
	CHECK(strstr(xmem_errormsg(), "range 'db'") != NULL);
	CHECK(xmem_range_open(reg, "db", XMEM_F_SHARED, &r) == -EBUSY);
	CHECK(xmem_range_resize(reg, "db", 4 * MiB) == -EBUSY);
	CHECK(xmem_range_destroy(reg, "db", 0) == -EBUSY);
	CHECK(xmem_region_destroy(dev, XMEM_F_FORCE) == -EBUSY);
	/* another range is not affected */
	REQUIRE_OK(xmem_range_open(reg, "other", 0, &r));
	xmem_range_close(&r);
	/* the lock dies with the process */
	reap(pid);
	REQUIRE_OK(xmem_range_open(reg, "db", 0, &r));

	/* exclusive in this process excludes a second open here too */
	CHECK(xmem_range_open(reg, "db", 0, &r2) == -EBUSY);
	CHECK(xmem_range_open(reg, "db", XMEM_F_SHARED, &r2) == -EBUSY);
	CHECK(xmem_range_destroy(reg, "db", 0) == -EBUSY);
	xmem_range_close(&r);

	/* shared opens coexist, across processes and within one */
	pid = holder(path, "db", XMEM_F_SHARED);
	REQUIRE_OK(xmem_range_open(reg, "db", XMEM_F_SHARED, &r));
	REQUIRE_OK(xmem_range_open(reg, "db", XMEM_F_SHARED, &r2));
	CHECK(xmem_range_open(reg, "db", 0, &r3) == -EBUSY);
	xmem_range_close(&r2);
	xmem_range_close(&r);
	CHECK(xmem_range_open(reg, "db", 0, &r) == -EBUSY);
	CHECK(xmem_range_resize(reg, "db", 4 * MiB) == -EBUSY);
	reap(pid);
	REQUIRE_OK(xmem_range_open(reg, "db", 0, &r));
	xmem_range_close(&r);
	/* not busy any more: now it fails only for lack of room */
	CHECK(xmem_range_resize(reg, "db", 4 * MiB) == XMEM_E_NOSPACE);

	/* damaged metadata: a forced destroy still may not take an open
	 * range away, although no valid index says which ranges exist */
	pid = holder(path, "db", 0);
	REQUIRE(pread(xmem_device_fd(dev), saved, sizeof(saved), 0) ==
		(ssize_t)sizeof(saved));
	memcpy(bad, saved, sizeof(bad));
	bad[8192] ^= 0xff;  /* label index 0: magic */
	bad[12288] ^= 0xff; /* label index 1: magic */
	REQUIRE(pwrite(xmem_device_fd(dev), bad, sizeof(bad), 0) ==
		(ssize_t)sizeof(bad));
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == XMEM_E_CORRUPT);
	CHECK(xmem_region_destroy(dev, XMEM_F_FORCE) == -EBUSY);
	printf("forced destroy of damaged metadata: %s\n", xmem_errormsg());
	reap(pid);
	REQUIRE(pwrite(xmem_device_fd(dev), saved, sizeof(saved), 0) ==
		(ssize_t)sizeof(saved));
	REQUIRE_OK(xmem_range_open(reg, "db", 0, &r));
	xmem_range_close(&r);

	xmem_region_close(&reg);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
