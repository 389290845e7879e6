/* SPDX-License-Identifier: MIT */
/*
 * top.c - live statistics: a tier created with XMEM_F_TIER_PUBLISH is
 * seen by `xmem tier list` and `xmem tier top --once` from another
 * process, with its bytes in each tier; the segment goes away with it.
 */
#include <stdio.h>
#include <string.h>
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

int main(void)
{
	const char *build = getenv("XMEM_TEST_BUILD");
	struct xmem_tier_config cfg;
	struct xmem_tier *t;
	char cmd[1024], want[64];
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
	struct timespec ts = { 0, 100 * 1000000 };
	nanosleep(&ts, NULL); /* a policy tick publishes */

	snprintf(cmd, sizeof(cmd), "%s/tools/xmem/xmem tier list %d", build,
		 (int)getpid());
	out = run(cmd);
	printf("%s", out);
	CHECK(strstr(out, "\"name\":\"top-test\"") ||
	      strstr(out, "\"name\": \"top-test\""));
	snprintf(want, sizeof(want), "%llu", 4ull * MiB);
	CHECK(strstr(out, want) != NULL); /* dram_bytes */
	snprintf(want, sizeof(want), "%llu", 12ull * MiB);
	CHECK(strstr(out, want) != NULL); /* device_bytes */

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
	return test_result();
}
