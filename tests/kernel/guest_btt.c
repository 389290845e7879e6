/* SPDX-License-Identifier: MIT */
/*
 * guest_btt.c - BTT interoperability with the kernel's nd_btt, both ways.
 *
 *   guest_btt kernel-write /dev/pmem0s   the kernel's BTT writes patterns
 *   guest_btt xmem-read /dev/pmem0       xmem reads them from raw bytes
 *   guest_btt xmem-write /dev/pmem0 UUID xmem formats and writes a BTT
 *   guest_btt kernel-read /dev/pmem0s    the kernel reads xmem's data
 *
 * The raw steps run with the namespace's force_raw set, so /dev/pmem0
 * shows the namespace's bytes: the BTT starts 4 KiB in (version 1.1, as
 * with v1.1 labels). Each writer overwrites some sectors, so that the map
 * and the flog have moved away from their initial state, and leaves most
 * sectors unwritten. An unwritten sector of xmem's fresh BTT reads as
 * zeroes; one of the kernel's reads whatever the media held before (the
 * kernel's map starts as the identity), so xmem must read those exactly as
 * the kernel does: the kernel-write step saves the kernel's view of every
 * probed sector in /tmp for the xmem-read step.
 */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "guest.h"
#include "guest_util.h"

#ifdef XMEM_GUEST_HAVE_BLK
#include <xmem/blk.h>
#endif

#define LBA_SIZE 4096u
#define NLBA_KERNEL "/tmp/btt-kernel-nlba"
#define NLBA_XMEM "/tmp/btt-xmem-nlba"
#define KERNEL_VIEW "/tmp/btt-kernel-view"

/*
 * The writes of one side, in order: [first, first+count) with `seed`. A
 * later entry overwrites an earlier one. first < 0 counts from the end.
 */
struct wr {
	int64_t first;
	uint32_t count;
	uint32_t seed;
};
static const struct wr kernel_writes[] = {
	{ 0, 32, 1 }, { 8, 8, 2 }, { 1000, 4, 3 }, { -1, 1, 4 }, { 9, 1, 5 },
};
static const struct wr xmem_writes[] = {
	{ 0, 16, 11 }, { 4, 4, 12 }, { 4096, 8, 13 },
	{ -3, 3, 14 }, { 5, 1, 15 },
};

/* The seed sector lba must hold after the writes (0: never written). */
static uint32_t expected_seed(const struct wr *w, size_t n, uint64_t nlba,
			      uint64_t lba)
{
	uint32_t seed = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t first = w[i].first < 0 ? nlba + (uint64_t)w[i].first
						: (uint64_t)w[i].first;

		if (lba >= first && lba < first + w[i].count)
			seed = w[i].seed;
	}
	return seed;
}

/* Fills one sector as the writer of `seed` writes it at lba. */
static void sector_fill(uint8_t *buf, uint32_t seed, uint64_t lba)
{
	if (seed)
		guest_pattern_fill(buf, LBA_SIZE, (uint64_t)seed << 32 | lba);
	else
		memset(buf, 0, LBA_SIZE);
}

/* Compares one sector with what it must hold; 0 or -1. */
static int sector_ok(const uint8_t *buf, uint32_t seed, uint64_t lba)
{
	if (seed)
		return guest_pattern_check(buf, LBA_SIZE,
					   (uint64_t)seed << 32 | lba) ==
				       (size_t)-1
			       ? 0
			       : -1;
	for (size_t i = 0; i < LBA_SIZE; i++)
		if (buf[i])
			return -1;
	return 0;
}

/* Sectors worth reading back: every written one, their neighbours, and a
 * sample of the rest. Calls fn for each; stops at the first failure. */
static int for_each_probe(const struct wr *w, size_t n, uint64_t nlba,
			  int (*fn)(void *arg, uint64_t lba), void *arg,
			  uint64_t *probed)
{
	uint64_t first, lba;
	int rc;

	*probed = 0;
	for (size_t i = 0; i < n; i++) {
		first = w[i].first < 0 ? nlba + (uint64_t)w[i].first
				       : (uint64_t)w[i].first;
		for (lba = first ? first - 1 : 0;
		     lba <= first + w[i].count && lba < nlba; lba++) {
			if ((rc = fn(arg, lba)) != 0)
				return rc;
			++*probed;
		}
	}
	for (lba = 0; lba < nlba; lba += nlba / 64 + 1) {
		if ((rc = fn(arg, lba)) != 0)
			return rc;
		++*probed;
	}
	return 0;
}

