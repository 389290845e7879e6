/* SPDX-License-Identifier: MIT */
/*
 * region_concurrent - two processes, each with two threads, create and
 * destroy ranges in one region at the same time, every thread through
 * its own device and region objects in one process and a shared region
 * object in the other. The metadata lock serializes them: no change is
 * lost, no two ranges overlap, and check finds the region clean.
 * Then, in one process: two threads with one device object and a region
 * object each make changes while a third runs check and check --repair
 * through the same device object (which opens region objects of its own):
 * the region objects exclude each other through their own open file
 * descriptions, so again nothing is lost and check stays clean.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <xmem.h>

#include "region/region_int.h"
#include "test.h"

#define MiB (1ull << 20)
#define PER_THREAD 60
#define SAME_ROUNDS 10 /* rounds of PER_THREAD changes, one device */

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

struct same_dev {
	struct xmem_device *dev;
	char tag[16];
	int fails;
	int *stop; /* atomic */
};

/* One region object of the shared device object, changing ranges. */
static void *same_dev_work(void *arg)
{
	struct same_dev *w = arg;
	struct worker inner = { 0 };

	if (xmem_region_open(w->dev, &inner.reg)) {
		fprintf(stderr, "%s: %s\n", w->tag, xmem_errormsg());
		w->fails++;
		return NULL;
	}
	for (int round = 0; round < SAME_ROUNDS; round++) {
		snprintf(inner.tag, sizeof(inner.tag), "%.8sr%d", w->tag,
			 round);
		work(&inner);
	}
	w->fails += inner.fails;
	xmem_region_close(&inner.reg);
	return NULL;
}

/* Checks (plain and --repair, alternately) until told to stop. */
static void *same_dev_check(void *arg)
{
	struct same_dev *w = arg;
	unsigned np, i = 0;

	while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
		int rc = xmem_region_check(w->dev, i++ % 2 ? XMEM_F_REPAIR : 0,
					   NULL, NULL, &np);
		if (rc || np) {
			fprintf(stderr, "check %u: %d, %u problems: %s\n", i,
				rc, np, xmem_errormsg());
			w->fails++;
		}
	}
	return NULL;
}

struct blocked {
	struct xmem_region *reg;
	struct xmem_device *dev;
	int done; /* atomic */
	int rc;
};

static void *blocked_create(void *arg)
{
	struct blocked *b = arg;

	b->rc = xmem_range_create(b->reg, "blocked", 4096, XMEM_ALIGN_4K, 0,
				  NULL);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *blocked_check(void *arg)
{
	struct blocked *b = arg;

	b->rc = xmem_region_check(b->dev, XMEM_F_REPAIR, NULL, NULL, NULL);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* While one region object holds the metadata lock, a change through a
 * second object of the same device object, and check --repair through
 * the device object, wait for it (deterministic: 200 ms held). */
static void exclusion(struct xmem_device *dev)
{
	void *(*fn[2])(void *) = { blocked_create, blocked_check };
	struct xmem_region *a;
	struct blocked b = { 0 };
	pthread_t t;

	REQUIRE_OK(xmem_region_open(dev, &a));
	REQUIRE_OK(xmem_region_open(dev, &b.reg));
	b.dev = dev;
	for (int i = 0; i < 2; i++) {
		b.done = 0;
		REQUIRE_OK(xmem__region_lock(a, 1));
		REQUIRE(pthread_create(&t, NULL, fn[i], &b) == 0);
		usleep(200 * 1000);
		if (__atomic_load_n(&b.done, __ATOMIC_ACQUIRE))
			fprintf(stderr, "%s ran under another object's lock\n",
				i ? "check --repair" : "range create");
		CHECK(!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE));
		xmem__region_unlock(a);
		pthread_join(t, NULL);
		CHECK(b.rc == 0);
	}
	REQUIRE_OK(xmem_range_destroy(a, "blocked", 0));
	xmem_region_close(&b.reg);
	xmem_region_close(&a);
}

/* Two region objects and a checker on one device object. */
static void same_device(void)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct same_dev w[3] = { 0 };
	int stop = 0;
	struct xmem_range_info *v;
	pthread_t t[3];
	size_t n;

	unlink(path);
	REQUIRE_OK(xmem_device_open(&dev, path, 64 * MiB, XMEM_F_CREATE));
	REQUIRE_OK(xmem_region_create(dev, &reg));
	xmem_region_close(&reg);
	exclusion(dev);
	for (int i = 0; i < 3; i++) {
		w[i].dev = dev;
		w[i].stop = &stop;
		snprintf(w[i].tag, sizeof(w[i].tag), "same%d", i);
		REQUIRE(pthread_create(&t[i], NULL,
				       i < 2 ? same_dev_work : same_dev_check,
				       &w[i]) == 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(t[2], NULL);
	for (int i = 0; i < 3; i++)
		CHECK(w[i].fails == 0);
	REQUIRE_OK(xmem_region_open(dev, &reg));
	REQUIRE_OK(xmem_range_list(reg, &v, &n));
	CHECK(n == 2 * SAME_ROUNDS * (PER_THREAD - PER_THREAD / 3));
	printf("%zu ranges after changes through one device object\n", n);
	free(v);
	xmem_region_close(&reg);
	CHECK(xmem_region_check(dev, 0, NULL, NULL, NULL) == 0);
	xmem_device_close(&dev);
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
	same_device();
	unlink(path);
	return test_result();
}
