/* SPDX-License-Identifier: MIT */
/*
 * bench_nbd.c - `xmem blk serve` (a BTT namespace image: every sector
 * write atomic and durable when acknowledged) against `qemu-nbd` serving a
 * raw file of the same size, both on Unix sockets in /dev/shm, through the
 * same clients:
 *   - nbdcopy (4 connections when the server allows, 16 requests in
 *     flight) writing SIZE bytes sequentially into the export, and reading
 *     them back out;
 *   - a libnbd client doing 4 KiB random writes, then random reads, with
 *     16 requests in flight on one connection.
 * The servers run side by side; the runs alternate between them (which
 * goes first alternates too), ROUNDS times, and the table shows medians
 * and the ratio xmem/qemu-nbd: of throughput, and of work per CPU second
 * the server process used (utime + stime from /proc; a busy, shared
 * machine distorts it less than wall-clock throughput). Before the first
 * round untimed copies fill both exports and the read-back target, so no
 * timed run pays the first-touch page faults of a sparse image.
 *
 * The xmem server runs with cache-line granularity forced (as on real
 * persistent memory: data and metadata written back, by non-temporal
 * stores, before each ordering point's sfence) unless
 * XMEM_FORCE_GRANULARITY is already set; on a plain file it would otherwise
 * msync at every ordering point. qemu-nbd runs with its defaults
 * (writeback cache, data durable only at FLUSH).
 *
 * Usage: bench_nbd [SIZE_MIB [RANDOM_OPS [ROUNDS]]]   (1024, 100000, 3)
 * The xmem tool is found next to the build's bench/ directory, or through
 * $XMEM_BIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libnbd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QD 16
#define RS 4096

static char dir[256], xmem_bin[4200];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t spawn(char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	return pid;
}

static int run(char *const argv[])
{
	int st;
	pid_t pid = spawn(argv);

	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits (at most 10 s) for a server's socket to appear. */
static int wait_socket(const char *path)
{
	struct stat st;

	for (int i = 0; i < 100; i++) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		usleep(100000);
	}
	fprintf(stderr, "bench_nbd: no socket %s\n", path);
	return -1;
}