/* The kernel's sector device: its size in sectors, or -1. */
static int64_t kernel_nlba(int fd)
{
	uint64_t bytes;

	if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
		return -1;
	return (int64_t)(bytes / LBA_SIZE);
}

static int save_u64(const char *path, uint64_t v)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f, "%" PRIu64 "\n", v);
	return fclose(f);
}

/* Reads probed sectors through the kernel and appends them to the view. */
struct kview {
	int fd;
	uint64_t nlba;
	uint8_t *buf;
	FILE *out;
};

static int kernel_view_one(void *arg, uint64_t lba)
{
	struct kview *k = arg;
	uint32_t seed = expected_seed(
		kernel_writes, sizeof(kernel_writes) / sizeof(*kernel_writes),
		k->nlba, lba);

	if (pread(k->fd, k->buf, LBA_SIZE, (off_t)(lba * LBA_SIZE)) !=
	    LBA_SIZE) {
		GUEST_FAIL("btt-kernel-write", "pread lba %" PRIu64 ": %s", lba,
			   strerror(errno));
		return -1;
	}
	if (seed && sector_ok(k->buf, seed, lba)) {
		GUEST_FAIL("btt-kernel-write",
			   "the kernel reads lba %" PRIu64 " differently from "
			   "what it wrote",
			   lba);
		return -1;
	}
	if (fwrite(&lba, sizeof(lba), 1, k->out) != 1 ||
	    fwrite(k->buf, LBA_SIZE, 1, k->out) != 1) {
		GUEST_FAIL("btt-kernel-write", "cannot write %s", KERNEL_VIEW);
		return -1;
	}
	return 0;
}

/* Saves (lba, sector) records of every probed sector as the kernel reads
 * them. */
static int save_kernel_view(int fd, uint64_t nlba, uint8_t *buf,
			    uint64_t *probed)
{
	struct kview k = { fd, nlba, buf, fopen(KERNEL_VIEW, "w") };
	int rc;

	if (!k.out) {
		GUEST_FAIL("btt-kernel-write", "cannot create %s", KERNEL_VIEW);
		return -1;
	}
	rc = for_each_probe(kernel_writes,
			    sizeof(kernel_writes) / sizeof(*kernel_writes),
			    nlba, kernel_view_one, &k, probed);
	if (fclose(k.out) && !rc) {
		GUEST_FAIL("btt-kernel-write", "cannot write %s", KERNEL_VIEW);
		rc = -1;
	}
	return rc;
}

/* Writes the kernel's patterns through /dev/pmem0s. */
static int kernel_write(const char *dev)
{
	int fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
	int64_t nlba = fd < 0 ? -1 : kernel_nlba(fd);
	uint8_t *buf = NULL;
	uint32_t total = 0;
	uint64_t probed;

	if (nlba < 4096 || posix_memalign((void **)&buf, LBA_SIZE, LBA_SIZE)) {
		GUEST_FAIL("btt-kernel-write", "cannot open %s: %s", dev,
			   strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(kernel_writes) / sizeof(*kernel_writes);
	     i++) {
		const struct wr *w = &kernel_writes[i];
		uint64_t first = w->first < 0 ? (uint64_t)(nlba + w->first)
					      : (uint64_t)w->first;

		for (uint64_t lba = first; lba < first + w->count; lba++) {
			sector_fill(buf, w->seed, lba);
			if (pwrite(fd, buf, LBA_SIZE,
				   (off_t)(lba * LBA_SIZE)) != LBA_SIZE) {
				GUEST_FAIL("btt-kernel-write",
					   "pwrite lba %" PRIu64 ": %s", lba,
					   strerror(errno));
				goto out;
			}
			total++;
		}
	}
	if (fsync(fd) || save_u64(NLBA_KERNEL, (uint64_t)nlba)) {
		GUEST_FAIL("btt-kernel-write", "fsync: %s", strerror(errno));
		goto out;
	}
	if (save_kernel_view(fd, (uint64_t)nlba, buf, &probed) == 0)
		GUEST_PASS("btt-kernel-write",
			   "%u sector writes (with overwrites) through the "
			   "kernel's BTT on %s, %" PRId64 " sectors of %u "
			   "bytes; %" PRIu64 " sectors read back",
			   total, dev, nlba, LBA_SIZE, probed);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return guest_exit();
}

/* Reads /dev/pmem0s back against xmem's writes. */
struct kread {
	int fd;
	uint64_t nlba;
	uint8_t *buf;
};

static int kernel_read_one(void *arg, uint64_t lba)
{
	struct kread *k = arg;
	uint32_t seed = expected_seed(
		xmem_writes, sizeof(xmem_writes) / sizeof(*xmem_writes),
		k->nlba, lba);

	if (pread(k->fd, k->buf, LBA_SIZE, (off_t)(lba * LBA_SIZE)) !=
	    LBA_SIZE) {
		GUEST_FAIL("btt-xmem-to-kernel", "pread lba %" PRIu64 ": %s",
			   lba, strerror(errno));
		return -1;
	}
	if (sector_ok(k->buf, seed, lba)) {
		GUEST_FAIL("btt-xmem-to-kernel",
			   "the kernel reads lba %" PRIu64 " differently from "
			   "what xmem wrote (%s)",
			   lba, seed ? "pattern" : "zeroes");
		return -1;
	}
	return 0;
}

static int kernel_read(const char *dev)
{
	struct kread k = { .fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC) };
	uint64_t want = 0, probed;
	int64_t nlba = k.fd < 0 ? -1 : kernel_nlba(k.fd);

	if (nlba < 0 || guest_read_u64(NLBA_XMEM, &want) ||
	    posix_memalign((void **)&k.buf, LBA_SIZE, LBA_SIZE)) {
		GUEST_FAIL("btt-xmem-to-kernel",
			   "the kernel attached no sector device %s (%s)", dev,
			   strerror(errno));
		goto out;
	}
	k.nlba = (uint64_t)nlba;
	if ((uint64_t)nlba != want) {
		GUEST_FAIL("btt-xmem-to-kernel",
			   "the kernel sees %" PRId64 " sectors, xmem wrote "
			   "%" PRIu64,
			   nlba, want);
		goto out;
	}
	if (for_each_probe(xmem_writes,
			   sizeof(xmem_writes) / sizeof(*xmem_writes), k.nlba,
			   kernel_read_one, &k, &probed) == 0)
		GUEST_PASS("btt-xmem-to-kernel",
			   "the kernel attached xmem's BTT as %s (%" PRId64
			   " sectors) and read %" PRIu64
			   " sectors as xmem wrote them",
			   dev, nlba, probed);
out:
	free(k.buf);
	if (k.fd >= 0)
		close(k.fd);
	return guest_exit();
}

