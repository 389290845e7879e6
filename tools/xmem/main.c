/* SPDX-License-Identifier: MIT */
/*
 * main.c - the xmem command: a git-style table of subcommands.
 *
 *   xmem [-d DEVICE] device|region|range|heap|blk|tier SUBCOMMAND [ARGS]
 *
 * The device defaults to $XMEM_DEVICE, else the file "xmem.img" in the
 * working directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmds.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{ "device", cmd_device,
	  "show what a device is (kind, size, granularity)" },
	{ "region", cmd_region, "create, inspect, check or destroy a region" },
	{ "range", cmd_range, "create, list, resize, map or destroy ranges" },
	{ "heap", cmd_heap, "persistent transactional heap on a range" },
	{ "blk", cmd_blk, "BTT block mode on a range, served over NBD" },
	{ "tier", cmd_tier, "DRAM/device tiering of an address range" },
};

/* Prints the command table. */
static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: xmem [-d DEVICE] [--json] COMMAND SUBCOMMAND "
		   "[ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].fn)
			fprintf(f, "  %-8s %s\n", commands[i].name,
				commands[i].help);
	fprintf(f,
		"\nThe device is -d DEVICE, else $XMEM_DEVICE, else the "
		"file '%s' here.\n"
		"Run 'xmem COMMAND --help' for a command's subcommands.\n",
		CLI_DEFAULT_DEVICE);
	return rc;
}

int main(int argc, char **argv)
{
	int i = 1;

	cli.device = getenv("XMEM_DEVICE");
	if (!cli.device || !*cli.device)
		cli.device = CLI_DEFAULT_DEVICE;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if ((!strcmp(argv[i], "-d") || !strcmp(argv[i], "--device")) &&
		    i + 1 < argc)
			cli.device = argv[++i];
		else if (!strncmp(argv[i], "--device=", 9))
			cli.device = argv[i] + 9;
		else if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
			cli.json = 1;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return usage(stdout, CLI_OK);
		else if (!strcmp(argv[i], "--version")) {
			printf("xmem %s\n", xmem_version());
			return CLI_OK;
		} else
			return cli_usage(NULL, "unknown option '%s'", argv[i]) +
			       usage(stderr, 0);
	}
	if (i >= argc)
		return usage(stderr, CLI_USAGE);
	if (!strcmp(argv[i], "help"))
		return usage(stdout, CLI_OK);
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name))
			continue;
		if (!commands[c].fn) {
			fprintf(stderr,
				"xmem: '%s' is not built into this "
				"xmem\n",
				argv[i]);
			return CLI_FAIL;
		}
		optind = 1;
		return commands[c].fn(argc - i, argv + i);
	}
	cli_usage(NULL, "unknown command '%s'", argv[i]);
	usage(stderr, 0);
	return CLI_USAGE;
}
