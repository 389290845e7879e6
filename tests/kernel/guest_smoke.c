/* SPDX-License-Identifier: MIT */
/*
 * guest_smoke.c - the static xmem runs in the guest at all: it links, it
 * finds its CPU features, and a volatile device maps and persists.
 */
#include <string.h>
#include "guest.h"

int main(void)
{
	struct xmem_device *dev = NULL;
	struct xmem_map *map = NULL;
	int rc;

	rc = xmem_device_open(&dev, "anon", 4 << 20, 0);
	if (rc) {
		GUEST_FAIL_RC("smoke", "xmem_device_open(anon)", rc);
		return guest_exit();
	}
	rc = xmem_device_map(dev, 0, 4 << 20, 0, 0, &map);
	if (rc) {
		GUEST_FAIL_RC("smoke", "xmem_device_map(anon)", rc);
	} else {
		memset(xmem_map_addr(map), 0x5a, 4 << 20);
		xmem_map_persist(map, xmem_map_addr(map), 4 << 20);
		GUEST_PASS(
			"smoke",
			"static xmem %s maps anonymous memory, granularity %s",
			xmem_version(),
			xmem_granularity_name(xmem_map_granularity(map)));
		xmem_map_delete(&map);
	}
	xmem_device_close(&dev);
	return guest_exit();
}
