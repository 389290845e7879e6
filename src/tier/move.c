/* SPDX-License-Identifier: MIT */
/*
 * move.c - placing and migrating units, and the DRAM budget.
 *
 * The protocol that keeps every write is described in tier_internal.h:
 * placeholder, copy through the aliases, map the destination, release
 * the source, publish, wake. All of it runs with the unit claimed (BUSY)
 * so that exactly one actor changes a unit's mapping at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xmem/persist.h>

#include "core/error.h"
#include "tier_internal.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

/* Reserves one unit of the group's DRAM budget; never goes above it. */
int xmem__tier_budget_get(struct xmem_tier *t)
{
	struct xmem_tier_group *g = t->group;
	uint64_t used = atomic_load(&g->used), peak;

	do {
		if (used + t->unit > g->budget) {
			atomic_fetch_add(&g->denied, 1);
			return -ENOSPC;
		}
	} while (
		!atomic_compare_exchange_weak(&g->used, &used, used + t->unit));
	used += t->unit;
	peak = atomic_load(&g->peak);
	while (used > peak &&
	       !atomic_compare_exchange_weak(&g->peak, &peak, used))
		;
	return 0;
}

/* Returns one unit of budget (after its memory was freed). */
void xmem__tier_budget_put(struct xmem_tier *t)
{
	atomic_fetch_sub(&t->group->used, t->unit);
}

/*
 * Claims unit i (sets BUSY). -EBUSY if another actor holds it, -ENOENT if
 * the program unmapped it. *old receives the state before the claim.
 */
int xmem__tier_claim(struct xmem_tier *t, uint64_t i, uint32_t *old)
{
	uint32_t s = atomic_load(&t->u[i].st);

	for (;;) {
		if (s & U_BUSY)
			return -EBUSY;
		if ((s & U_WHERE) == U_GONE)
			return -ENOENT;
		if (atomic_compare_exchange_weak(&t->u[i].st, &s, s | U_BUSY))
			break;
	}
	*old = s;
	return 0;
}

/* Ends a claim with state st and wakes threads waiting for the unit. */
void xmem__tier_publish(struct xmem_tier *t, uint64_t i, uint32_t st)
{
	atomic_store(&t->u[i].st, st);
	pthread_mutex_lock(&t->wait_lock);
	pthread_cond_broadcast(&t->wait_cond);
	pthread_mutex_unlock(&t->wait_lock);
}

/*
 * Fences [off, off+len) of base: registers it with userfaultfd for MISSING
 * and MINOR faults (the VMA keeps its pages), then zaps its page-table
 * entries. The kernel shoots down every CPU's TLB before madvise returns;
 * from then on every access to the range, read or write, user or kernel
 * mode, sleeps in the kernel until the range is woken: a page that is in
 * the page cache takes a MINOR fault, a hole a MISSING fault, and neither
 * can be resolved without us. Accesses between the two calls are ordinary
 * accesses to the data where it is, so there is no window.
 */
int xmem__tier_block(struct xmem_tier *t, uint64_t off, uint64_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)t->base + off, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			UFFDIO_REGISTER_MODE_MINOR,
	};

	if (ioctl(t->uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	if (xmem__tier_madvise(t->base + off, len, MADV_DONTNEED) < 0) {
		int e = errno;
		xmem__tier_unblock(t, off, len);
		return -e;
	}
	return 0;
}

/* Ends a fence: unregisters the range (its pages were never moved) and
 * wakes the sleepers, who fault the pages back in. */
int xmem__tier_unblock(struct xmem_tier *t, uint64_t off, uint64_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)t->base + off,
				  .len = len };
	int rc = ioctl(t->uffd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;

	xmem__tier_wake(t, off, len);
	return rc;
}

/* Gets a DRAM slot: a warm one (pages held, already in the budget), or a
 * new one, reserving budget. *fresh tells whether it holds no pages. */
