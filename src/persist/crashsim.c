/* SPDX-License-Identifier: MIT */
/*
 * crashsim.c - the crash simulator: a shadow image of what would be
 * durable if the machine lost power now.
 *
 * Flushes of tracked lines copy the line's content at that moment into a
 * pending list; a fence appends nothing new but applies the lines its own
 * thread captured, in flush order, to a shared mapping of the image file.
 * The Nth fence (crash_at) never completes: the process _exit()s,
 * optionally after a seeded random subset of the pending lines (of any
 * thread) reached the image, as early write-backs by the hardware would.
 * A fence with none of its thread's lines pending is not counted: a crash
 * there leaves the same image as a crash at the next counted fence.
 *
 * Cost: a flush is O(lines) copies of 64 bytes plus a lookup among the
 * tracked mappings (O(mappings), normally one or two); a fence is
 * O(pending lines).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "crashsim.h"

#define LINE 64u

struct tmap {
	uintptr_t addr;
	size_t len;
	uint64_t off;
	dev_t dev;
	ino_t ino;
	int known;   /* dev/ino are valid */
	int tracked; /* a mapping of the simulated device */
};

struct pline {
	uint64_t off;
	unsigned owner; /* the flushing thread's id (thread_id()) */
	unsigned char data[LINE];
};

int xmem__crashsim_on;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned next_tid;
static _Thread_local unsigned my_tid;
static struct tmap *maps;
static size_t nmaps, capmaps;
static struct pline *pend;
static size_t npend, cappend;

static struct {
	dev_t dev;
	ino_t ino;
	int img_fd;
	unsigned char *img;
	uint64_t img_size;
	uint64_t crash_at;
	uint64_t torn_seed;
	uint64_t fences;
	size_t last; /* index of the last mapping a flush hit */
	int evict;   /* torn crashes also write back unflushed dirty lines */
} S = { .img_fd = -1 };

void xmem__crashsim_map_added(void *addr, size_t len, const char *path,
			      uint64_t off)
{
	struct stat st;
	struct tmap *m;

	pthread_mutex_lock(&lock);
	if (xmem__vec_grow((void **)&maps, &capmaps, nmaps + 1,
			   sizeof(*maps))) {
		/* Untracked: the simulator would miss its lines, so say so
		 * rather than fail the mapping. */
		XMEM_LOG_W("crash simulator: out of memory, mapping of %s not "
			   "tracked",
			   path ? path : "?");
		pthread_mutex_unlock(&lock);
		return;
	}
	m = &maps[nmaps++];
	memset(m, 0, sizeof(*m));
	m->addr = (uintptr_t)addr;
	m->len = len;
	m->off = off;
	if (path && stat(path, &st) == 0) {
		m->dev = st.st_dev;
		m->ino = st.st_ino;
		m->known = 1;
	}
	m->tracked = xmem__crashsim_on && m->known && m->dev == S.dev &&
		     m->ino == S.ino;
	pthread_mutex_unlock(&lock);
}

void xmem__crashsim_map_removed(void *addr)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nmaps; i++) {
		if (maps[i].addr == (uintptr_t)addr) {
			maps[i] = maps[--nmaps];
			break;
		}
	}
	S.last = 0;
	pthread_mutex_unlock(&lock);
}

int xmem__crashsim_active(void)
{
	return xmem__crashsim_on;
}

XMEM_EXPORT uint64_t xmem_crashsim_fences(void)
{
	return S.fences;
}

/* The tracked mapping that holds the line at p, or NULL. */
static struct tmap *find_map(uintptr_t p)
{
	struct tmap *m = S.last < nmaps ? &maps[S.last] : NULL;

	if (m && m->tracked && p - m->addr < m->len)
		return m;
	for (size_t i = 0; i < nmaps; i++) {
		m = &maps[i];
		if (m->tracked && p - m->addr < m->len) {
			S.last = i;
			return m;
		}
	}
	return NULL;
}

static int pend_grow(void)
{
	size_t cap = cappend ? cappend * 2 : 1024;
	struct pline *n = realloc(pend, cap * sizeof(*n));

	if (!n)
		return -ENOMEM;
	pend = n;
	cappend = cap;
	return 0;
}

/* A small id for the calling thread, given at its first flush; under
 * the lock. */
static unsigned thread_id(void)
{
	if (!my_tid)
		my_tid = ++next_tid;
	return my_tid;
}