static void stop(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static int done_cb(void *user_data, int *error)
{
	if (*error)
		(*(int *)user_data)++;
	return 1;
}

/* Random 4 KiB I/O at queue depth QD; returns operations per second. */
static double random_io(const char *uri, uint64_t size, uint64_t ops, int wr)
{
	struct nbd_handle *h = nbd_create();
	static uint8_t buf[QD][RS];
	uint64_t seed = 88172645463325252ull, issued = 0;
	int errors = 0;
	double t0;

	if (!h || nbd_connect_uri(h, uri) < 0) {
		fprintf(stderr, "bench_nbd: %s: %s\n", uri, nbd_get_error());
		exit(1);
	}
	memset(buf, 0x6b, sizeof(buf));
	t0 = now();
	while (issued < ops || nbd_aio_in_flight(h) > 0) {
		while (issued < ops && nbd_aio_in_flight(h) < QD) {
			nbd_completion_callback cb = { .callback = done_cb,
						       .user_data = &errors };
			uint64_t off;

			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			off = (seed % (size / RS)) * RS;
			if ((wr ? nbd_aio_pwrite(h, buf[issued % QD], RS, off,
						 cb, 0)
				: nbd_aio_pread(h, buf[issued % QD], RS, off,
						cb, 0)) < 0) {
				fprintf(stderr, "bench_nbd: %s\n",
					nbd_get_error());
				exit(1);
			}
			issued++;
		}
		if (nbd_poll(h, -1) < 0) {
			fprintf(stderr, "bench_nbd: poll: %s\n",
				nbd_get_error());
			exit(1);
		}
	}
	t0 = now() - t0;
	nbd_shutdown(h, 0);
	nbd_close(h);
	if (errors) {
		fprintf(stderr, "bench_nbd: %d requests failed on %s\n", errors,
			uri);
		exit(1);
	}
	return (double)ops / t0;
}

/* nbdcopy from `from` to `to`; returns MiB/s. */
static double copy(const char *from, const char *to, uint64_t size)
{
	char *argv[] = { "nbdcopy",    "--connections=4", "--requests=16",
			 (char *)from, (char *)to,	  NULL };
	double t0 = now();

	if (run(argv) != 0) {
		fprintf(stderr, "bench_nbd: nbdcopy %s %s failed\n", from, to);
		exit(1);
	}
	return (double)size / (1 << 20) / (now() - t0);
}

/* CPU seconds a process has used so far (user + system). */
static double proc_cpu(pid_t pid)
{
	char path[64], line[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);
	/* after "pid (comm)": state is field 3, utime 14, stime 15 */
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%lu %lu",
			 &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void make_file(const char *path, uint64_t size, int fill)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	static uint64_t blk[1 << 17];
	uint64_t s = 1;

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
		exit(1);
	for (uint64_t off = 0; fill && off < size; off += sizeof(blk)) {
		for (size_t i = 0; i < sizeof(blk) / 8; i++)
			blk[i] = (s = s * 6364136223846793005ull + off + 1);
		if (pwrite(fd, blk, sizeof(blk), (off_t)off) < 0)
			exit(1);
	}
	close(fd);
}

static void find_xmem(const char *argv0)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (getenv("XMEM_BIN")) {
		snprintf(xmem_bin, sizeof(xmem_bin), "%s", getenv("XMEM_BIN"));
		return;
	}
	if (n < 0)
		n = 0;
	self[n] = 0;
	if (strrchr(self, '/'))
		*strrchr(self, '/') = 0;
	snprintf(xmem_bin, sizeof(xmem_bin), "%s/../tools/xmem/xmem", self);
	(void)argv0;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 1024;
	uint64_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : 100000;
	int rounds = argc > 3 ? atoi(argv[3]) : 3;
	uint64_t size = mib << 20;
	char ns[300], raw[300], src[300], dst[300], xs[300], qs[300];
	char xu[400], qu[400];
	double r[4][2][8], c2[4][2][8];
	pid_t xp, qp;

	if (mib < 16 || rounds < 1 || rounds > 8)
		return fprintf(stderr, "usage: bench_nbd [SIZE_MIB>=16 [OPS "
				       "[ROUNDS<=8]]]\n"),
		       2;
	find_xmem(argv[0]);
	setenv("XMEM_FORCE_GRANULARITY", "cacheline", 0);
	snprintf(dir, sizeof(dir), "/dev/shm/bench_nbd.%d", getpid());
	mkdir(dir, 0700);
	snprintf(ns, sizeof(ns), "%s/btt.img", dir);
	snprintf(raw, sizeof(raw), "%s/raw.img", dir);
	snprintf(src, sizeof(src), "%s/src.img", dir);
	snprintf(dst, sizeof(dst), "%s/dst.img", dir);
	snprintf(xs, sizeof(xs), "%s/xmem.sock", dir);
	snprintf(qs, sizeof(qs), "%s/qemu.sock", dir);
	snprintf(xu, sizeof(xu), "nbd+unix:///btt.img?socket=%s", xs);
	snprintf(qu, sizeof(qu), "nbd+unix:///raw?socket=%s", qs);
	/* The BTT namespace is a little larger, so that its export holds
	 * SIZE bytes; qemu-nbd's raw file is exactly SIZE. */
	make_file(ns, size + size / 64 + (16 << 20), 0);
	make_file(raw, size, 0);
	make_file(src, size, 1);
	{
		char *fmt[] = { xmem_bin, "blk", "format", "--raw", ns, NULL };

		if (run(fmt) != 0) {
			fprintf(stderr, "bench_nbd: %s blk format failed\n",
				xmem_bin);
			return 1;
		}
	}
	char *xargv[] = { xmem_bin, "blk",    "serve", "--raw",
			  ns,	    "--unix", xs,      NULL };
	char *qargv[] = { "qemu-nbd",	"-f",	    "raw", "-x", "raw", "-t",
			  "--shared=8", "--socket", qs,	   raw,	 NULL };
	xp = spawn(xargv);
	qp = spawn(qargv);
	if (wait_socket(xs) || wait_socket(qs)) {
		stop(xp);
		stop(qp);
		return 1;
	}
	printf("bench_nbd: %" PRIu64 " MiB sequential with nbdcopy, %" PRIu64
	       " random 4 KiB ops at QD %d with libnbd, %d rounds, /dev/shm, "
	       "Unix sockets, xmem granularity %s\n",
	       mib, ops, QD, rounds, getenv("XMEM_FORCE_GRANULARITY"));
	copy(src, xu, size); /* warm-up, untimed: both exports and dst */
	copy(src, qu, size);
	copy(qu, dst, size);
	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < 2; i++) {
			int x = (i + k) % 2;
			const char *u = x ? xu : qu;
			pid_t sp = x ? xp : qp;
			double c;

			c = proc_cpu(sp);
			r[0][x][k] = copy(src, u, size);
			c2[0][x][k] = (double)mib / (proc_cpu(sp) - c);
			c = proc_cpu(sp);
			r[1][x][k] = copy(u, dst, size);
			c2[1][x][k] = (double)mib / (proc_cpu(sp) - c);
			c = proc_cpu(sp);
			r[2][x][k] = random_io(u, size, ops, 1);
			c2[2][x][k] = (double)ops / (proc_cpu(sp) - c);
			c = proc_cpu(sp);
			r[3][x][k] = random_io(u, size, ops, 0);
			c2[3][x][k] = (double)ops / (proc_cpu(sp) - c);
		}
	static const char *names[4] = { "seq write (MiB/s)", "seq read (MiB/s)",
					"4K randwrite (ops/s)",
					"4K randread (ops/s)" };
	printf("\n%-22s %12s %12s %7s   %12s %12s %7s\n", "", "wall clock:", "",
	       "", "per server CPU second:", "", "");
	printf("%-22s %12s %12s %7s   %12s %12s %7s\n", "workload",
	       "xmem serve", "qemu-nbd", "ratio", "xmem serve", "qemu-nbd",
	       "ratio");
	for (int w = 0; w < 4; w++) {
		double xm = median(r[w][1], rounds),
		       qm = median(r[w][0], rounds);
		double xc = median(c2[w][1], rounds),
		       qc = median(c2[w][0], rounds);

		printf("%-22s %12.0f %12.0f %6.2fx   %12.0f %12.0f %6.2fx\n",
		       names[w], xm, qm, xm / qm, xc, qc, xc / qc);
	}
	stop(xp);
	stop(qp);
	unlink(ns);
	unlink(raw);
	unlink(src);
	unlink(dst);
	unlink(xs);
	unlink(qs);
	rmdir(dir);
	return 0;
}