static int slot_get(struct xmem_tier *t, uint32_t *slot, int *fresh)
{
	pthread_mutex_lock(&t->slot_lock);
	if (t->nwarm) {
		*slot = t->warm[--t->nwarm];
		pthread_mutex_unlock(&t->slot_lock);
		*fresh = 0;
		return 0;
	}
	pthread_mutex_unlock(&t->slot_lock);
	if (xmem__tier_budget_get(t) < 0)
		return -ENOSPC;
	pthread_mutex_lock(&t->slot_lock);
	*slot = t->ncold ? t->cold[--t->ncold] : t->next_slot++;
	pthread_mutex_unlock(&t->slot_lock);
	*fresh = 1;
	return 0;
}

/* Frees a DRAM slot: kept warm when the tier is alone in its group, else
 * its pages are freed before its budget is returned. */
static void slot_put(struct xmem_tier *t, uint32_t slot, int keep)
{
	if (keep && atomic_load(&t->group->ntiers) <= 1) {
		pthread_mutex_lock(&t->slot_lock);
		t->warm[t->nwarm++] = slot;
		pthread_mutex_unlock(&t->slot_lock);
		return;
	}
	/* The pages must be gone before the budget is returned. Punching
	 * also empties the slot's alias page tables. */
	atomic_fetch_and(&t->u[slot].alias, (uint16_t) ~(A_DRAM | A_DRAM_MEM));
	fallocate(t->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)slot * (off_t)t->unit, (off_t)t->unit);
	xmem__tier_budget_put(t);
	pthread_mutex_lock(&t->slot_lock);
	t->cold[t->ncold++] = slot;
	pthread_mutex_unlock(&t->slot_lock);
}

/* Maps [off, off+len) of base from the unit's backing `where`. */
int xmem__tier_map_unit(struct xmem_tier *t, uint64_t i, unsigned where,
			uint64_t off, uint64_t len, int populate)
{
	int fd = where == XMEM_TIER_DRAM ? t->memfd : t->devfd;
	uint64_t foff =
		where == XMEM_TIER_DRAM
			? (uint64_t)t->u[i].slot * t->unit + off % t->unit
			: t->devoff + off;
	int flags = MAP_SHARED | MAP_FIXED | (populate ? MAP_POPULATE : 0);
	void *p;

	p = xmem__tier_mmap(t->base + off, len, PROT_READ | PROT_WRITE, flags,
			    fd, (off_t)foff);
	return p == MAP_FAILED ? -errno : 0;
}

/* Wakes every thread sleeping on a fault in [off, off+len) of base. */
void xmem__tier_wake(struct xmem_tier *t, uint64_t off, uint64_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)t->base + off,
				  .len = len };

	ioctl(t->uffd, UFFDIO_WAKE, &r);
}

/*
 * Frees what unit i held on `where` (the unit is claimed). A DRAM slot
 * goes back to the pool; device memory is freed only with free_device
 * (the program unmapped the unit) and only if it is our own stand-in.
 */
void xmem__tier_release(struct xmem_tier *t, uint64_t i, unsigned where,
			int free_device)
{
	if (where == XMEM_TIER_DRAM) {
		atomic_fetch_sub(&t->dram_units, 1);
		slot_put(t, t->u[i].slot, !free_device);
	} else if (where == XMEM_TIER_DEVICE) {
		if (free_device && t->own_devfd) {
			atomic_fetch_and(&t->u[i].alias,
					 (uint16_t) ~(A_DEV | A_DEV_MEM));
			fallocate(t->devfd,
				  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(t->devoff + i * t->unit),
				  (off_t)t->unit);
		}
		atomic_fetch_sub(&t->dev_units, 1);
	}
}

/* Chooses where a first touch of unit i goes: advice, policy, budget. */
static unsigned place_target(struct xmem_tier *t, uint64_t i, uint32_t want)
{
	uint8_t adv = atomic_load(&t->u[i].advice);

	if (want)
		return want;
	if (adv == XMEM_TIER_ADV_PIN_DEVICE || adv == XMEM_TIER_ADV_COLD)
		return XMEM_TIER_DEVICE;
	if (adv == XMEM_TIER_ADV_PIN_DRAM || adv == XMEM_TIER_ADV_HOT)
		return XMEM_TIER_DRAM;
	if (t->cfg.policy == XMEM_TIER_POLICY_DEVICE_FIRST)
		return XMEM_TIER_DEVICE;
	return XMEM_TIER_DRAM;
}