/* Captures the tracked lines of [addr, addr+len) as they are now. */
void xmem__crashsim_flush(const void *addr, size_t len)
{
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(LINE - 1);
	uintptr_t end = (uintptr_t)addr + len;

	if (!len)
		return;
	pthread_mutex_lock(&lock);
	for (; p < end; p += LINE) {
		struct tmap *m = find_map(p);
		uint64_t off;

		if (!m)
			continue;
		off = m->off + (p - m->addr);
		if (off + LINE > S.img_size)
			continue;
		if (npend == cappend && pend_grow() != 0) {
			/* Cannot record it: a crash now would be wrong, so
			 * stop the child as a failed run, loudly. */
			XMEM_LOG_W("crash simulator: out of memory");
			_exit(XMEM_CRASHSIM_EXIT + 1);
		}
		pend[npend].off = off;
		pend[npend].owner = thread_id();
		memcpy(pend[npend].data, (const void *)p, LINE);
		npend++;
	}
	pthread_mutex_unlock(&lock);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/*
 * Early write-back of lines that were stored but never flushed: a cache
 * may evict any dirty line at any time. A seeded half of the tracked lines
 * whose contents differ from the image reach it, as they are now.
 * O(bytes tracked).
 */
static void evict_dirty(uint64_t *rs)
{
	for (size_t m = 0; m < nmaps; m++) {
		const unsigned char *p = (const unsigned char *)maps[m].addr;

		if (!maps[m].tracked || maps[m].off > S.img_size ||
		    maps[m].len > S.img_size - maps[m].off)
			continue;
		for (size_t o = 0; o + LINE <= maps[m].len; o += LINE) {
			unsigned char *q = S.img + maps[m].off + o;

			if (memcmp(q, p + o, LINE) && (splitmix64(rs) & 1))
				memcpy(q, p + o, LINE);
		}
	}
}

/* The crash: maybe some early write-backs, then the process is gone. */
static void crash(void)
{
	if (S.torn_seed) {
		uint64_t rs = S.torn_seed ^ (S.fences * 0xd1b54a32d192ed03ull);

		for (size_t i = 0; i < npend; i++)
			if (splitmix64(&rs) & 1)
				memcpy(S.img + pend[i].off, pend[i].data, LINE);
		if (S.evict)
			evict_dirty(&rs);
	}
	/* The image is a shared file mapping: what was written to it is in
	 * the file for whoever opens it next, without msync. */
	_exit(XMEM_CRASHSIM_EXIT);
}

/*
 * A fence: the lines this thread captured reach the image, in flush
 * order; other threads' lines stay pending until their own fences, as a
 * store fence orders only its own thread's flushes. O(pending lines).
 */
void xmem__crashsim_drain(void)
{
	size_t i, kept = 0, own = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < npend && !own; i++)
		own = pend[i].owner == thread_id();
	if (!own) {
		pthread_mutex_unlock(&lock);
		return;
	}
	S.fences++;
	if (S.crash_at && S.fences == S.crash_at)
		crash();
	for (i = 0; i < npend; i++) {
		if (pend[i].owner == my_tid)
			memcpy(S.img + pend[i].off, pend[i].data, LINE);
		else
			pend[kept++] = pend[i];
	}
	npend = kept;
	pthread_mutex_unlock(&lock);
}

static void sim_persist(const void *addr, size_t len)
{
	xmem__crashsim_flush(addr, len);
	xmem__crashsim_drain();
}

/* After a mem* store under the simulator: the lines are captured as the
 * NT stores or flushes of the real operation would make them durable. */
static void *sim_stored(void *dst, size_t len, unsigned flags)
{
	if (flags & XMEM_F_MEM_NOFLUSH)
		return dst;
	xmem__crashsim_flush(dst, len);
	if (!(flags & XMEM_F_MEM_NODRAIN))
		xmem__crashsim_drain();
	return dst;
}

static void *sim_memmove(void *dst, const void *src, size_t len, unsigned flags)
{
	memmove(dst, src, len);
	return sim_stored(dst, len, flags);
}

static void *sim_memset(void *dst, int c, size_t len, unsigned flags)
{
	memset(dst, c, len);
	return sim_stored(dst, len, flags);
}

static const struct xmem_persist_ops sim_ops = {
	.gran = XMEM_GRAN_CACHELINE,
	.flush = xmem__crashsim_flush,
	.drain = xmem__crashsim_drain,
	.persist = sim_persist,
	.memcpy = sim_memmove,
	.memmove = sim_memmove,
	.memset = sim_memset,
};

const struct xmem_persist_ops *xmem__crashsim_ops(void)
{
	return &sim_ops;
}

