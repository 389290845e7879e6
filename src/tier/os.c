/* SPDX-License-Identifier: MIT */
/*
 * os.c - the system calls the tiering engine makes on mappings, issued
 * directly so that the preload library's mmap/munmap interposers never see
 * the engine's own calls (and sanitizers do not reinterpret them).
 */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tier_internal.h"

/* mmap(2) without going through the (possibly interposed) libc symbol. */
void *xmem__tier_mmap(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);

	if (r < 0 && r > -4096)
		return MAP_FAILED;
	return (void *)r;
}

/* munmap(2), likewise direct. */
int xmem__tier_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

/* Monotonic time in nanoseconds. */
uint64_t xmem__tier_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread in nanoseconds. */
uint64_t xmem__tier_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Number of VMAs of this process (lines of /proc/self/maps); O(VMAs). */
int xmem__tier_vma_count(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0, c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* vm.max_map_count, or the kernel default if it cannot be read. */
long xmem__tier_max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	long v = 65530;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

/* madvise(2), direct (the preload library interposes madvise). */
int xmem__tier_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}
