/* SPDX-License-Identifier: MIT */
/*
 * xmem/tier.h - tiered memory: one address range whose units live in DRAM
 * or in device memory and migrate between them while the program runs,
 * under a DRAM budget (heterogeneous memory management in user space, on a
 * stock kernel).
 *
 * A tier hands out one base address. The program uses it like ordinary
 * memory from any number of threads. The first touch of a unit places it:
 * in DRAM while the budget allows, otherwise on the device (or as advised).
 * An engine samples hotness with hinting faults and a policy thread
 * promotes hot units and demotes cold ones, never exceeding the budget.
 * No write is lost while a unit moves; accesses to other units never wait
 * for a migration. See src/tier/tier_internal.h for the mechanism and its
 * costs.
 *
 * Several tiers can share one DRAM budget through a group.
 */
#ifndef XMEM_TIER_H
#define XMEM_TIER_H

#include <stddef.h>
#include <stdint.h>
#include "device.h"
#include "region.h"

#ifdef __cplusplus
extern "C" {
#endif

struct xmem_tier;
struct xmem_tier_group;

/* Where a unit lives. */
enum xmem_tier_where {
	XMEM_TIER_NONE = 0, /* never touched: no memory behind it */
	XMEM_TIER_DRAM = 1,
	XMEM_TIER_DEVICE = 2,
};

/* "none", "dram", "device". */
const char *xmem_tier_where_name(enum xmem_tier_where w);

/* Placement policies. */
enum xmem_tier_policy {
	XMEM_TIER_POLICY_HOTNESS = 0, /* first touch, then migrate by heat */
	XMEM_TIER_POLICY_STATIC = 1,  /* first touch only, never migrate
				       * (what allocation-time placement
				       * such as memkind does) */
	XMEM_TIER_POLICY_DEVICE_FIRST = 2, /* place on the device, promote
					    * by heat */
};

/* Advice for a range of a tier (xmem_tier_advise). */
enum xmem_tier_advice {
	XMEM_TIER_ADV_NORMAL = 0,     /* the policy decides */
	XMEM_TIER_ADV_HOT = 1,	      /* prefer DRAM, demote last */
	XMEM_TIER_ADV_COLD = 2,	      /* prefer the device, promote last */
	XMEM_TIER_ADV_PIN_DRAM = 3,   /* stay in DRAM (counts to the budget) */
	XMEM_TIER_ADV_PIN_DEVICE = 4, /* stay on the device */
};

/* Parameters of a tier; fill with xmem_tier_config_init() first. */
struct xmem_tier_config {
	uint64_t size;	      /* bytes; rounded up to the unit */
	uint64_t unit;	      /* migration unit; default 2 MiB */
	uint64_t dram_budget; /* bytes of DRAM (ignored with a group) */
	struct xmem_tier_group *group; /* shared budget, or NULL */
	enum xmem_tier_policy policy;
	/*
	 * Device memory: a file descriptor mapped MAP_SHARED at
	 * device_offset + unit index * unit. -1 means a private memfd
	 * (volatile device memory stands in for the device).
	 */
	int device_fd;
	uint64_t device_offset;
	int numa_node; /* with XMEM_F_TIER_NUMA: the device's node */
	/* Hotness sampling; 0 keeps the default. */
	uint32_t sample_per_sec;   /* hinting-fault samples per second */
	uint32_t sample_bytes;	   /* bytes a sample spans: one probe
				    * page per 64 KiB of it is zapped */
	uint32_t sample_window_ms; /* first window (then adapted) */
	uint32_t max_samples;	   /* samples armed at once */
	/* Policy; 0 keeps the default. */
	uint32_t migrate_per_sec;  /* migration rate limit, units/s */
	uint32_t min_residency_ms; /* a unit stays this long after a move */
	uint32_t tick_ms;	   /* policy period */
	/* This tier's engine CPU limit, percent of one core (default 8):
	 * its moves wait and its sampling slows to keep its threads under
	 * it on average (first touches are never held back; explicit
	 * xmem_tier_migrate() runs on the caller's CPU). */
	uint32_t cpu_percent;
	const char *name; /* shown by `xmem tier top` */
	unsigned flags;	  /* XMEM_F_TIER_* */
};

/* Publish live statistics in shared memory for `xmem tier top`. */
#define XMEM_F_TIER_PUBLISH (1u << 0)
/* Do not start the policy thread (explicit control only). */
#define XMEM_F_TIER_NO_POLICY (1u << 1)

void xmem_tier_config_init(struct xmem_tier_config *cfg);

/* Creates a tier: reserves the address range, starts the engine. */
int xmem_tier_new(const struct xmem_tier_config *cfg, struct xmem_tier **tp);

/*
 * Creates a tier whose device memory is an open range (mode tier) of a
 * region: cfg->device_fd/device_offset are taken from the range. The range
 * must be at least cfg->size long and stay open while the tier lives.
 */
int xmem_tier_new_range(struct xmem_region *reg, struct xmem_range *range,
			const struct xmem_tier_config *cfg,
			struct xmem_tier **tp);

/* Stops the engine, unmaps the range and frees its memory. Sets NULL. */
void xmem_tier_delete(struct xmem_tier **tp);

void *xmem_tier_addr(const struct xmem_tier *t);
uint64_t xmem_tier_size(const struct xmem_tier *t);
uint64_t xmem_tier_unit(const struct xmem_tier *t);

/* Advises [addr, addr+len) (whole units it touches). Pinning moves the
 * units at once; -ENOSPC if a DRAM pin would exceed the budget. */
int xmem_tier_advise(struct xmem_tier *t, void *addr, size_t len,
		     enum xmem_tier_advice advice);

/*
 * Migrates the placed units of [addr, addr+len) to `to` now, like
 * move_pages(2). Units not yet touched are placed there. *moved (may be
 * NULL) counts units moved. -ENOSPC if the budget stops a promotion
 * (units moved so far stay moved).
 */
int xmem_tier_migrate(struct xmem_tier *t, void *addr, size_t len,
		      enum xmem_tier_where to, uint64_t *moved);

/* Where the unit holding addr lives now. */
int xmem_tier_where(struct xmem_tier *t, const void *addr,
		    enum xmem_tier_where *where);

struct xmem_tier_stats {
	uint64_t size, unit, nunits;
	uint64_t dram_budget;	/* of the tier's group */
	uint64_t dram_used;	/* bytes the group holds in DRAM now */
	uint64_t dram_peak;	/* highest dram_used ever seen */
	uint64_t dram_bytes;	/* this tier's bytes in DRAM */
	uint64_t dram_resident; /* this tier's DRAM pages the kernel holds
				 * (memfd blocks): what the budget bounds */
	uint64_t device_bytes;	/* this tier's bytes on the device */
	uint64_t first_touch;	/* units placed by a first touch */
	uint64_t promotions;	/* device -> DRAM moves */
	uint64_t demotions;	/* DRAM -> device moves */
	uint64_t migrated_bytes;
	uint64_t hint_faults; /* hinting faults taken (sampled accesses) */
	uint64_t samples;     /* samples armed */
	uint64_t
		budget_denied; /* promotions or placements the budget refused */
	uint64_t engine_cpu_ns; /* CPU time of the engine's threads */
	uint64_t uptime_ns;
};
int xmem_tier_stats(struct xmem_tier *t, struct xmem_tier_stats *st);

/* Heat of the unit holding addr (higher is hotter; arbitrary scale). */
int xmem_tier_heat(struct xmem_tier *t, const void *addr, double *heat);

/* A DRAM budget shared by several tiers (a memory-cgroup limit per tier). */
int xmem_tier_group_new(uint64_t dram_budget, struct xmem_tier_group **gp);
/* Tiers of the group must be deleted first (-EBUSY). Sets NULL. */
int xmem_tier_group_delete(struct xmem_tier_group **gp);
uint64_t xmem_tier_group_used(const struct xmem_tier_group *g);
uint64_t xmem_tier_group_budget(const struct xmem_tier_group *g);

/*
 * NUMA-node backend: the device memory is a CPU-less NUMA node (device
 * DAX in kmem mode, as CXL memory usually appears). Units are plain
 * anonymous memory moved with move_pages(2) instead of being remapped.
 * Returns the first CPU-less node with memory in *node, or -ENODEV.
 */
int xmem_tier_numa_find_node(int *node);
#define XMEM_F_TIER_NUMA (1u << 2) /* cfg->numa_node is the device */

#ifdef __cplusplus
}
#endif
#endif /* XMEM_TIER_H */