/* Copies [off, off+len) of fd `in` to the same offset of `out`. */
static int copy_extent(int in, int out, off_t off, off_t len, char *buf,
		       size_t bufsz)
{
	while (len > 0) {
		size_t want = len < (off_t)bufsz ? (size_t)len : bufsz;
		ssize_t r = pread(in, buf, want, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : 0; /* shrank under us: done */
		for (ssize_t done = 0; done < r;) {
			ssize_t w = pwrite(out, buf + done, (size_t)(r - done),
					   off + done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			done += w;
		}
		off += r;
		len -= r;
	}
	return 0;
}

/* Makes [off, off+len) of out read as zeros: a hole if possible. */
static int zero_extent(int out, off_t off, off_t len, char *buf, size_t bufsz)
{
	if (len <= 0)
		return 0;
	if (fallocate(out, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		      len) == 0)
		return 0;
	memset(buf, 0, bufsz);
	while (len > 0) {
		size_t n = len < (off_t)bufsz ? (size_t)len : bufsz;
		ssize_t w = pwrite(out, buf, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += w;
		len -= w;
	}
	return 0;
}

/* Makes out a copy of in, in place: the data extents of in are copied,
 * its holes are zeroed (punched) in out. */
static int copy_fd(int in, int out, off_t size)
{
	size_t bufsz = 1u << 20;
	char *buf = malloc(bufsz);
	off_t pos = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (pos < size && rc == 0) {
		off_t data = lseek(in, pos, SEEK_DATA);
		off_t hole;

		if (data < 0 && errno == ENXIO) {
			data = size; /* only a hole is left */
			hole = size;
		} else if (data < 0) {
			data = pos; /* no SEEK_DATA: copy everything */
			hole = size;
		} else {
			hole = lseek(in, data, SEEK_HOLE);
			if (hole < 0 || hole > size)
				hole = size;
		}
		rc = zero_extent(out, pos, data - pos, buf, bufsz);
		if (rc == 0)
			rc = copy_extent(in, out, data, hole - data, buf,
					 bufsz);
		pos = hole;
	}
	free(buf);
	return rc;
}

int xmem__crashsim_copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out, rc;
	off_t size;

	if (in < 0)
		return xmem__err(-errno, "crash simulator: open %s: %s", src,
				 strerror(errno));
	/* In place (no O_TRUNC): a reader that has dst mapped never sees
	 * it shrink. */
	out = open(dst, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = xmem__err(-errno, "crash simulator: create %s: %s", dst,
			       strerror(errno));
		close(in);
		return rc;
	}
	size = lseek(in, 0, SEEK_END);
	rc = size < 0 ? -errno : 0;
	if (rc == 0 && ftruncate(out, size) != 0)
		rc = -errno;
	if (rc == 0)
		rc = copy_fd(in, out, size);
	if (rc)
		xmem__err(rc, "crash simulator: copying %s to %s: %s", src, dst,
			  strerror(-rc));
	close(in);
	close(out);
	return rc;
}

/* Marks the registered mappings of the simulated device as tracked. */
static void track_maps(void)
{
	for (size_t i = 0; i < nmaps; i++)
		maps[i].tracked = maps[i].known && maps[i].dev == S.dev &&
				  maps[i].ino == S.ino;
	S.last = 0;
}

/* Opens and maps the image, a copy of the device as it is now. */
static int image_open(const char *dev, const char *img)
{
	struct stat st;
	int rc = xmem__crashsim_copy_file(dev, img);

	if (rc)
		return rc;
	S.img_fd = open(img, O_RDWR | O_CLOEXEC);
	if (S.img_fd < 0 || fstat(S.img_fd, &st) != 0) {
		rc = xmem__err(-errno, "crash simulator: open %s: %s", img,
			       strerror(errno));
		goto fail;
	}
	S.img_size = (uint64_t)st.st_size;
	S.img = NULL;
	if (S.img_size) {
		void *p = mmap(NULL, S.img_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, S.img_fd, 0);

		if (p == MAP_FAILED) {
			rc = xmem__err(-errno, "crash simulator: map %s: %s",
				       img, strerror(errno));
			goto fail;
		}
		S.img = p;
	}
	return 0;
fail:
	if (S.img_fd >= 0)
		close(S.img_fd);
	S.img_fd = -1;
	return rc;
}

XMEM_EXPORT int xmem_crashsim_start(const struct xmem_crashsim_opts *opts)
{
	struct stat st;
	int rc;

	if (!opts || !opts->device_path || !opts->image_path)
		return xmem__err(-EINVAL, "crash simulator: device_path and "
					  "image_path are required");
	if (xmem__crashsim_on)
		return xmem__err(-EBUSY, "crash simulator: already running");
	if (stat(opts->device_path, &st) != 0)
		return xmem__err(-errno, "crash simulator: device %s: %s",
				 opts->device_path, strerror(errno));
	pthread_mutex_lock(&lock);
	rc = image_open(opts->device_path, opts->image_path);
	if (rc == 0) {
		S.dev = st.st_dev;
		S.ino = st.st_ino;
		S.crash_at = opts->crash_at;
		S.torn_seed = opts->torn_seed;
		S.evict = !!(opts->flags & XMEM_CRASHSIM_F_EVICT);
		S.fences = 0;
		npend = 0;
		track_maps();
		xmem__crashsim_on = 1;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

XMEM_EXPORT void xmem_crashsim_stop(void)
{
	pthread_mutex_lock(&lock);
	if (!xmem__crashsim_on) {
		pthread_mutex_unlock(&lock);
		return;
	}
	xmem__crashsim_on = 0;
	/* Flushed but never fenced: not durable, so dropped. */
	npend = 0;
	for (size_t i = 0; i < nmaps; i++)
		maps[i].tracked = 0;
	if (S.img)
		munmap(S.img, S.img_size);
	if (S.img_fd >= 0)
		close(S.img_fd);
	S.img = NULL;
	S.img_fd = -1;
	S.img_size = 0;
	pthread_mutex_unlock(&lock);
}
