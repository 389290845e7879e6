/* SPDX-License-Identifier: MIT */
/*
 * tier_internal.h - the tiering engine's objects (internal).
 *
 * Mechanism
 * ---------
 * The tier owns three virtual windows of `size` bytes:
 *   base   what the program uses;
 *   dram   the engine's alias of a memfd (the DRAM); a unit in DRAM
 *          occupies one slot of it (see slot_lock below);
 *   dev    the engine's alias of the device memory, unit i at
 *          device_offset + i*unit.
 * Each unit of `base` is, at any time, exactly one of:
 *   - untouched: part of an anonymous reservation registered with
 *     userfaultfd in MISSING mode; the first access, read or write, from
 *     user or kernel mode, sleeps in the kernel and queues a message to the
 *     engine's fault thread, which places the unit (MAP_FIXED|MAP_SHARED
 *     over the reservation), publishes where, and wakes it;
 *   - MAP_SHARED from the memfd (at its DRAM slot) or from the device (at
 *     its own offset).
 * Device neighbours merge into one VMA, DRAM neighbours when their slots
 * are consecutive. The VMA count of a tier is at most nunits + 2 per move
 * in flight + 1 (fencing a unit may split its VMA in three for the
 * duration of the copy); sampling splits nothing. xmem_tier_new() refuses
 * a tier whose bound does not fit in vm.max_map_count next to the
 * process's current VMAs, and tells to use a larger unit.
 *
 * Moving a unit (move.c) never loses a write:
 *   1. claim the unit (state CAS to BUSY; other movers back off);
 *   2. fence it: register its range with userfaultfd for MISSING and MINOR
 *      faults (no mapping changes, so nobody can slip past), then zap its
 *      page-table entries (madvise(MADV_DONTNEED) on a shared mapping
 *      keeps the data). The kernel shoots down every CPU's TLB before
 *      madvise returns: afterwards no store can reach the source through
 *      base, stores before it are in the source pages, and every access
 *      to the unit, read or write, sleeps in the kernel (a page in the
 *      page cache takes a MINOR fault, a hole a MISSING fault) instead of
 *      spinning;
 *   3. copy source -> destination through the engine's aliases (the source
 *      is stable now), with non-temporal stores and a fence after them;
 *      each alias's page tables are filled once (MADV_POPULATE_*) and
 *      then kept, since refilling costs as much as the copy; the first
 *      copy into memory never used before is a pwrite(2) into its file,
 *      which allocates the pages without zeroing them first;
 *   4. MAP_FIXED the destination over the unit (a fresh VMA, unregistered:
 *      accesses from now on go to the copy);
 *   5. release the source slot, publish the new state, then UFFDIO_WAKE:
 *      sleepers retry, find the new mapping, and a woken thread that asks
 *      where the unit is sees where it went.
 * Cost to a thread touching the moving unit: it sleeps from the moment
 * the zap of step 2 reaches its page until the wake of step 5. Measured
 * for a 2 MiB unit here: the zap ~0.06-0.12 ms if all 512 pages were
 * mapped (~0.2 us each; nothing if none were), the copy ~0.1 ms, the
 * remap ~5 us; the first move into memory never used before also
 * allocates it (~1 ms here, where fresh memory is slow to hand out).
 * Readers wait too, for the same span: userfaultfd
 * write-protect would let them run during the copy, but it needs a second
 * mechanism per backing; this one is the same for DRAM and device. Threads
 * touching other units never wait: there is no lock on the access path,
 * and the fault thread never blocks on a migration (faults on a BUSY unit
 * are left to its mover, which always wakes after publishing). The fence
 * needs userfaultfd MINOR faults, so the device memory must be shmem or
 * hugetlbfs; device DAX is served by the NUMA-node backend (numa.c).
 *
 * Hotness: sampled hinting faults (sample.c): the page-table entries of
 * probe pages of a unit are zapped, the program's next accesses re-fault
 * them (the kernel resolves those, nobody waits for the engine), and at
 * the end of the window pagemap tells which probes were touched.
 *
 * The engine's CPU (what xmem_tier_stats() reports as engine_cpu_ns) is
 * the thread CPU time of its two threads: the fault thread (first
 * touches, faults on moving units) and the policy thread (sampling,
 * decisions and every move: fence, copy, remap). The program's own page
 * faults are not in it: hinting faults, refaults of a unit's pages after
 * a move, and the first use of pages it touches, which its threads take
 * in the kernel as they would without the engine (bench_tier prints the
 * cost of a hinting fault). The policy keeps the engine's CPU at
 * cfg.cpu_percent of one core on average (policy.c).
 *
 * The DRAM budget is a counter of the group, reserved (compare-and-swap,
 * never above the budget) before a DRAM slot without pages is used, and
 * returned only after a slot's pages are freed, so the memory held in DRAM
 * never exceeds the budget at any instant.
 */