/*
 * Places the claimed, never-touched unit i (first touch or explicit): in
 * DRAM if wanted and the budget allows, else on the device. Publishes,
 * then wakes the unit's sleepers. -ENOSPC only when DRAM was demanded.
 */
int xmem__tier_place(struct xmem_tier *t, uint64_t i, uint32_t want)
{
	unsigned to = place_target(t, i, want);
	uint64_t off = i * t->unit;
	int rc, fresh = 1;

	if (to == XMEM_TIER_DRAM &&
	    (t->numa ? xmem__tier_budget_get(t)
		     : slot_get(t, &t->u[i].slot, &fresh)) < 0) {
		if (want == XMEM_TIER_DRAM) {
			xmem__tier_publish(t, i, XMEM_TIER_NONE);
			return -ENOSPC;
		}
		to = XMEM_TIER_DEVICE;
	}
	if (!fresh) /* a warm slot holds an old unit's bytes */
		memset(t->dram + (uint64_t)t->u[i].slot * t->unit, 0, t->unit);
	rc = t->numa ? xmem__tier_numa_move(t, i, to)
		     : xmem__tier_map_unit(t, i, to, off, t->unit, 0);
	if (rc < 0) {
		if (to == XMEM_TIER_DRAM && t->numa)
			xmem__tier_budget_put(t);
		else if (to == XMEM_TIER_DRAM)
			slot_put(t, t->u[i].slot, 1);
		xmem__tier_publish(t, i, XMEM_TIER_NONE);
		xmem__tier_wake(t, off, t->unit);
		return rc;
	}
	atomic_fetch_add(to == XMEM_TIER_DRAM ? &t->dram_units : &t->dev_units,
			 1);
	atomic_fetch_add(&t->c.first_touch, 1);
	t->u[i].moved_ns = xmem__tier_now_ns();
	/* published before the sleepers wake: the thread whose touch placed
	 * the unit sees where it went (woken first, it could ask while the
	 * unit still read as not placed); a wake after another thread
	 * claimed the unit meanwhile only makes sleepers touch again */
	xmem__tier_publish(t, i, to);
	xmem__tier_wake(t, off, t->unit);
	return 0;
}

/* Waits until unit i is not BUSY (or the tier stops). */
static void wait_unbusy(struct xmem_tier *t, uint64_t i)
{
	pthread_mutex_lock(&t->wait_lock);
	while ((atomic_load(&t->u[i].st) & U_BUSY) && !atomic_load(&t->stop))
		pthread_cond_wait(&t->wait_cond, &t->wait_lock);
	pthread_mutex_unlock(&t->wait_lock);
}

/*
 * Fills the page tables of one alias of a unit, once: a single madvise
 * costs about 0.2 us per 4 KiB page even when they are filled already
 * (the kernel walks them page by page), as much as the copy itself, while
 * filled entries stay until we punch the memory (slot_put, release). A
 * first fill of never-used memory also allocates and zeroes it.
 */
static void alias_fill(struct xmem_tier *t, _Atomic uint16_t *a, uint16_t bit,
		       char *p, int advice)
{
	if (atomic_load_explicit(a, memory_order_relaxed) & bit)
		return;
	/* populating allocates every missing page too: bit << 2 is the
	 * matching A_*_MEM bit */
	if (xmem__tier_madvise(p, t->unit, advice) == 0)
		atomic_fetch_or_explicit(a, (uint16_t)(bit | bit << 2),
					 memory_order_relaxed);
}

