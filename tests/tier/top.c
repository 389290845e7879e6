/* SPDX-License-Identifier: MIT */
/*
 * top.c - live statistics: a tier created with XMEM_F_TIER_PUBLISH is
 * seen by `xmem tier list` and `xmem tier top --once` from another
 * process, with its bytes in each tier; the segment goes away with it,
 * and the segment of a child that ends with _exit (no destructor runs)
 * is removed by the next tier that publishes.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xmem.h>

#include "test.h"

#define MiB (1ull << 20)

/* Runs a command and returns its output (static buffer). */
static const char *run(const char *cmd)
{
	static char out[65536];
	FILE *f = popen(cmd, "r");
	size_t n;

	if (!f)
		return "";
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	pclose(f);
	return out;
}

/* Does the JSON in out hold "key":value (with or without a space)? */
static int has_field(const char *out, const char *key, unsigned long long v)
{
	char a[96], b[96];

	snprintf(a, sizeof(a), "\"%s\":%llu", key, v);
	snprintf(b, sizeof(b), "\"%s\": %llu", key, v);
	return strstr(out, a) || strstr(out, b);
}

/* Does a segment of process pid exist? */
static int has_segment(pid_t pid)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	char pfx[64];
	int found = 0;

	snprintf(pfx, sizeof(pfx), "xmem-tier.%d.", (int)pid);
	while (d && (e = readdir(d)))
		found |= !strncmp(e->d_name, pfx, strlen(pfx));
	if (d)
		closedir(d);
	return found;
}

/* A child publishes a tier and ends with _exit: its segment stays until
 * the next tier that publishes sweeps it. */
static void child_exit_segment(struct xmem_tier_config *cfg)
{
	struct xmem_tier *t;
	int st = 0;
	pid_t pid = fork();

	REQUIRE(pid >= 0);
	if (pid == 0) {
		cfg->name = "child";
		if (xmem_tier_new(cfg, &t) == 0 && has_segment(getpid()))
			_exit(0); /* no destructor, no delete */
		_exit(1);
	}
	/* (another process that publishes may sweep it first: also right) */
	REQUIRE(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cfg->name = "sweeper";
	REQUIRE_OK(xmem_tier_new(cfg, &t));
	CHECK(!has_segment(pid));
	xmem_tier_delete(&t);
}

int main(void)
{
	const char *build = getenv("XMEM_TEST_BUILD");
	struct xmem_tier_config cfg;
	struct xmem_tier *t;
	char cmd[1024];
	const char *out;
	int rc;

	if (!build)
		SKIP("XMEM_TEST_BUILD is not set (run through meson test)");
	snprintf(cmd, sizeof(cmd), "%s/tools/xmem/xmem", build);
	if (access(cmd, X_OK))
		SKIP("%s is not built", cmd);
	xmem_tier_config_init(&cfg);
	cfg.size = 16 * MiB;
	cfg.dram_budget = 4 * MiB;
	cfg.flags = XMEM_F_TIER_PUBLISH;
	cfg.name = "top-test";
	rc = xmem_tier_new(&cfg, &t);
	if (rc == -EPERM)
		SKIP("userfaultfd is not permitted here");
	REQUIRE_OK(rc);
	memset(xmem_tier_addr(t), 7, 16 * MiB);

	/* The policy thread publishes ten times a second: look until the
	 * fill shows (2 s at most). */
	snprintf(cmd, sizeof(cmd), "%s/tools/xmem/xmem tier list %d", build,
		 (int)getpid());
	for (int i = 0; i < 20; i++) {
		struct timespec ts = { 0, 100 * 1000000 };

		nanosleep(&ts, NULL);
		out = run(cmd);
		if (has_field(out, "device_bytes", 12ull * MiB))
			break;
	}
	printf("%s", out);
	CHECK(strstr(out, "\"name\":\"top-test\"") ||
	      strstr(out, "\"name\": \"top-test\""));
	CHECK(has_field(out, "dram_bytes", 4ull * MiB));
	CHECK(has_field(out, "device_bytes", 12ull * MiB));

	snprintf(cmd, sizeof(cmd), "%s/tools/xmem/xmem tier top --once %d",
		 build, (int)getpid());
	out = run(cmd);
	CHECK(strstr(out, "top-test") != NULL);
	CHECK(strstr(out, "promotions") != NULL);
	xmem_tier_delete(&t);

	snprintf(cmd, sizeof(cmd), "%s/tools/xmem/xmem tier list %d", build,
		 (int)getpid());
	out = run(cmd);
	CHECK(strstr(out, "top-test") == NULL);
	child_exit_segment(&cfg);
	return test_result();
}