#ifndef XMEM_TIER_INTERNAL_H
#define XMEM_TIER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <xmem/tier.h>

/* Unit state: where (low 2 bits) plus flags. */
#define U_WHERE 0x3u
#define U_GONE 0x3u    /* unmapped by the program (preload munmap) */
#define U_BUSY 0x4u    /* claimed by a mover / sampler / fault handler */
#define U_SAMPLED 0x8u /* a hinting placeholder is armed */

/* tier_unit.alias: the engine's alias page-table entries are filled (a
 * hint: the copy faults correctly without it, only slower). */
#define A_DEV 0x1u  /* dev alias of this unit */
#define A_DRAM 0x2u /* dram alias of the DRAM slot with this index */
/* ... and the memory behind them is allocated (every page exists): a
 * copy into memory without these bits writes with pwrite(2), which
 * allocates the pages without zeroing them first. */
#define A_DEV_MEM 0x4u	/* A_DEV << 2 */
#define A_DRAM_MEM 0x8u /* A_DRAM << 2 */

struct tier_unit {
	_Atomic uint32_t st;
	_Atomic uint8_t advice;
	_Atomic uint8_t moves;	     /* recent moves (ping-pong damping) */
	_Atomic uint16_t alias;	     /* A_* bits: alias page tables filled */
	uint32_t slot;		     /* DRAM slot (memfd offset / unit) when in
				      * DRAM; read and written under the claim */
	_Atomic uint32_t sample_off; /* offset of the armed sample */
	uint32_t sample_mask; /* its blocks that are judged; under claim */
	uint8_t sample_page;  /* the probed page of each block; under claim */
	_Atomic uint64_t sample_t0; /* ns when the sample was armed */
	_Atomic uint64_t moved_ns;  /* last move, ns */
	_Atomic float heat;	    /* log2 of the estimated accesses/s */
	_Atomic uint8_t known;	    /* heat was measured (sampled once) */
	uint32_t filled;	    /* blocks (of 64 KiB, sample.c) known to
				     * hold data; under the claim */
	float ev, ex, ew;	    /* decayed blocks touched, blocks sampled,
				     * block-seconds of exposure; under the claim */
};

/* An armed sample, in the policy thread's queue. */
struct tier_sample {
	uint32_t unit;
	uint64_t t0, win; /* ns */
};

struct xmem_tier_group {
	uint64_t budget;
	_Atomic uint64_t used;
	_Atomic uint64_t peak;
	_Atomic uint64_t denied;
	pthread_mutex_t lock; /* members list */
	struct xmem_tier *members;
	_Atomic int ntiers;
	int private_group; /* created for one tier; freed with it */
};

struct tier_counters {
	_Atomic uint64_t first_touch, promotions, demotions, migrated_bytes;
	_Atomic uint64_t hint_faults, samples, engine_cpu_ns;
	_Atomic uint64_t fault_cpu_ns, policy_cpu_ns, sample_cpu_ns;
	_Atomic uint64_t move_cpu_ns;
};

struct tier_pub; /* shared-memory statistics, pub.c */

