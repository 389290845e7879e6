/* SPDX-License-Identifier: MIT */
/*
 * region_concurrent - two processes, each with two threads, create and
 * destroy ranges in one region at the same time, every thread through
 * its own device and region objects in one process and a shared region
 * object in the other. The metadata lock serializes them: no change is
 * lost, no two ranges overlap, and check finds the region clean.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)
#define PER_THREAD 60

static char path[256];

struct worker {
	struct xmem_region *reg; /* shared, or NULL: open one's own */
	char tag[16];
	int fails;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = w->reg;
	char name[40];

	if (!reg && (xmem_device_open(&dev, path, 0, 0) ||
		     xmem_region_open(dev, &reg))) {
		w->fails++;
		return NULL;
	}
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(name, sizeof(name), "%s-%d", w->tag, i);
		if (xmem_range_create(reg, name, 4096 * (1 + i % 3),
				      XMEM_ALIGN_4K, 0, NULL)) {
			fprintf(stderr, "%s: %s\n", name, xmem_errormsg());
			w->fails++;
		}
		/* every third one goes again */
		if (i % 3 == 2 && xmem_range_destroy(reg, name, 0)) {
			fprintf(stderr, "%s: %s\n", name, xmem_errormsg());
			w->fails++;
		}
	}
	if (!w->reg) {
		xmem_region_close(&reg);
		xmem_device_close(&dev);
	}
	return NULL;
}

/* Runs two workers; `shared` makes them share one region object. */
static int run(const char *who, int shared)
{
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = NULL;
	struct worker w[2] = { 0 };
	pthread_t t[2];
	int fails = 0;

	if (shared &&
	    (xmem_device_open(&dev, path, 0, 0) || xmem_region_open(dev, &reg)))
		return 1;
	for (int i = 0; i < 2; i++) {
		w[i].reg = reg;
		snprintf(w[i].tag, sizeof(w[i].tag), "%s%d", who, i);
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		fails += w[i].fails;
	}
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	return fails != 0;
}

int main(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range_info *v;
	size_t n;
	pid_t pid;
	int st;

	test_path(path, sizeof(path), "region-concurrent");
	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 64 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	xmem_region_close(&reg);

	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		_exit(run("child", 0));
	CHECK(run("parent", 1) == 0);
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	REQUIRE_OK(xmem_region_open(dev, &reg));
	REQUIRE_OK(xmem_range_list(reg, &v, &n));
	/* 4 workers, each keeping two of every three */
	CHECK(n == 4 * (PER_THREAD - PER_THREAD / 3));
	for (size_t i = 1; i < n; i++)
		CHECK(v[i - 1].offset + v[i - 1].size <= v[i].offset);
	printf("%zu ranges after concurrent changes\n", n);
	free(v);
	xmem_region_close(&reg);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	xmem_device_close(&dev);
	unlink(path);
	return test_result();
}
