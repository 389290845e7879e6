/* SPDX-License-Identifier: MIT */
/* cmd_region.c - "xmem region create|info|check|destroy". */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmds.h"

static const char region_usage[] =
	"xmem region create [-d DEVICE] [-s SIZE]\n"
	"       xmem region info [-d DEVICE] [--json]\n"
	"       xmem region check [-d DEVICE] [--repair] [--json]\n"
	"       xmem region destroy [-d DEVICE] [--force]";

enum { OPT_REPAIR = 256, OPT_FORCE };

static const struct option region_lo[] = {
	CLI_COMMON_LONGOPTS,
	{ "size", required_argument, NULL, 's' },
	{ "repair", no_argument, NULL, OPT_REPAIR },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ 0 },
};

struct region_args {
	uint64_t size;
	int repair, force;
};

/* Parses the options of every region subcommand; returns 0, or the exit
 * code (usage error, or 0 after --help) in *rc. */
static int region_opts(int argc, char **argv, struct region_args *a, int *rc)
{
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "d:jhs:", region_lo, NULL)) != -1) {
		if (cli_common_opt(c, optarg))
			continue;
		switch (c) {
		case 's':
			if ((*rc = cli_size("--size", optarg, &a->size)))
				return -1;
			if (!a->size) {
				*rc = cli_usage(region_usage,
						"--size must not be 0");
				return -1;
			}
			break;
		case OPT_REPAIR:
			a->repair = 1;
			break;
		case OPT_FORCE:
			a->force = 1;
			break;
		case 'h':
			puts(region_usage);
			*rc = CLI_OK;
			return -1;
		default:
			*rc = cli_usage(region_usage, "unknown option");
			return -1;
		}
	}
	if (optind < argc) {
		*rc = cli_usage(region_usage, "unexpected argument '%s'",
				argv[optind]);
		return -1;
	}
	return 0;
}

/* Prints a region's facts, for people or as JSON. */
static void region_print(struct xmem_device *dev,
			 const struct xmem_region_info *in)
{
	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj(&j, NULL);
		cli_json_device(&j, dev);
		json_u64(&j, "size", in->device_size);
		json_u64(&j, "data_offset", in->data_offset);
		json_u64(&j, "data_size", in->data_size);
		json_u64(&j, "used", in->used);
		json_u64(&j, "free", in->free);
		json_u64(&j, "largest_free", in->largest_free);
		json_u64(&j, "ranges", in->nranges);
		json_u64(&j, "label_slots", in->label_slots);
		json_u64(&j, "label_seq", in->label_seq);
		json_end(&j);
		json_done(&j);
		return;
	}
	printf("region on %s (%s, %s granularity)\n", xmem_device_path(dev),
	       xmem_device_kind_name(xmem_device_kind(dev)),
	       xmem_granularity_name(xmem_device_granularity(dev)));
	printf("  size:         %s\n", cli_fmt_size(in->device_size));
	printf("  data:         %s at offset %s\n", cli_fmt_size(in->data_size),
	       cli_fmt_size(in->data_offset));
	printf("  used:         %s in %u range(s)\n", cli_fmt_size(in->used),
	       in->nranges);
	printf("  free:         %s (largest extent %s)\n",
	       cli_fmt_size(in->free), cli_fmt_size(in->largest_free));
	printf("  label slots:  %u (index sequence %llu)\n", in->label_slots,
	       (unsigned long long)in->label_seq);
}

/* Creates the device file if needed (at --size, default 1 GiB) and a
 * region on it. A device file this command made is removed again if the
 * region cannot be made. */
