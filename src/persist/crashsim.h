/* SPDX-License-Identifier: MIT */
/*
 * crashsim.h - hooks by which mappings tell the crash simulator about
 * themselves, and the simulator's operations (internal). Mappings of the
 * simulator's device are tracked while it runs; all other mappings are
 * ignored. The registry of mappings is kept even while the simulator is
 * off, so that mappings made before xmem_crashsim_start() are tracked too.
 */
#ifndef XMEM_CRASHSIM_H
#define XMEM_CRASHSIM_H

#include <stddef.h>
#include <stdint.h>

#include <xmem/persist.h>

/* A mapping of `path` at device offset `off` now lives at [addr, addr+len). */
void xmem__crashsim_map_added(void *addr, size_t len, const char *path,
			      uint64_t off);

/* The mapping at addr is going away. */
void xmem__crashsim_map_removed(void *addr);

/* Non-zero while the simulator runs (then xmem_persist_ops() returns its
 * operations for every granularity). */
int xmem__crashsim_active(void);

/* The same, as a variable for the fast paths to test. */
extern int xmem__crashsim_on;

/* The simulator's operations (cache-line semantics on tracked lines). */
const struct xmem_persist_ops *xmem__crashsim_ops(void);
void xmem__crashsim_flush(const void *addr, size_t len);
void xmem__crashsim_drain(void);

/*
 * Makes the file `dst` (created if missing) an exact copy of `src`, in
 * place: same size, src's data copied, src's holes punched (or zeroed). 0 or a
 * negative errno with a message. Used to seed the image, and by the crash-test
 * driver to reset a device between runs.
 */
int xmem__crashsim_copy_file(const char *src, const char *dst);

#endif /* XMEM_CRASHSIM_H */