/*
 * Writes a unit into memory that may have no pages yet, with pwrite(2):
 * the kernel allocates each missing page and copies into it, without
 * zeroing it first (populating the alias would allocate and zero it, then
 * the copy would write it again: about 1.7x the time). 0 or -errno.
 */
static int copy_alloc(struct xmem_tier *t, int fd, uint64_t foff,
		      const char *src)
{
	uint64_t done = 0;

	while (done < t->unit) {
		ssize_t r = pwrite(fd, src + done, t->unit - done,
				   (off_t)(foff + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (uint64_t)r;
	}
	return 0;
}

/*
 * Copies claimed unit i from one alias to the other (the source is
 * stable); the DRAM side is the unit's slot. Into allocated memory, with
 * non-temporal stores through the aliases: the destination is not read
 * soon by this CPU, so they skip reading it into the cache first (both
 * tiers are volatile memory: no flush). Into memory used for the first
 * time, with copy_alloc().
 */
static void copy_unit(struct xmem_tier *t, uint64_t i, unsigned from)
{
	uint32_t slot = t->u[i].slot;
	char *d = t->dram + (uint64_t)slot * t->unit;
	char *v = t->dev + i * t->unit;
	int to_dev = from == XMEM_TIER_DRAM;
	char *src = to_dev ? d : v, *dst = to_dev ? v : d;
	_Atomic uint16_t *sa = to_dev ? &t->u[slot].alias : &t->u[i].alias;
	_Atomic uint16_t *da = to_dev ? &t->u[i].alias : &t->u[slot].alias;
	uint16_t dbit = to_dev ? A_DEV : A_DRAM;
	uint16_t dmem = to_dev ? A_DEV_MEM : A_DRAM_MEM;

	alias_fill(t, sa, to_dev ? A_DRAM : A_DEV, src, MADV_POPULATE_READ);
	if (!(atomic_load_explicit(da, memory_order_relaxed) & dmem)) {
		uint64_t foff = to_dev ? t->devoff + i * t->unit
				       : (uint64_t)slot * t->unit;

		if (copy_alloc(t, to_dev ? t->devfd : t->memfd, foff, src) ==
		    0) {
			atomic_fetch_or_explicit(da, dmem,
						 memory_order_relaxed);
			return;
		}
	}
	alias_fill(t, da, dbit, dst, MADV_POPULATE_WRITE);
	xmem_memcpy(dst, src, t->unit,
		    XMEM_F_MEM_NONTEMPORAL | XMEM_F_MEM_NOFLUSH);
	/* Non-temporal stores are weakly ordered: they are visible to
	 * every CPU before the remap lets other threads read the copy. */
	atomic_thread_fence(memory_order_seq_cst);
}

/* The remapping part of a move of claimed unit i; see tier_internal.h. */
static int remap_move(struct xmem_tier *t, uint64_t i, uint32_t old,
		      unsigned to)
{
	unsigned from = old & U_WHERE;
	uint64_t off = i * t->unit;
	int rc;

	rc = xmem__tier_block(t, off, t->unit);
	if (rc < 0)
		return xmem__err(rc, "tier: fencing unit %llu: %s",
				 (unsigned long long)i, strerror(-rc));
	if (old & U_SAMPLED)
		atomic_fetch_sub(&t->armed, 1);
	copy_unit(t, i, from);
	rc = xmem__tier_map_unit(t, i, to, off, t->unit, 0);
	if (rc < 0) {
		/* Keep the data where it is: the source is intact. */
		xmem__tier_unblock(t, off, t->unit);
		return xmem__err(rc, "tier: mapping unit %llu: %s",
				 (unsigned long long)i, strerror(-rc));
	}
	/* the sleepers wake once the move is published (move_locked) */
	return 0;
}

/* Updates the ping-pong record of unit i after a move. */
static void note_move(struct xmem_tier *t, uint64_t i)
{
	struct tier_unit *u = &t->u[i];
	uint64_t now = xmem__tier_now_ns();
	uint64_t recent = 10ull * t->cfg.min_residency_ms * 1000000ull;

	if (now - u->moved_ns < recent)
		u->moves = u->moves < 255 ? u->moves + 1 : 255;
	else
		u->moves = 0;
	u->moved_ns = now;
}

static int move_locked(struct xmem_tier *t, uint64_t i, unsigned to, int wait);

/* The remapping backend's move of claimed unit i, with its DRAM slot. */
static int slot_move(struct xmem_tier *t, uint64_t i, uint32_t old, unsigned to)
{
	unsigned from = old & U_WHERE;
	uint32_t src_slot = t->u[i].slot;
	int rc, fresh;

	if (to == XMEM_TIER_DRAM && slot_get(t, &t->u[i].slot, &fresh) < 0)
		return -ENOSPC;
	rc = remap_move(t, i, old, to);
	if (rc < 0) {
		if (to == XMEM_TIER_DRAM)
			slot_put(t, t->u[i].slot, 1);
		t->u[i].slot = src_slot;
		return rc;
	}
	if (from == XMEM_TIER_DRAM) {
		atomic_fetch_sub(&t->dram_units, 1);
		slot_put(t, src_slot, 1);
	} else {
		atomic_fetch_sub(&t->dev_units, 1);
	}
	return 0;
}

/* The NUMA backend's move of claimed unit i: the budget, then mbind. */
static int numa_move(struct xmem_tier *t, uint64_t i, unsigned from,
		     unsigned to)
{
	int rc;

	if (to == XMEM_TIER_DRAM && xmem__tier_budget_get(t) < 0)
		return -ENOSPC;
	rc = xmem__tier_numa_move(t, i, to);
	if (rc < 0) {
		if (to == XMEM_TIER_DRAM)
			xmem__tier_budget_put(t);
		return rc;
	}
	if (from == XMEM_TIER_DRAM) {
		atomic_fetch_sub(&t->dram_units, 1);
		xmem__tier_budget_put(t);
	} else {
		atomic_fetch_sub(&t->dev_units, 1);
	}
	return 0;
}

/*
 * Moves unit i to `to`. With wait, waits for a BUSY unit; without, returns
 * -EBUSY. Returns 1 if the unit moved, 0 if it was already there.
 */
int xmem__tier_move(struct xmem_tier *t, uint64_t i, unsigned to, int wait)
{
	int rc;

	/* Fork waits for moves in flight (registry.c). */
	pthread_rwlock_rdlock(&t->fork_lock);
	rc = move_locked(t, i, to, wait);
	pthread_rwlock_unlock(&t->fork_lock);
	return rc;
}

/* xmem__tier_move() under the fork lock. */
static int move_locked(struct xmem_tier *t, uint64_t i, unsigned to, int wait)
{
	uint32_t old;
	unsigned from;
	int rc;

	while ((rc = xmem__tier_claim(t, i, &old)) == -EBUSY && wait)
		wait_unbusy(t, i);
	if (rc < 0)
		return rc;
	from = old & U_WHERE;
	if (from == XMEM_TIER_NONE) {
		rc = xmem__tier_place(t, i, to);
		return rc < 0 ? rc : 1;
	}
	if (from == to) {
		xmem__tier_publish(t, i, old);
		return 0;
	}
	if (t->numa)
		rc = numa_move(t, i, from, to);
	else
		rc = slot_move(t, i, old, to);
	if (rc < 0) {
		xmem__tier_publish(t, i, old & ~U_SAMPLED);
		return rc;
	}
	atomic_fetch_add(to == XMEM_TIER_DRAM ? &t->dram_units : &t->dev_units,
			 1);
	atomic_fetch_add(
		to == XMEM_TIER_DRAM ? &t->c.promotions : &t->c.demotions, 1);
	atomic_fetch_add(&t->c.migrated_bytes, t->unit);
	note_move(t, i);
	/* published before the unit's sleepers wake: a woken thread sees
	 * where the unit went */
	xmem__tier_publish(t, i, to);
	if (!t->numa)
		xmem__tier_wake(t, i * t->unit, t->unit);
	return 1;
}
