/* SPDX-License-Identifier: MIT */
/*
 * cmd_tier.c - `xmem tier`: run an unmodified program on tiers, and watch
 * running tiers.
 *
 *   xmem tier run [--dram SIZE] [--device DEV:RANGE] [--threshold SIZE]
 *                 [--unit SIZE] [--verbose] -- PROGRAM ARGS...
 *   xmem tier top [--once] [--interval MS] [PID]
 *   xmem tier list [-j] [PID]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmds.h"
#include "tier/pub_layout.h"

#define TIER_USAGE                                                             \
	"usage: xmem tier run [--dram SIZE] [--device DEV:RANGE] "             \
	"[--threshold SIZE] [--unit SIZE] [--verbose] -- PROGRAM ARGS...\n"    \
	"       xmem tier top [--once] [--interval MS] [PID]\n"                \
	"       xmem tier list [-j] [PID]\n"

/* Finds libxmem-tier-preload.so: $XMEM_TIER_PRELOAD, the build tree next
 * to this executable, or the install directory. */
static int find_preload(char *out, size_t len)
{
	static const char *const rel[] = {
		"../../src/tier/libxmem-tier-preload.so",
		"../lib/xmem/libxmem-tier-preload.so",
		"../lib/x86_64-linux-gnu/xmem/libxmem-tier-preload.so",
		"../lib64/xmem/libxmem-tier-preload.so",
	};
	const char *env = getenv("XMEM_TIER_PRELOAD");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env) {
		snprintf(out, len, "%s", env);
		return access(out, R_OK);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (slash)
		slash[1] = 0;
	for (size_t k = 0; k < sizeof(rel) / sizeof(rel[0]); k++) {
		char p[PATH_MAX + 64];

		snprintf(p, sizeof(p), "%s%s", exe, rel[k]);
		if (realpath(p, out) && access(out, R_OK) == 0)
			return 0;
	}
	return -1;
}

/* Opens DEV:RANGE (mode tier, on shmem) and exports it to the preload. */
static int setup_device(const char *target, struct xmem_device **dev,
			struct xmem_region **reg, struct xmem_range **range)
{
	char devpath[PATH_MAX], name[XMEM_RANGE_NAME_MAX + 1], buf[32];
	const struct xmem_range_info *ri;
	struct statfs sf;
	int rc;

	if (cli_split_target(target, devpath, sizeof(devpath), name,
			     sizeof(name)))
		return cli_usage(TIER_USAGE, "bad --device '%s'", target);
	cli.device = devpath;
	if (cli_open_region(dev, reg))
		return CLI_FAIL;
	rc = xmem_range_open(*reg, name, 0, range);
	if (rc)
		return cli_fail(rc, "cannot open range '%s'", name);
	ri = xmem_range_get_info(*range);
	if (ri->mode != XMEM_RANGE_TIER)
		return cli_fail(XMEM_E_MODE, "range '%s' has mode %s, not tier",
				name, xmem_range_mode_name(ri->mode));
	if (fstatfs(xmem_device_fd(*dev), &sf) == 0 &&
	    sf.f_type != TMPFS_MAGIC && sf.f_type != HUGETLBFS_MAGIC) {
		fprintf(stderr,
			"xmem: device '%s' is not shmem or hugetlbfs; a "
			"remapping tier needs userfaultfd MINOR faults there\n",
			devpath);
		return CLI_FAIL;
	}
	setenv("XMEM_TIER_DEVICE_PATH", xmem_device_path(*dev), 1);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ri->offset);
	setenv("XMEM_TIER_DEVICE_OFFSET", buf, 1);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ri->size);
	setenv("XMEM_TIER_DEVICE_SIZE", buf, 1);
	return 0;
}

/* Runs the program with the preload; waits; the range stays open (owned)
 * until it exits. */
