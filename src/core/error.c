/* SPDX-License-Identifier: MIT */
/* error.c - error codes, per-thread messages and the log sink. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "util.h"

#define MSG_MAX 512

static __thread char errmsg[MSG_MAX];

static enum xmem_log_level log_level = XMEM_LOG_WARN;
static xmem_log_fn log_fn;

static const char *const xmem_errstr[] = {
	[-(XMEM_E_CORRUPT - XMEM_E_BASE)] = "on-media structure is corrupt",
	[-(XMEM_E_VERSION - XMEM_E_BASE)] = "unsupported layout version",
	[-(XMEM_E_ALIGN - XMEM_E_BASE)] = "alignment cannot be met",
	[-(XMEM_E_NOSPACE - XMEM_E_BASE)] = "no free extent is large enough",
	[-(XMEM_E_NOREGION - XMEM_E_BASE)] = "device holds no xmem region",
	[-(XMEM_E_LABELFULL - XMEM_E_BASE)] = "label area is full",
	[-(XMEM_E_MODE - XMEM_E_BASE)] = "range has another mode",
	[-(XMEM_E_TXABORTED - XMEM_E_BASE)] = "transaction aborted",
	[-(XMEM_E_TXSTATE - XMEM_E_BASE)] = "invalid in this transaction state",
	[-(XMEM_E_BADOID - XMEM_E_BASE)] = "invalid object reference",
	[-(XMEM_E_PROTO - XMEM_E_BASE)] = "malformed protocol message",
	[-(XMEM_E_MEDIA - XMEM_E_BASE)] = "media error",
};

XMEM_EXPORT const char *xmem_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err < XMEM_E_BASE && err > XMEM_E_LAST) {
		const char *s = xmem_errstr[-(err - XMEM_E_BASE)];
		return s ? s : "unknown xmem error";
	}
	if (err < 0 && err >= -4095)
		return strerror(-err);
	return "unknown error";
}

XMEM_EXPORT const char *xmem_errormsg(void)
{
	return errmsg;
}

XMEM_EXPORT const char *xmem_version(void)
{
#define XSTR(x) #x
#define STR(x) XSTR(x)
	return STR(XMEM_VERSION_MAJOR) "." STR(XMEM_VERSION_MINOR) "." STR(
		XMEM_VERSION_PATCH);
}

int xmem__err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	xmem__log(XMEM_LOG_DEBUG, "error %d: %s", err, errmsg);
	return err;
}

int xmem__err_prefix(int err, const char *fmt, ...)
{
	char old[MSG_MAX];
	va_list ap;
	int n;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(errmsg))
		snprintf(errmsg + n, sizeof(errmsg) - (size_t)n, ": %.*s",
			 (int)(sizeof(errmsg) - (size_t)n), old);
	return err;
}

/* Reads XMEM_LOG_LEVEL once, at load time. */
__attribute__((constructor)) static void log_init(void)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	const char *e = getenv("XMEM_LOG_LEVEL");

	if (!e)
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcasecmp(e, names[i]))
			log_level = (enum xmem_log_level)i;
}

XMEM_EXPORT void xmem_log_set_level(enum xmem_log_level level)
{
	log_level = level;
}

XMEM_EXPORT void xmem_log_set_fn(xmem_log_fn fn)
{
	log_fn = fn;
}

void xmem__log(enum xmem_log_level level, const char *fmt, ...)
{
	static const char *const tag[] = { "error", "warning", "info",
					   "debug" };
	char msg[MSG_MAX];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(level, msg);
	else
		fprintf(stderr, "xmem %s: %s\n", tag[level], msg);
}
