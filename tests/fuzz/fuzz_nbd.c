/* SPDX-License-Identifier: MIT */
/*
 * fuzz_nbd.c - the NBD server's handshake and request parser. The input is
 * everything a client sends on one connection (greeting reply, options,
 * requests with payloads); the server side runs exactly as for a socket,
 * against two small BTT exports (one read-only): with requests executed
 * inline by the reader, queued to two worker threads (queue limits,
 * concurrent execution, replies under the send lock), and both mixed as
 * the server does (small ones inline, large ones queued). Replies are
 * discarded, so thread timing changes nothing the target checks. It must never
 * crash, hang, or touch bytes outside an export.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "blk/nbd_proto.h"

#define NS ((16ull << 20) + 2 * 4096)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t left;
};

static ssize_t in_read(void *ctx, void *buf, size_t len)
{
	struct input *in = ctx;

	if (len > in->left)
		len = in->left;
	memcpy(buf, in->p, len);
	in->p += len;
	in->left -= len;
	return (ssize_t)len;
}

static ssize_t out_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	return (ssize_t)len;
}

static struct nbd_export exps[2];
static struct nbd_export *expp[2] = { &exps[0], &exps[1] };

/* Two exports on memory: 4096-byte sectors, and 512 read-only. */
static void setup(void)
{
	const struct xmem_persist_ops *ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	static const char *names[2] = { "a", "ro" };

	for (int i = 0; i < 2; i++) {
		struct xmem_blk_format_opts o = { .lbasize = i ? 512 : 4096 };
		uint8_t *ns = aligned_alloc(4096, NS);
		struct xmem_blk *b;

		if (!ns)
			abort();
		memset(ns, 0, NS);
		if (xmem_blk_format_mem(ns, NS, ops, &o) ||
		    xmem_blk_open_mem(ns, NS, ops, 0, &b))
			abort();
		exps[i].name = (char *)names[i];
		exps[i].desc = (char *)"fuzz";
		exps[i].blk = b;
		exps[i].rdonly = i;
		exps[i].lbasize = xmem_blk_lbasize(b);
		exps[i].size = xmem_blk_nlba(b) * exps[i].lbasize;
		xmem__nbd_rmw_init(&exps[i].rmw);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* inline, every request queued to two workers, and the server's
	 * mix (small requests inline, large ones queued) */
	static const struct nbd_limits lim[3] = {
		{ .workers = 0,
		  .max_request = 1u << 20,
		  .max_inflight = 2u << 20 },
		{ .workers = 2,
		  .max_request = 1u << 20,
		  .max_inflight = 2u << 20 },
		{ .workers = 2,
		  .max_request = 1u << 20,
		  .max_inflight = 2u << 20,
		  .inline_max = 4096 },
	};

	if (!exps[0].blk)
		setup();
	for (int i = 0; i < 3; i++) {
		struct input in = { data, size };
		struct nbd_io io = { in_read, out_write, &in };

		xmem__nbd_conn_run(&io, expp, 2, &lim[i], NULL, NULL);
	}
	return 0;
}
