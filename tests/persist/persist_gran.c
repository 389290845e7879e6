/* SPDX-License-Identifier: MIT */
/*
 * persist_gran.c - the operations of each granularity. Page granularity
 * must msync the page-rounded range (checked by interposing msync, and on
 * a disk file system by the page's dirty bit going clear: the data
 * reached the file); byte granularity never flushes; cache line is the
 * CPU primitives; the crash simulator takes over every granularity.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

#include <xmem.h>

#include "test.h"

#define PG 4096u
#define FILESZ (16 * PG)

static int msync_calls;
static void *msync_addr;
static size_t msync_len;
static int msync_flags;

/* Every msync of the library lands here first. */
int msync(void *addr, size_t len, int flags)
{
	msync_calls++;
	msync_addr = addr;
	msync_len = len;
	msync_flags = flags;
	return (int)syscall(SYS_msync, addr, len, flags);
}

static void expect_msync(void *addr, size_t len, int line)
{
	if (msync_calls != 1 || msync_addr != addr || msync_len != len ||
	    msync_flags != MS_SYNC) {
		fprintf(stderr,
			"line %d: msync calls %d addr %p len %zu flags %d, "
			"expected 1 call %p %zu MS_SYNC\n",
			line, msync_calls, msync_addr, msync_len, msync_flags,
			addr, len);
		test_failures++;
	}
	msync_calls = 0;
}

/* Dirty bit of the page cache page behind addr: 1, 0, or -1 unknown. */
static int page_dirty(const void *addr)
{
	uint64_t ent, flags;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	int kf = open("/proc/kpageflags", O_RDONLY);
	int rc = -1;

	if (fd >= 0 && kf >= 0 &&
	    pread(fd, &ent, 8, (off_t)((uintptr_t)addr / PG * 8)) == 8 &&
	    (ent >> 63) && (ent & ((1ull << 55) - 1)) &&
	    pread(kf, &flags, 8, (off_t)((ent & ((1ull << 55) - 1)) * 8)) == 8)
		rc = (int)((flags >> 4) & 1); /* KPF_DIRTY */
	if (fd >= 0)
		close(fd);
	if (kf >= 0)
		close(kf);
	return rc;
}

