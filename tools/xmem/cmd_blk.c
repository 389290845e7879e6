/* SPDX-License-Identifier: MIT */
/*
 * cmd_blk.c - "xmem blk format|info|check|read|write|serve": the BTT on a
 * range in mode blk, or on a raw namespace image (--raw FILE [--offset N]),
 * for example the backing file of a kernel sector-mode namespace.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmds.h"

static const char blk_usage[] =
	"xmem blk format TARGET [-s 512|4096] [--v2]\n"
	"       xmem blk info TARGET [--json]\n"
	"       xmem blk check TARGET [--repair] [--json]\n"
	"       xmem blk read TARGET --lba N [--count N]   (sectors to "
	"stdout)\n"
	"       xmem blk write TARGET --lba N [--count N] --pattern BYTE\n"
	"       xmem blk serve TARGET... [--host ADDR] [--port N] "
	"[--unix PATH] [--read-only]\n"
	"TARGET is a range in mode blk (RANGE or DEVICE:RANGE, with -d "
	"DEVICE)\n"
	"or --raw FILE [--offset N] [--length N]: a raw namespace image whose\n"
	"BTT starts 4 KiB in (v1.1, as the kernel writes it) or at 0 (v2.0).";

enum {
	OPT_RAW = 256,
	OPT_V2,
	OPT_LBA,
	OPT_COUNT,
	OPT_PATTERN,
	OPT_HOST,
	OPT_PORT,
	OPT_UNIX,
	OPT_RO,
	OPT_OFFSET,
	OPT_LENGTH,
	OPT_REPAIR
};

#define MAX_TARGETS 16

struct target {
	char name[256];
	const char *raw; /* file, or NULL for a range */
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *range;
	struct xmem_blk *blk;
};

struct blk_args {
	const char *raw[MAX_TARGETS];
	unsigned nraw;
	uint64_t offset, length, lba, count, lbasize;
	int v2, ro, pattern, repair;
	const char *host, *unix_path;
	int port; /* -1: the NBD default 10809 */
	char **names;
	int nnames;
};

static const struct option blk_lo[] = {
	CLI_COMMON_LONGOPTS,
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "length", required_argument, NULL, OPT_LENGTH },
	{ "sector-size", required_argument, NULL, 's' },
	{ "v2", no_argument, NULL, OPT_V2 },
	{ "lba", required_argument, NULL, OPT_LBA },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "pattern", required_argument, NULL, OPT_PATTERN },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "unix", required_argument, NULL, OPT_UNIX },
	{ "read-only", no_argument, NULL, OPT_RO },
	{ "repair", no_argument, NULL, OPT_REPAIR },
	{ 0 },
};

/* Parses a number option up to max; exit code 2 on error. */
static int num_opt(const char *opt, const char *arg, uint64_t max,
		   uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 0);
	if (errno || *end || end == arg || *out > max)
		return cli_usage(blk_usage,
				 "%s: '%s' is not a number up to "
				 "%" PRIu64,
				 opt, arg, max);
	return 0;
}

/* Handles one option that is not common; 0 or an exit code. */
static int blk_opt(int c, struct blk_args *a)
{
	uint64_t v;
	int rc;

	switch (c) {
	case OPT_RAW:
		if (a->nraw >= MAX_TARGETS)
			return cli_usage(blk_usage, "too many --raw files");
		a->raw[a->nraw++] = optarg;
		return 0;
	case OPT_OFFSET:
		return cli_size("--offset", optarg, &a->offset);
	case OPT_LENGTH:
		return cli_size("--length", optarg, &a->length);
	case 's':
		return cli_size("--sector-size", optarg, &a->lbasize);
	case OPT_V2:
		a->v2 = 1;
		return 0;
	case OPT_LBA:
		return num_opt("--lba", optarg, UINT64_MAX, &a->lba);
	case OPT_COUNT:
		return num_opt("--count", optarg, 1u << 20, &a->count);
	case OPT_PATTERN:
		rc = num_opt("--pattern", optarg, 255, &v);
		a->pattern = (int)v;
		return rc;
	case OPT_HOST:
		a->host = optarg;
		return 0;
	case OPT_PORT:
		rc = num_opt("--port", optarg, 65535, &v);
		a->port = (int)v;
		return rc;
	case OPT_UNIX:
		a->unix_path = optarg;
		return 0;
	case OPT_RO:
		a->ro = 1;
		return 0;
	case OPT_REPAIR:
		a->repair = 1;
		return 0;
	default:
		return cli_usage(blk_usage, "unknown option");
	}
}

