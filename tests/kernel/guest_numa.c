/* SPDX-License-Identifier: MIT */
/*
 * guest_numa.c - the tier's NUMA-node backend on a real CPU-less node.
 *
 * The guest has node 0 (CPUs and memory) and node 1 (memory only, as CXL
 * memory appears). A tier whose device is node 1 places its units in
 * DRAM on first touch, migrates them to the device and back, and
 * move_pages(2) confirms on which node every page is after each step,
 * while the data stays intact.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "guest.h"
#include "guest_util.h"

#ifdef XMEM_GUEST_HAVE_TIER
#include <xmem/tier.h>

#define CHECK "numa-tier"
#define UNIT (2ull << 20)
#define NUNITS 4ull
#define PAGE 4096ull

static unsigned eio_retries;

/* Asks the kernel which node each page of [addr, addr+len) is on;
 * returns the node all of them share, -2 if they differ, or -errno. */
static int pages_node(void *addr, uint64_t len)
{
	uint64_t n = len / PAGE;
	void **pages = calloc(n, sizeof(*pages));
	int *status = calloc(n, sizeof(*status));
	int node = -1;

	if (!pages || !status) {
		node = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		pages[i] = (char *)addr + i * PAGE;
	/* nodes == NULL: move_pages only reports where the pages are. */
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0) < 0) {
		node = -errno;
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (status[i] < 0) {
			node = status[i];
			break;
		}
		if (node == -1)
			node = status[i];
		else if (node != status[i]) {
			node = -2;
			break;
		}
	}
out:
	free(pages);
	free(status);
	return node;
}

/* Migrates the whole tier to `to` and checks the node and the data. */
static int move_and_check(struct xmem_tier *t, enum xmem_tier_where to,
			  int want_node)
{
	uint64_t moved = 0, size = xmem_tier_size(t);
	void *addr = xmem_tier_addr(t);
	uint64_t step;
	int rc, node;

	/* mbind(MPOL_MF_MOVE) fails with EIO when a page is briefly pinned
	 * (seen once in about 30 runs under TCG); a repeat moves the rest. */
	for (int i = 0; i < 4; i++) {
		step = 0;
		rc = xmem_tier_migrate(t, addr, size, to, &step);
		moved += step;
		if (rc != -EIO)
			break;
		fprintf(stderr, "transient: %s\n", xmem_errormsg());
		eio_retries++;
	}
	if (rc) {
		GUEST_FAIL_RC(CHECK, "xmem_tier_migrate", rc);
		return -1;
	}
	node = pages_node(addr, size);
	if (moved != NUNITS || node != want_node) {
		GUEST_FAIL(CHECK,
			   "after migrating to %s: %" PRIu64 " units moved, "
			   "pages on node %d, expected node %d",
			   xmem_tier_where_name(to), moved, node, want_node);
		return -1;
	}
	if (guest_pattern_check(addr, size, 21) != (size_t)-1) {
		GUEST_FAIL(CHECK, "data changed by the move to %s",
			   xmem_tier_where_name(to));
		return -1;
	}
	return 0;
}

int main(void)
{
	struct xmem_tier_config cfg;
	struct xmem_tier *t = NULL;
	int node = -1, first, rc = xmem_tier_numa_find_node(&node);

	if (rc) {
		GUEST_FAIL_RC(CHECK, "xmem_tier_numa_find_node", rc);
		return guest_exit();
	}
	xmem_tier_config_init(&cfg);
	cfg.size = NUNITS * UNIT;
	cfg.unit = UNIT;
	cfg.dram_budget = NUNITS * UNIT;
	cfg.numa_node = node;
	cfg.flags = XMEM_F_TIER_NUMA | XMEM_F_TIER_NO_POLICY;
	rc = xmem_tier_new(&cfg, &t);
	if (rc) {
		GUEST_FAIL_RC(CHECK, "xmem_tier_new", rc);
		return guest_exit();
	}
	/* First touch places every unit in DRAM (the budget allows all). */
	guest_pattern_fill(xmem_tier_addr(t), cfg.size, 21);
	first = pages_node(xmem_tier_addr(t), cfg.size);
	if (first < 0 || first == node)
		GUEST_FAIL(CHECK,
			   "after first touch the pages are on node %d, "
			   "expected a node with CPUs (device node %d)",
			   first, node);
	else if (move_and_check(t, XMEM_TIER_DEVICE, node) == 0 &&
		 move_and_check(t, XMEM_TIER_DRAM, first) == 0)
		GUEST_PASS(CHECK,
			   "CPU-less node %d found; %llu units of 2 MiB placed "
			   "on node %d by first touch, migrated to node %d and "
			   "back, move_pages confirms every page, data intact"
			   "%s",
			   node, NUNITS, first, node,
			   eio_retries ? " (after a transient EIO from mbind, "
					 "retried)"
				       : "");
	xmem_tier_delete(&t);
	return guest_exit();
}
#else
int main(void)
{
	GUEST_SKIP("numa-tier", "tiering (src/tier) is not in this build");
	return 77;
}
#endif
