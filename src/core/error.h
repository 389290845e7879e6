/* SPDX-License-Identifier: MIT */
/* error.h - per-thread error messages and logging (internal). */
#ifndef XMEM_ERROR_H
#define XMEM_ERROR_H

#include <xmem/core.h>

/*
 * Records a detailed message for the calling thread and returns err, so a
 * failure reads: return xmem__err(-EINVAL, "range '%s': ...", name);
 */
int xmem__err(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the current thread message: "ctx: <old message>". Returns err. */
int xmem__err_prefix(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void xmem__log(enum xmem_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define XMEM_LOG_W(...) xmem__log(XMEM_LOG_WARN, __VA_ARGS__)
#define XMEM_LOG_I(...) xmem__log(XMEM_LOG_INFO, __VA_ARGS__)
#define XMEM_LOG_D(...) xmem__log(XMEM_LOG_DEBUG, __VA_ARGS__)

#endif /* XMEM_ERROR_H */
