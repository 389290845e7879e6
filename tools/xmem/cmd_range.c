/* SPDX-License-Identifier: MIT */
/*
 * cmd_range.c - "xmem range create|list|info|resize|destroy|write|read".
 * write and read map the range (aligned, so the kernel can use huge
 * pages), and write makes its bytes durable before it returns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmds.h"

static const char range_usage[] =
	"xmem range create NAME -s SIZE [-a 4K|2M|1G] [-m raw|heap|blk|tier]\n"
	"       xmem range list [--json]\n"
	"       xmem range info NAME [--json]\n"
	"       xmem range resize NAME -s SIZE\n"
	"       xmem range destroy NAME [--scrub]\n"
	"       xmem range write NAME [-o OFFSET] (--data TEXT | -l LENGTH "
	"--pattern BYTE)\n"
	"       xmem range read NAME [-o OFFSET] -l LENGTH\n"
	"(all take -d DEVICE)";

enum { OPT_SCRUB = 256, OPT_DATA, OPT_PATTERN };

struct range_args {
	const char *name;
	uint64_t size, align, offset, length;
	enum xmem_range_mode mode;
	int scrub, pattern;
	const char *data;
};

static const struct option range_lo[] = {
	CLI_COMMON_LONGOPTS,
	{ "size", required_argument, NULL, 's' },
	{ "align", required_argument, NULL, 'a' },
	{ "mode", required_argument, NULL, 'm' },
	{ "offset", required_argument, NULL, 'o' },
	{ "length", required_argument, NULL, 'l' },
	{ "scrub", no_argument, NULL, OPT_SCRUB },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "pattern", required_argument, NULL, OPT_PATTERN },
	{ 0 },
};

/* Handles one option that is not common; returns 0 or an exit code. */
static int range_opt(int c, struct range_args *a)
{
	char *end;

	switch (c) {
	case 's':
		return cli_size("--size", optarg, &a->size);
	case 'a':
		return cli_size("--align", optarg, &a->align);
	case 'o':
		return cli_size("--offset", optarg, &a->offset);
	case 'l':
		return cli_size("--length", optarg, &a->length);
	case 'm':
		if (xmem_range_mode_parse(optarg, &a->mode))
			return cli_usage(range_usage,
					 "--mode: '%s' is not raw, heap, blk "
					 "or tier",
					 optarg);
		return 0;
	case OPT_SCRUB:
		a->scrub = 1;
		return 0;
	case OPT_DATA:
		a->data = optarg;
		return 0;
	case OPT_PATTERN:
		a->pattern = (int)strtol(optarg, &end, 0);
		if (*end || a->pattern < 0 || a->pattern > 255)
			return cli_usage(range_usage,
					 "--pattern: '%s' is not a byte value",
					 optarg);
		return 0;
	default:
		return cli_usage(range_usage, "unknown option");
	}
}

/* Parses options and the NAME argument (when `need_name`). Returns -1 with
 * the exit code in *rc when the command must stop. */
static int range_opts(int argc, char **argv, int need_name,
		      struct range_args *a, int *rc)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->align = XMEM_ALIGN_2M;
	while ((c = getopt_long(argc, argv, "d:jhs:a:m:o:l:", range_lo,
				NULL)) != -1) {
		if (cli_common_opt(c, optarg))
			continue;
		if (c == 'h') {
			puts(range_usage);
			*rc = CLI_OK;
			return -1;
		}
		if ((*rc = range_opt(c, a)))
			return -1;
	}
	if (need_name && optind < argc)
		a->name = argv[optind++];
	if (need_name && !a->name) {
		*rc = cli_usage(range_usage, "missing range NAME");
		return -1;
	}
	if (optind < argc) {
		*rc = cli_usage(range_usage, "unexpected argument '%s'",
				argv[optind]);
		return -1;
	}
	return 0;
}

/* Prints one range as a JSON object or a line for people. */
static void range_print(struct json *j, const struct xmem_range_info *r)
{
	if (j) {
		json_obj(j, NULL);
		json_str(j, "name", r->name);
		json_str(j, "mode", xmem_range_mode_name(r->mode));
		json_u64(j, "offset", r->offset);
		json_u64(j, "size", r->size);
		json_u64(j, "align", r->align);
		json_u64(j, "slot", r->slot);
		json_end(j);
		return;
	}
	printf("%-20s %-5s offset %-10s size %-10s align %s\n", r->name,
	       xmem_range_mode_name(r->mode), cli_fmt_size(r->offset),
	       cli_fmt_size(r->size), cli_fmt_size(r->align));
}