static int run_program(char **argv)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return cli_fail(-errno, "fork");
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "xmem: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	signal(SIGINT, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cli_fail(-errno, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return CLI_OK;
	if (WIFEXITED(status))
		fprintf(stderr, "xmem: %s exited with %d\n", argv[0],
			WEXITSTATUS(status));
	else
		fprintf(stderr, "xmem: %s killed by signal %d\n", argv[0],
			WTERMSIG(status));
	return CLI_FAIL;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dram", required_argument, NULL, 'm' },
		{ "threshold", required_argument, NULL, 't' },
		{ "unit", required_argument, NULL, 'u' },
		{ "verbose", no_argument, NULL, 'v' },
		CLI_COMMON_LONGOPTS,
		{ 0 },
	};
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = NULL;
	struct xmem_range *range = NULL;
	const char *target = NULL;
	uint64_t v;
	char so[PATH_MAX], buf[32];
	int c, rc;

	setenv("XMEM_TIER_DRAM", "1G", 1);
	while ((c = getopt_long(argc, argv, "+d:jhm:t:u:v", lo, NULL)) != -1) {
		if (c == 'd') {
			target = optarg;
			continue;
		}
		if (c == 'm' || c == 't' || c == 'u') {
			const char *env = c == 'm'   ? "XMEM_TIER_DRAM"
					  : c == 't' ? "XMEM_TIER_THRESHOLD"
						     : "XMEM_TIER_UNIT";
			if (cli_size(env, optarg, &v))
				return CLI_USAGE;
			snprintf(buf, sizeof(buf), "%llu",
				 (unsigned long long)v);
			setenv(env, buf, 1);
		} else if (c == 'v') {
			setenv("XMEM_TIER_VERBOSE", "1", 1);
		} else if (c == 'h') {
			fputs(TIER_USAGE, stdout);
			return CLI_OK;
		} else if (!cli_common_opt(c, optarg)) {
			return cli_usage(TIER_USAGE, "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage(TIER_USAGE, "tier run: no program given");
	if (find_preload(so, sizeof(so)))
		return cli_fail(-ENOENT, "cannot find libxmem-tier-preload.so "
					 "(set XMEM_TIER_PRELOAD)");
	if (target && (rc = setup_device(target, &dev, &reg, &range)) != 0)
		goto out;
	setenv("LD_PRELOAD", so, 1);
	rc = run_program(argv + optind);
out:
	xmem_range_close(&range);
	if (reg)
		cli_close_region(&dev, &reg);
	return rc;
}

/* A published tier, copied out of its segment. */
struct snap {
	char file[300];
	struct tier_pub_hdr h;
	uint8_t *cell;
};

/* Reads one segment; validates it as untrusted input. 0 or -1. */
static int read_segment(const char *file, struct snap *s)
{
	char path[320];
	struct stat sb;
	void *m;
	int fd, ok = -1;

	snprintf(path, sizeof(path), "/dev/shm/%s", file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || (size_t)sb.st_size < sizeof(s->h)) {
		close(fd);
		return -1;
	}
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	for (int tries = 0; tries < 100 && ok; tries++) {
		const struct tier_pub_hdr *h = m;
		uint64_t seq = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);

		if (seq & 1)
			continue;
		memcpy(&s->h, h, sizeof(s->h));
		if (s->h.magic != TIER_PUB_MAGIC ||
		    s->h.version != TIER_PUB_VERSION ||
		    s->h.hdr_size < sizeof(s->h) ||
		    s->h.nunits > (uint64_t)sb.st_size ||
		    s->h.hdr_size + s->h.nunits > (uint64_t)sb.st_size)
			break;
		s->cell = malloc(s->h.nunits ? s->h.nunits : 1);
		if (!s->cell)
			break;
		memcpy(s->cell, (const char *)m + s->h.hdr_size, s->h.nunits);
		if (__atomic_load_n(&h->seq, __ATOMIC_ACQUIRE) == seq)
			ok = 0;
		else
			free(s->cell);
	}
	s->h.name[sizeof(s->h.name) - 1] = 0;
	munmap(m, (size_t)sb.st_size);
	snprintf(s->file, sizeof(s->file), "%s", file);
	return ok;
}

/* Collects the segments of pid (0: every process). */
static int collect(long pid, struct snap *out, int max)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	char pfx[64];
	int n = 0;

	if (!d)
		return 0;
	if (pid)
		snprintf(pfx, sizeof(pfx), TIER_PUB_PREFIX "%ld.", pid);
	else
		snprintf(pfx, sizeof(pfx), TIER_PUB_PREFIX);
	while ((e = readdir(d)) && n < max) {
		if (strncmp(e->d_name, pfx, strlen(pfx)))
			continue;
		if (read_segment(e->d_name, &out[n]) == 0) {
			/* a segment of a dead process is stale: remove it */
			if (kill((pid_t)out[n].h.pid, 0) == 0 ||
			    errno == EPERM) {
				n++;
			} else {
				char name[300];

				snprintf(name, sizeof(name), "/%s", e->d_name);
				shm_unlink(name);
				free(out[n].cell);
			}
		}
	}
	closedir(d);
	return n;
}