/* Parses options; -1 with the exit code in *rc when the command stops. */
static int blk_opts(int argc, char **argv, struct blk_args *a, int *rc)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->count = 1;
	a->pattern = -1;
	a->port = -1;
	while ((c = getopt_long(argc, argv, "d:jhs:", blk_lo, NULL)) != -1) {
		if (cli_common_opt(c, optarg))
			continue;
		if (c == 'h') {
			puts(blk_usage);
			*rc = CLI_OK;
			return -1;
		}
		if ((*rc = blk_opt(c, a)))
			return -1;
	}
	a->names = argv + optind;
	a->nnames = argc - optind;
	if (!a->nraw && !a->nnames) {
		*rc = cli_usage(blk_usage, "missing TARGET (a range or --raw)");
		return -1;
	}
	if (a->nraw + (unsigned)a->nnames > MAX_TARGETS) {
		*rc = cli_usage(blk_usage, "too many targets");
		return -1;
	}
	return 0;
}

/* Opens a range target down to the range itself. */
static int range_open(struct target *t, const char *arg)
{
	char dev[4096];
	int rc;

	if (cli_split_target(arg, dev, sizeof(dev), t->name, sizeof(t->name)))
		return cli_usage(blk_usage, "bad target '%s'", arg);
	rc = xmem_device_open(&t->dev, dev, 0, 0);
	if (rc)
		return cli_fail(rc, "cannot open '%s'", dev);
	rc = xmem_region_open(t->dev, &t->reg);
	if (rc == 0)
		rc = xmem_range_open(t->reg, t->name, 0, &t->range);
	if (rc)
		return cli_fail(rc, "range '%s' on '%s'", t->name, dev);
	return 0;
}

/* Closes whatever part of a target was opened. */
static void target_close(struct target *t)
{
	if (t->blk)
		xmem_blk_close(&t->blk);
	if (t->range)
		xmem_range_close(&t->range);
	if (t->reg)
		xmem_region_close(&t->reg);
	if (t->dev)
		xmem_device_close(&t->dev);
}

/* Opens the BTT of target i (ranges first, then --raw files). */
static int target_open(const struct blk_args *a, unsigned i, unsigned flags,
		       struct target *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	if (i >= (unsigned)a->nnames) {
		const char *f = a->raw[i - a->nnames], *base = strrchr(f, '/');

		t->raw = f;
		snprintf(t->name, sizeof(t->name), "%s", base ? base + 1 : f);
		rc = xmem_blk_open_raw(f, a->offset, a->length, flags, &t->blk);
		return rc ? cli_fail(rc, "cannot open the BTT in '%s'", f) : 0;
	}
	rc = range_open(t, a->names[i]);
	if (rc)
		return rc;
	rc = xmem_blk_open(t->range, flags, &t->blk);
	return rc ? cli_fail(rc, "cannot open the BTT of range '%s'", t->name)
		  : 0;
}