static void test_page(void)
{
	const struct xmem_persist_ops *o = xmem_persist_ops(XMEM_GRAN_PAGE);
	char path[256], buf[256];
	struct statfs sf;
	unsigned char *p;
	int fd, d;

	/* A disk file system, where msync really writes the file. */
	snprintf(path, sizeof(path), "/var/tmp/xmem-test-gran.%d",
		 (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		test_path(path, sizeof(path), "gran");
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	}
	REQUIRE(fd >= 0 && ftruncate(fd, FILESZ) == 0);
	p = mmap(NULL, FILESZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	REQUIRE(p != MAP_FAILED);
	CHECK(o->gran == XMEM_GRAN_PAGE);

	msync_calls = 0;
	memset(p + 5000, 0x41, 100);
	d = page_dirty(p + 5000);
	o->persist(p + 5000, 100);
	expect_msync(p + PG, PG, __LINE__);
	CHECK(pread(fd, buf, 100, 5000) == 100 && buf[0] == 0x41 &&
	      buf[99] == 0x41);
	if (fstatfs(fd, &sf) == 0 && sf.f_type != 0x01021994 /* tmpfs */ &&
	    d == 1) {
		CHECK(page_dirty(p + 5000) == 0);
		printf("page: dirty bit cleared by the msync\n");
	} else {
		printf("page: dirty bits not observable here (%s)\n",
		       d < 0 ? "no /proc/kpageflags" : "tmpfs");
	}

	o->flush(p + 4000, 200); /* straddles pages 0 and 1 */
	expect_msync(p, 2 * PG, __LINE__);
	o->drain();
	CHECK(msync_calls == 0);
	o->persist(p + 3 * PG, 0);
	CHECK(msync_calls == 0);

	CHECK(o->memcpy(p + 2 * PG + 10, "durable", 8, 0) == p + 2 * PG + 10);
	expect_msync(p + 2 * PG, PG, __LINE__);
	CHECK(pread(fd, buf, 8, 2 * PG + 10) == 8 && !strcmp(buf, "durable"));
	o->memcpy(p + 2 * PG, "x", 1, XMEM_F_MEM_NODRAIN);
	expect_msync(p + 2 * PG, PG, __LINE__);
	o->memcpy(p + 2 * PG, "y", 1, XMEM_F_MEM_NOFLUSH);
	CHECK(msync_calls == 0 && p[2 * PG] == 'y');
	o->memmove(p + 3 * PG - 2, p + 2 * PG, 5000, 0);
	expect_msync(p + 2 * PG, 3 * PG, __LINE__);
	o->memset(p + 7 * PG + 1, 0x77, PG, 0);
	expect_msync(p + 7 * PG, 2 * PG, __LINE__);
	CHECK(p[8 * PG] == 0x77 && p[7 * PG] != 0x77);
	o->memset(p, 0, 10, XMEM_F_MEM_NOFLUSH);
	CHECK(msync_calls == 0);

	munmap(p, FILESZ);
	close(fd);
	unlink(path);
}

static void test_byte_and_cacheline(void)
{
	const struct xmem_persist_ops *b = xmem_persist_ops(XMEM_GRAN_BYTE);
	const struct xmem_persist_ops *c =
		xmem_persist_ops(XMEM_GRAN_CACHELINE);
	unsigned char *a = aligned_alloc(64, 8192);
	unsigned char s[5000];

	REQUIRE(a);
	for (size_t i = 0; i < sizeof(s); i++)
		s[i] = (unsigned char)i;
	CHECK(b->gran == XMEM_GRAN_BYTE && c->gran == XMEM_GRAN_CACHELINE);
	CHECK(c->flush == xmem_flush && c->drain == xmem_drain &&
	      c->persist == xmem_persist && c->memcpy == xmem_memcpy &&
	      c->memmove == xmem_memmove && c->memset == xmem_memset);
	msync_calls = 0;
	for (size_t len = 0; len < sizeof(s); len = len * 2 + 3) {
		CHECK(b->memcpy(a + 1, s, len, 0) == a + 1);
		CHECK(!memcmp(a + 1, s, len));
		CHECK(b->memcpy(a + 1, s, len, XMEM_F_MEM_NONTEMPORAL) ==
		      a + 1);
		CHECK(!memcmp(a + 1, s, len));
		CHECK(b->memmove(a + 7, a + 1, len, 0) == a + 7);
		CHECK(!memcmp(a + 7, s, len));
		CHECK(b->memset(a, 3, len, XMEM_F_MEM_NONTEMPORAL) == a);
		CHECK(len == 0 || (a[0] == 3 && a[len - 1] == 3));
		b->flush(a, len);
		b->drain();
		b->persist(a, len);
		CHECK(c->memcpy(a + 2, s, len, 0) == a + 2);
		CHECK(!memcmp(a + 2, s, len));
	}
	CHECK(msync_calls == 0);
	free(a);
}

/* While the simulator runs, every granularity gets its operations. */
static void test_sim_takes_over(void)
{
	char dev[256], img[256];
	struct xmem_crashsim_opts o = { 0 };
	const struct xmem_persist_ops *ops[3];
	int fd;

	test_path(dev, sizeof(dev), "gran-dev");
	test_path(img, sizeof(img), "gran-img");
	fd = open(dev, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0 && ftruncate(fd, PG) == 0);
	close(fd);
	o.device_path = dev;
	o.image_path = img;
	for (int g = 0; g < 3; g++)
		ops[g] = xmem_persist_ops((enum xmem_granularity)g);
	REQUIRE_OK(xmem_crashsim_start(&o));
	for (int g = 0; g < 3; g++) {
		const struct xmem_persist_ops *s =
			xmem_persist_ops((enum xmem_granularity)g);

		CHECK(s == xmem_persist_ops(XMEM_GRAN_BYTE));
		CHECK(s != ops[g]);
		CHECK(s->gran == XMEM_GRAN_CACHELINE);
	}
	CHECK(xmem_crashsim_start(&o) == -EBUSY);
	xmem_crashsim_stop();
	for (int g = 0; g < 3; g++)
		CHECK(xmem_persist_ops((enum xmem_granularity)g) == ops[g]);
	unlink(dev);
	unlink(img);
}

int main(void)
{
	test_page();
	test_byte_and_cacheline();
	test_sim_takes_over();
	return test_result();
}
