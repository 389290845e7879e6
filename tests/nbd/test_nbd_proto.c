/* SPDX-License-Identifier: MIT */
/*
 * test_nbd_proto.c - the NBD connection code driven byte by byte, without
 * a socket: a scripted client stream in, the server's replies captured and
 * parsed. An INFO request listing one info type thousands of times gets
 * it answered once; NBD_CMD_FLAG_DF is refused with EINVAL unless
 * structured replies were negotiated (and on anything but a read), as is
 * NO_HOLE on anything but WRITE_ZEROES; both with requests run inline and
 * by worker threads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xmem.h>

#include "blk/nbd_proto.h"
#include "test.h"

#define NS ((16ull << 20) + 2 * 4096)

/* A growable byte buffer. */
struct bytes {
	uint8_t *p;
	size_t len, cap, pos;
	pthread_mutex_t lock;
};

static void put(struct bytes *b, const void *d, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&b->lock);
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		REQUIRE(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	pthread_mutex_unlock(&b->lock);
}

static void put16(struct bytes *b, uint16_t v)
{
	uint8_t x[2];

	nbd_put16(x, v);
	put(b, x, 2);
}

static void put32(struct bytes *b, uint32_t v)
{
	uint8_t x[4];

	nbd_put32(x, v);
	put(b, x, 4);
}

static void put64(struct bytes *b, uint64_t v)
{
	uint8_t x[8];

	nbd_put64(x, v);
	put(b, x, 8);
}

static ssize_t in_read(void *ctx, void *buf, size_t len)
{
	struct bytes *in = ctx;

	if (len > in->len - in->pos)
		len = in->len - in->pos;
	memcpy(buf, in->p + in->pos, len);
	in->pos += len;
	return (ssize_t)len;
}

static struct bytes out;

static ssize_t out_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	put(&out, buf, len);
	return (ssize_t)len;
}

static void opt(struct bytes *b, uint32_t o, const void *d, uint32_t len)
{
	put64(b, NBD_IHAVEOPT);
	put32(b, o);
	put32(b, len);
	put(b, d, len);
}

/* GO (or INFO) for export "a" with nreq copies of info type t. */
static void opt_info(struct bytes *b, uint32_t o, uint16_t nreq, uint16_t t)
{
	struct bytes d = { .lock = PTHREAD_MUTEX_INITIALIZER };

	put32(&d, 1);
	put(&d, "a", 1);
	put16(&d, nreq);
	for (uint16_t i = 0; i < nreq; i++)
		put16(&d, t);
	opt(b, o, d.p, (uint32_t)d.len);
	free(d.p);
}

static void req(struct bytes *b, uint16_t flags, uint16_t type, uint64_t cookie,
		uint64_t off, uint32_t len, const void *data)
{
	put32(b, NBD_REQUEST_MAGIC);
	put16(b, flags);
	put16(b, type);
	put64(b, cookie);
	put64(b, off);
	put32(b, len);
	if (data)
		put(b, data, len);
}

static struct nbd_export exp_a;
static struct nbd_export *expp[1] = { &exp_a };
static char desc[4001];

static void setup(void)
{
	const struct xmem_persist_ops *ops = xmem_persist_ops(XMEM_GRAN_BYTE);
	uint8_t *ns = aligned_alloc(4096, NS);
	struct xmem_blk *b;

	REQUIRE(ns);
	memset(ns, 0, NS);
	REQUIRE_OK(xmem_blk_format_mem(ns, NS, ops, NULL));
	REQUIRE_OK(xmem_blk_open_mem(ns, NS, ops, 0, &b));
	memset(desc, 'd', 4000);
	exp_a = (struct nbd_export){ .name = (char *)"a",
				     .desc = desc,
				     .blk = b,
				     .lbasize = 4096,
				     .size = xmem_blk_nlba(b) * 4096 };
	xmem__nbd_rmw_init(&exp_a.rmw);
}

/* Runs one connection on the scripted input; replies land in `out`. */
static void run(struct bytes *in, unsigned workers)
{
	struct nbd_limits lim = { .workers = workers,
				  .max_request = 1u << 20,
				  .max_inflight = 4u << 20 };
	struct nbd_io io = { in_read, out_write, in };

	out.len = 0;
	xmem__nbd_conn_run(&io, expp, 1, &lim, NULL, NULL);
}