static int range_create(const struct range_args *a)
{
	struct xmem_range_info info;
	struct xmem_device *dev;
	struct xmem_region *reg;
	int rc;

	if (!a->size)
		return cli_usage(
			range_usage,
			"range create: --size is needed and must not be 0");
	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	rc = xmem_range_create(reg, a->name, a->size, a->align, a->mode, &info);
	cli_close_region(&dev, &reg);
	if (rc)
		return cli_fail(rc, "range create");
	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		range_print(&j, &info);
		json_done(&j);
	} else {
		printf("created ");
		range_print(NULL, &info);
	}
	return CLI_OK;
}

static int range_list(void)
{
	struct xmem_range_info *v = NULL;
	struct xmem_device *dev;
	struct xmem_region *reg;
	size_t n = 0;
	struct json j;
	int rc;

	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	rc = xmem_range_list(reg, &v, &n);
	cli_close_region(&dev, &reg);
	if (rc)
		return cli_fail(rc, "range list on '%s'", cli.device);
	if (cli.json) {
		json_init(&j, stdout);
		json_arr(&j, NULL);
	}
	for (size_t i = 0; i < n; i++)
		range_print(cli.json ? &j : NULL, &v[i]);
	if (cli.json) {
		json_end(&j);
		json_done(&j);
	} else if (!n) {
		printf("no ranges on %s\n", cli.device);
	}
	free(v);
	return CLI_OK;
}

/* Opens and maps a range; touches its first byte so that the PMD status
 * reflects a real fault. */
static int range_map(struct xmem_region *reg, const char *name, unsigned of,
		     struct xmem_range **rp, struct xmem_map **mp)
{
	int rc = xmem_range_open(reg, name, of, rp);

	if (rc)
		return cli_fail(rc, "range open");
	rc = xmem_range_map(*rp, (of & XMEM_F_RDONLY) ? XMEM_F_MAP_RDONLY : 0,
			    mp);
	if (rc) {
		xmem_range_close(rp);
		return cli_fail(rc, "range map");
	}
	(void)*(volatile uint8_t *)xmem_map_addr(*mp);
	return 0;
}

/*
 * Finds what the kernel gives a mapping of the range: opens it shared and
 * read-only, maps it and touches its first byte. A range held exclusively
 * elsewhere is not mapped, and the reason says so.
 */
static int range_pmd(struct xmem_region *reg, const char *name,
		     struct xmem_map_pmd *pmd)
{
	struct xmem_range *r;
	struct xmem_map *m;
	int rc;

	memset(pmd, 0, sizeof(*pmd));
	rc = xmem_range_open(reg, name, XMEM_F_SHARED | XMEM_F_RDONLY, &r);
	if (rc == -EBUSY) {
		snprintf(pmd->reason, sizeof(pmd->reason),
			 "not mapped: the range is held exclusively by "
			 "another open");
		return 0;
	}
	if (rc)
		return rc;
	rc = xmem_range_map(r, XMEM_F_MAP_RDONLY, &m);
	if (!rc) {
		(void)*(volatile uint8_t *)xmem_map_addr(m);
		rc = xmem_map_pmd_status(m, pmd);
		xmem_map_delete(&m);
	}
	xmem_range_close(&r);
	return rc;
}

/* Prints one range with its PMD status. */
static void range_info_print(const struct xmem_range_info *info,
			     const struct xmem_map_pmd *pmd)
{
	struct json j;

	if (!cli.json) {
		range_print(NULL, info);
		if (pmd->pmd_mapped)
			printf("  PMD-mapped: yes (%s of %s resident)\n",
			       cli_fmt_size(pmd->pmd_mapped),
			       cli_fmt_size(pmd->resident));
		else
			printf("  PMD-mapped: no (%s)\n", pmd->reason);
		return;
	}
	json_init(&j, stdout);
	json_obj(&j, NULL);
	json_str(&j, "name", info->name);
	json_str(&j, "mode", xmem_range_mode_name(info->mode));
	json_u64(&j, "offset", info->offset);
	json_u64(&j, "size", info->size);
	json_u64(&j, "align", info->align);
	json_u64(&j, "slot", info->slot);
	json_bool(&j, "pmd_mapped", pmd->pmd_mapped > 0);
	json_u64(&j, "pmd_bytes", pmd->pmd_mapped);
	if (!pmd->pmd_mapped)
		json_str(&j, "pmd_reason", pmd->reason);
	json_end(&j);
	json_done(&j);
}

/* Prints the range and what the kernel gave its mapping. */
static int range_info(const struct range_args *a)
{
	struct xmem_range_info info;
	struct xmem_map_pmd pmd;
	struct xmem_device *dev;
	struct xmem_region *reg;
	int rc;

	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	rc = xmem_range_info(reg, a->name, &info);
	if (!rc)
		rc = range_pmd(reg, a->name, &pmd);
	cli_close_region(&dev, &reg);
	if (rc)
		return cli_fail(rc, "range info");
	range_info_print(&info, &pmd);
	return CLI_OK;
}