struct xmem_tier {
	struct xmem_tier_config cfg;
	uint64_t size, unit, nunits;
	char *base, *dram, *dev;
	int memfd;     /* DRAM */
	int devfd;     /* device memory */
	int own_devfd; /* devfd is ours (private memfd) */
	uint64_t devoff;
	int uffd;
	int stopfd;	/* eventfd: stop the engine threads */
	int pagemap_fd; /* /proc/self/pagemap, for samples */
	int pidfd;	/* this process, for batched zaps (process_madvise) */
	int numa;	/* NUMA-node backend */
	struct tier_unit *u;
	struct xmem_tier_group *group;
	struct xmem_tier *next_in_group;
	pthread_t fault_thr, policy_thr;
	int have_fault_thr, have_policy_thr;
	_Atomic int stop;
	pthread_rwlock_t fork_lock; /* read: any mapping change; write: fork */
	pthread_mutex_t wait_lock;  /* waiters for a BUSY unit */
	pthread_cond_t wait_cond;
	/* DRAM slots: a unit in DRAM lives at memfd offset slot*unit. A
	 * demoted unit's slot stays "warm" (its pages held and counted in
	 * the budget, so the next promotion allocates and zeroes nothing)
	 * while the tier is alone in its group; in a shared group it is
	 * punched and its budget returned at once. */
	pthread_mutex_t slot_lock;
	uint32_t *warm, nwarm; /* slots with pages, free */
	uint32_t *cold, ncold; /* punched slots, free */
	uint32_t next_slot;    /* slots never used: [next_slot, nunits) */
	struct tier_counters c;
	_Atomic uint64_t dram_units, dev_units;
	uint64_t t0_ns;
	uint64_t rng;
	uint32_t cursor;       /* sampling cursor */
	struct tier_sample *q; /* armed samples, max_samples of them */
	uint64_t qhead, qtail;
	_Atomic uint64_t win_ns;	/* sample window, adapted (sample.c) */
	uint64_t adapt_k, adapt_n;	/* blocks touched / sampled in DRAM */
	_Atomic int armed;		/* samples armed now */
	float dram_cold, dram_cold_avg; /* fraction of DRAM samples with
					 * no probe touched: recent, long
					 * run (policy thread only) */
	struct tier_pub *pub;
	uint64_t pub_ns; /* last publication */
	int detached;	 /* after fork in a child: plain memory, no engine */
};

/* os.c: raw system calls (not interposed by the preload library). */
void *xmem__tier_mmap(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off);
int xmem__tier_munmap(void *addr, size_t len);
int xmem__tier_madvise(void *addr, size_t len, int advice);
uint64_t xmem__tier_now_ns(void);
uint64_t xmem__tier_thread_cpu_ns(void);
int xmem__tier_vma_count(void);
long xmem__tier_max_map_count(void);

/* move.c */
int xmem__tier_budget_get(struct xmem_tier *t);
void xmem__tier_budget_put(struct xmem_tier *t);
int xmem__tier_claim(struct xmem_tier *t, uint64_t i, uint32_t *old);
void xmem__tier_publish(struct xmem_tier *t, uint64_t i, uint32_t st);
int xmem__tier_block(struct xmem_tier *t, uint64_t off, uint64_t len);
int xmem__tier_unblock(struct xmem_tier *t, uint64_t off, uint64_t len);
int xmem__tier_map_unit(struct xmem_tier *t, uint64_t i, unsigned where,
			uint64_t off, uint64_t len, int populate);
void xmem__tier_wake(struct xmem_tier *t, uint64_t off, uint64_t len);
int xmem__tier_place(struct xmem_tier *t, uint64_t i, uint32_t want);
int xmem__tier_move(struct xmem_tier *t, uint64_t i, unsigned to, int wait);
void xmem__tier_release(struct xmem_tier *t, uint64_t i, unsigned where,
			int free_device);

/* sample.c */
int xmem__tier_zap(struct xmem_tier *t, const struct iovec *iov, int n);
int xmem__tier_sample_arm(struct xmem_tier *t, uint64_t i);
int xmem__tier_sample_arm_batch(struct xmem_tier *t, const uint32_t *units,
				int n, uint32_t *armed);
void xmem__tier_sample_collect(struct xmem_tier *t, uint64_t i, uint64_t t0);
void *xmem__tier_fault_main(void *arg);

/* policy.c */
void *xmem__tier_policy_main(void *arg);

/* pub.c: statistics in shared memory */
int xmem__tier_pub_open(struct xmem_tier *t);
void xmem__tier_pub_update(struct xmem_tier *t);
void xmem__tier_pub_close(struct xmem_tier *t);
void xmem__tier_pub_unlink(struct xmem_tier *t);

/* numa.c */
int xmem__tier_numa_setup(struct xmem_tier *t);
int xmem__tier_numa_move(struct xmem_tier *t, uint64_t i, unsigned to);

/* registry.c: every live tier (for the preload's fork and munmap handling) */
void xmem__tier_registry_add(struct xmem_tier *t);
void xmem__tier_registry_del(struct xmem_tier *t);
struct xmem_tier *xmem__tier_find(const void *addr);
void xmem__tier_forget(struct xmem_tier *t, void *addr, size_t len);

static inline uint64_t tier_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

#endif /* XMEM_TIER_INTERNAL_H */
