/* SPDX-License-Identifier: MIT */
/*
 * guest.h - verdict lines of the kernel-device guest checks.
 *
 * Each check prints exactly one line, "PASS|SKIP|FAIL <check>: <detail>",
 * which the host reads from the serial console. A program exits 1 if any
 * of its checks failed, else 0.
 */
#ifndef XMEM_GUEST_H
#define XMEM_GUEST_H

#include <stdarg.h>
#include <stdio.h>
#include <xmem.h>

static int guest_failures;

/* Prints one verdict line; "FAIL" lines count towards the exit status. */
__attribute__((format(printf, 3, 4))) static inline void
guest_verdict(const char *verdict, const char *check, const char *fmt, ...)
{
	va_list ap;
	char detail[512];

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (verdict[0] == 'F')
		guest_failures++;
	/* One write per line, so console output of two programs never
	 * interleaves inside a line. */
	printf("%s %s: %s\n", verdict, check, detail);
	fflush(stdout);
}

#define GUEST_PASS(check, ...) guest_verdict("PASS", check, __VA_ARGS__)
#define GUEST_SKIP(check, ...) guest_verdict("SKIP", check, __VA_ARGS__)
#define GUEST_FAIL(check, ...) guest_verdict("FAIL", check, __VA_ARGS__)

/* FAIL line for an xmem call that returned rc, with its message. */
#define GUEST_FAIL_RC(check, what, rc)                                         \
	GUEST_FAIL(check, "%s returned %d (%s): %s", what, rc,                 \
		   xmem_strerror(rc), xmem_errormsg())

static inline int guest_exit(void)
{
	return guest_failures ? 1 : 0;
}

#endif /* XMEM_GUEST_H */