static int range_resize(const struct range_args *a)
{
	struct xmem_range_info info;
	struct xmem_device *dev;
	struct xmem_region *reg;
	int rc;

	if (!a->size)
		return cli_usage(
			range_usage,
			"range resize: --size is needed and must not be 0");
	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	rc = xmem_range_resize(reg, a->name, a->size);
	if (!rc)
		rc = xmem_range_info(reg, a->name, &info);
	cli_close_region(&dev, &reg);
	if (rc)
		return cli_fail(rc, "range resize");
	printf("resized ");
	range_print(NULL, &info);
	return CLI_OK;
}

static int range_destroy(const struct range_args *a)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	int rc;

	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	rc = xmem_range_destroy(reg, a->name, a->scrub ? XMEM_F_SCRUB : 0);
	cli_close_region(&dev, &reg);
	if (rc)
		return cli_fail(rc, "range destroy");
	printf("destroyed range '%s'%s\n", a->name,
	       a->scrub ? " (scrubbed)" : "");
	return CLI_OK;
}

/* Checks that [offset, offset+len) lies inside the mapping. */
static int io_fits(const struct range_args *a, struct xmem_map *m, uint64_t len)
{
	if (a->offset > xmem_map_size(m) ||
	    len > xmem_map_size(m) - a->offset) {
		fprintf(stderr,
			"xmem: range '%s': %" PRIu64 " bytes at offset "
			"%" PRIu64 " do not fit in its %s\n",
			a->name, len, a->offset,
			cli_fmt_size(xmem_map_size(m)));
		return 0;
	}
	return 1;
}

/* Maps the range, stores the data, and makes it durable. */
static int range_write(const struct range_args *a)
{
	uint64_t len = a->data ? strlen(a->data) : a->length;
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r;
	struct xmem_map *m;
	uint8_t *dst;
	int rc = CLI_FAIL;

	if (!len)
		return cli_usage(range_usage, "range write: give --data TEXT "
					      "or --length with --pattern");
	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	if (range_map(reg, a->name, 0, &r, &m))
		goto out;
	if (io_fits(a, m, len)) {
		const struct xmem_persist_ops *ops = xmem_map_ops(m);

		dst = (uint8_t *)xmem_map_addr(m) + a->offset;
		/* memcpy/memset with persist semantics: durable on return. */
		if (a->data)
			ops->memcpy(dst, a->data, len, 0);
		else
			ops->memset(dst, a->pattern, len, 0);
		printf("wrote %" PRIu64 " bytes at offset %" PRIu64
		       " of range '%s', persisted at %s granularity\n",
		       len, a->offset, a->name,
		       xmem_granularity_name(xmem_map_granularity(m)));
		rc = CLI_OK;
	}
	xmem_map_delete(&m);
	xmem_range_close(&r);
out:
	cli_close_region(&dev, &reg);
	return rc;
}

/* Maps the range read-only and writes the bytes to stdout. */
static int range_read(const struct range_args *a)
{
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *r;
	struct xmem_map *m;
	int rc = CLI_FAIL;

	if (!a->length)
		return cli_usage(range_usage, "range read: --length is needed");
	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	if (range_map(reg, a->name, XMEM_F_SHARED | XMEM_F_RDONLY, &r, &m))
		goto out;
	if (io_fits(a, m, a->length)) {
		const uint8_t *src =
			(const uint8_t *)xmem_map_addr(m) + a->offset;

		if (fwrite(src, 1, a->length, stdout) == a->length)
			rc = CLI_OK;
		fflush(stdout);
	}
	xmem_map_delete(&m);
	xmem_range_close(&r);
out:
	cli_close_region(&dev, &reg);
	return rc;
}

int cmd_range(int argc, char **argv)
{
	static const char *const named[] = { "create",	"info",	 "resize",
					     "destroy", "write", "read" };
	struct range_args a;
	const char *sub;
	int rc = 0, need_name = 0;

	if (argc < 2)
		return cli_usage(range_usage, "missing subcommand");
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		puts(range_usage);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		need_name |= !strcmp(sub, named[i]);
	if (strcmp(sub, "list") && !need_name)
		return cli_usage(range_usage, "unknown subcommand 'range %s'",
				 sub);
	if (range_opts(argc - 1, argv + 1, need_name, &a, &rc))
		return rc;
	if (!strcmp(sub, "create"))
		return range_create(&a);
	if (!strcmp(sub, "list"))
		return range_list();
	if (!strcmp(sub, "info"))
		return range_info(&a);
	if (!strcmp(sub, "resize"))
		return range_resize(&a);
	if (!strcmp(sub, "destroy"))
		return range_destroy(&a);
	if (!strcmp(sub, "write"))
		return range_write(&a);
	return range_read(&a);
}