/* xmem blk format TARGET [-s SIZE] [--v2] */
static int blk_format(const struct blk_args *a)
{
	struct xmem_blk_format_opts o = { .lbasize = (uint32_t)a->lbasize };
	struct target t = { 0 };
	int rc;

	if (a->v2) {
		o.version_major = 2;
		o.version_minor = 0;
	}
	if (a->nraw + (unsigned)a->nnames != 1)
		return cli_usage(blk_usage, "format takes one target");
	if (a->nraw) {
		rc = xmem_blk_format_raw(a->raw[0], a->offset, a->length, &o);
		if (rc)
			return cli_fail(rc, "format '%s'", a->raw[0]);
		snprintf(t.name, sizeof(t.name), "%s", a->raw[0]);
	} else {
		if ((rc = range_open(&t, a->names[0])) == 0) {
			rc = xmem_blk_format(t.range, &o);
			if (rc)
				cli_fail(rc, "format range '%s'", t.name);
		}
		target_close(&t);
		if (rc)
			return CLI_FAIL;
	}
	if (!cli.json)
		printf("formatted %s: BTT v%s, %u-byte sectors\n", t.name,
		       a->v2 ? "2.0" : "1.1", o.lbasize ? o.lbasize : 4096);
	return CLI_OK;
}

/* Formats a uuid as 8-4-4-4-12 hex digits. */
static void uuid_str(char *s, const uint8_t *u)
{
	for (int i = 0, k = 0; i < 16; i++) {
		k += sprintf(s + k, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			s[k++] = '-';
	}
}

/* Prints a BTT summary, as JSON or for people. */
static void info_print(const char *name, const struct xmem_blk_info *in)
{
	char u[40], pu[40];

	uuid_str(u, in->uuid);
	uuid_str(pu, in->parent_uuid);
	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj(&j, NULL);
		json_str(&j, "target", name);
		json_str(&j, "uuid", u);
		json_str(&j, "parent_uuid", pu);
		json_u64(&j, "version_major", in->version_major);
		json_u64(&j, "version_minor", in->version_minor);
		json_u64(&j, "sector_size", in->lbasize);
		json_u64(&j, "internal_sector_size", in->internal_lbasize);
		json_u64(&j, "sectors", in->nlba);
		json_u64(&j, "size", in->size);
		json_u64(&j, "btt_offset", in->btt_offset);
		json_u64(&j, "namespace_size", in->namespace_size);
		json_u64(&j, "arenas", in->narenas);
		json_u64(&j, "nfree", in->nfree);
		json_u64(&j, "lanes", in->nlanes);
		json_str(&j, "flog_slots",
			 in->flog_slots[1] == 1 ? "0,1" : "0,2");
		json_u64(&j, "arenas_in_error", in->arena_errors);
		json_end(&j);
		json_done(&j);
		return;
	}
	printf("%s: BTT v%u.%u uuid %s\n", name, in->version_major,
	       in->version_minor, u);
	printf("  parent uuid   %s\n", pu);
	printf("  sectors       %" PRIu64 " x %u bytes (%s; %u on media)\n",
	       in->nlba, in->lbasize, cli_fmt_size(in->size),
	       in->internal_lbasize);
	printf("  arenas        %u, nfree %u, lanes %u, flog slots (0,%u)\n",
	       in->narenas, in->nfree, in->nlanes, in->flog_slots[1]);
	printf("  offset        %" PRIu64 " in a namespace of %s\n",
	       in->btt_offset, cli_fmt_size(in->namespace_size));
}

/* xmem blk info TARGET [--json] */
static int blk_info(const struct blk_args *a)
{
	struct xmem_blk_info in;
	struct target t;

	if (a->nraw + (unsigned)a->nnames != 1)
		return cli_usage(blk_usage, "info takes one target");
	if (target_open(a, 0, XMEM_F_BLK_RDONLY, &t)) {
		target_close(&t);
		return CLI_FAIL;
	}
	xmem_blk_get_info(t.blk, &in);
	info_print(t.name, &in);
	target_close(&t);
	return CLI_OK;
}

struct check_out {
	struct json *j;
};

/* Prints one problem found by check. */
static void check_cb(const struct xmem_blk_problem *p, void *arg)
{
	struct check_out *o = arg;

	if (o->j) {
		json_obj(o->j, NULL);
		json_str(o->j, "structure", p->structure);
		json_u64(o->j, "offset", p->offset);
		json_str(o->j, "what", p->what);
		json_end(o->j);
	} else {
		printf("%s at offset %#" PRIx64 ": %s\n", p->structure,
		       p->offset, p->what);
	}
}

