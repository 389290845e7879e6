/* SPDX-License-Identifier: MIT */
/*
 * crashtest.h - run an operation to a crash at every fence, and check
 * what survives.
 *
 * The crash simulator (xmem_crashsim_* in xmem/persist.h) keeps a shadow
 * "durable image" of a device: flushed lines reach it at the next fence,
 * never earlier, and unflushed stores never do. With crash_at = N the Nth
 * fence does not complete: the process _exit()s, and the image holds what
 * a power loss at that moment would have left. With a torn seed, a random
 * subset of the lines flushed since the previous fence reaches the image
 * too (hardware may write lines back early).
 *
 * This driver does the enumeration:
 *
 *   1. The device file is saved (to "<image_path>.base").
 *   2. Counting run: a forked child starts the simulator with crash_at 0,
 *      runs op(), and reports the number F of fences it made. The parent
 *      calls verify(image, 0, arg): the image of a completed operation.
 *   3. For N = 1..F (or an even spread of max_points of them): the device
 *      is restored from the base, a child runs op() with crash_at = N and
 *      must die at that fence; verify(image, N, arg) then judges the
 *      image. Then the same with each torn seed (torn_seeds of them).
 *
 * op() runs in the child after xmem_crashsim_start(): it opens and maps
 * the device itself through xmem's device layer (so the mapping is
 * tracked), or uses mappings made before the fork. It returns 0, or
 * non-zero to report a failure. It must be deterministic: the Nth fence
 * must be the same store sequence in every run.
 *
 * verify() runs in the parent with the image path. It opens the image as
 * a device (a copy of it, if opening writes: recovery may repair), checks
 * that it holds either the old or the new state (or whatever the layer
 * promises), prints what is wrong to stderr and returns non-zero if it
 * is not acceptable. crashtest_torn_seed() tells which torn seed made the
 * image (0 for none).
 *
 * After the completed run, the device and the image are compared: lines
 * that differ were stored but never flushed and fenced. That is printed
 * as a note, or counted as a failure with .strict_complete = 1 (right
 * for layers that keep no volatile state on the device).
 *
 * The parent must not write the device while crashtest_run() runs. A
 * child that hangs is killed after timeout_s seconds (default 60).
 *
 * Printing: crashtest_run() prints one line,
 *   "crashtest <name>: F fences, P crash points x (1 + T torn) = R runs, K
 * failed" and res (if not NULL) gets the same numbers. XMEM_CRASHTEST_ALL=1 in
 * the environment ignores max_points; XMEM_CRASHTEST_VERBOSE=1 prints every
 * point.
 *
 * Example:
 *
 *   static int op(void *arg) { ...create a range on dev... return rc; }
 *   static int verify(const char *img, uint64_t n, void *arg)
 *   { ...open img, check old-or-new, return 0 if fine... }
 *
 *   struct crashtest ct = { .name = "range create", .device_path = dev,
 *                           .image_path = img, .op = op,
 *                           .verify = verify };
 *   CHECK(crashtest_run(&ct, NULL) == 0);
 */
#ifndef XMEM_CRASHTEST_H
#define XMEM_CRASHTEST_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xmem.h>
#include "persist/crashsim.h"

struct crashtest {
	const char *name;	 /* shown in messages */
	const char *device_path; /* the file op() changes */
	const char *image_path;	 /* scratch path for the durable image */
	int (*op)(void *arg);	 /* runs in the child; 0 = success */
	/* Judges the image of crash point n (0: op() completed). */
	int (*verify)(const char *image_path, uint64_t n, void *arg);
	void *arg;
	int torn_seeds;	     /* torn runs per point; 0: 2, negative: none */
	uint64_t max_points; /* 0: every fence; else at most this many */
	unsigned timeout_s;  /* per child run; 0: 60 */
	/* After the completed operation, lines of the device that differ
	 * from the image are stores that were never made durable. 0: a
	 * note is printed; 1: they count as a failure. */
	int strict_complete;
};

struct crashtest_result {
	uint64_t fences;   /* fences of the completed operation */
	uint64_t points;   /* crash points tried */
	uint64_t runs;	   /* child runs, torn ones included */
	uint64_t failures; /* runs whose image verify() rejected, or that
			    * did not crash where they should have */
};

static uint64_t crashtest_seed_;
static int crashtest_evict_;