/* ANSI 256-colour background for a cell: DRAM warm, device cool, hotter
 * brighter; untouched grey. */
static int cell_colour(unsigned where, unsigned heat)
{
	static const int dram[] = { 52,	 88,  124, 160, 196,
				    202, 208, 214, 220, 226 };
	static const int dev[] = { 17, 18, 19, 20, 21, 27, 33, 39, 45, 51 };
	unsigned k = heat * 10 / 64;

	if (where == 1)
		return dram[k];
	if (where == 2)
		return dev[k];
	return 236;
}

/* Draws one tier: counters and a heat map of at most rows x cols cells. */
static void draw(const struct snap *s, int cols, int rows, double dt,
		 const struct snap *prev)
{
	const struct tier_pub_hdr *h = &s->h;
	uint64_t cells = (uint64_t)cols * rows;
	uint64_t per = h->nunits ? (h->nunits + cells - 1) / cells : 1;
	double cpu = 0;

	if (prev && dt > 0)
		cpu = (h->engine_cpu_ns - prev->h.engine_cpu_ns) / 1e9 / dt;
	else if (h->uptime_ns)
		cpu = (double)h->engine_cpu_ns / (double)h->uptime_ns;
	printf("\033[1m%s\033[0m pid %llu  %s in %llu units of %s\n", h->name,
	       (unsigned long long)h->pid, cli_fmt_size(h->size),
	       (unsigned long long)h->nunits, cli_fmt_size(h->unit));
	printf("  DRAM %s (group %s of %s, peak %s)  device %s\n",
	       cli_fmt_size(h->dram_bytes), cli_fmt_size(h->used),
	       cli_fmt_size(h->budget), cli_fmt_size(h->peak),
	       cli_fmt_size(h->device_bytes));
	printf("  promotions %llu  demotions %llu  migrated %s  hinting faults "
	       "%llu  first touches %llu  engine CPU %.1f%%\n",
	       (unsigned long long)h->promotions,
	       (unsigned long long)h->demotions,
	       cli_fmt_size(h->migrated_bytes),
	       (unsigned long long)h->hint_faults,
	       (unsigned long long)h->first_touch, cpu * 100);
	for (uint64_t c = 0; c < cells && c * per < h->nunits; c++) {
		unsigned dram = 0, dev = 0, heat = 0, n = 0;

		for (uint64_t u = c * per; u < (c + 1) * per && u < h->nunits;
		     u++, n++) {
			unsigned w = TIER_CELL_WHERE(s->cell[u]);
			dram += w == 1;
			dev += w == 2;
			heat += TIER_CELL_HEAT(s->cell[u]);
		}
		if (c % cols == 0)
			printf("  ");
		printf("\033[48;5;%dm \033[0m",
		       cell_colour(dram >= dev && dram ? 1
				   : dev	       ? 2
						       : 0,
				   n ? heat / n : 0));
		if (c % cols == (uint64_t)cols - 1)
			printf("\n");
	}
	printf("\n  one cell = %llu unit(s); \033[48;5;196m \033[0m DRAM "
	       "\033[48;5;27m \033[0m device (brighter = hotter)  "
	       "\033[48;5;236m \033[0m untouched\n\n",
	       (unsigned long long)per);
}

