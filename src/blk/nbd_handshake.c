/* SPDX-License-Identifier: MIT */
/*
 * nbd_handshake.c - the NBD fixed newstyle handshake: greeting, client
 * flags, and the options GO, INFO, LIST, EXPORT_NAME, ABORT and
 * STRUCTURED_REPLY. Every length a client sends is checked before it is
 * used; unknown options get NBD_REP_ERR_UNSUP, oversize ones
 * NBD_REP_ERR_TOO_BIG (or the connection is closed past 1 MiB).
 */
#include <string.h>

#include "blk/nbd_proto.h"

/* Reads exactly len bytes. */
int xmem__nbd_read_full(struct nbd_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = c->io->read(c->io->ctx, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes exactly len bytes; a failure marks the connection dead. */
int xmem__nbd_write_full(struct nbd_conn *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len && !__atomic_load_n(&c->dead, __ATOMIC_RELAXED)) {
		ssize_t n = c->io->write(c->io->ctx, p, len);

		if (n <= 0) {
			__atomic_store_n(&c->dead, 1, __ATOMIC_RELAXED);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return __atomic_load_n(&c->dead, __ATOMIC_RELAXED) ? -1 : 0;
}

/* Sends one option reply with its payload. */
static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type,
		     const void *data, uint32_t len)
{
	uint8_t h[20];

	nbd_put64(h, NBD_REP_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, type);
	nbd_put32(h + 16, len);
	if (xmem__nbd_write_full(c, h, sizeof(h)))
		return -1;
	return len ? xmem__nbd_write_full(c, data, len) : 0;
}

/* The export of that name; the empty name is the first export. */
static struct nbd_export *export_find(struct nbd_conn *c, const char *name,
				      size_t len)
{
	if (len == 0 && c->nexps)
		return c->exps[0]; /* the default export */
	for (unsigned i = 0; i < c->nexps; i++)
		if (strlen(c->exps[i]->name) == len &&
		    memcmp(c->exps[i]->name, name, len) == 0)
			return c->exps[i];
	return NULL;
}

/* The transmission flags of an export on this connection. */
static uint16_t tx_flags(const struct nbd_conn *c, const struct nbd_export *e)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
		     NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
		     NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;

	if (e->rdonly)
		f |= NBD_FLAG_READ_ONLY;
	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	return f;
}

/* LIST: one NBD_REP_SERVER per export, then ACK. */
static int opt_list(struct nbd_conn *c, uint32_t len)
{
	uint8_t buf[4 + NBD_OPT_MAX];

	if (len)
		return opt_reply(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID, NULL, 0);
	for (unsigned i = 0; i < c->nexps; i++) {
		size_t n = strlen(c->exps[i]->name);

		nbd_put32(buf, (uint32_t)n);
		memcpy(buf + 4, c->exps[i]->name, n);
		if (opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf,
			      (uint32_t)(4 + n)))
			return -1;
	}
	return opt_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* The NBD_REP_INFO replies of INFO/GO: export, block sizes, and the name
 * and description when asked for. Each type is sent at most once, however
 * often the request lists it: a 4 KiB option cannot make the server send
 * megabytes. Unknown types are ignored, as the protocol asks. */
static int info_replies(struct nbd_conn *c, uint32_t opt,
			const struct nbd_export *e, const uint8_t *reqs,
			uint16_t nreq)
{
	uint8_t b[4 + NBD_OPT_MAX];
	uint32_t pref = e->lbasize > 4096 ? e->lbasize : 4096;
	size_t n;

	nbd_put16(b, NBD_INFO_EXPORT);
	nbd_put64(b + 2, e->size);
	nbd_put16(b + 10, tx_flags(c, e));
	if (opt_reply(c, opt, NBD_REP_INFO, b, 12))
		return -1;
	nbd_put16(b, NBD_INFO_BLOCK_SIZE);
	nbd_put32(b + 2, e->lbasize);
	nbd_put32(b + 6, pref);
	nbd_put32(b + 10, c->lim->max_request);
	if (opt_reply(c, opt, NBD_REP_INFO, b, 14))
		return -1;
	for (uint16_t i = 0, sent = 0; i < nreq; i++) {
		uint16_t t = nbd_get16(reqs + 2 * i);
		const char *s = t == NBD_INFO_NAME	    ? e->name
				: t == NBD_INFO_DESCRIPTION ? e->desc
							    : NULL;

		if (!s || !*s || (sent & (1u << t)))
			continue;
		sent |= (uint16_t)(1u << t);
		n = strlen(s);
		nbd_put16(b, t);
		memcpy(b + 2, s, n);
		if (opt_reply(c, opt, NBD_REP_INFO, b, (uint32_t)(2 + n)))
			return -1;
	}
	return 0;
}

/* INFO and GO: data = u32 name length, name, u16 count, u16 requests.
 * Returns 1 when GO succeeded. */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const uint8_t *d,
		       uint32_t len)
{
	struct nbd_export *e;
	uint32_t nlen;
	uint16_t nreq;

	if (len < 6)
		goto invalid;
	nlen = nbd_get32(d);
	if (nlen > len - 6)
		goto invalid;
	nreq = nbd_get16(d + 4 + nlen);
	if ((uint64_t)len != 6ull + nlen + 2ull * nreq)
		goto invalid;
	e = export_find(c, (const char *)d + 4, nlen);
	if (!e)
		return opt_reply(c, opt, NBD_REP_ERR_UNKNOWN, NULL, 0);
	if (info_replies(c, opt, e, d + 6 + nlen, nreq) ||
	    opt_reply(c, opt, NBD_REP_ACK, NULL, 0))
		return -1;
	if (opt != NBD_OPT_GO)
		return 0;
	c->exp = e;
	return 1;
invalid:
	return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
}