static int region_create(const struct region_args *a)
{
	struct xmem_region_info in;
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct stat st;
	int rc, existed = stat(cli.device, &st) == 0;

	if (cli_open_device(a->size ? a->size : CLI_DEFAULT_SIZE, &dev))
		return CLI_FAIL;
	rc = xmem_region_create(dev, &reg);
	if (rc) {
		cli_fail(rc, "region create on '%s'", cli.device);
		xmem_device_close(&dev);
		if (!existed)
			unlink(cli.device);
		return CLI_FAIL;
	}
	rc = xmem_region_info(reg, &in);
	if (!rc)
		region_print(dev, &in);
	cli_close_region(&dev, &reg);
	return rc ? cli_fail(rc, "region info") : CLI_OK;
}

static int region_info(void)
{
	struct xmem_region_info in;
	struct xmem_device *dev;
	struct xmem_region *reg;
	int rc;

	if (cli_open_region(&dev, &reg))
		return CLI_FAIL;
	rc = xmem_region_info(reg, &in);
	if (!rc)
		region_print(dev, &in);
	cli_close_region(&dev, &reg);
	return rc ? cli_fail(rc, "region info on '%s'", cli.device) : CLI_OK;
}

struct check_out {
	struct json *j;
};

/* Prints one problem found by the check. */
static void check_problem(const struct xmem_check_problem *p, void *arg)
{
	struct check_out *o = arg;

	if (o->j) {
		json_obj(o->j, NULL);
		json_str(o->j, "structure", p->structure);
		json_u64(o->j, "offset", p->offset);
		json_str(o->j, "problem", p->what);
		json_bool(o->j, "repaired", p->repaired);
		json_bool(o->j, "fatal", p->fatal);
		json_bool(o->j, "note", p->note);
		json_end(o->j);
		return;
	}
	printf("%s at offset 0x%llx: %s%s\n", p->structure,
	       (unsigned long long)p->offset, p->what,
	       p->repaired ? " [repaired]"
	       : p->note   ? " [note]"
	       : p->fatal  ? " [prevents open]"
			   : "");
}

/* Validates all region metadata; --repair restores from good copies. */
static int region_check(const struct region_args *a)
{
	struct check_out o = { 0 };
	struct xmem_device *dev;
	unsigned n = 0;
	struct json j;
	int rc;

	if (cli_open_device(0, &dev))
		return CLI_FAIL;
	if (cli.json) {
		o.j = &j;
		json_init(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "device", cli.device);
		json_arr(&j, "problems");
	}
	rc = xmem_region_check(dev, a->repair ? XMEM_F_REPAIR : 0,
			       check_problem, &o, &n);
	if (o.j) {
		json_end(&j);
		json_u64(&j, "found", n);
		json_bool(&j, "clean", rc == 0);
		json_end(&j);
		json_done(&j);
	} else if (rc == 0) {
		printf("region on %s: %s\n", cli.device,
		       n ? "clean after repair" : "clean");
	}
	xmem_device_close(&dev);
	if (rc)
		return cli_fail(rc, "region check on '%s'", cli.device);
	return CLI_OK;
}

static int region_destroy(const struct region_args *a)
{
	struct xmem_device *dev;
	int rc;

	if (cli_open_device(0, &dev))
		return CLI_FAIL;
	rc = xmem_region_destroy(dev, a->force ? XMEM_F_FORCE : 0);
	xmem_device_close(&dev);
	if (rc)
		return cli_fail(rc, "region destroy on '%s'", cli.device);
	printf("region on %s destroyed\n", cli.device);
	return CLI_OK;
}

int cmd_region(int argc, char **argv)
{
	struct region_args a;
	const char *sub;
	int rc = 0;

	if (argc < 2)
		return cli_usage(region_usage, "missing subcommand");
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		puts(region_usage);
		return CLI_OK;
	}
	if (region_opts(argc - 1, argv + 1, &a, &rc))
		return rc;
	if (!strcmp(sub, "create"))
		return region_create(&a);
	if (!strcmp(sub, "info"))
		return region_info();
	if (!strcmp(sub, "check"))
		return region_check(&a);
	if (!strcmp(sub, "destroy"))
		return region_destroy(&a);
	return cli_usage(region_usage, "unknown subcommand 'region %s'", sub);
}