#ifdef XMEM_GUEST_HAVE_BLK
/* Reads every sector of the kernel's view with xmem and compares. */
static int compare_kernel_view(struct xmem_blk *blk, uint64_t *probed)
{
	static uint8_t want[LBA_SIZE], got[LBA_SIZE];
	FILE *in = fopen(KERNEL_VIEW, "r");
	uint64_t lba;
	int rc = 0;

	*probed = 0;
	if (!in) {
		GUEST_FAIL("btt-kernel-to-xmem", "no %s", KERNEL_VIEW);
		return -1;
	}
	while (!rc && fread(&lba, sizeof(lba), 1, in) == 1 &&
	       fread(want, LBA_SIZE, 1, in) == 1) {
		rc = xmem_blk_read(blk, lba, got, 1);
		if (rc)
			GUEST_FAIL_RC("btt-kernel-to-xmem", "xmem_blk_read",
				      rc);
		else if (memcmp(want, got, LBA_SIZE))
			rc = -1, GUEST_FAIL("btt-kernel-to-xmem",
					    "xmem reads lba %" PRIu64
					    " differently from the kernel",
					    lba);
		++*probed;
	}
	fclose(in);
	return rc;
}

static void count_problem(const struct xmem_blk_problem *p, void *arg)
{
	fprintf(stderr, "btt check: %s at %" PRIu64 ": %s\n", p->structure,
		p->offset, p->what);
	(void)arg;
}

