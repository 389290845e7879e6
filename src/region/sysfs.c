/* SPDX-License-Identifier: MIT */
/* sysfs.c - reading device facts from sysfs (Linux). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/error.h"
#include "sysfs.h"

/* Reads a small sysfs attribute into buf (newline stripped). */
static int read_attr(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return 0;
}

/* Reads a decimal or 0x-prefixed attribute. */
static int read_u64(const char *path, uint64_t *v)
{
	char buf[64], *end;
	int rc = read_attr(path, buf, sizeof(buf));

	if (rc)
		return rc;
	errno = 0;
	*v = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int xmem__sysfs_is_dax(dev_t rdev)
{
	char path[PATH_MAX], real[PATH_MAX];
	const char *base;

	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/subsystem",
		 major(rdev), minor(rdev));
	if (!realpath(path, real))
		return 0;
	base = strrchr(real, '/');
	return base && !strcmp(base + 1, "dax");
}

int xmem__sysfs_dax(dev_t rdev, struct xmem__daxinfo *info)
{
	char path[PATH_MAX];
	unsigned maj = major(rdev), min = minor(rdev);
	int rc;

	memset(info, 0, sizeof(*info));
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/size", maj, min);
	rc = read_u64(path, &info->size);
	if (rc)
		return xmem__err(rc, "device dax %u:%u: cannot read %s", maj,
				 min, path);
	/* Newer kernels expose align on the device, older on its parent. */
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/align", maj, min);
	if (read_u64(path, &info->align)) {
		snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/device/align",
			 maj, min);
		if (read_u64(path, &info->align))
			info->align = 2ull << 20;
	}
	if (xmem__sysfs_nd_region(rdev, 0, info->nd_region,
				  sizeof(info->nd_region)))
		info->nd_region[0] = '\0';
	return 0;
}

int xmem__sysfs_nd_region(dev_t dev, int is_block, char *buf, size_t len)
{
	char path[PATH_MAX], real[PATH_MAX];
	char *p, *end;

	snprintf(path, sizeof(path), "/sys/dev/%s/%u:%u",
		 is_block ? "block" : "char", major(dev), minor(dev));
	if (!realpath(path, real))
		return -ENOENT;
	/* A partition's region is its disk's: walk up the whole path. */
	for (p = strstr(real, "/region"); p; p = strstr(p + 1, "/region")) {
		end = p + strlen("/region");
		if (*end < '0' || *end > '9')
			continue;
		while (*end >= '0' && *end <= '9')
			end++;
		if (*end != '/' && *end != '\0')
			continue;
		snprintf(buf, len, "%.*s", (int)(end - p - 1), p + 1);
		return 0;
	}
	return -ENOENT;
}

int xmem__sysfs_cpu_cache_domain(const char *nd_region)
{
	char path[PATH_MAX], buf[64];

	if (!nd_region || !*nd_region)
		return 0;
	snprintf(path, sizeof(path),
		 "/sys/bus/nd/devices/%s/persistence_domain", nd_region);
	if (read_attr(path, buf, sizeof(buf)))
		return 0;
	return strstr(buf, "cpu_cache") != NULL;
}

int xmem__sysfs_deep_flush(const char *nd_region)
{
	char path[PATH_MAX];
	int fd;
	ssize_t n;

	if (!nd_region || !*nd_region)
		return -ENOENT;
	snprintf(path, sizeof(path), "/sys/bus/nd/devices/%s/deep_flush",
		 nd_region);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, "1", 1);
	close(fd);
	return n == 1 ? 0 : -EIO;
}
