/* SPDX-License-Identifier: MIT */
/* guest_util.c - helpers of the kernel-device guest checks. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "guest_util.h"

int guest_read_str(const char *path, char *buf, size_t len)
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
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

int guest_read_u64(const char *path, uint64_t *v)
{
	char buf[64], *end;
	int rc = guest_read_str(path, buf, sizeof(buf));

	if (rc)
		return rc;
	errno = 0;
	*v = strtoull(buf, &end, 0);
	return errno || end == buf ? -EINVAL : 0;
}

void guest_persistence_domain(const char *region, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/bus/nd/devices/%s/persistence_domain", region);
	if (guest_read_str(path, buf, len))
		buf[0] = '\0';
}

int guest_smaps_field(const void *addr, const char *field, uint64_t *bytes)
{
	char line[256], start[32];
	FILE *f = fopen("/proc/self/smaps", "re");
	int in_vma = 0, rc = -1;
	unsigned long long kb;

	if (!f)
		return -1;
	snprintf(start, sizeof(start), "%" PRIxPTR "-", (uintptr_t)addr);
	while (fgets(line, sizeof(line), f)) {
		/* A VMA header line starts with "start-end ". */
		if (strchr(line, '-') &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in_vma = strncmp(line, start, strlen(start)) == 0;
			continue;
		}
		if (in_vma && strncmp(line, field, strlen(field)) == 0 &&
		    sscanf(line + strlen(field), "%llu", &kb) == 1) {
			*bytes = (uint64_t)kb << 10;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* splitmix64: a well-mixed 64-bit value per (seed, word index). */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The pattern's word at byte offset i (a multiple of 8). */
static uint64_t pattern_word(size_t i, uint64_t seed)
{
	return mix(seed * 0x100000001b3ull + i / 8);
}

void guest_pattern_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t w;

	for (size_t i = 0; i < len; i += 8) {
		w = pattern_word(i, seed);
		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
}

size_t guest_pattern_check(const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf;
	uint64_t w;
	size_t n;

	for (size_t i = 0; i < len; i += 8) {
		w = pattern_word(i, seed);
		n = len - i < 8 ? len - i : 8;
		if (memcmp(p + i, &w, n) == 0)
			continue;
		for (size_t j = 0; j < n; j++)
			if (p[i + j] != ((const uint8_t *)&w)[j])
				return i + j;
	}
	return (size_t)-1;
}
