/* SPDX-License-Identifier: MIT */
/*
 * persist_crashsim.c - the crash simulator itself: the image holds
 * exactly what was flushed and then fenced, fence by fence; unflushed
 * stores never reach it; a torn crash applies a seeded subset of the
 * pending lines and nothing else. Also the crash-test driver, on an
 * operation whose every crash state is known.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <xmem.h>

#include "crashtest.h"
#include "persist/crashsim.h"
#include "test.h"

#define LINE 64
#define NLINES 1024
#define DEVSZ (NLINES * LINE)
#define OLD 0xaa
#define STEPS 12

static char dev[256], img[256];
static unsigned char *map;

static void line_fill(unsigned char *p, int line, int v)
{
	memset(p + (size_t)line * LINE, v, LINE);
}

/* The image's line: its byte value if uniform, else -1. */
static int img_line(const char *path, int line)
{
	unsigned char b[LINE];
	int fd = open(path, O_RDONLY);
	ssize_t r = fd >= 0 ? pread(fd, b, LINE, (off_t)line * LINE) : -1;

	if (fd >= 0)
		close(fd);
	if (r != LINE)
		return -2;
	for (int i = 1; i < LINE; i++)
		if (b[i] != b[0])
			return -1;
	return b[0];
}

static void make_device(void)
{
	unsigned char *buf = malloc(DEVSZ);
	int fd = open(dev, O_RDWR | O_CREAT | O_TRUNC, 0600);

	REQUIRE(buf && fd >= 0);
	memset(buf, OLD, DEVSZ);
	REQUIRE(pwrite(fd, buf, DEVSZ, 0) == DEVSZ);
	map = mmap(NULL, DEVSZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(map != MAP_FAILED);
	close(fd);
	free(buf);
	/* Registered before any simulator starts: it must still be tracked
	 * once one does (also in forked children). */
	xmem__crashsim_map_added(map, DEVSZ, dev, 0);
}

static void start(uint64_t crash_at, uint64_t seed)
{
	struct xmem_crashsim_opts o = { .device_path = dev,
					.image_path = img,
					.crash_at = crash_at,
					.torn_seed = seed };

	REQUIRE_OK(xmem_crashsim_start(&o));
}

static void test_args(void)
{
	struct xmem_crashsim_opts o = { .image_path = img };

	CHECK(xmem_crashsim_start(NULL) == -EINVAL);
	CHECK(xmem_crashsim_start(&o) == -EINVAL);
	o.device_path = "/nonexistent/xmem-dev";
	CHECK(xmem_crashsim_start(&o) == -ENOENT);
	CHECK(!xmem__crashsim_active());
}

/* In process, no crash: what reaches the image, and when. */
static void test_fences(void)
{
	const struct xmem_persist_ops *page;
	unsigned char local[2 * LINE];

	start(0, 0);
	CHECK(xmem__crashsim_active());
	CHECK(img_line(img, 0) == OLD && img_line(img, NLINES - 1) == OLD);
	line_fill(map, 0, 1); /* never flushed */
	line_fill(map, 1, 2);
	xmem_flush(map + 1 * LINE, LINE);
	CHECK(img_line(img, 1) == OLD); /* flushed, not fenced */
	CHECK(xmem_crashsim_fences() == 0);
	xmem_drain();
	CHECK(xmem_crashsim_fences() == 1);
	CHECK(img_line(img, 1) == 2 && img_line(img, 0) == OLD);

	/* Content is captured at the flush, not at the fence. */
	line_fill(map, 2, 3);
	xmem_flush(map + 2 * LINE, LINE);
	line_fill(map, 2, 4);
	xmem_drain();
	CHECK(img_line(img, 2) == 3);
	CHECK(xmem_crashsim_fences() == 2);
	xmem_drain(); /* nothing pending: not a crash point */
	CHECK(xmem_crashsim_fences() == 2);

	/* A one-byte flush takes its whole line. */
	map[3 * LINE + 10] = OLD ^ 0xff;
	xmem_persist(map + 3 * LINE + 10, 1);
	CHECK(img_line(img, 3) == -1);
	CHECK(xmem_crashsim_fences() == 3);

	/* Flags of the mem* operations. */
	memset(local, 9, sizeof(local));
	xmem_memcpy(map + 4 * LINE, local, LINE, XMEM_F_MEM_NOFLUSH);
	xmem_drain();
	CHECK(img_line(img, 4) == OLD && xmem_crashsim_fences() == 3);
	xmem_memcpy(map + 5 * LINE, local, LINE, XMEM_F_MEM_NODRAIN);
	CHECK(img_line(img, 5) == OLD);
	xmem_drain();
	CHECK(img_line(img, 5) == 9 && xmem_crashsim_fences() == 4);
	xmem_memset(map + 6 * LINE, 7, 2 * LINE, XMEM_F_MEM_NONTEMPORAL);
	CHECK(img_line(img, 6) == 7 && img_line(img, 7) == 7);
	xmem_memmove(map + 8 * LINE, map + 6 * LINE, LINE, 0);
	CHECK(img_line(img, 8) == 7);

	/* Operations of every granularity, even ones taken earlier. */
	page = xmem_persist_ops(XMEM_GRAN_PAGE);
	line_fill(map, 9, 0x19);
	page->persist(map + 9 * LINE, LINE);
	CHECK(img_line(img, 9) == 0x19);
	line_fill(map, 10, 0x1a);
	xmem_persist_ops(XMEM_GRAN_BYTE)->flush(map + 10 * LINE, LINE);
	xmem_persist_ops(XMEM_GRAN_BYTE)->drain();
	CHECK(img_line(img, 10) == 0x1a);

	/* Memory outside the device's mappings is not tracked. */
	xmem_persist(local, sizeof(local));
	CHECK(xmem_crashsim_fences() == 8);

	/* Flushed but unfenced at stop: dropped. */
	line_fill(map, 11, 0x1b);
	xmem_flush(map + 11 * LINE, LINE);
	xmem_crashsim_stop();
	CHECK(!xmem__crashsim_active());
	xmem_persist(map + 11 * LINE, LINE);
	CHECK(img_line(img, 11) == OLD);
	CHECK(img_line(img, 0) == OLD);
}

/* A removed mapping is no longer tracked; a new one is. */
static void test_map_lifecycle(void)
{
	int fd = open(dev, O_RDWR);
	unsigned char *m2;

	REQUIRE(fd >= 0);
	m2 = mmap(NULL, 4 * LINE * 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		  4096);
	REQUIRE(m2 != MAP_FAILED);
	close(fd);
	memset(map, OLD, DEVSZ);
	start(0, 0);
	xmem__crashsim_map_added(m2, 4096, dev, 4096);
	line_fill(m2, 0, 0x33);
	xmem_persist(m2, LINE);
	CHECK(img_line(img, 4096 / LINE) == 0x33);
	xmem__crashsim_map_removed(m2);
	line_fill(m2, 1, 0x34);
	xmem_persist(m2 + LINE, LINE);
	CHECK(img_line(img, 4096 / LINE + 1) == OLD);
	xmem_crashsim_stop();
	munmap(m2, 4 * LINE * 16);
}

/* Step k: line k gets 0x10+k and is persisted; line 512+k gets a store
 * that is never flushed. One fence per step. */
static int steps_op(void *arg)
{
	(void)arg;
	for (int k = 0; k < STEPS; k++) {
		line_fill(map, 512 + k, 0x50 + k);
		line_fill(map, k, 0x10 + k);
		xmem_persist(map + (size_t)k * LINE, LINE);
	}
	return 0;
}

/* Crash at fence n: the first n-1 steps are durable, step n-1's line is
 * old (or, torn, old or new), later lines old, unflushed lines old. */
static int steps_verify(const char *path, uint64_t n, void *arg)
{
	int done = n == 0 ? STEPS : (int)n - 1, bad = 0;

	(void)arg;
	for (int k = 0; k < STEPS; k++) {
		int v = img_line(path, k);
		int ok = k < done ? v == 0x10 + k
			 : k == done && crashtest_torn_seed()
				 ? (v == OLD || v == 0x10 + k)
				 : v == OLD;

		if (!ok) {
			fprintf(stderr, "fence %d: line %d is %#x\n", (int)n, k,
				v);
			bad = 1;
		}
		v = img_line(path, 512 + k);
		/* Evicted early, a line stored at step j <= done may be new. */
		if (v != OLD &&
		    !(crashtest_evicting() && k <= done && v == 0x50 + k)) {
			fprintf(stderr,
				"fence %d: unflushed line %d reached "
				"the image\n",
				(int)n, 512 + k);
			bad = 1;
		}
	}
	return bad;
}

/* Claims that every crash point must look completed: wrong. */
static int wrong_verify(const char *path, uint64_t n, void *arg)
{
	(void)n;
	return steps_verify(path, 0, arg) ? 1 : 0;
}

static void test_driver(void)
{
	struct crashtest ct = { .name = "persist steps",
				.device_path = dev,
				.image_path = img,
				.op = steps_op,
				.verify = steps_verify };
	struct crashtest_result r;

	memset(map, OLD, DEVSZ);
	CHECK(crashtest_run(&ct, &r) == 0);
	CHECK(r.fences == STEPS && r.points == STEPS);
	CHECK(r.runs == 1 + 3 * STEPS && r.failures == 0);
	/* The device is handed back as it was. */
	CHECK(map[0] == OLD && map[512 * LINE] == OLD);

	ct.max_points = 4;
	ct.torn_seeds = -1;
	CHECK(crashtest_run(&ct, &r) == 0);
	CHECK(r.points == 4 && r.runs == 5);

	/* steps_op leaves 12 lines it never flushed: strict counts that. */
	ct.strict_complete = 1;
	CHECK(crashtest_run(&ct, &r) == 1 && r.failures == 1);
	ct.strict_complete = 0;

	/* The driver must notice a verify that rejects crash states. */
	ct.verify = wrong_verify;
	ct.max_points = 3;
	printf("(a failing verify, on purpose:)\n");
	CHECK(crashtest_run(&ct, &r) == 1);
	CHECK(r.failures == 3);
}

/* In a child: a simulator that crashes at its first fence (torn by seed,
 * with flags) runs body; the parent checks that the child crashed. */
static void crash_in_child(uint64_t seed, unsigned flags, void (*body)(void))
{
	int st;
	pid_t pid;

	memset(map, OLD, DEVSZ);
	fflush(NULL);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		struct xmem_crashsim_opts o = { .device_path = dev,
						.image_path = img,
						.crash_at = 1,
						.torn_seed = seed,
						.flags = flags };

		REQUIRE_OK(xmem_crashsim_start(&o));
		body();
		_exit(0); /* not reached */
	}
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == XMEM_CRASHSIM_EXIT);
}

