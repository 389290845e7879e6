/* SPDX-License-Identifier: MIT */
/*
 * bench_blk.c - xmem's BTT against libpmemblk on the same work: 4 KiB
 * random writes, then 4 KiB random reads of the written blocks, with 1 and
 * 2 threads, on pools of the same size in /dev/shm. Cache-line
 * granularity is forced for both (XMEM_FORCE_GRANULARITY=cacheline,
 * PMEM_IS_PMEM_FORCE=1; the program re-executes itself to set them before
 * either library starts). The runs of the two libraries are interleaved,
 * ROUNDS times, and the table shows medians and the ratio xmem/libpmemblk.
 * Every block of both pools is written once before the first round
 * (untimed), so no run pays page faults and reads copy written data. Each
 * thread draws the same LBA sequence for both libraries.
 *
 * The floor column is the least work of the same operations on a plain
 * mapping (see floor_op), and max = floor/libpmemblk the highest ratio any
 * BTT could reach. For reads that bound is what it is because a 4 KiB
 * read from memory larger than the caches is one dependent map load and
 * a copy limited by memory latency and bandwidth (no copy routine or
 * prefetching beat glibc's memcpy by more than a few percent here), and
 * libpmemblk's read costs only a little more than that: on this machine
 * max is about 1.3x with one thread and 2x with two (where libpmemblk's
 * lane locks contend), so a read ratio of 2x is not reachable with one
 * thread by any BTT.
 *
 * Usage: bench_blk [POOL_MIB [OPS_PER_RUN [ROUNDS]]]   (256, 200000, 5)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpmemblk.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xmem.h>

#include "persist/nt_store.h"

#define BS 4096
#define MAXT 2

struct run {
	int xmem; /* 1: xmem BTT, 0: libpmemblk, 2: the floor (see floor_op) */
	int write;
	unsigned threads;
	uint64_t ops; /* per thread */
	uint64_t nblocks;
	struct xmem_blk *blk;
	PMEMblkpool *pbp;
	uint8_t *raw; /* the floor's mapping: nblocks blocks, then a map */
	int failed;
};

