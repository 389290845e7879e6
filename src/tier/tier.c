/* SPDX-License-Identifier: MIT */
/*
 * tier.c - the tier object: creation, deletion, explicit control,
 * statistics and budget groups.
 *
 * xmem_tier_new() is O(nunits) (the unit table) plus one pass over
 * /proc/self/maps for the VMA bound; delete is O(nunits).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/util.h"
#include "tier_internal.h"

/* Fills cfg with the defaults. */
XMEM_EXPORT void xmem_tier_config_init(struct xmem_tier_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->unit = 2ull << 20;
	cfg->device_fd = -1;
	cfg->numa_node = -1;
}

/* The name of a placement, for messages and JSON. */
XMEM_EXPORT const char *xmem_tier_where_name(enum xmem_tier_where w)
{
	switch (w) {
	case XMEM_TIER_NONE:
		return "none";
	case XMEM_TIER_DRAM:
		return "dram";
	case XMEM_TIER_DEVICE:
		return "device";
	}
	return "?";
}

/* Defaults for the tunables left at 0. */
static void fill_defaults(struct xmem_tier_config *c)
{
	if (!c->unit)
		c->unit = 2ull << 20;
	if (!c->sample_per_sec)
		c->sample_per_sec = 1000;
	if (!c->sample_bytes)
		c->sample_bytes = 256 * 1024;
	if (c->sample_bytes > c->unit)
		c->sample_bytes = (uint32_t)c->unit;
	if (c->sample_bytes > 2u << 20) /* judged in at most 32 blocks */
		c->sample_bytes = 2u << 20;
	c->sample_bytes = (uint32_t)align_up(c->sample_bytes, XMEM_PAGE);
	if (c->sample_bytes > 64 * 1024)
		c->sample_bytes =
			(uint32_t)align_up(c->sample_bytes, 64 * 1024);
	if (!c->sample_window_ms)
		c->sample_window_ms = 16; /* one probe page per 64 KiB */
	if (!c->max_samples)
		c->max_samples = 256;
	if (!c->migrate_per_sec)
		c->migrate_per_sec = 512;
	if (!c->min_residency_ms)
		c->min_residency_ms = 500;
	if (!c->tick_ms)
		c->tick_ms = 20;
	if (!c->cpu_percent)
		c->cpu_percent = 8;
}

/* Checks the VMA bound (see tier_internal.h) against vm.max_map_count. */
static int check_vmas(const struct xmem_tier_config *c, uint64_t nunits)
{
	long max = xmem__tier_max_map_count();
	long now = xmem__tier_vma_count();
	uint64_t need = nunits + 64; /* + 2 per move in flight */

	if (now < 0)
		now = 0;
	if ((long)need + now + 1024 > max)
		return xmem__err(-ENOMEM,
				 "tier: %llu units need up to %llu VMAs; the "
				 "process has %ld of vm.max_map_count %ld: use "
				 "a larger unit or raise vm.max_map_count",
				 (unsigned long long)nunits,
				 (unsigned long long)need, now, max);
	return 0;
}

/* Opens the userfaultfd (kernel-mode faults too, if allowed). */
static int open_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd,
				  O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return xmem__err(-errno, "tier: userfaultfd: %s",
				 strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = errno;
		close(fd);
		return xmem__err(-e, "tier: UFFDIO_API: %s", strerror(e));
	}
	return fd;
}

/* A pidfd of this process for process_madvise() (batched zaps), or -1:
 * then every range is zapped with its own madvise. */
static int open_pidfd(void)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, getpid(), 0);
#else
	return -1;
#endif
}

/* Maps a window of `len` bytes at an address aligned to `align`. */
static char *map_aligned(uint64_t len, uint64_t align, int fd, uint64_t off)
{
	char *p = xmem__tier_mmap(NULL, len + align, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				  -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)align_up((uintptr_t)p, align);
	if (a > p)
		xmem__tier_munmap(p, a - p);
	xmem__tier_munmap(a + len, p + align - a);
	if (fd == -2)
		return a; /* reservation only */
	if (xmem__tier_mmap(a, len, PROT_READ | PROT_WRITE,
			    fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS |
					     MAP_NORESERVE | MAP_FIXED
				   : MAP_SHARED | MAP_FIXED,
			    fd, (off_t)off) == MAP_FAILED) {
		xmem__tier_munmap(a, len);
		return NULL;
	}
	return a;
}

