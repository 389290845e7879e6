/* SPDX-License-Identifier: MIT */
/*
 * preload.c - libxmem-tier-preload.so under an ordinary program: large
 * anonymous mmaps and mallocs land on tiers (both DRAM and device memory
 * in use), and threads, fork (the child gets a private copy), partial
 * munmap, mremap, realloc, calloc and madvise(MADV_DONTNEED) keep their
 * usual meaning. The test re-executes itself with LD_PRELOAD set.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MiB (1ull << 20)

/* Does /proc/self/maps show a tier mapping named `what` inside [p, p+len)? */
static int mapped_from(void *p, size_t len, const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;

	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx", &a, &b) == 2 &&
		    a < (uintptr_t)p + len && b > (uintptr_t)p &&
		    strstr(line, what))
			found = 1;
	}
	if (f)
		fclose(f);
	return found;
}

static void fill(char *p, size_t len, int seed)
{
	for (size_t i = 0; i < len; i += 4096)
		p[i] = (char)(i / 4096 + seed);
}

static int ok(const char *p, size_t len, int seed)
{
	for (size_t i = 0; i < len; i += 4096)
		if (p[i] != (char)(i / 4096 + seed))
			return 0;
	return 1;
}

struct half {
	char *p;
	size_t len;
};

static void *writer(void *arg)
{
	struct half *h = arg;

	fill(h->p, h->len, 9);
	return NULL;
}

static int child_main(void)
{
	size_t len = 64 * MiB;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
	     *q;
	pthread_t thr[2];
	struct half h[2] = { { p, len / 2 }, { p + len / 2, len / 2 } };
	int status;

	REQUIRE(p != MAP_FAILED);
	fill(p, len, 1);
	CHECK(mapped_from(p, len, "xmem-tier-dram"));
	CHECK(mapped_from(p, len, "xmem-tier-device"));
	CHECK(ok(p, len, 1));

	/* threads */
	for (int i = 0; i < 2; i++)
		pthread_create(&thr[i], NULL, writer, &h[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(thr[i], NULL);
	CHECK(ok(p, len / 2, 9) && ok(p + len / 2, len / 2, 9 + 8192));

	/* fork: the child sees the data, its writes stay its own */
	pid_t pid = fork();
	if (pid == 0) {
		int good = ok(p, len / 2, 9);
		fill(p, len, 3);
		_exit(good && ok(p, len, 3) ? 0 : 1);
	}
	REQUIRE(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(ok(p, len / 2, 9));

	/* madvise(DONTNEED) reads back zeros, as on private memory */
	CHECK(madvise(p, 2 * MiB, MADV_DONTNEED) == 0);
	CHECK(p[4096] == 0 && p[2 * MiB] == (char)(512 + 9));

	/* partial munmap, then the rest */
	CHECK(munmap(p + 60 * MiB, 4 * MiB) == 0);
	CHECK(p[59 * MiB] == (char)(59 * 256 + 9 + 0));
	CHECK(munmap(p, 60 * MiB) == 0);

	/* mremap growth keeps the data */
	q = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(q != MAP_FAILED);
	fill(q, 16 * MiB, 5);
	q = mremap(q, 16 * MiB, 48 * MiB, MREMAP_MAYMOVE);
	REQUIRE(q != MAP_FAILED);
	CHECK(ok(q, 16 * MiB, 5));
	fill(q, 48 * MiB, 6);
	CHECK(ok(q, 48 * MiB, 6));
	CHECK(munmap(q, 48 * MiB) == 0);

	/* malloc family */
	char *m = malloc(32 * MiB), *c = calloc(1, 24 * MiB);
	REQUIRE(m && c);
	for (size_t i = 0; i < 24 * MiB; i += 4096)
		CHECK(c[i] == 0);
	fill(m, 32 * MiB, 7);
	CHECK(mapped_from(m, 32 * MiB, "xmem-tier"));
	m = realloc(m, 40 * MiB);
	REQUIRE(m);
	CHECK(ok(m, 32 * MiB, 7));
	free(m);
	free(c);
	char *s = malloc(100);
	s = realloc(s, 20 * MiB); /* grows from glibc onto a tier */
	REQUIRE(s);
	free(s);
	return test_result();
}

int main(int argc, char **argv)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("a sanitizer runtime must come first; LD_PRELOAD cannot");
#endif
	const char *so = getenv("XMEM_TIER_PRELOAD");

	if (argc > 1 && !strcmp(argv[1], "child"))
		return child_main();
	if (!so || access(so, R_OK))
		SKIP("XMEM_TIER_PRELOAD does not name the built module");
	setenv("LD_PRELOAD", so, 1);
	setenv("XMEM_TIER_DRAM", "16M", 1);
	setenv("XMEM_TIER_THRESHOLD", "8M", 1);
	execl("/proc/self/exe", argv[0], "child", (char *)NULL);
	perror("exec");
	return T_FAIL;
}
