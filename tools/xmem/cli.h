/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what every xmem subcommand shares: the device it works on,
 * option parsing, error printing with the exit codes, and a JSON writer.
 *
 * Exit codes: 0 success, 1 the operation failed, 2 usage error.
 */
#ifndef XMEM_CLI_H
#define XMEM_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <xmem.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* Default device: a file in the working directory. */
#define CLI_DEFAULT_DEVICE "xmem.img"
#define CLI_DEFAULT_SIZE (1ull << 30)

/* Options every subcommand accepts, filled by cli_common_opt(). */
struct cli_common {
	const char *device; /* -d/--device, $XMEM_DEVICE, or the default */
	int json;	    /* -j/--json */
};
extern struct cli_common cli;

/* The long options every subcommand accepts; put CLI_COMMON_LONGOPTS in a
 * command's option table and "d:jh" in its short option string. */
#define CLI_COMMON_LONGOPTS                                                    \
	{ "device", required_argument, NULL, 'd' },                            \
		{ "json", no_argument, NULL, 'j' },                            \
	{                                                                      \
		"help", no_argument, NULL, 'h'                                 \
	}

/* Handles -d/-j; returns 1 if it consumed the option, 0 if not. */
int cli_common_opt(int c, const char *arg);

/* Prints "xmem: <message>" plus a hint to stderr; returns CLI_USAGE. */
int cli_usage(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints "xmem: <what>: <detail>" for a failed call; returns CLI_FAIL.
 * The detail is xmem_errormsg(), or xmem_strerror(rc) if that is empty. */
int cli_fail(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses a size option ("64M", "2G"); on error prints and returns 2. */
int cli_size(const char *opt, const char *arg, uint64_t *out);

/* Formats a size for people ("2 MiB"). Uses a rotating static buffer. */
const char *cli_fmt_size(uint64_t bytes);

/* Writes "device", "kind" and "granularity" members. */
struct json;
void cli_json_device(struct json *j, struct xmem_device *dev);

/* Opens the command's device (creating it at `create_size` if non-zero),
 * and its region. Either out-pointer may be NULL. Returns 0 or CLI_FAIL
 * after printing the error. */
int cli_open_device(uint64_t create_size, struct xmem_device **devp);
int cli_open_region(struct xmem_device **devp, struct xmem_region **regp);
void cli_close_region(struct xmem_device **devp, struct xmem_region **regp);

/* Splits "DEVICE:RANGE" (or "RANGE" on the default device). */
int cli_split_target(const char *arg, char *dev, size_t devlen, char *range,
		     size_t rangelen);

/*
 * A small streaming JSON writer: json_obj/json_arr open a container
 * (with a key when inside an object), json_end closes it; json_str,
 * json_u64, json_bool write a value with its key (key NULL in arrays).
 */
struct json {
	FILE *f;
	int depth;
	int first[32];
	char kind[32];
};
void json_init(struct json *j, FILE *f);
void json_obj(struct json *j, const char *key);
void json_arr(struct json *j, const char *key);
void json_end(struct json *j);
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_dbl(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, int v);
/* Ends the document with a newline. */
void json_done(struct json *j);

#endif /* XMEM_CLI_H */