/*
 * The device memory must be shmem (memfd, /dev/shm file) or hugetlbfs:
 * fencing a unit needs userfaultfd MINOR and MISSING faults, which the
 * kernel offers only there. Device DAX and files on DAX or disk file
 * systems are served by the NUMA-node backend (devdax in kmem mode).
 */
static int check_backing(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return xmem__err(-errno, "tier: device fd: %s",
				 strerror(errno));
	if (sf.f_type != TMPFS_MAGIC && sf.f_type != HUGETLBFS_MAGIC)
		return xmem__err(
			-EOPNOTSUPP,
			"tier: device memory is on a file system of "
			"type 0x%lx; remapping tiers need shmem or "
			"hugetlbfs (userfaultfd MINOR faults); use the "
			"NUMA-node backend for device DAX",
			(unsigned long)sf.f_type);
	return 0;
}

/* Creates the memory objects: memfd, device, aliases, base, uffd. */
static int setup_memory(struct xmem_tier *t)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int rc;

	t->memfd = memfd_create("xmem-tier-dram", MFD_CLOEXEC);
	if (t->memfd < 0 || ftruncate(t->memfd, (off_t)t->size) < 0)
		return xmem__err(-errno, "tier: DRAM memfd of %llu bytes: %s",
				 (unsigned long long)t->size, strerror(errno));
	if (t->cfg.device_fd < 0) {
		t->devfd = memfd_create("xmem-tier-device", MFD_CLOEXEC);
		t->own_devfd = 1;
		if (t->devfd < 0 || ftruncate(t->devfd, (off_t)t->size) < 0)
			return xmem__err(-errno, "tier: device memfd: %s",
					 strerror(errno));
	} else {
		t->devfd = fcntl(t->cfg.device_fd, F_DUPFD_CLOEXEC, 0);
		if (t->devfd < 0)
			return xmem__err(-errno, "tier: device fd: %s",
					 strerror(errno));
		t->devoff = t->cfg.device_offset;
	}
	rc = check_backing(t->devfd);
	if (rc < 0)
		return rc;
	t->dram = map_aligned(t->size, t->unit, t->memfd, 0);
	t->dev = map_aligned(t->size, t->unit, t->devfd, t->devoff);
	if (!t->dram || !t->dev)
		return xmem__err(-errno,
				 "tier: mapping the %s of %llu bytes: %s",
				 t->dram ? "device" : "DRAM",
				 (unsigned long long)t->size, strerror(errno));
	t->uffd = open_uffd();
	if (t->uffd < 0)
		return t->uffd;
	t->base = map_aligned(t->size, t->unit, -1, 0);
	if (!t->base)
		return xmem__err(-errno, "tier: reserving %llu bytes: %s",
				 (unsigned long long)t->size, strerror(errno));
	reg.range.start = (uintptr_t)t->base;
	reg.range.len = t->size;
	if (ioctl(t->uffd, UFFDIO_REGISTER, &reg) < 0)
		return xmem__err(-errno, "tier: UFFDIO_REGISTER: %s",
				 strerror(errno));
	return 0;
}

/* Starts a thread with every signal blocked (signals are the program's),
 * named so that top and perf show the engine's threads apart. */
static int start_thread(pthread_t *thr, void *(*fn)(void *), void *arg,
			const char *name)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(thr, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_setname_np(*thr, name);
	return -rc;
}

static void group_join(struct xmem_tier_group *g, struct xmem_tier *t);
static void group_leave(struct xmem_tier_group *g, struct xmem_tier *t);

/* Validates cfg and sizes the tier. */
static int check_config(const struct xmem_tier_config *c)
{
	if (!c->size)
		return xmem__err(-EINVAL, "tier: size is 0");
	if (!is_pow2(c->unit) || c->unit < XMEM_PAGE)
		return xmem__err(-EINVAL,
				 "tier: unit %llu is not a power of two of at "
				 "least 4 KiB",
				 (unsigned long long)c->unit);
	if (c->device_fd >= 0 && c->device_offset % XMEM_PAGE)
		return xmem__err(-EINVAL,
				 "tier: device offset %llu is not a multiple "
				 "of the page size",
				 (unsigned long long)c->device_offset);
	if (!c->group && c->dram_budget % c->unit)
		return xmem__err(-EINVAL,
				 "tier: DRAM budget %llu is not a multiple of "
				 "the unit %llu",
				 (unsigned long long)c->dram_budget,
				 (unsigned long long)c->unit);
	return 0;
}

