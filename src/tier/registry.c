/* SPDX-License-Identifier: MIT */
/*
 * registry.c - every live tier of the process, for fork and for the
 * preload library's munmap/free handling.
 *
 * fork: a tier's memory is MAP_SHARED (memfd and device), which a child
 * would share with its parent instead of getting a copy. So the prepare
 * handler quiesces every tier (takes its fork lock for writing: no move,
 * or placement is in flight), and the
 * child turns each placed unit into private anonymous memory holding a
 * copy of it (O(bytes placed)). In the child the tier is "detached": plain
 * memory without an engine. Writes other parent threads make between the
 * fork and the child's copy are visible to the child; programs that fork
 * while other threads write have that race with any copy-on-write scheme
 * that is not the kernel's own.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/util.h"
#include "tier_internal.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct xmem_tier **reg;
static size_t nreg, capreg;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Quiesces every tier before fork. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t k = 0; k < nreg; k++) {
		struct xmem_tier *t = reg[k];

		if (t->detached)
			continue;
		pthread_rwlock_wrlock(&t->fork_lock);
	}
}

/* Lets the parent's engines run again. */
static void fork_parent(void)
{
	for (size_t k = 0; k < nreg; k++)
		if (!reg[k]->detached)
			pthread_rwlock_unlock(&reg[k]->fork_lock);
	pthread_mutex_unlock(&reg_lock);
}

/* Turns a tier into private memory in a child. */
static void detach(struct xmem_tier *t)
{
	for (uint64_t i = 0; i < t->nunits; i++) {
		uint32_t w = atomic_load(&t->u[i].st) & U_WHERE;
		char *a = t->base + i * t->unit;
		void *p;

		if (w != XMEM_TIER_DRAM && w != XMEM_TIER_DEVICE)
			continue;
		p = xmem__tier_mmap(NULL, t->unit, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			continue; /* stays shared: better than lost */
		memcpy(p, a, t->unit);
		syscall(SYS_mremap, p, t->unit, t->unit,
			MREMAP_MAYMOVE | MREMAP_FIXED, a);
	}
	t->detached = 1;
	t->have_fault_thr = t->have_policy_thr = 0;
	close(t->uffd);
	t->uffd = -1;
}

/* In the child: every tier becomes plain private memory. */
static void fork_child(void)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(
		&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (size_t k = 0; k < nreg; k++) {
		struct xmem_tier *t = reg[k];

		if (t->detached)
			continue;
		detach(t);
		/* The lock's owner was the parent's thread id: re-create. */
		pthread_rwlock_init(&t->fork_lock, &a);
		pthread_mutex_init(&t->wait_lock, NULL);
		pthread_cond_init(&t->wait_cond, NULL);
		t->pub = NULL;
	}
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&reg_lock, NULL);
}

static void install_atfork(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Records a new tier. */
void xmem__tier_registry_add(struct xmem_tier *t)
{
	pthread_once(&atfork_once, install_atfork);
	pthread_mutex_lock(&reg_lock);
	if (xmem__vec_grow((void **)&reg, &capreg, nreg + 1, sizeof(*reg))) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	reg[nreg++] = t;
	pthread_mutex_unlock(&reg_lock);
}

/* Forgets a tier being deleted. */
void xmem__tier_registry_del(struct xmem_tier *t)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t k = 0; k < nreg; k++)
		if (reg[k] == t) {
			reg[k] = reg[--nreg];
			break;
		}
	pthread_mutex_unlock(&reg_lock);
}

/* The tier whose range holds addr, or NULL. O(tiers). */
struct xmem_tier *xmem__tier_find(const void *addr)
{
	struct xmem_tier *found = NULL;
	uintptr_t p = (uintptr_t)addr;

	pthread_mutex_lock(&reg_lock);
	for (size_t k = 0; k < nreg && !found; k++) {
		uintptr_t b = (uintptr_t)reg[k]->base;

		if (p >= b && p - b < reg[k]->size)
			found = reg[k];
	}
	pthread_mutex_unlock(&reg_lock);
	return found;
}

/*
 * The program unmapped [addr, addr+len) of t (the caller unmaps it after
 * this). Units it covers entirely give their memory back; every unit it
 * touches is GONE: never moved, sampled or unmapped by the tier again.
 */
void xmem__tier_forget(struct xmem_tier *t, void *addr, size_t len)
{
	uint64_t s = (uintptr_t)addr - (uintptr_t)t->base;
	uint64_t e = s + len > t->size ? t->size : s + len;

	for (uint64_t i = s / t->unit; i * t->unit < e; i++) {
		uint32_t old;
		int rc;

		while ((rc = xmem__tier_claim(t, i, &old)) == -EBUSY)
			sched_yield();
		if (rc < 0)
			continue;
		if (old & U_SAMPLED)
			atomic_fetch_sub(&t->armed, 1);
		if (i * t->unit >= s && (i + 1) * t->unit <= e && !t->detached)
			xmem__tier_release(t, i, old & U_WHERE, 1);
		xmem__tier_publish(t, i, U_GONE);
	}
}

/* At exit, the statistics segments of live tiers go away with the
 * process (`xmem tier top` also removes those of processes that died
 * without running this). */
__attribute__((destructor)) static void tier_exit(void)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t k = 0; k < nreg; k++)
		if (reg[k]->pub && !reg[k]->detached)
			xmem__tier_pub_unlink(reg[k]);
	pthread_mutex_unlock(&reg_lock);
}
