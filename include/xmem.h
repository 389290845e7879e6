/* SPDX-License-Identifier: MIT */
/*
 * xmem.h - the xmem library: memory outside the kernel's ordinary
 * management (persistent memory, CXL and device memory, or a file standing
 * in for either), mapped straight into the process.
 *
 * Layers, bottom to top; each has one header:
 *   xmem/core.h     errors, version, logging
 *   xmem/persist.h  flush, fence, non-temporal copy, crash simulation
 *   xmem/device.h   devices and aligned mappings
 *   xmem/region.h   regions and ranges (device-DAX semantics)
 *   xmem/heap.h     crash-consistent transactional heap on a range
 *   xmem/blk.h      BTT block mode on a range, and its NBD server
 *   xmem/tier.h     DRAM/device tiering of one address range
 */
#ifndef XMEM_H
#define XMEM_H

#include "xmem/core.h"
#include "xmem/persist.h"
#include "xmem/device.h"
#include "xmem/region.h"
#include "xmem/heap.h"
#include "xmem/blk.h"
#include "xmem/tier.h"

#endif /* XMEM_H */