/* EXPORT_NAME: no option reply; an unknown name closes the connection. */
static int opt_export_name(struct nbd_conn *c, const uint8_t *d, uint32_t len)
{
	static const uint8_t zeroes[124];
	struct nbd_export *e = export_find(c, (const char *)d, len);
	uint8_t b[10];

	if (!e)
		return -1;
	nbd_put64(b, e->size);
	nbd_put16(b + 8, tx_flags(c, e));
	if (xmem__nbd_write_full(c, b, sizeof(b)))
		return -1;
	if (!c->no_zeroes && xmem__nbd_write_full(c, zeroes, sizeof(zeroes)))
		return -1;
	c->exp = e;
	return 1;
}

/* Reads and throws away an option payload too big to keep. */
static int opt_discard(struct nbd_conn *c, uint32_t len)
{
	uint8_t sink[4096];

	while (len) {
		uint32_t n = len < sizeof(sink) ? len : sizeof(sink);

		if (xmem__nbd_read_full(c, sink, n))
			return -1;
		len -= n;
	}
	return 0;
}

/* One option; 1 to enter transmission, 0 to go on, -1 to drop, 2 after
 * ABORT. */
static int option(struct nbd_conn *c, uint32_t opt, uint32_t len)
{
	uint8_t d[NBD_OPT_MAX];

	if (len > NBD_OPT_MAX) {
		if (len > NBD_OPT_DISCARD || opt == NBD_OPT_EXPORT_NAME ||
		    opt_discard(c, len))
			return -1;
		return opt_reply(c, opt, NBD_REP_ERR_TOO_BIG, NULL, 0);
	}
	if (xmem__nbd_read_full(c, d, len))
		return -1;
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		return opt_export_name(c, d, len);
	case NBD_OPT_ABORT:
		opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
		return 2;
	case NBD_OPT_LIST:
		return opt_list(c, len);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len)
			return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
		c->structured = 1;
		return opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return opt_info_go(c, opt, d, len);
	default:
		/* A client without fixed newstyle cannot parse an error. */
		if (!c->fixed)
			return -1;
		return opt_reply(c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
	}
}

/* Greeting, client flags, then options until GO/EXPORT_NAME/ABORT. */
int xmem__nbd_handshake(struct nbd_conn *c)
{
	uint8_t b[18];
	uint32_t cflags;

	nbd_put64(b, NBD_MAGIC);
	nbd_put64(b + 8, NBD_IHAVEOPT);
	nbd_put16(b + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	if (xmem__nbd_write_full(c, b, 18) || xmem__nbd_read_full(c, b, 4))
		return -1;
	cflags = nbd_get32(b);
	if (cflags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return -1; /* the protocol requires closing on unknown flags */
	c->fixed = !!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE);
	c->no_zeroes = !!(cflags & NBD_FLAG_C_NO_ZEROES);
	for (unsigned i = 0; i < NBD_OPTS_MAX; i++) {
		int rc;

		if (xmem__nbd_read_full(c, b, 16) ||
		    nbd_get64(b) != NBD_IHAVEOPT)
			return -1;
		rc = option(c, nbd_get32(b + 8), nbd_get32(b + 12));
		if (rc == 1 || rc < 0)
			return rc;
		if (rc == 2)
			return 0;
	}
	return -1; /* too many options: a client going round in circles */
}