static void flush64_body(void)
{
	for (int k = 0; k < 64; k++)
		line_fill(map, k, 0x10 + k);
	line_fill(map, 100, 0x55); /* never flushed */
	xmem_flush(map, 64 * LINE);
	xmem_drain();
}

/* 64 lines flushed, then the one fence; a crash there, torn by seed. */
static uint64_t torn_subset(uint64_t seed)
{
	uint64_t mask = 0;

	crash_in_child(seed, 0, flush64_body);
	for (int k = 0; k < 64; k++) {
		int v = img_line(img, k);

		CHECK(v == OLD || v == 0x10 + k);
		if (v == 0x10 + k)
			mask |= 1ull << k;
	}
	CHECK(img_line(img, 100) == OLD);
	return mask;
}

static void test_torn(void)
{
	uint64_t none = torn_subset(0);
	uint64_t a = torn_subset(1), a2 = torn_subset(1), b = torn_subset(2);

	CHECK(none == 0);
	CHECK(a != 0 && a != ~0ull); /* a proper subset */
	CHECK(b != 0 && b != ~0ull);
	CHECK(a == a2); /* the seed decides */
	CHECK(a != b);
	printf("torn: seed 1 applied %d of 64 lines, seed 2 %d\n",
	       __builtin_popcountll(a), __builtin_popcountll(b));
}