/* Non-zero when the image being verified comes from a torn crash that
 * also wrote back unflushed dirty lines (XMEM_CRASHSIM_F_EVICT): the last
 * torn run of every point is such a run. */
static inline int crashtest_evicting(void)
{
	return crashtest_evict_;
}

/* The torn seed of the image being verified (0: not torn). */
static inline uint64_t crashtest_torn_seed(void)
{
	return crashtest_seed_;
}

static inline int crashtest_env_(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

/*
 * One child run: restore the device, fork, run op() under the simulator.
 * Returns the child's exit status (XMEM_CRASHSIM_EXIT when it crashed
 * at the fence), or -1 on a harness error; *fences gets the count of a
 * completed run.
 */
static inline int crashtest_child_(const struct crashtest *ct, const char *base,
				   uint64_t crash_at, uint64_t seed,
				   unsigned flags, uint64_t *fences)
{
	struct xmem_crashsim_opts o = { ct->device_path, ct->image_path,
					crash_at, seed, flags };
	int pfd[2], status;
	uint64_t n = 0;
	pid_t pid;

	if (xmem__crashsim_copy_file(base, ct->device_path) != 0) {
		fprintf(stderr, "crashtest %s: restoring %s: %s\n", ct->name,
			ct->device_path, xmem_errormsg());
		return -1;
	}
	if (pipe(pfd) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(pfd[0]);
		alarm(ct->timeout_s ? ct->timeout_s : 60);
		if (xmem_crashsim_start(&o) != 0) {
			fprintf(stderr, "crashtest %s: %s\n", ct->name,
				xmem_errormsg());
			_exit(3);
		}
		if (ct->op(ct->arg) != 0) {
			fprintf(stderr,
				"crashtest %s: op failed at crash "
				"point %llu: %s\n",
				ct->name, (unsigned long long)crash_at,
				xmem_errormsg());
			_exit(2);
		}
		n = xmem_crashsim_fences();
		xmem_crashsim_stop();
		fflush(NULL);
		if (write(pfd[1], &n, sizeof(n)) != (ssize_t)sizeof(n))
			_exit(4);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &n, sizeof(n)) != (ssize_t)sizeof(n))
		n = 0;
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	*fences = n;
	if (WIFSIGNALED(status)) {
		fprintf(stderr,
			"crashtest %s: child killed by signal %d at "
			"crash point %llu\n",
			ct->name, WTERMSIG(status),
			(unsigned long long)crash_at);
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* Counts the 64-byte lines that differ between two files; *first gets
 * the offset of the first. -1 if a file cannot be read. */
static inline long long crashtest_diff_lines_(const char *a, const char *b,
					      long long *first)
{
	static char x[1 << 16], y[1 << 16];
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	long long n = 0, off = 0;
	size_t ra, rb;

	*first = -1;
	if (!fa || !fb) {
		if (fa)
			fclose(fa);
		if (fb)
			fclose(fb);
		return -1;
	}
	do {
		ra = fread(x, 1, sizeof(x), fa);
		rb = fread(y, 1, sizeof(y), fb);
		for (size_t i = 0; i < (ra > rb ? ra : rb); i += 64) {
			size_t la = i < ra ? ra - i : 0,
			       lb = i < rb ? rb - i : 0;

			la = la > 64 ? 64 : la;
			lb = lb > 64 ? 64 : lb;
			if (la != lb || memcmp(x + i, y + i, la)) {
				if (*first < 0)
					*first = off + (long long)i;
				n++;
			}
		}
		off += (long long)(ra > rb ? ra : rb);
	} while (ra == sizeof(x) && rb == sizeof(x));
	fclose(fa);
	fclose(fb);
	return n;
}

/* After the completed run: were all of the operation's stores made
 * durable? Returns 1 when that counts as a failure. */
static inline int crashtest_check_complete_(const struct crashtest *ct)
{
	long long first, n;

	n = crashtest_diff_lines_(ct->device_path, ct->image_path, &first);
	if (n == 0)
		return 0;
	if (n < 0) {
		fprintf(stderr, "crashtest %s: cannot compare %s and %s\n",
			ct->name, ct->device_path, ct->image_path);
		return 1;
	}
	fprintf(ct->strict_complete ? stderr : stdout,
		"crashtest %s: %s%lld lines of the device were never made "
		"durable (first at offset %lld)\n",
		ct->name, ct->strict_complete ? "" : "note: ", n, first);
	return ct->strict_complete;
}

/* The i-th of `points` crash points spread over 1..f (first and last
 * included). */
static inline uint64_t crashtest_point_(uint64_t i, uint64_t points, uint64_t f)
{
	if (points >= f)
		return i + 1;
	if (points == 1)
		return f;
	return 1 + (i * (f - 1)) / (points - 1);
}

/* One crash point, plain and torn. Returns the failures. */
static inline uint64_t crashtest_point_run_(const struct crashtest *ct,
					    const char *base, uint64_t n,
					    int torn, uint64_t *runs)
{
	uint64_t fails = 0, dummy;

	for (int t = 0; t <= torn; t++) {
		uint64_t seed = t ? 0x9e3779b97f4a7c15ull * (n + 1) + t : 0;
		/* The last torn run also lets unflushed lines reach the
		 * image early, as cache evictions may. */
		unsigned flags =
			t && t == torn && torn >= 2 ? XMEM_CRASHSIM_F_EVICT : 0;
		int st = crashtest_child_(ct, base, n, seed, flags, &dummy);

		(*runs)++;
		if (st != XMEM_CRASHSIM_EXIT) {
			fprintf(stderr,
				"crashtest %s: crash point %llu: "
				"child exited %d, not at the fence "
				"(is op() deterministic?)\n",
				ct->name, (unsigned long long)n, st);
			fails++;
			continue;
		}
		crashtest_seed_ = seed;
		crashtest_evict_ = flags != 0;
		if (ct->verify(ct->image_path, n, ct->arg) != 0) {
			fprintf(stderr,
				"crashtest %s: crash at fence %llu%s "
				"left a bad image\n",
				ct->name, (unsigned long long)n,
				seed ? " (torn)" : "");
			fails++;
		} else if (crashtest_env_("XMEM_CRASHTEST_VERBOSE")) {
			printf("crashtest %s: fence %llu%s ok\n", ct->name,
			       (unsigned long long)n, seed ? " torn" : "");
		}
	}
	return fails;
}

/*
 * Runs the enumeration described above. Returns 0 when every image was
 * accepted, 1 otherwise (harness errors included).
 */
static inline int crashtest_run(const struct crashtest *ct,
				struct crashtest_result *res)
{
	struct crashtest_result r = { 0, 0, 0, 0 };
	int torn = ct->torn_seeds == 0	? 2
		   : ct->torn_seeds < 0 ? 0
					: ct->torn_seeds;
	char base[4096];
	int st;

	snprintf(base, sizeof(base), "%s.base", ct->image_path);
	if (xmem__crashsim_copy_file(ct->device_path, base) != 0) {
		fprintf(stderr, "crashtest %s: saving %s: %s\n", ct->name,
			ct->device_path, xmem_errormsg());
		return 1;
	}
	st = crashtest_child_(ct, base, 0, 0, 0, &r.fences);
	r.runs++;
	crashtest_seed_ = 0;
	if (st != 0) {
		fprintf(stderr,
			"crashtest %s: the counting run failed "
			"(exit %d)\n",
			ct->name, st);
		r.failures++;
	} else if (ct->verify(ct->image_path, 0, ct->arg) != 0) {
		fprintf(stderr,
			"crashtest %s: the completed operation left "
			"a bad image\n",
			ct->name);
		r.failures++;
	} else if (crashtest_check_complete_(ct)) {
		r.failures++;
	}
	r.points = r.fences;
	if (ct->max_points && ct->max_points < r.fences &&
	    !crashtest_env_("XMEM_CRASHTEST_ALL"))
		r.points = ct->max_points;
	for (uint64_t i = 0; st == 0 && i < r.points; i++)
		r.failures += crashtest_point_run_(
			ct, base, crashtest_point_(i, r.points, r.fences), torn,
			&r.runs);
	/* Leave the device as the caller had it. */
	if (xmem__crashsim_copy_file(base, ct->device_path) != 0)
		r.failures++;
	unlink(base);
	printf("crashtest %s: %llu fences, %llu crash points x (1 + %d "
	       "torn) = %llu runs, %llu failed\n",
	       ct->name, (unsigned long long)r.fences,
	       (unsigned long long)r.points, torn, (unsigned long long)r.runs,
	       (unsigned long long)r.failures);
	if (res)
		*res = r;
	return r.failures ? 1 : 0;
}

#endif /* XMEM_CRASHTEST_H */