/* Creates a tier (see tier.h); on failure everything is undone. */
XMEM_EXPORT int xmem_tier_new(const struct xmem_tier_config *cfg,
			      struct xmem_tier **tp)
{
	struct xmem_tier *t;
	int rc;

	*tp = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	fill_defaults(&t->cfg);
	t->memfd = t->devfd = t->uffd = t->stopfd = -1;
	t->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	t->pidfd = open_pidfd();
	rc = check_config(&t->cfg);
	if (rc < 0)
		goto fail;
	t->unit = t->cfg.unit;
	t->size = align_up(t->cfg.size, t->unit);
	t->nunits = t->size / t->unit;
	t->numa = !!(t->cfg.flags & XMEM_F_TIER_NUMA);
	pthread_mutex_init(&t->wait_lock, NULL);
	pthread_cond_init(&t->wait_cond, NULL);
	{
		pthread_rwlockattr_t a;
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(
			&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&t->fork_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	t->t0_ns = xmem__tier_now_ns();
	t->rng = t->t0_ns | 1;
	t->u = calloc(t->nunits, sizeof(*t->u));
	t->warm = calloc(t->nunits, sizeof(*t->warm));
	t->q = calloc(t->cfg.max_samples, sizeof(*t->q));
	t->win_ns = (uint64_t)t->cfg.sample_window_ms * 1000000ull;
	t->cold = calloc(t->nunits, sizeof(*t->cold));
	pthread_mutex_init(&t->slot_lock, NULL);
	rc = -ENOMEM;
	if (!t->u || !t->warm || !t->cold || !t->q)
		goto fail;
	if (t->cfg.group) {
		t->group = t->cfg.group;
	} else {
		rc = xmem_tier_group_new(t->cfg.dram_budget, &t->group);
		if (rc < 0)
			goto fail;
		t->group->private_group = 1;
	}
	if (t->group->budget % t->unit) {
		rc = xmem__err(-EINVAL, "tier: group budget is not a multiple "
					"of the unit");
		goto fail;
	}
	rc = t->numa ? xmem__tier_numa_setup(t)
		     : check_vmas(&t->cfg, t->nunits);
	if (rc == 0 && !t->numa)
		rc = setup_memory(t);
	if (rc < 0)
		goto fail;
	t->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stopfd < 0) {
		rc = -errno;
		goto fail;
	}
	if (t->cfg.flags & XMEM_F_TIER_PUBLISH)
		xmem__tier_pub_open(t);
	rc = start_thread(&t->fault_thr, xmem__tier_fault_main, t,
			  "xmem-tierfault");
	if (rc < 0)
		goto fail;
	t->have_fault_thr = 1;
	if (!(t->cfg.flags & XMEM_F_TIER_NO_POLICY)) {
		rc = start_thread(&t->policy_thr, xmem__tier_policy_main, t,
				  "xmem-tierpolicy");
		if (rc < 0)
			goto fail;
		t->have_policy_thr = 1;
	}
	group_join(t->group, t);
	xmem__tier_registry_add(t);
	*tp = t;
	return 0;
fail:
	xmem_tier_delete(&t);
	return rc;
}

/* Unmaps base, skipping units the program unmapped itself. */
static void unmap_base(struct xmem_tier *t)
{
	uint64_t i = 0;

	while (i < t->nunits) {
		uint64_t j = i;

		while (j < t->nunits &&
		       (atomic_load(&t->u[j].st) & U_WHERE) != U_GONE)
			j++;
		if (j > i)
			xmem__tier_munmap(t->base + i * t->unit,
					  (j - i) * t->unit);
		i = j + 1;
	}
}

/* Stops the engine threads, then frees the memory and the tier. */
XMEM_EXPORT void xmem_tier_delete(struct xmem_tier **tp)
{
	struct xmem_tier *t = *tp;

	if (!t)
		return;
	*tp = NULL;
	xmem__tier_registry_del(t);
	atomic_store(&t->stop, 1);
	if (t->stopfd >= 0) {
		uint64_t one = 1;
		if (write(t->stopfd, &one, sizeof(one)) < 0) {
			/* the threads also poll t->stop */
		}
	}
	if (t->have_fault_thr)
		pthread_join(t->fault_thr, NULL);
	if (t->have_policy_thr)
		pthread_join(t->policy_thr, NULL);
	if (t->group) {
		group_leave(t->group, t);
		if (t->u && !t->detached)
			atomic_fetch_sub(
				&t->group->used,
				(atomic_load(&t->dram_units) + t->nwarm) *
					t->unit);
		if (t->group->private_group)
			xmem_tier_group_delete(&t->group);
	}
	if (t->pub)
		xmem__tier_pub_close(t);
	if (t->base && t->u)
		unmap_base(t);
	if (t->dram)
		xmem__tier_munmap(t->dram, t->size);
	if (t->dev)
		xmem__tier_munmap(t->dev, t->size);
	if (t->uffd >= 0)
		close(t->uffd);
	if (t->memfd >= 0)
		close(t->memfd);
	if (t->devfd >= 0)
		close(t->devfd);
	if (t->stopfd >= 0)
		close(t->stopfd);
	if (t->pagemap_fd >= 0)
		close(t->pagemap_fd);
	if (t->pidfd >= 0)
		close(t->pidfd);
	free(t->u);
	free(t->warm);
	free(t->q);
	free(t->cold);
	free(t);
}

/* Accessors. */
XMEM_EXPORT void *xmem_tier_addr(const struct xmem_tier *t)
{
	return t->base;
}

XMEM_EXPORT uint64_t xmem_tier_size(const struct xmem_tier *t)
{
	return t->size;
}

XMEM_EXPORT uint64_t xmem_tier_unit(const struct xmem_tier *t)
{
	return t->unit;
}

/* Converts [addr, addr+len) to a unit interval [*a, *b). */
static int unit_span(struct xmem_tier *t, const void *addr, size_t len,
		     uint64_t *a, uint64_t *b)
{
	uintptr_t p = (uintptr_t)addr, base = (uintptr_t)t->base;

	if (p < base || !range_fits(p - base, len, t->size) || !len)
		return xmem__err(-EINVAL,
				 "tier: [%p, +%zu) is not inside the tier "
				 "[%p, +%llu)",
				 addr, len, t->base,
				 (unsigned long long)t->size);
	*a = (p - base) / t->unit;
	*b = (p - base + len + t->unit - 1) / t->unit;
	return 0;
}

/* Moves the units of a range now, waiting for units being moved. */
XMEM_EXPORT int xmem_tier_migrate(struct xmem_tier *t, void *addr, size_t len,
				  enum xmem_tier_where to, uint64_t *moved)
{
	uint64_t a, b, n = 0;
	int rc;