struct worker {
	struct run *r;
	unsigned id;
	double cpu; /* seconds of CPU the thread used */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * The least any BTT must do per 4 KiB operation, on a plain mapping of the
 * same size in /dev/shm: a read is one map lookup (a 4-byte load from a
 * table the size of the BTT's map, naming the block) and one memcpy from
 * the block; a write is the 4 KiB non-temporal copy plus the three
 * ordering points a sector write needs with 8-byte failure atomicity (data
 * and the flog entry's first half; its second half; the 4-byte map entry),
 * each the cheapest durable small store there is here (non-temporal, as
 * the BTT's own write path uses where it can) and a fence.
 */
static void floor_op(struct run *r, unsigned id, uint64_t lba, uint8_t *buf)
{
	uint8_t *map = r->raw + r->nblocks * BS;
	uint8_t *flog = map + ((r->nblocks * 4 + 4095) & ~4095ull) + id * 128;
	uint32_t *m = (uint32_t *)map + lba;

	if (!r->write) {
		uint32_t blk = __atomic_load_n(m, __ATOMIC_ACQUIRE);

		memcpy(buf, r->raw + (blk % r->nblocks) * BS, BS);
		return;
	}
	xmem_memcpy(r->raw + lba * BS, buf, BS, XMEM_F_MEM_NODRAIN);
	xmem__nt_store64((uint64_t *)flog, lba);
	xmem_drain();
	xmem__nt_store64((uint64_t *)flog + 1, lba);
	xmem_drain();
	xmem__nt_store32(m, (uint32_t)lba);
	xmem_drain();
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1);
	uint8_t buf[BS];
	int rc = 0;
	double c0 = thread_cpu();

	memset(buf, (int)w->id + 1, BS);
	for (uint64_t i = 0; i < r->ops && rc == 0; i++) {
		uint64_t lba = xorshift(&seed) % r->nblocks;

		if (r->xmem == 2)
			floor_op(r, w->id, lba, buf);
		else if (r->xmem)
			rc = r->write ? xmem_blk_write(r->blk, lba, buf, 1)
				      : xmem_blk_read(r->blk, lba, buf, 1);
		else
			rc = r->write ? pmemblk_write(r->pbp, buf,
						      (long long)lba)
				      : pmemblk_read(r->pbp, buf,
						     (long long)lba);
	}
	if (rc)
		r->failed = 1;
	w->cpu = thread_cpu() - c0;
	return NULL;
}

/* Runs one configuration; returns operations per second of wall time,
 * and in *per_cpu operations per second of CPU time (which a busy,
 * shared machine distorts less). */
static double run_once(struct run *r, double *per_cpu)
{
	pthread_t t[MAXT];
	struct worker w[MAXT];
	double t0 = now(), cpu = 0;

	for (unsigned i = 0; i < r->threads; i++) {
		w[i] = (struct worker){ r, i, 0 };
		if (pthread_create(&t[i], NULL, work, &w[i]))
			exit(1);
	}
	for (unsigned i = 0; i < r->threads; i++) {
		pthread_join(t[i], NULL);
		cpu += w[i].cpu;
	}
	*per_cpu = (double)(r->ops * r->threads) / cpu;
	if (r->failed) {
		fprintf(stderr, "bench_blk: an I/O failed (%s)\n",
			r->xmem ? xmem_errormsg() : pmemblk_errormsg());
		exit(1);
	}
	return (double)(r->ops * r->threads) / (now() - t0);
}

/* Writes every block of both pools once, untimed: the pages are faulted
 * in and every later read copies written data, on both sides. */
static void warm(struct xmem_blk *blk, PMEMblkpool *pbp, uint64_t nblocks)
{
	uint8_t buf[BS];

	memset(buf, 0x5a, BS);
	for (uint64_t lba = 0; lba < nblocks; lba++)
		if (xmem_blk_write(blk, lba, buf, 1) ||
		    pmemblk_write(pbp, buf, (long long)lba)) {
			fprintf(stderr, "bench_blk: warm-up write failed\n");
			exit(1);
		}
}

/* The floor's plain mapping, every page written once. */
static uint8_t *map_floor(const char *path, size_t len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	void *p = MAP_FAILED;

	if (fd >= 0 && ftruncate(fd, (off_t)len) == 0)
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd >= 0)
		close(fd);
	if (p == MAP_FAILED) {
		perror("bench_blk: floor mapping");
		exit(1);
	}
	memset(p, 0x5a, len);
	return p;
}

/* Seconds to open (and close) a BTT formatted on a sparse file of `gib`
 * GiB in /dev/shm: open reads every map entry once (O(nlba)). */
static double open_time(uint64_t gib, uint64_t *nlba)
{
	char path[256];
	struct xmem_blk *b;
	double t0, t = 0;
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/bench_blk.open.%d", getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(gib << 30)) != 0 ||
	    xmem_blk_format_raw(path, 0, 0, NULL) != 0) {
		fprintf(stderr, "bench_blk: open bench: %s\n", xmem_errormsg());
		exit(1);
	}
	close(fd);
	for (int i = 0; i < 3; i++) { /* best of three */
		double d;

		t0 = now();
		if (xmem_blk_open_raw(path, 0, 0, XMEM_F_BLK_RDONLY, &b)) {
			fprintf(stderr, "bench_blk: open: %s\n",
				xmem_errormsg());
			exit(1);
		}
		*nlba = xmem_blk_nlba(b);
		xmem_blk_close(&b);
		d = now() - t0;
		t = i == 0 || d < t ? d : t;
	}
	unlink(path);
	return t;
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

/* Sets the granularity overrides and re-executes, once. */
static void force_granularity(char **argv)
{
	if (getenv("XMEM_FORCE_GRANULARITY") && getenv("PMEM_IS_PMEM_FORCE"))
		return;
	setenv("XMEM_FORCE_GRANULARITY", "cacheline", 1);
	setenv("PMEM_IS_PMEM_FORCE", "1", 1);
	execv("/proc/self/exe", argv);
	perror("bench_blk: re-exec");
	exit(1);
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 256;
	uint64_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : 200000;
	int rounds = argc > 3 ? atoi(argv[3]) : 5;
	char xpath[256], ppath[256];
	struct xmem_blk_format_opts o = { .lbasize = BS };
	struct xmem_device *dev;
	struct xmem_blk *blk;
	PMEMblkpool *pbp;
	uint64_t nblocks;
	double res[3][2][2][16]; /* [xmem][write][threads-1][round] */
	double cpu[3][2][2][16];
	char fpath[256];
	uint8_t *raw;
	size_t rawlen;

	force_granularity(argv);
	if (rounds < 1 || rounds > 16 || mib < 32)
		return fprintf(stderr, "usage: bench_blk [POOL_MIB>=32 [OPS "
				       "[ROUNDS<=16]]]\n"),
		       2;
	snprintf(xpath, sizeof(xpath), "/dev/shm/bench_blk.xmem.%d", getpid());
	snprintf(ppath, sizeof(ppath), "/dev/shm/bench_blk.pmemblk.%d",
		 getpid());
	if (xmem_device_open(&dev, xpath, mib << 20, XMEM_F_CREATE) ||
	    (xmem_device_close(&dev), 0) ||
	    xmem_blk_format_raw(xpath, 0, 0, &o) ||
	    xmem_blk_open_raw(xpath, 0, 0, 0, &blk)) {
		fprintf(stderr, "bench_blk: xmem: %s\n", xmem_errormsg());
		return 1;
	}
	pbp = pmemblk_create(ppath, BS, (size_t)(mib << 20), 0600);
	if (!pbp) {
		fprintf(stderr, "bench_blk: libpmemblk: %s\n",
			pmemblk_errormsg());
		return 1;
	}
	/* The same number of blocks for both: the smaller of the two. */
	nblocks = xmem_blk_nlba(blk);
	if ((uint64_t)pmemblk_nblock(pbp) < nblocks)
		nblocks = (uint64_t)pmemblk_nblock(pbp);
	warm(blk, pbp, nblocks);
	snprintf(fpath, sizeof(fpath), "/dev/shm/bench_blk.floor.%d", getpid());
	rawlen = nblocks * BS + ((nblocks * 4 + 4095) & ~4095ull) + 4096;
	raw = map_floor(fpath, rawlen);
	for (uint64_t i = 0; i < nblocks; i++) /* the floor's map: identity */
		((uint32_t *)(raw + nblocks * BS))[i] = (uint32_t)i;
	printf("bench_blk: %" PRIu64 " MiB pools in /dev/shm, %" PRIu64
	       " blocks of 4 KiB, %" PRIu64 " ops per thread per run, %d "
	       "rounds, granularity cacheline (forced)\n",
	       mib, nblocks, ops, rounds);
	for (int k = 0; k < rounds; k++)
		for (int wr = 1; wr >= 0; wr--)
			for (unsigned th = 1; th <= MAXT; th++)
				for (int x = 0; x < 3; x++) {
					struct run r = { x,	   wr,	    th,
							 ops / th, nblocks, blk,
							 pbp,	   raw,	    0 };

					res[x][wr][th - 1][k] = run_once(
						&r, &cpu[x][wr][th - 1][k]);
				}
	printf("\n%-12s %3s %12s %12s %6s   %12s %12s %6s %12s %6s\n", "", "",
	       "wall clock:", "", "", "CPU time:", "", "", "", "");
	printf("%-12s %3s %12s %12s %6s   %12s %12s %6s %12s %6s\n",
	       "operation", "thr", "xmem ops/s", "pmemblk", "ratio",
	       "xmem ops/s", "pmemblk", "ratio", "floor", "max");
	for (int wr = 1; wr >= 0; wr--)
		for (unsigned th = 1; th <= MAXT; th++) {
			double xm = median(res[1][wr][th - 1], rounds);
			double pm = median(res[0][wr][th - 1], rounds);
			double xc = median(cpu[1][wr][th - 1], rounds);
			double pc = median(cpu[0][wr][th - 1], rounds);
			double fc = median(cpu[2][wr][th - 1], rounds);

			printf("%-12s %3u %12.0f %12.0f %5.2fx   %12.0f %12.0f "
			       "%5.2fx %12.0f %5.2fx\n",
			       wr ? "4K randwrite" : "4K randread", th, xm, pm,
			       xm / pm, xc, pc, xc / pc, fc, fc / pc);
		}
	printf("\nfloor: the same operations' least work on a plain mapping "
	       "(read: a map lookup and one\n4 KiB memcpy; write: 4 KiB NT "
	       "copy + 3 x (non-temporal small store + fence)); max =\n"
	       "floor/pmemblk, the highest ratio any BTT could reach here.\n");
	for (uint64_t gib = 2; gib <= 16; gib *= 8) {
		uint64_t n = 0;
		double t = open_time(gib, &n);

		printf("open: %2" PRIu64 " GiB BTT (%" PRIu64 " sectors of 4 "
		       "KiB): %.2f ms, %.1f ns per sector\n",
		       gib, n, t * 1e3, t * 1e9 / (double)n);
	}
	munmap(raw, rawlen);
	unlink(fpath);
	xmem_blk_close(&blk);
	pmemblk_close(pbp);
	unlink(xpath);
	unlink(ppath);
	return 0;
}
