/* SPDX-License-Identifier: MIT */
/* size.c - parsing and printing byte counts ("64M", "2 GiB"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "util.h"

const char *xmem__fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const unit[] = { "B",   "KiB", "MiB",
					    "GiB", "TiB", "PiB" };
	unsigned u = 0;

	while (u + 1 < ARRAY_SIZE(unit) && bytes >= 1024 &&
	       (bytes & 1023) == 0) {
		bytes >>= 10;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 " %s", bytes, unit[u]);
	return buf;
}

int xmem__parse_size(const char *s, uint64_t *out)
{
	unsigned shift = 0;
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	/* Decimal, or hexadecimal with 0x; never octal ("010K" is 10 KiB). */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		v = strtoull(s + 2, &end, 16);
	else
		v = strtoull(s, &end, 10);
	if (end == s ||
	    (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && end == s + 2))
		return -EINVAL;
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	case 'p':
	case 'P':
		shift = 50;
		end++;
		break;
	default:
		break;
	}
	if (shift && (*end == 'i' || *end == 'I') &&
	    (end[1] == 'B' || end[1] == 'b'))
		end += 2;
	else if (shift && (*end == 'B' || *end == 'b'))
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int xmem__vec_realloc(void **v, size_t *cap, size_t need, size_t esz)
{
	size_t ncap;
	void *nv;

	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	nv = realloc(*v, ncap * esz);
	if (!nv)
		return -ENOMEM;
	xmem__huge_advise(nv, ncap * esz);
	*v = nv;
	*cap = ncap;
	return 0;
}

void xmem__huge_advise(void *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + XMEM_HUGE_ADVISE - 1) &
		      ~(uintptr_t)(XMEM_HUGE_ADVISE - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)(XMEM_HUGE_ADVISE - 1);

	if (len >= 2 * XMEM_HUGE_ADVISE && e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* a hint */
}