/* --repair: restores info blocks from their good copies and gives lanes
 * whose free block is owned elsewhere an unowned one, first. */
static int blk_repair(const struct blk_args *a)
{
	struct target t = { 0 };
	struct xmem_map *m = NULL;
	unsigned n = 0;
	int rc;

	if (a->nraw) {
		rc = xmem_blk_repair_raw(a->raw[0], a->offset, a->length, &n);
	} else {
		rc = range_open(&t, a->names[0]);
		if (rc) {
			target_close(&t);
			return rc;
		}
		rc = xmem_range_map(t.range, 0, &m);
		if (rc == 0)
			rc = xmem_blk_repair_mem(xmem_map_addr(m),
						 xmem_map_size(m),
						 xmem_map_ops(m), &n);
		if (m)
			xmem_map_delete(&m);
		target_close(&t);
	}
	if (rc)
		return cli_fail(rc, "repair");
	if (!cli.json)
		printf("repaired %u structure%s (info blocks, lanes)\n", n,
		       n == 1 ? "" : "s");
	return 0;
}

/* xmem blk check TARGET [--repair] [--json]: exit 0 clean, 1 problems. */
static int blk_check(const struct blk_args *a)
{
	struct check_out o = { NULL };
	struct target t = { 0 };
	struct json j;
	unsigned n = 0;
	int rc;

	if (a->nraw + (unsigned)a->nnames != 1)
		return cli_usage(blk_usage, "check takes one target");
	if (a->repair && (rc = blk_repair(a)) != 0)
		return rc;
	if (cli.json) {
		json_init(&j, stdout);
		json_obj(&j, NULL);
		json_arr(&j, "problems");
		o.j = &j;
	}
	if (a->nraw) {
		snprintf(t.name, sizeof(t.name), "%s", a->raw[0]);
		rc = xmem_blk_check_raw(a->raw[0], a->offset, a->length,
					check_cb, &o, &n);
	} else {
		struct xmem_map *m = NULL;

		rc = range_open(&t, a->names[0]);
		if (rc) {
			target_close(&t);
			return rc;
		}
		rc = xmem_range_map(t.range, XMEM_F_MAP_RDONLY, &m);
		if (rc == 0)
			rc = xmem_blk_check_mem(xmem_map_addr(m),
						xmem_map_size(m), check_cb, &o,
						&n);
		if (m)
			xmem_map_delete(&m);
		target_close(&t);
	}
	if (cli.json) {
		json_end(&j);
		json_u64(&j, "problems_found", n);
		json_bool(&j, "clean", rc == 0);
		json_end(&j);
		json_done(&j);
	}
	if (rc && rc != XMEM_E_CORRUPT)
		return cli_fail(rc, "check '%s'", t.name);
	if (!cli.json)
		printf("%s: %s (%u problem%s)\n", t.name,
		       rc ? "BTT has problems" : "BTT clean", n,
		       n == 1 ? "" : "s");
	return rc ? CLI_FAIL : CLI_OK;
}

/* xmem blk read|write TARGET --lba N [--count N] [--pattern B] */
static int blk_rw(const struct blk_args *a, int wr)
{
	struct target t;
	uint8_t *buf;
	uint32_t lbs;
	int rc;

	if (a->nraw + (unsigned)a->nnames != 1)
		return cli_usage(blk_usage, "read/write take one target");
	if (wr && a->pattern < 0)
		return cli_usage(blk_usage, "write needs --pattern BYTE");
	if (target_open(a, 0, wr ? 0 : XMEM_F_BLK_RDONLY, &t)) {
		target_close(&t);
		return CLI_FAIL;
	}
	lbs = xmem_blk_lbasize(t.blk);
	buf = malloc(a->count * lbs);
	if (!buf) {
		target_close(&t);
		return cli_fail(-ENOMEM, "blk");
	}
	memset(buf, a->pattern, a->count * lbs);
	rc = wr ? xmem_blk_write(t.blk, a->lba, buf, a->count)
		: xmem_blk_read(t.blk, a->lba, buf, a->count);
	if (rc == 0 && !wr && fwrite(buf, lbs, a->count, stdout) != a->count)
		rc = -EIO;
	free(buf);
	target_close(&t);
	return rc ? cli_fail(rc, "%s sectors %" PRIu64 "+%" PRIu64,
			     wr ? "write" : "read", a->lba, a->count)
		  : CLI_OK;
}

