/* SPDX-License-Identifier: MIT */
/*
 * pub.c - publishes a tier's live statistics and heat map in a shared
 * memory segment (layout in pub_layout.h) for `xmem tier top`. Updated by
 * the policy thread once per tick: O(nunits).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pub_layout.h"
#include "tier_internal.h"

struct tier_pub {
	struct tier_pub_hdr *h;
	size_t len;
	char name[64];
};

static _Atomic unsigned pub_seq;

/*
 * Removes the segments of processes that are gone: a process that ends
 * with _exit(2) (forked workers often do) runs no destructor, so its
 * segments outlive it. The pid is in the name; a process that exists
 * (or that we may not signal) keeps its segments. O(entries of
 * /dev/shm), once per tier created with XMEM_F_TIER_PUBLISH.
 */
static void sweep_stale(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	size_t plen = strlen(TIER_PUB_PREFIX);

	if (!d)
		return;
	while ((e = readdir(d))) {
		char name[300], *end;
		long pid;

		if (strncmp(e->d_name, TIER_PUB_PREFIX, plen))
			continue;
		pid = strtol(e->d_name + plen, &end, 10);
		if (pid <= 0 || *end != '.')
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(name, sizeof(name), "/%s", e->d_name);
		shm_unlink(name);
	}
	closedir(d);
}

/* Creates the segment; failure only disables publishing. */
int xmem__tier_pub_open(struct xmem_tier *t)
{
	struct tier_pub *p = calloc(1, sizeof(*p));
	int fd;

	if (!p)
		return -ENOMEM;
	sweep_stale();
	snprintf(p->name, sizeof(p->name), "/" TIER_PUB_PREFIX "%d.%u",
		 (int)getpid(), atomic_fetch_add(&pub_seq, 1));
	p->len = sizeof(struct tier_pub_hdr) + t->nunits;
	fd = shm_open(p->name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(p);
		return -errno;
	}
	if (ftruncate(fd, (off_t)p->len) < 0) {
		close(fd);
		shm_unlink(p->name);
		free(p);
		return -errno;
	}
	p->h = xmem__tier_mmap(NULL, p->len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fd, 0);
	close(fd);
	if (p->h == MAP_FAILED) {
		shm_unlink(p->name);
		free(p);
		return -errno;
	}
	p->h->magic = TIER_PUB_MAGIC;
	p->h->version = TIER_PUB_VERSION;
	p->h->hdr_size = sizeof(struct tier_pub_hdr);
	snprintf(p->h->name, sizeof(p->h->name), "%s",
		 t->cfg.name ? t->cfg.name : "tier");
	p->h->pid = (uint64_t)getpid();
	p->h->base = (uintptr_t)t->base;
	p->h->size = t->size;
	p->h->unit = t->unit;
	p->h->nunits = t->nunits;
	t->pub = p;
	xmem__tier_pub_update(t);
	return 0;
}

/* Heat (log2 accesses/s) to the 0..63 scale of a cell. */
static unsigned heat_level(float h)
{
	int v = (int)(h * 2);

	return v < 0 ? 0 : v > 63 ? 63 : (unsigned)v;
}

/* Copies the counters and the heat map into the segment. */
void xmem__tier_pub_update(struct xmem_tier *t)
{
	struct tier_pub_hdr *h = t->pub->h;
	struct xmem_tier_stats st;
	uint8_t *cell = (uint8_t *)h + h->hdr_size;

	xmem_tier_stats(t, &st);
	/* odd seq: readers retry until the update is complete */
	atomic_fetch_add((_Atomic uint64_t *)&h->seq, 1);
	h->budget = st.dram_budget;
	h->used = st.dram_used;
	h->peak = st.dram_peak;
	h->dram_bytes = st.dram_bytes;
	h->device_bytes = st.device_bytes;
	h->first_touch = st.first_touch;
	h->promotions = st.promotions;
	h->demotions = st.demotions;
	h->migrated_bytes = st.migrated_bytes;
	h->hint_faults = st.hint_faults;
	h->samples = st.samples;
	h->engine_cpu_ns = st.engine_cpu_ns;
	h->uptime_ns = st.uptime_ns;
	for (uint64_t i = 0; i < t->nunits; i++) {
		uint32_t w = atomic_load(&t->u[i].st) & U_WHERE;

		cell[i] =
			(uint8_t)((w == U_GONE ? 0 : w) |
				  heat_level(atomic_load(&t->u[i].heat)) << 2);
	}
	atomic_fetch_add((_Atomic uint64_t *)&h->seq, 1);
}

/* Removes the segment. */
void xmem__tier_pub_close(struct xmem_tier *t)
{
	shm_unlink(t->pub->name);
	xmem__tier_munmap(t->pub->h, t->pub->len);
	free(t->pub);
	t->pub = NULL;
}

/* Removes the segment's name only (the mapping stays valid). */
void xmem__tier_pub_unlink(struct xmem_tier *t)
{
	shm_unlink(t->pub->name);
}