/* Opens the kernel's BTT from the raw namespace and reads it back. */
static int xmem_read(const char *dev)
{
	struct xmem_blk *blk = NULL;
	struct xmem_blk_info info;
	uint64_t want = 0, probed;
	unsigned nproblems = 0;
	int rc;

	if (guest_read_u64(NLBA_KERNEL, &want)) {
		GUEST_FAIL("btt-kernel-to-xmem", "the kernel wrote nothing");
		return guest_exit();
	}
	rc = xmem_blk_check_raw(dev, 0, 0, count_problem, NULL, &nproblems);
	if (rc) {
		GUEST_FAIL_RC("btt-kernel-to-xmem", "xmem_blk_check_raw", rc);
		return guest_exit();
	}
	rc = xmem_blk_open_raw(dev, 0, 0, XMEM_F_BLK_RDONLY, &blk);
	if (rc) {
		GUEST_FAIL_RC("btt-kernel-to-xmem", "xmem_blk_open_raw", rc);
		return guest_exit();
	}
	xmem_blk_get_info(blk, &info);
	if (info.nlba != want || info.lbasize != LBA_SIZE)
		GUEST_FAIL("btt-kernel-to-xmem",
			   "xmem sees %" PRIu64 " sectors of %u, the kernel "
			   "had %" PRIu64 " of %u",
			   info.nlba, info.lbasize, want, LBA_SIZE);
	else if (compare_kernel_view(blk, &probed) == 0)
		GUEST_PASS("btt-kernel-to-xmem",
			   "xmem opened the kernel's BTT v%u.%u at namespace "
			   "offset %" PRIu64 " (%u arena(s), %" PRIu64
			   " sectors of %u, %u free blocks per arena), check "
			   "clean, %" PRIu64 " sectors read as the kernel "
			   "read them",
			   info.version_major, info.version_minor,
			   info.btt_offset, info.narenas, info.nlba,
			   info.lbasize, info.nfree, probed);
	xmem_blk_close(&blk);
	return guest_exit();
}

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in byte order. */
static int parse_uuid(const char *s, uint8_t out[16])
{
	unsigned n = 0, v;

	for (; *s && n < 16; s++) {
		if (*s == '-')
			continue;
		if (sscanf(s, "%2x", &v) != 1)
			return -1;
		out[n++] = (uint8_t)v;
		s++;
	}
	return n == 16 ? 0 : -1;
}

/* Formats a BTT on the raw namespace and writes xmem's patterns. */
static int xmem_write(const char *dev, const char *uuid)
{
	struct xmem_blk_format_opts opts = { .lbasize = LBA_SIZE,
					     .version_major = 1,
					     .version_minor = 1 };
	struct xmem_blk *blk = NULL;
	uint8_t buf[LBA_SIZE];
	uint64_t nlba;
	int rc;

	if (parse_uuid(uuid, opts.parent_uuid)) {
		GUEST_FAIL("btt-xmem-write", "bad namespace uuid '%s'", uuid);
		return guest_exit();
	}
	rc = xmem_blk_format_raw(dev, 0, 0, &opts);
	if (!rc)
		rc = xmem_blk_open_raw(dev, 0, 0, 0, &blk);
	if (rc) {
		GUEST_FAIL_RC("btt-xmem-write", "format and open", rc);
		return guest_exit();
	}
	nlba = xmem_blk_nlba(blk);
	for (size_t i = 0; i < sizeof(xmem_writes) / sizeof(*xmem_writes);
	     i++) {
		const struct wr *w = &xmem_writes[i];
		uint64_t first = w->first < 0 ? nlba + (uint64_t)w->first
					      : (uint64_t)w->first;

		for (uint64_t lba = first; lba < first + w->count && !rc;
		     lba++) {
			sector_fill(buf, w->seed, lba);
			rc = xmem_blk_write(blk, lba, buf, 1);
		}
	}
	if (!rc)
		rc = xmem_blk_flush(blk);
	xmem_blk_close(&blk);
	if (rc)
		GUEST_FAIL_RC("btt-xmem-write", "xmem_blk_write", rc);
	else if (save_u64(NLBA_XMEM, nlba))
		GUEST_FAIL("btt-xmem-write", "cannot save the sector count");
	else
		GUEST_PASS("btt-xmem-write",
			   "xmem formatted a BTT v1.1 (%" PRIu64 " sectors of "
			   "%u, parent uuid %s) on the raw namespace %s and "
			   "wrote sectors with overwrites",
			   nlba, LBA_SIZE, uuid, dev);
	return guest_exit();
}
#endif

int main(int argc, char **argv)
{
	const char *cmd = argc > 2 ? argv[1] : "";

	if (!strcmp(cmd, "kernel-write"))
		return kernel_write(argv[2]);
	if (!strcmp(cmd, "kernel-read"))
		return kernel_read(argv[2]);
#ifdef XMEM_GUEST_HAVE_BLK
	if (!strcmp(cmd, "xmem-read"))
		return xmem_read(argv[2]);
	if (!strcmp(cmd, "xmem-write") && argc > 3)
		return xmem_write(argv[2], argv[3]);
#else
	if (!strcmp(cmd, "xmem-read") || !strcmp(cmd, "xmem-write")) {
		GUEST_SKIP(cmd[5] == 'r' ? "btt-kernel-to-xmem"
					 : "btt-xmem-write",
			   "block mode (src/blk) is not in this build");
		return 77;
	}
#endif
	fprintf(stderr,
		"usage: %s kernel-write|kernel-read|xmem-read DEV | "
		"xmem-write DEV UUID\n",
		argv[0]);
	return 2;
}