static void unflushed64_body(void)
{
	for (int k = 0; k < 64; k++)
		line_fill(map, 200 + k, 0x60); /* never flushed */
	line_fill(map, 0, 0x11);
	xmem_persist(map, LINE);
}

/* With XMEM_CRASHSIM_F_EVICT a torn crash also writes back some lines
 * that were stored but never flushed; without it, never. Returns how many
 * of 64 such lines reached the image. */
static int evicted(uint64_t seed, unsigned flags)
{
	int n = 0;

	crash_in_child(seed, flags, unflushed64_body);
	for (int k = 0; k < 64; k++) {
		int v = img_line(img, 200 + k);

		CHECK(v == OLD || v == 0x60);
		n += v == 0x60;
	}
	return n;
}

static void test_evict(void)
{
	int a = evicted(7, XMEM_CRASHSIM_F_EVICT);

	CHECK(evicted(7, 0) == 0);
	CHECK(a > 0 && a < 64);
	CHECK(evicted(0, XMEM_CRASHSIM_F_EVICT) == 0); /* not torn: none */
	printf("evict: seed 7 wrote back %d of 64 unflushed lines\n", a);
}

/* Threads persist their own lines concurrently; each line's last
 * persisted value is in the image. */
static void *thread_fn(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int r = 0; r < 200; r++)
		for (int k = 0; k < 8; k++) {
			int line = 600 + t * 8 + k;

			line_fill(map, line, (r + t + k) & 0x7f);
			xmem_persist(map + (size_t)line * LINE, LINE);
		}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[4];

	memset(map, OLD, DEVSZ);
	start(0, 0);
	for (int t = 0; t < 4; t++)
		REQUIRE(pthread_create(&th[t], NULL, thread_fn,
				       (void *)(intptr_t)t) == 0);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < 4; t++)
		for (int k = 0; k < 8; k++)
			CHECK(img_line(img, 600 + t * 8 + k) ==
			      ((199 + t + k) & 0x7f));
	CHECK(xmem_crashsim_fences() > 0 &&
	      xmem_crashsim_fences() <= 4 * 200 * 8);
	xmem_crashsim_stop();
}

