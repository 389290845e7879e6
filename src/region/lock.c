/* SPDX-License-Identifier: MIT */
/*
 * lock.c - open file description (OFD) locks on the device file.
 *
 * OFD locks belong to a file description, not to a process: a range open
 * takes its lock on a description of its own, so two opens in one process
 * exclude each other as two processes do, and the lock goes away when the
 * description is closed, including by the death of the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "core/error.h"
#include "region_int.h"

static void fill(struct flock *fl, uint64_t byte, int type)
{
	fl->l_type = (short)type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)byte;
	fl->l_len = 1;
	fl->l_pid = 0; /* required by F_OFD_* */
}

int xmem__lock_byte_wait(int fd, uint64_t byte, int type)
{
	struct flock fl;

	for (;;) {
		fill(&fl, byte, type);
		if (fcntl(fd, F_OFD_SETLKW, &fl) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int xmem__lock_byte_try(int fd, uint64_t byte, int type)
{
	struct flock fl;

	fill(&fl, byte, type);
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return -EBUSY;
	return -errno;
}

void xmem__lock_byte_drop(int fd, uint64_t byte)
{
	struct flock fl;

	fill(&fl, byte, F_UNLCK);
	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

int xmem__lock_byte_held(int fd, uint64_t byte)
{
	struct flock fl;

	fill(&fl, byte, F_WRLCK);
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

int xmem__lock_range_any_held(int fd, uint64_t *bytep)
{
	struct flock fl;

	fill(&fl, XMEM_LOCK_RANGE(0), F_WRLCK);
	fl.l_len = 0; /* every range lock byte, to the end of the file */
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return -errno;
	if (fl.l_type == F_UNLCK)
		return 0;
	*bytep = (uint64_t)fl.l_start;
	return 1;
}

int xmem__fd_reopen(int fd, int rdonly)
{
	char path[64];
	int nfd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (nfd < 0)
		return xmem__err(-errno,
				 "cannot open a new description of "
				 "the device (%s): %m",
				 path);
	return nfd;
}

/*
 * Locks the region against other processes (OFD lock on the metadata
 * byte, waiting) and other threads (the mutex): write for changes, read
 * for reading the label area.
 */
int xmem__region_lock(struct xmem_region *reg, int write)
{
	int rc;

	pthread_mutex_lock(&reg->mu);
	rc = xmem__lock_byte_wait(reg->fd, XMEM_LOCK_META,
				  write ? F_WRLCK : F_RDLCK);
	if (rc) {
		pthread_mutex_unlock(&reg->mu);
		return xmem__err(rc,
				 "region on '%s': cannot lock the "
				 "metadata: %s",
				 xmem_device_path(reg->dev), xmem_strerror(rc));
	}
	return 0;
}

void xmem__region_unlock(struct xmem_region *reg)
{
	xmem__lock_byte_drop(reg->fd, XMEM_LOCK_META);
	pthread_mutex_unlock(&reg->mu);
}
