/* SPDX-License-Identifier: MIT */
/*
 * xmem/core.h - errors, version and logging shared by every layer.
 *
 * Every xmem call that can fail returns 0 on success or a negative error:
 * either a negative errno (-ENOMEM, -EBUSY, -EINVAL, ...) or one of the
 * project codes XMEM_E_* below, which all lie under -4095 so that they never
 * collide with an errno. Results are returned through out-parameters.
 *
 * xmem_strerror() turns either kind of code into a short fixed string;
 * xmem_errormsg() returns the calling thread's detailed message for the last
 * failure ("range 'db': alignment 1 GiB cannot be met: region data starts at
 * 2 MiB"). The message stays valid until the thread's next failing call.
 */
#ifndef XMEM_CORE_H
#define XMEM_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XMEM_VERSION_MAJOR 0
#define XMEM_VERSION_MINOR 1
#define XMEM_VERSION_PATCH 0

/* Project error codes; all below -4095. */
#define XMEM_E_BASE (-4096)
#define XMEM_E_CORRUPT (XMEM_E_BASE - 1)   /* on-media structure invalid */
#define XMEM_E_VERSION (XMEM_E_BASE - 2)   /* unsupported layout version */
#define XMEM_E_ALIGN (XMEM_E_BASE - 3)	   /* alignment cannot be met */
#define XMEM_E_NOSPACE (XMEM_E_BASE - 4)   /* no free extent large enough */
#define XMEM_E_NOREGION (XMEM_E_BASE - 5)  /* no xmem metadata on device */
#define XMEM_E_LABELFULL (XMEM_E_BASE - 6) /* label area has no free slot */
#define XMEM_E_MODE (XMEM_E_BASE - 7)	   /* range has another mode */
#define XMEM_E_TXABORTED (XMEM_E_BASE - 8) /* transaction was aborted */
#define XMEM_E_TXSTATE (XMEM_E_BASE - 9)   /* call not valid in this tx state */
#define XMEM_E_BADOID (XMEM_E_BASE - 10)   /* object reference is invalid */
#define XMEM_E_PROTO (XMEM_E_BASE - 11)	   /* malformed protocol message */
#define XMEM_E_MEDIA (XMEM_E_BASE - 12)	   /* sector marked as media error */
#define XMEM_E_LAST (XMEM_E_BASE - 13)

/* Returns a short description of an error code (negative errno or XMEM_E_*). */
const char *xmem_strerror(int err);

/* Returns the calling thread's detailed message for its last failure. */
const char *xmem_errormsg(void);

/* Returns the library version as "MAJOR.MINOR.PATCH". */
const char *xmem_version(void);

/* Log levels for xmem_log_set_level(); XMEM_LOG_LEVEL in the environment
 * (error, warn, info, debug) sets the initial level. */
enum xmem_log_level {
	XMEM_LOG_ERROR = 0,
	XMEM_LOG_WARN = 1,
	XMEM_LOG_INFO = 2,
	XMEM_LOG_DEBUG = 3,
};

/* Sets the level above which library log lines are dropped. */
void xmem_log_set_level(enum xmem_log_level level);

/* Replaces the log sink (default: stderr). NULL restores the default. */
typedef void (*xmem_log_fn)(enum xmem_log_level level, const char *msg);
void xmem_log_set_fn(xmem_log_fn fn);

#ifdef __cplusplus
}
#endif
#endif /* XMEM_CORE_H */
