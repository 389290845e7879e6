/* SPDX-License-Identifier: MIT */
/* cli.c - shared pieces of the xmem subcommands. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/util.h"

struct cli_common cli;

int cli_common_opt(int c, const char *arg)
{
	switch (c) {
	case 'd':
		cli.device = arg;
		return 1;
	case 'j':
		cli.json = 1;
		return 1;
	default:
		return 0;
	}
}

int cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "xmem: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (usage)
		fprintf(stderr, "usage: %s\n", usage);
	return CLI_USAGE;
}

int cli_fail(int rc, const char *fmt, ...)
{
	const char *detail = xmem_errormsg();
	va_list ap;

	fprintf(stderr, "xmem: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (detail && *detail)
		fprintf(stderr, ": %s\n", detail);
	else
		fprintf(stderr, ": %s\n", xmem_strerror(rc));
	return CLI_FAIL;
}

int cli_size(const char *opt, const char *arg, uint64_t *out)
{
	if (xmem__parse_size(arg, out))
		return cli_usage(NULL,
				 "%s: '%s' is not a size (examples: 4096, 64M, "
				 "2G)",
				 opt, arg ? arg : "");
	return 0;
}

const char *cli_fmt_size(uint64_t bytes)
{
	static char bufs[8][32];
	static unsigned next;

	return xmem__fmt_size(bufs[next++ % 8], 32, bytes);
}

/* Writes the facts of a device shared by device and region listings. */
void cli_json_device(struct json *j, struct xmem_device *dev)
{
	json_str(j, "device", xmem_device_path(dev));
	json_str(j, "kind", xmem_device_kind_name(xmem_device_kind(dev)));
	json_str(j, "granularity",
		 xmem_granularity_name(xmem_device_granularity(dev)));
}

int cli_open_device(uint64_t create_size, struct xmem_device **devp)
{
	unsigned flags = create_size ? XMEM_F_CREATE : 0;
	int rc = xmem_device_open(devp, cli.device, create_size, flags);

	if (rc)
		return cli_fail(rc, "cannot open device '%s'", cli.device);
	return 0;
}

int cli_open_region(struct xmem_device **devp, struct xmem_region **regp)
{
	int rc;

	if (cli_open_device(0, devp))
		return CLI_FAIL;
	rc = xmem_region_open(*devp, regp);
	if (rc) {
		cli_fail(rc, "cannot open the region on '%s'", cli.device);
		xmem_device_close(devp);
		return CLI_FAIL;
	}
	return 0;
}

void cli_close_region(struct xmem_device **devp, struct xmem_region **regp)
{
	xmem_region_close(regp);
	xmem_device_close(devp);
}

int cli_split_target(const char *arg, char *dev, size_t devlen, char *range,
		     size_t rangelen)
{
	const char *colon = strrchr(arg, ':');

	if (!colon) {
		snprintf(dev, devlen, "%s", cli.device);
		snprintf(range, rangelen, "%s", arg);
		return 0;
	}
	if ((size_t)(colon - arg) >= devlen || strlen(colon + 1) >= rangelen ||
	    colon == arg || !colon[1])
		return -EINVAL;
	snprintf(dev, devlen, "%.*s", (int)(colon - arg), arg);
	snprintf(range, rangelen, "%s", colon + 1);
	return 0;
}

void json_init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = 1;
}

/* Length of the valid UTF-8 sequence at p, or 0 if it is not one. */
static int utf8_len(const unsigned char *p)
{
	int n = p[0] >= 0xf0 && p[0] < 0xf5   ? 4
		: p[0] >= 0xe0 && p[0] < 0xf0 ? 3
		: p[0] >= 0xc2 && p[0] < 0xe0 ? 2
					      : 0;

	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Writes a JSON string literal. Bytes that are not UTF-8 (a file name may
 * hold any) are written as the code points of the same value, so the
 * output is always valid JSON. */
static void json_quoted(FILE *f, const char *v)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		int n;

		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if (*p < 0x80)
			fputc(*p, f);
		else if ((n = utf8_len(p)) != 0) {
			fwrite(p, 1, (size_t)n, f);
			p += n - 1;
		} else {
			fprintf(f, "\\u%04x", *p);
		}
	}
	fputc('"', f);
}

/* Writes the separator and, inside an object, the key. */
static void json_key(struct json *j, const char *key)
{
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = 0;
	if (key) {
		json_quoted(j->f, key);
		fputc(':', j->f);
	}
}

/* Opens an object or array; kind[] remembers which, for json_end. */
static void json_open(struct json *j, const char *key, char c)
{
	json_key(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
		j->depth++;
	j->first[j->depth] = 1;
	j->kind[j->depth] = c;
}

void json_obj(struct json *j, const char *key)
{
	json_open(j, key, '{');
}

void json_arr(struct json *j, const char *key)
{
	json_open(j, key, '[');
}

void json_end(struct json *j)
{
	fputc(j->kind[j->depth] == '[' ? ']' : '}', j->f);
	if (j->depth > 0)
		j->depth--;
}

void json_str(struct json *j, const char *key, const char *v)
{
	json_key(j, key);
	json_quoted(j->f, v ? v : "");
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void json_dbl(struct json *j, const char *key, double v)
{
	json_key(j, key);
	fprintf(j->f, "%.6g", v);
}

void json_bool(struct json *j, const char *key, int v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_done(struct json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