	if (moved)
		*moved = 0;
	if (to != XMEM_TIER_DRAM && to != XMEM_TIER_DEVICE)
		return xmem__err(-EINVAL, "tier: migrate to '%s'",
				 xmem_tier_where_name(to));
	rc = unit_span(t, addr, len, &a, &b);
	for (uint64_t i = a; rc == 0 && i < b; i++) {
		rc = xmem__tier_move(t, i, to, 1);
		if (rc == -ENOENT)
			rc = 0;
		else if (rc > 0)
			n++, rc = 0;
	}
	if (moved)
		*moved = n;
	if (rc == -ENOSPC)
		return xmem__err(rc, "tier: DRAM budget of %llu bytes is full",
				 (unsigned long long)t->group->budget);
	return rc;
}

/* Records advice per unit; pins move the unit at once. */
XMEM_EXPORT int xmem_tier_advise(struct xmem_tier *t, void *addr, size_t len,
				 enum xmem_tier_advice advice)
{
	uint64_t a, b;
	int rc;

	if ((unsigned)advice > XMEM_TIER_ADV_PIN_DEVICE)
		return xmem__err(-EINVAL, "tier: unknown advice %d", advice);
	rc = unit_span(t, addr, len, &a, &b);
	for (uint64_t i = a; rc == 0 && i < b; i++) {
		uint32_t w = atomic_load(&t->u[i].st) & U_WHERE;

		atomic_store(&t->u[i].advice, (uint8_t)advice);
		if (w == XMEM_TIER_NONE)
			continue; /* the first touch follows the advice */
		if (advice == XMEM_TIER_ADV_PIN_DRAM)
			rc = xmem__tier_move(t, i, XMEM_TIER_DRAM, 1);
		else if (advice == XMEM_TIER_ADV_PIN_DEVICE)
			rc = xmem__tier_move(t, i, XMEM_TIER_DEVICE, 1);
		if (rc == -ENOENT || rc > 0)
			rc = 0;
	}
	if (rc == -ENOSPC)
		return xmem__err(rc,
				 "tier: pinning to DRAM exceeds the budget "
				 "of %llu bytes",
				 (unsigned long long)t->group->budget);
	return rc;
}

/* Where the unit holding addr lives. */
XMEM_EXPORT int xmem_tier_where(struct xmem_tier *t, const void *addr,
				enum xmem_tier_where *where)
{
	uint64_t a = 0, b;
	int rc = unit_span(t, addr, 1, &a, &b);
	uint32_t w;