static void *flush_only(void *arg)
{
	(void)arg;
	line_fill(map, 700, 0x31);
	xmem_flush(map + 700 * LINE, LINE);
	return NULL;
}

/* A fence orders its own thread's flushes only: another thread's flushed
 * line stays pending until that thread fences (or the simulator stops). */
static void test_fence_per_thread(void)
{
	pthread_t th;

	memset(map, OLD, DEVSZ);
	start(0, 0);
	REQUIRE(pthread_create(&th, NULL, flush_only, NULL) == 0);
	pthread_join(th, NULL);
	xmem_drain(); /* nothing of this thread's pending: not counted */
	CHECK(xmem_crashsim_fences() == 0);
	line_fill(map, 701, 0x32);
	xmem_persist(map + 701 * LINE, LINE);
	CHECK(xmem_crashsim_fences() == 1);
	CHECK(img_line(img, 701) == 0x32);
	CHECK(img_line(img, 700) == OLD);
	xmem_crashsim_stop();
}

/* Mappings made by the device layer reach the simulator through its
 * hooks, whether made before or after the start. */
static void test_device_layer(void)
{
	struct xmem_device *d = NULL;
	struct xmem_map *m1 = NULL, *m2 = NULL;
	unsigned char *a;

	memset(map, OLD, DEVSZ);
	REQUIRE_OK(xmem_device_open(&d, dev, 0, 0));
	REQUIRE_OK(xmem_device_map(d, 0, DEVSZ, 0, 0, &m1));
	start(0, 0);
	REQUIRE_OK(xmem_device_map(d, 8192, 8192, 0, 0, &m2));
	a = xmem_map_addr(m1);
	line_fill(a, 20, 0x21);
	xmem_map_ops(m1)->persist(a + 20 * LINE, LINE);
	CHECK(img_line(img, 20) == 0x21);
	a = xmem_map_addr(m2);
	line_fill(a, 1, 0x22);
	xmem_map_ops(m2)->memcpy(a + 2 * LINE, a + LINE, LINE, 0);
	xmem_map_persist(m2, a + LINE, LINE);
	CHECK(img_line(img, 8192 / LINE + 1) == 0x22);
	CHECK(img_line(img, 8192 / LINE + 2) == 0x22);
	CHECK(xmem_crashsim_fences() == 3);
	xmem_map_delete(&m2);
	xmem_crashsim_stop();
	xmem_map_delete(&m1);
	xmem_device_close(&d);
}

int main(void)
{
	test_path(dev, sizeof(dev), "sim-dev");
	test_path(img, sizeof(img), "sim-img");
	make_device();
	test_args();
	test_fences();
	test_map_lifecycle();
	test_driver();
	test_torn();
	test_evict();
	test_device_layer();
	test_threads();
	test_fence_per_thread();
	xmem__crashsim_map_removed(map);
	munmap(map, DEVSZ);
	unlink(dev);
	unlink(img);
	return test_result();
}
