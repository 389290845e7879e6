/* SPDX-License-Identifier: MIT */
/* cmd_device.c - "xmem device info": what a device is. */
#include <string.h>

#include "cli.h"
#include "cmds.h"

static const char device_usage[] = "xmem device info [-d DEVICE] [--json]";

/* Prints kind, size, alignment and granularity of the device. */
static int device_info(int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONGOPTS, { 0 } };
	struct xmem_device *dev;
	int c;

	while ((c = getopt_long(argc, argv, "d:jh", lo, NULL)) != -1) {
		if (cli_common_opt(c, optarg))
			continue;
		if (c == 'h') {
			puts(device_usage);
			return CLI_OK;
		}
		return cli_usage(device_usage, "unknown option");
	}
	if (optind < argc)
		return cli_usage(device_usage, "unexpected argument '%s'",
				 argv[optind]);
	if (cli_open_device(0, &dev))
		return CLI_FAIL;
	if (cli.json) {
		struct json j;

		json_init(&j, stdout);
		json_obj(&j, NULL);
		cli_json_device(&j, dev);
		json_u64(&j, "size", xmem_device_size(dev));
		json_u64(&j, "align", xmem_device_align(dev));
		json_bool(&j, "volatile", xmem_device_is_volatile(dev));
		json_end(&j);
		json_done(&j);
	} else {
		printf("device:      %s\n", xmem_device_path(dev));
		printf("kind:        %s\n",
		       xmem_device_kind_name(xmem_device_kind(dev)));
		printf("size:        %s\n",
		       cli_fmt_size(xmem_device_size(dev)));
		printf("align:       %s\n",
		       cli_fmt_size(xmem_device_align(dev)));
		printf("granularity: %s\n",
		       xmem_granularity_name(xmem_device_granularity(dev)));
		printf("volatile:    %s\n",
		       xmem_device_is_volatile(dev) ? "yes" : "no");
	}
	xmem_device_close(&dev);
	return CLI_OK;
}

int cmd_device(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(device_usage, "missing subcommand");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		puts(device_usage);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "info"))
		return device_info(argc - 1, argv + 1);
	return cli_usage(device_usage, "unknown subcommand 'device %s'",
			 argv[1]);
}
