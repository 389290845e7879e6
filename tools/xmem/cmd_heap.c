/* SPDX-License-Identifier: MIT */
/*
 * cmd_heap.c - "xmem heap create|info|stats|check|dump" on a range in
 * mode heap. The range is opened exclusively, so a heap in use by another
 * process gives a clear EBUSY.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmds.h"

static const char heap_usage[] =
	"xmem heap create RANGE\n"
	"       xmem heap info RANGE [--json]\n"
	"       xmem heap stats RANGE [--json]\n"
	"       xmem heap check RANGE [--repair] [--json]\n"
	"       xmem heap dump RANGE TYPE [--json]   (TYPE: a number or "
	"'all')\n"
	"(all take -d DEVICE; RANGE may be written DEVICE:RANGE)";

enum { OPT_REPAIR = 256 };

static const struct option heap_lo[] = {
	CLI_COMMON_LONGOPTS,
	{ "repair", no_argument, NULL, OPT_REPAIR },
	{ 0 },
};

struct heap_ctx {
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *range;
	struct xmem_map *map;
	struct xmem_heap *heap;
};

/* Opens device, region and range (exclusively) and maps the range. */
static int heap_target(const char *target, struct heap_ctx *x)
{
	static char devbuf[4096];
	char name[XMEM_RANGE_NAME_MAX + 1];
	int rc;

	memset(x, 0, sizeof(*x));
	if (cli_split_target(target, devbuf, sizeof(devbuf), name,
			     sizeof(name)))
		return cli_usage(heap_usage, "bad target '%s'", target);
	if (devbuf[0])
		cli.device = devbuf;
	if (cli_open_region(&x->dev, &x->reg))
		return CLI_FAIL;
	if ((rc = xmem_range_open(x->reg, name, 0, &x->range))) {
		cli_close_region(&x->dev, &x->reg);
		if (rc == -EBUSY)
			return cli_fail(rc,
					"range '%s' is in use by another "
					"process",
					name);
		return cli_fail(rc, "range open '%s'", name);
	}
	return 0;
}

static void heap_untarget(struct heap_ctx *x)
{
	if (x->heap)
		xmem_heap_close(&x->heap);
	if (x->map)
		xmem_map_delete(&x->map);
	if (x->range)
		xmem_range_close(&x->range);
	cli_close_region(&x->dev, &x->reg);
}

/* Prints the statistics (and with `classes`, per class usage). */
static void print_stats(struct xmem_heap *h, int classes)
{
	struct xmem_heap_stats st;
	struct json j;

	if (xmem_heap_stats(h, &st)) {
		cli_fail(-EIO, "heap stats");
		return;
	}
	if (cli.json) {
		json_init(&j, stdout);
		json_obj(&j, NULL);
		json_u64(&j, "size", st.heap_size);
		json_u64(&j, "data_size", st.data_size);
		json_u64(&j, "chunk_size", st.chunk_size);
		json_u64(&j, "chunks", st.nchunks);
		json_u64(&j, "used", st.used);
		json_u64(&j, "free", st.free);
		json_u64(&j, "largest_free", st.largest_free);
		json_dbl(&j, "fragmentation", st.fragmentation);
		json_u64(&j, "objects", st.objects);
		json_u64(&j, "extents", st.extents);
		json_u64(&j, "recovered_records", st.recovered_records);
		if (classes) {
			json_arr(&j, "classes");
			for (unsigned i = 0; i < st.nclasses; i++) {
				if (!st.classes[i].runs)
					continue;
				json_obj(&j, NULL);
				json_u64(&j, "size", st.classes[i].size);
				json_u64(&j, "runs", st.classes[i].runs);
				json_u64(&j, "used", st.classes[i].used);
				json_u64(&j, "slots", st.classes[i].slots);
				json_end(&j);
			}
			json_end(&j);
		}
		json_end(&j);
		json_done(&j);
		return;
	}
	printf("size %s, data %s in %" PRIu64 " chunks of %s\n",
	       cli_fmt_size(st.heap_size), cli_fmt_size(st.data_size),
	       st.nchunks, cli_fmt_size(st.chunk_size));
	printf("used %s, free %s, largest free %s, fragmentation %.3f\n",
	       cli_fmt_size(st.used), cli_fmt_size(st.free),
	       cli_fmt_size(st.largest_free), st.fragmentation);
	printf("objects %" PRIu64 " (%" PRIu64 " large), recovered records "
	       "at open %" PRIu64 "\n",
	       st.objects, st.extents, st.recovered_records);
	if (!classes)
		return;
	printf("%10s %8s %10s %10s\n", "class", "runs", "used", "slots");
	for (unsigned i = 0; i < st.nclasses; i++)
		if (st.classes[i].runs)
			printf("%10" PRIu64 " %8" PRIu64 " %10" PRIu64
			       " %10" PRIu64 "\n",
			       st.classes[i].size, st.classes[i].runs,
			       st.classes[i].used, st.classes[i].slots);
}

/* heap create / info / stats / dump: open (or create) the heap. */
static int heap_open_cmd(const char *verb, const char *target, int create,
			 struct heap_ctx *x)
{
	int rc;

	if ((rc = heap_target(target, x)))
		return rc;
	if ((rc = xmem_range_map(x->range, 0, &x->map)) ||
	    (rc = create ? xmem_heap_create_map(x->map, 0, &x->heap)
			 : xmem_heap_open_map(x->map, 0, &x->heap))) {
		heap_untarget(x);
		return cli_fail(rc, "heap %s '%s'", verb, target);
	}
	if (xmem_range_get_info(x->range)->mode != XMEM_RANGE_HEAP)
		fprintf(stderr, "xmem: warning: range mode is %s, not heap\n",
			xmem_range_mode_name(
				xmem_range_get_info(x->range)->mode));
	return 0;
}