static struct xmem_nbd_server *serve_srv;

/* SIGTERM/SIGINT: ask the server to stop. */
static void on_term(int sig)
{
	(void)sig;
	if (serve_srv)
		xmem_nbd_server_stop(serve_srv);
}

/* Listens as asked (TCP on loopback unless only --unix is given). */
static int serve_listen(const struct blk_args *a, struct xmem_nbd_server *s)
{
	int rc = 0;

	if (a->unix_path) {
		rc = xmem_nbd_server_listen_unix(s, a->unix_path);
		if (rc)
			return rc;
		printf("listening on unix %s\n", a->unix_path);
	}
	if (!a->unix_path || a->host || a->port >= 0) {
		uint16_t port = (uint16_t)(a->port >= 0 ? a->port : 10809);

		rc = xmem_nbd_server_listen_tcp(s, a->host, port);
		if (rc == 0)
			printf("listening on tcp %s:%u\n",
			       a->host ? a->host : "127.0.0.1",
			       xmem_nbd_server_port(s));
	}
	return rc;
}

/* xmem blk serve TARGET...: one export per target. */
static int blk_serve(const struct blk_args *a)
{
	unsigned n = a->nraw + (unsigned)a->nnames, i;
	struct target t[MAX_TARGETS];
	struct xmem_nbd_server *s = NULL;
	struct sigaction sa = { .sa_handler = on_term };
	int rc = 0;

	memset(t, 0, sizeof(t));
	for (i = 0; i < n && rc == 0; i++)
		rc = target_open(a, i, a->ro ? XMEM_F_BLK_RDONLY : 0, &t[i]);
	if (rc == 0 && (rc = xmem_nbd_server_new(NULL, &s)) != 0)
		rc = cli_fail(rc, "NBD server");
	for (i = 0; i < n && rc == 0; i++)
		if ((rc = xmem_nbd_server_add_export(s, t[i].name, t[i].raw,
						     t[i].blk, a->ro)))
			rc = cli_fail(rc, "export '%s'", t[i].name);
	if (rc == 0 && (rc = serve_listen(a, s)) != 0)
		rc = cli_fail(rc, "listen");
	if (rc == 0) {
		serve_srv = s;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		printf("serving %u export%s\n", n, n == 1 ? "" : "s");
		fflush(stdout);
		rc = xmem_nbd_server_run(s);
		if (rc)
			rc = cli_fail(rc, "serve");
		serve_srv = NULL;
	}
	xmem_nbd_server_delete(&s);
	for (i = 0; i < n; i++)
		target_close(&t[i]);
	if (rc == 0 && !cli.json)
		printf("stopped; exports flushed\n");
	return rc ? CLI_FAIL : CLI_OK;
}

/* Entry point: argv[0] is "blk", argv[1] the subcommand. */
int cmd_blk(int argc, char **argv)
{
	struct blk_args a;
	const char *sub;
	int rc;

	if (argc < 2)
		return cli_usage(blk_usage, "missing subcommand");
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		puts(blk_usage);
		return CLI_OK;
	}
	if (blk_opts(argc - 1, argv + 1, &a, &rc))
		return rc;
	if (!strcmp(sub, "format"))
		return blk_format(&a);
	if (!strcmp(sub, "info"))
		return blk_info(&a);
	if (!strcmp(sub, "check"))
		return blk_check(&a);
	if (!strcmp(sub, "read"))
		return blk_rw(&a, 0);
	if (!strcmp(sub, "write"))
		return blk_rw(&a, 1);
	if (!strcmp(sub, "serve"))
		return blk_serve(&a);
	return cli_usage(blk_usage, "unknown subcommand '%s'", sub);
}
