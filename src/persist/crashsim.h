/* SPDX-License-Identifier: MIT */
/*
 * crashsim.h - hooks by which mappings tell the crash simulator about
 * themselves (internal). Mappings of the simulator's device are tracked
 * while it runs; all other mappings are ignored.
 */
#ifndef XMEM_CRASHSIM_H
#define XMEM_CRASHSIM_H

#include <stddef.h>
#include <stdint.h>

/* A mapping of `path` at device offset `off` now lives at [addr, addr+len). */
void xmem__crashsim_map_added(void *addr, size_t len, const char *path,
			      uint64_t off);

/* The mapping at addr is going away. */
void xmem__crashsim_map_removed(void *addr);

/* Non-zero while the simulator runs (then xmem_persist_ops() returns its
 * operations for every granularity). */
int xmem__crashsim_active(void);

#endif /* XMEM_CRASHSIM_H */