/* The client's flags, then the options. */
static void hello(struct bytes *in)
{
	in->len = in->pos = 0;
	put32(in, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
}

/* Counts the option replies of type `type` after the 18-byte greeting;
 * *end gets where the option replies stop (at the ACK of GO). */
static unsigned opt_replies(uint32_t type, size_t *end)
{
	size_t p = 18;
	unsigned n = 0;

	while (p + 20 <= out.len && nbd_get64(out.p + p) == NBD_REP_MAGIC) {
		uint32_t o = nbd_get32(out.p + p + 8);
		uint32_t t = nbd_get32(out.p + p + 12);

		n += t == type;
		p += 20 + nbd_get32(out.p + p + 16);
		if (o == NBD_OPT_GO && t == NBD_REP_ACK)
			break;
	}
	if (end)
		*end = p;
	return n;
}

/* INFO listing DESCRIPTION 2000 times: one description reply. */
static void info_once(void)
{
	struct bytes in = { .lock = PTHREAD_MUTEX_INITIALIZER };

	hello(&in);
	opt_info(&in, NBD_OPT_INFO, 2000, NBD_INFO_DESCRIPTION);
	opt_info(&in, NBD_OPT_INFO, 2, NBD_INFO_NAME);
	opt(&in, NBD_OPT_ABORT, NULL, 0);
	run(&in, 0);
	/* export + block size + description, then export + block size +
	 * name */
	CHECK(opt_replies(NBD_REP_INFO, NULL) == 6);
	CHECK(opt_replies(NBD_REP_ACK, NULL) == 3);
	CHECK(out.len < 16384);
	free(in.p);
}

/* The error (or 0) of the reply to `cookie`, simple or structured;
 * -1 if there is none. *type gets a structured reply's chunk type. */
static int reply_err(size_t p, uint64_t cookie, uint16_t *type)
{
	while (p + 16 <= out.len) {
		uint32_t magic = nbd_get32(out.p + p);
		uint64_t ck = nbd_get64(out.p + p + 8);

		if (magic == NBD_SIMPLE_REPLY_MAGIC) {
			uint32_t err = nbd_get32(out.p + p + 4);

			if (ck == cookie)
				return (int)err;
			/* only reads of 4096 bytes without error carry data */
			p += 16 + (ck >= 100 && ck < 200 && !err ? 4096 : 0);
			continue;
		}
		if (magic != NBD_STRUCTURED_REPLY_MAGIC || p + 20 > out.len)
			return -1;
		if (ck == cookie) {
			*type = nbd_get16(out.p + p + 6);
			return *type == NBD_REPLY_TYPE_ERROR
				       ? (int)nbd_get32(out.p + p + 20)
				       : 0;
		}
		p += 20 + nbd_get32(out.p + p + 16);
	}
	return -1;
}

/* Command flags valid only on some commands, or only with structured
 * replies. Cookies 100-199 are 4 KiB reads. */
static void cmd_flags(int structured, unsigned workers)
{
	struct bytes in = { .lock = PTHREAD_MUTEX_INITIALIZER };
	static uint8_t data[4096];
	uint16_t t = 0;
	size_t p;

	hello(&in);
	if (structured)
		opt(&in, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	opt_info(&in, NBD_OPT_GO, 0, 0);
	req(&in, NBD_CMD_FLAG_DF, NBD_CMD_READ, 100, 0, 4096, NULL);
	req(&in, 0, NBD_CMD_READ, 101, 4096, 4096, NULL);
	req(&in, NBD_CMD_FLAG_DF, NBD_CMD_WRITE, 1, 0, 4096, data);
	req(&in, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_WRITE, 2, 0, 4096, data);
	req(&in, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FUA, NBD_CMD_WRITE_ZEROES,
	    3, 0, 4096, NULL);
	req(&in, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE, 4, 8192, 4096, data);
	req(&in, NBD_CMD_FLAG_DF, NBD_CMD_FLUSH, 5, 0, 0, NULL);
	req(&in, 0, NBD_CMD_DISC, 6, 0, 0, NULL);
	run(&in, workers);
	opt_replies(0, &p);
	CHECK(reply_err(p, 100, &t) == (structured ? 0 : (int)NBD_EINVAL));
	if (structured)
		CHECK(t == NBD_REPLY_TYPE_OFFSET_DATA);
	CHECK(reply_err(p, 101, &t) == 0);
	CHECK(reply_err(p, 1, &t) == (int)NBD_EINVAL);
	CHECK(reply_err(p, 2, &t) == (int)NBD_EINVAL);
	CHECK(reply_err(p, 3, &t) == 0);
	CHECK(reply_err(p, 4, &t) == 0);
	CHECK(reply_err(p, 5, &t) == (int)NBD_EINVAL);
	free(in.p);
}

int main(void)
{
	pthread_mutex_init(&out.lock, NULL);
	setup();
	info_once();
	for (unsigned w = 0; w <= 2; w += 2) {
		cmd_flags(0, w);
		cmd_flags(1, w);
	}
	free(out.p);
	return test_result();
}
