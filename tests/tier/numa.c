/* SPDX-License-Identifier: MIT */
/*
 * numa.c - the NUMA-node backend: when a CPU-less NUMA node exists (device
 * DAX in kmem mode, or a guest's memory-only node), first touches follow
 * the budget and migrations move pages between nodes with the data
 * intact, as move_pages(2) reports. Skips without such a node.
 */
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)
#define UNIT (2 * MiB)

/* The node of the page at p (move_pages query), or -errno. */
static int node_of(void *p)
{
	void *pages[1] = { p };
	int status[1] = { -1 };

	if (syscall(SYS_move_pages, 0, 1UL, pages, NULL, status, 0) < 0)
		return -errno;
	return status[0];
}

int main(void)
{
	struct xmem_tier_config cfg;
	struct xmem_tier *t;
	int node, rc;
	char *b;

	if (xmem_tier_numa_find_node(&node) < 0)
		SKIP("no CPU-less NUMA node with memory (%s)", xmem_errormsg());
	xmem_tier_config_init(&cfg);
	cfg.size = 8 * UNIT;
	cfg.dram_budget = 2 * UNIT;
	cfg.flags = XMEM_F_TIER_NUMA | XMEM_F_TIER_NO_POLICY;
	cfg.numa_node = node;
	rc = xmem_tier_new(&cfg, &t);
	if (rc == -EPERM)
		SKIP("userfaultfd is not permitted here");
	REQUIRE_OK(rc);
	b = xmem_tier_addr(t);
	for (uint64_t i = 0; i < 8 * UNIT; i += 4096)
		b[i] = (char)(i / 4096);
	for (uint64_t u = 0; u < 8; u++) {
		enum xmem_tier_where w;
		int n = node_of(b + u * UNIT);

		CHECK_OK(xmem_tier_where(t, b + u * UNIT, &w));
		CHECK(w == (u < 2 ? XMEM_TIER_DRAM : XMEM_TIER_DEVICE));
		CHECK(u < 2 ? n != node : n == node);
	}
	CHECK_OK(xmem_tier_migrate(t, b, UNIT, XMEM_TIER_DEVICE, NULL));
	CHECK_OK(
		xmem_tier_migrate(t, b + 5 * UNIT, UNIT, XMEM_TIER_DRAM, NULL));
	CHECK(node_of(b) == node);
	CHECK(node_of(b + 5 * UNIT) != node);
	CHECK(xmem_tier_migrate(t, b + 6 * UNIT, UNIT, XMEM_TIER_DRAM, NULL) ==
	      -ENOSPC);
	for (uint64_t i = 0; i < 8 * UNIT; i += 4096)
		CHECK(b[i] == (char)(i / 4096));
	printf("node %d: placement and migration checked\n", node);
	xmem_tier_delete(&t);
	return test_result();
}