	if (rc < 0)
		return rc;
	w = atomic_load(&t->u[a].st) & U_WHERE;
	*where = w == U_GONE ? XMEM_TIER_NONE : (enum xmem_tier_where)w;
	return 0;
}

/* The heat (log2 accesses/s estimate) of the unit holding addr. */
XMEM_EXPORT int xmem_tier_heat(struct xmem_tier *t, const void *addr,
			       double *heat)
{
	uint64_t a = 0, b;
	int rc = unit_span(t, addr, 1, &a, &b);

	if (rc == 0)
		*heat = atomic_load(&t->u[a].heat);
	return rc;
}

/* A snapshot of the counters; O(1). */
XMEM_EXPORT int xmem_tier_stats(struct xmem_tier *t, struct xmem_tier_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = t->size;
	st->unit = t->unit;
	st->nunits = t->nunits;
	st->dram_budget = t->group->budget;
	st->dram_used = atomic_load(&t->group->used);
	st->dram_peak = atomic_load(&t->group->peak);
	st->budget_denied = atomic_load(&t->group->denied);
	st->dram_bytes = atomic_load(&t->dram_units) * t->unit;
	if (t->memfd >= 0) {
		struct stat sb;
		if (fstat(t->memfd, &sb) == 0)
			st->dram_resident = (uint64_t)sb.st_blocks * 512;
	}
	st->device_bytes = atomic_load(&t->dev_units) * t->unit;
	st->first_touch = atomic_load(&t->c.first_touch);
	st->promotions = atomic_load(&t->c.promotions);
	st->demotions = atomic_load(&t->c.demotions);
	st->migrated_bytes = atomic_load(&t->c.migrated_bytes);
	st->hint_faults = atomic_load(&t->c.hint_faults);
	st->samples = atomic_load(&t->c.samples);
	st->engine_cpu_ns = atomic_load(&t->c.engine_cpu_ns);
	st->uptime_ns = xmem__tier_now_ns() - t->t0_ns;
	return 0;
}

/* Creates an empty budget group. */
XMEM_EXPORT int xmem_tier_group_new(uint64_t dram_budget,
				    struct xmem_tier_group **gp)
{
	struct xmem_tier_group *g = calloc(1, sizeof(*g));

	*gp = NULL;
	if (!g)
		return -ENOMEM;
	g->budget = dram_budget;
	pthread_mutex_init(&g->lock, NULL);
	*gp = g;
	return 0;
}

/* Frees a group that no tier uses any more. */
XMEM_EXPORT int xmem_tier_group_delete(struct xmem_tier_group **gp)
{
	struct xmem_tier_group *g = *gp;

	if (!g)
		return 0;
	if (g->members)
		return xmem__err(-EBUSY, "tier group: %d tiers still use it",
				 g->ntiers);
	pthread_mutex_destroy(&g->lock);
	free(g);
	*gp = NULL;
	return 0;
}

/* Bytes of DRAM the group's tiers hold now. */
XMEM_EXPORT uint64_t xmem_tier_group_used(const struct xmem_tier_group *g)
{
	return atomic_load(&((struct xmem_tier_group *)g)->used);
}

/* The group's DRAM budget. */
XMEM_EXPORT uint64_t xmem_tier_group_budget(const struct xmem_tier_group *g)
{
	return g->budget;
}

/* Adds t to its group's member list. */
static void group_join(struct xmem_tier_group *g, struct xmem_tier *t)
{
	pthread_mutex_lock(&g->lock);
	t->next_in_group = g->members;
	g->members = t;
	g->ntiers++;
	pthread_mutex_unlock(&g->lock);
}

/* Removes t from its group's member list (if it is there). */
static void group_leave(struct xmem_tier_group *g, struct xmem_tier *t)
{
	pthread_mutex_lock(&g->lock);
	for (struct xmem_tier **p = &g->members; *p; p = &(*p)->next_in_group)
		if (*p == t) {
			*p = t->next_in_group;
			g->ntiers--;
			break;
		}
	pthread_mutex_unlock(&g->lock);
}