static int cmd_top(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'i' },
		CLI_COMMON_LONGOPTS,
		{ 0 },
	};
	struct snap cur[16], prev[16];
	int c, once = 0, ms = 1000, n, np = 0;
	long pid = 0;

	while ((c = getopt_long(argc, argv, "d:jhoi:", lo, NULL)) != -1) {
		if (c == 'o')
			once = 1;
		else if (c == 'i')
			ms = atoi(optarg) > 0 ? atoi(optarg) : 1000;
		else if (c == 'h')
			return fputs(TIER_USAGE, stdout), CLI_OK;
		else if (!cli_common_opt(c, optarg))
			return cli_usage(TIER_USAGE, "bad option");
	}
	if (optind < argc)
		pid = atol(argv[optind]);
	for (;;) {
		n = collect(pid, cur, 16);
		if (!once)
			printf("\033[H\033[2J");
		if (!n)
			printf("no running tiers%s\n",
			       pid ? " in that process" : "");
		for (int k = 0; k < n; k++) {
			const struct snap *p = NULL;

			for (int q = 0; q < np; q++)
				if (!strcmp(prev[q].file, cur[k].file))
					p = &prev[q];
			draw(&cur[k], 64, 8, ms / 1000.0, p);
		}
		fflush(stdout);
		for (int q = 0; q < np; q++)
			free(prev[q].cell);
		memcpy(prev, cur, sizeof(cur[0]) * n);
		np = n;
		if (once)
			break;
		usleep((useconds_t)ms * 1000);
	}
	for (int q = 0; q < np; q++)
		free(prev[q].cell);
	return n || !pid ? CLI_OK : CLI_FAIL;
}

static int cmd_list(int argc, char **argv)
{
	struct snap s[16];
	struct json j;
	long pid = 0;
	int c, n;

	while ((c = getopt_long(
			argc, argv, "d:jh",
			(const struct option[]){ CLI_COMMON_LONGOPTS, { 0 } },
			NULL)) != -1)
		if (c == 'h')
			return fputs(TIER_USAGE, stdout), CLI_OK;
		else if (!cli_common_opt(c, optarg))
			return cli_usage(TIER_USAGE, "bad option");
	if (optind < argc)
		pid = atol(argv[optind]);
	n = collect(pid, s, 16);
	json_init(&j, stdout);
	json_arr(&j, NULL);
	for (int k = 0; k < n; k++) {
		const struct tier_pub_hdr *h = &s[k].h;
		json_obj(&j, NULL);
		json_str(&j, "name", h->name);
		json_u64(&j, "pid", h->pid);
		json_u64(&j, "size", h->size);
		json_u64(&j, "unit", h->unit);
		json_u64(&j, "dram_bytes", h->dram_bytes);
		json_u64(&j, "device_bytes", h->device_bytes);
		json_u64(&j, "dram_budget", h->budget);
		json_u64(&j, "dram_used", h->used);
		json_u64(&j, "promotions", h->promotions);
		json_u64(&j, "demotions", h->demotions);
		json_u64(&j, "migrated_bytes", h->migrated_bytes);
		json_u64(&j, "hint_faults", h->hint_faults);
		json_u64(&j, "engine_cpu_ns", h->engine_cpu_ns);
		json_end(&j);
		free(s[k].cell);
	}
	json_end(&j);
	json_done(&j);
	return CLI_OK;
}

int cmd_tier(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub || !strcmp(sub, "-h") || !strcmp(sub, "--help"))
		return sub ? (fputs(TIER_USAGE, stdout), CLI_OK)
			   : cli_usage(TIER_USAGE, "tier: no subcommand");
	optind = 1;
	if (!strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(sub, "top"))
		return cmd_top(argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return cmd_list(argc - 1, argv + 1);
	return cli_usage(TIER_USAGE, "tier: unknown subcommand '%s'", sub);
}