struct dump_arg {
	struct json *j;
	uint64_t n;
};

static int dump_fn(xmem_oid oid, uint64_t size, uint32_t type, void *arg)
{
	struct dump_arg *d = arg;

	d->n++;
	if (d->j) {
		json_obj(d->j, NULL);
		json_u64(d->j, "oid", oid);
		json_u64(d->j, "size", size);
		json_u64(d->j, "type", type);
		json_end(d->j);
	} else {
		printf("%#14" PRIx64 " %10" PRIu64 " type %u\n", oid, size,
		       type);
	}
	return 0;
}

static int heap_dump(const char *target, const char *type_s)
{
	struct dump_arg d = { NULL, 0 };
	struct heap_ctx x;
	uint32_t type = XMEM_HEAP_ANY_TYPE;
	struct json j;
	char *end;
	int rc;

	if (strcmp(type_s, "all")) {
		unsigned long t = strtoul(type_s, &end, 0);
		if (*end || t > XMEM_HEAP_TYPE_MAX)
			return cli_usage(heap_usage,
					 "TYPE '%s' is not 0..65535 "
					 "or 'all'",
					 type_s);
		type = (uint32_t)t;
	}
	if ((rc = heap_open_cmd("dump", target, 0, &x)))
		return rc;
	if (cli.json) {
		json_init(&j, stdout);
		json_arr(&j, NULL);
		d.j = &j;
	}
	rc = xmem_heap_foreach(x.heap, type, dump_fn, &d);
	if (cli.json) {
		json_end(&j);
		json_done(&j);
	} else {
		printf("%" PRIu64 " object(s)\n", d.n);
	}
	heap_untarget(&x);
	return rc ? cli_fail(rc, "heap dump") : CLI_OK;
}

struct check_arg {
	struct json *j;
};

static void check_fn(const struct xmem_check_problem *p, void *arg)
{
	struct check_arg *c = arg;

	if (c->j) {
		json_obj(c->j, NULL);
		json_str(c->j, "structure", p->structure);
		json_u64(c->j, "offset", p->offset);
		json_str(c->j, "problem", p->what);
		json_bool(c->j, "repaired", p->repaired);
		json_bool(c->j, "fatal", p->fatal);
		json_end(c->j);
		return;
	}
	printf("%s at heap offset %" PRIu64 ": %s%s\n", p->structure, p->offset,
	       p->what, p->repaired ? "" : " [not repaired]");
}

static int heap_check(const char *target, int repair)
{
	struct check_arg c = { NULL };
	struct heap_ctx x;
	unsigned np = 0;
	struct json j;
	int rc;

	if ((rc = heap_target(target, &x)))
		return rc;
	if ((rc = xmem_range_map(x.range, 0, &x.map))) {
		heap_untarget(&x);
		return cli_fail(rc, "range map");
	}
	if (cli.json) {
		json_init(&j, stdout);
		json_obj(&j, NULL);
		json_arr(&j, "problems");
		c.j = &j;
	}
	rc = xmem_heap_check_map(x.map, repair ? XMEM_F_REPAIR : 0, check_fn,
				 &c, &np);
	if (cli.json) {
		json_end(&j);
		json_u64(&j, "problems_found", np);
		json_bool(&j, "clean", rc == 0);
		json_end(&j);
		json_done(&j);
	} else {
		printf("%s: %u problem(s)%s\n", target, np,
		       rc	      ? ", heap damaged"
		       : repair && np ? ", all repaired"
				      : ", clean");
	}
	heap_untarget(&x);
	return rc ? CLI_FAIL : CLI_OK;
}

int cmd_heap(int argc, char **argv)
{
	const char *verb;
	struct heap_ctx x;
	int c, rc, repair = 0;

	if (argc < 2)
		return cli_usage(heap_usage, "missing subcommand");
	verb = argv[1];
	if (!strcmp(verb, "-h") || !strcmp(verb, "--help")) {
		puts(heap_usage);
		return CLI_OK;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "d:jh", heap_lo, NULL)) != -1) {
		if (cli_common_opt(c, optarg))
			continue;
		if (c == 'h') {
			puts(heap_usage);
			return CLI_OK;
		}
		if (c == OPT_REPAIR) {
			repair = 1;
			continue;
		}
		return cli_usage(heap_usage, "unknown option");
	}
	if (optind >= argc)
		return cli_usage(heap_usage, "missing RANGE");
	const char *target = argv[optind++];
	if (!strcmp(verb, "dump")) {
		if (optind != argc - 1)
			return cli_usage(heap_usage, "heap dump: RANGE TYPE");
		return heap_dump(target, argv[optind]);
	}
	if (optind != argc)
		return cli_usage(heap_usage, "unexpected argument '%s'",
				 argv[optind]);
	if (!strcmp(verb, "check"))
		return heap_check(target, repair);
	if (repair)
		return cli_usage(heap_usage, "--repair is for check");
	if (strcmp(verb, "create") && strcmp(verb, "info") &&
	    strcmp(verb, "stats"))
		return cli_usage(heap_usage, "unknown subcommand '%s'", verb);
	if ((rc = heap_open_cmd(verb, target, !strcmp(verb, "create"), &x)))
		return rc;
	if (!strcmp(verb, "create") && !cli.json)
		printf("created heap on %s\n", target);
	print_stats(x.heap, !strcmp(verb, "stats"));
	heap_untarget(&x);
	return CLI_OK;
}
