/* SPDX-License-Identifier: MIT */
/*
 * nbd_conn.c - the NBD transmission phase of one connection.
 *
 * The reader validates each request header (magic, flags, type, offset and
 * length against the export and the limits), reads a write's payload, and
 * queues the request for the connection's workers, which run it on the BTT
 * and send the reply under the send lock. Payload bytes queued per
 * connection are capped, so a client that never reads its replies stalls
 * only itself. Bytes outside the export are never touched: the range check
 * happens before any I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blk/nbd_proto.h"
#include "core/error.h"
#include "core/util.h"

#define NBD_QUEUE_MAX 128u /* requests queued per connection */
#define NBD_HDR_ROOM                                                           \
	64u /* buffer bytes before read data, for the reply header */

struct nbd_req {
	struct nbd_req *next;
	size_t cap; /* capacity of data */
	uint16_t flags, type;
	uint64_t cookie, off;
	uint32_t len;
	uint32_t err;  /* a validation error to reply with, or 0 */
	uint64_t qb;   /* payload bytes counted against the connection */
	uint8_t *data; /* write payload */
};

/* A buffer of at least len bytes, from the connection's cache when one
 * fits; *cap gets its capacity. */
static void *buf_get(struct nbd_conn *c, size_t len, size_t *cap)
{
	void *p = NULL;

	pthread_mutex_lock(&c->buf_lock);
	for (unsigned i = 0; i < c->nbufs; i++) {
		if (c->buf_caps[i] < len)
			continue;
		p = c->bufs[i];
		*cap = c->buf_caps[i];
		c->nbufs--;
		c->bufs[i] = c->bufs[c->nbufs];
		c->buf_caps[i] = c->buf_caps[c->nbufs];
		break;
	}
	pthread_mutex_unlock(&c->buf_lock);
	if (p)
		return p;
	*cap = len < 65536 ? 65536 : len;
	return malloc(*cap);
}

/* Keeps a buffer for reuse (up to 16 of at most 4 MiB), else frees. */
static void buf_put(struct nbd_conn *c, void *p, size_t cap)
{
	if (!p)
		return;
	pthread_mutex_lock(&c->buf_lock);
	if (c->nbufs < ARRAY_SIZE(c->bufs) && cap <= (4u << 20)) {
		c->bufs[c->nbufs] = p;
		c->buf_caps[c->nbufs++] = cap;
		p = NULL;
	}
	pthread_mutex_unlock(&c->buf_lock);
	free(p);
}

/* Frees the cached buffers when the connection ends. */
static void bufs_free(struct nbd_conn *c)
{
	while (c->nbufs)
		free(c->bufs[--c->nbufs]);
}

/* Maps an xmem error to the NBD error on the wire. */
static uint32_t wire_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case -EINVAL:
		return NBD_EINVAL;
	case -EROFS:
	case -EPERM:
		return NBD_EPERM;
	case -ENOMEM:
		return NBD_ENOMEM;
	case -ENOSPC:
		return NBD_ENOSPC;
	default:
		return NBD_EIO;
	}
}

/* Sends the reply of one request: simple, or structured when negotiated
 * (an OFFSET_DATA chunk for a read, NONE or ERROR otherwise). */
static void reply(struct nbd_conn *c, const struct nbd_req *r, uint32_t err,
		  void *data)
{
	uint8_t h[32];
	size_t hl;
	int rd = r->type == NBD_CMD_READ && !err;

	if (!c->structured) {
		nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
		nbd_put32(h + 4, err);
		nbd_put64(h + 8, r->cookie);
		hl = 16;
	} else {
		uint16_t type = err  ? NBD_REPLY_TYPE_ERROR
				: rd ? NBD_REPLY_TYPE_OFFSET_DATA
				     : NBD_REPLY_TYPE_NONE;
		uint32_t plen = err ? 6 : rd ? 8 + r->len : 0;

		nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
		nbd_put16(h + 4, NBD_REPLY_FLAG_DONE);
		nbd_put16(h + 6, type);
		nbd_put64(h + 8, r->cookie);
		nbd_put32(h + 16, plen);
		hl = 20;
		if (err) {
			nbd_put32(h + 20, err);
			nbd_put16(h + 24, 0); /* no message */
			hl = 26;
		} else if (rd) {
			nbd_put64(h + 20, r->off);
			hl = 28;
		}
	}
	/* A read's data has NBD_HDR_ROOM bytes of its buffer before it: the
	 * header goes there, and the reply leaves in one send. */
	if (rd) {
		memcpy((uint8_t *)data - hl, h, hl);
		pthread_mutex_lock(&c->send_lock);
		xmem__nbd_write_full(c, (const uint8_t *)data - hl,
				     hl + r->len);
		pthread_mutex_unlock(&c->send_lock);
		return;
	}
	pthread_mutex_lock(&c->send_lock);
	xmem__nbd_write_full(c, h, hl);
	pthread_mutex_unlock(&c->send_lock);
}

/* Reads [off, off+len) of the export: whole sectors into a buffer, after
 * NBD_HDR_ROOM bytes kept for the reply header. *out points at the bytes;
 * *buf is what to free. */
static int do_read(struct nbd_conn *c, uint64_t off, uint32_t len,
		   uint8_t **buf, size_t *cap, uint8_t **out)
{
	struct nbd_export *e = c->exp;
	uint64_t s0 = off / e->lbasize;
	uint64_t s1 = (off + len + e->lbasize - 1) / e->lbasize;
	int rc;

	*buf = buf_get(c, NBD_HDR_ROOM + (s1 - s0) * e->lbasize, cap);
	if (!*buf)
		return -ENOMEM;
	rc = xmem_blk_read(e->blk, s0, *buf + NBD_HDR_ROOM, s1 - s0);
	*out = *buf + NBD_HDR_ROOM + (off - s0 * e->lbasize);
	return rc;
}

/* Writes a partial sector: read, merge, write, under the export's
 * exclusive lock. */
static int rmw(struct nbd_export *e, uint64_t off, const uint8_t *src,
	       uint32_t len)
{
	uint64_t s = off / e->lbasize;
	uint8_t *sec = malloc(e->lbasize);
	int rc;

	if (!sec)
		return -ENOMEM;
	rc = xmem_blk_read(e->blk, s, sec, 1);
	if (rc == XMEM_E_MEDIA) {
		memset(sec, 0, e->lbasize);
		rc = 0;
	}
	if (rc == 0) {
		if (src)
			memcpy(sec + off % e->lbasize, src, len);
		else
			memset(sec + off % e->lbasize, 0, len);
		rc = xmem_blk_write(e->blk, s, sec, 1);
	}
	free(sec);
	return rc;
}

/* Writes (src) or zeroes (src NULL) a byte range: partial head and tail
 * sectors by read-modify-write, whole sectors directly. */
static int do_write(struct nbd_export *e, uint64_t off, const uint8_t *src,
		    uint32_t len, int trim)
{
	uint32_t lbs = e->lbasize, head = (uint32_t)(off % lbs);
	int partial = head || len % lbs, rc = 0;

	if (partial)
		xmem__nbd_rmw_excl(&e->rmw);
	else
		xmem__nbd_rmw_shared(&e->rmw);
	if (head) {
		uint32_t n = MIN(len, lbs - head);

		if (!trim)
			rc = rmw(e, off, src, n);
		off += n;
		len -= n;
		src = src ? src + n : NULL;
	}
	if (rc == 0 && len >= lbs) {
		uint64_t cnt = len / lbs;

		if (src)
			rc = xmem_blk_write(e->blk, off / lbs, src, cnt);
		else
			rc = xmem_blk_write_zeroes(e->blk, off / lbs, cnt);
		off += cnt * lbs;
		len -= (uint32_t)(cnt * lbs);
		src = src ? src + cnt * lbs : NULL;
	}
	if (rc == 0 && len && !trim)
		rc = rmw(e, off, src, len);
	if (partial)
		xmem__nbd_rmw_excl_unlock(&e->rmw);
	else
		xmem__nbd_rmw_shared_unlock(&e->rmw);
	return rc;
}

/* Runs one validated request and replies. */
static void execute(struct nbd_conn *c, struct nbd_req *r)
{
	struct nbd_export *e = c->exp;
	uint8_t *buf = NULL, *out = NULL;
	size_t cap = 0;
	int rc = 0;

	if (r->err) {
		reply(c, r, r->err, NULL);
		return;
	}
	switch (r->type) {
	case NBD_CMD_READ:
		rc = do_read(c, r->off, r->len, &buf, &cap, &out);
		break;
	case NBD_CMD_WRITE:
		rc = do_write(e, r->off, r->data, r->len, 0);
		break;
	case NBD_CMD_TRIM:
		rc = do_write(e, r->off, NULL, r->len, 1);
		break;
	case NBD_CMD_WRITE_ZEROES:
		rc = do_write(e, r->off, NULL, r->len, 0);
		break;
	case NBD_CMD_FLUSH:
		break;
	}
	if (rc == 0 &&
	    (r->type == NBD_CMD_FLUSH || (r->flags & NBD_CMD_FLAG_FUA)))
		rc = xmem_blk_flush(e->blk);
	reply(c, r, wire_errno(rc), out);
	buf_put(c, buf, cap);
}

/* The command flags valid on a request of this type: FUA on any (clients
 * are known to set it everywhere), NO_HOLE on WRITE_ZEROES, DF on READ
 * and only with structured replies (NBD_FLAG_SEND_DF is advertised only
 * then). The protocol asks for EINVAL on any other flag. */
static uint16_t flags_valid(const struct nbd_conn *c, uint16_t type)
{
	uint16_t ok = NBD_CMD_FLAG_FUA;

	if (type == NBD_CMD_WRITE_ZEROES)
		ok |= NBD_CMD_FLAG_NO_HOLE;
	if (type == NBD_CMD_READ && c->structured)
		ok |= NBD_CMD_FLAG_DF;
	return ok;
}

/* Validates a request against the export and the limits; the error to
 * reply with, or 0. */
static uint32_t validate(const struct nbd_conn *c, const struct nbd_req *r)
{
	const struct nbd_export *e = c->exp;

	if (r->flags & ~flags_valid(c, r->type))
		return NBD_EINVAL;
	switch (r->type) {
	case NBD_CMD_FLUSH:
		return r->off || r->len ? NBD_EINVAL : 0;
	case NBD_CMD_READ:
		if (r->len > c->lim->max_request)
			return NBD_EOVERFLOW;
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		if (e->rdonly)
			return NBD_EPERM;
		break;
	default:
		return NBD_EINVAL;
	}
	if (r->len == 0 || !range_fits(r->off, r->len, e->size))
		return NBD_EINVAL;
	return 0;
}

/* A connection worker: runs queued requests until told to stop and
 * the queue is empty. */
static void *worker(void *arg)
{
	struct nbd_conn *c = arg;

	pthread_mutex_lock(&c->qlock);
	for (;;) {
		struct nbd_req *r;

		while (!c->qhead && !c->stopping)
			pthread_cond_wait(&c->qcond, &c->qlock);
		if (!c->qhead)
			break;
		r = c->qhead;
		c->qhead = r->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->busy++;
		pthread_mutex_unlock(&c->qlock);
		execute(c, r);
		pthread_mutex_lock(&c->qlock);
		c->busy--;
		c->qcount--;
		c->qbytes -= r->qb;
		pthread_cond_broadcast(&c->qdone);
		pthread_mutex_unlock(&c->qlock);
		buf_put(c, r->data, r->cap);
		free(r);
		pthread_mutex_lock(&c->qlock);
	}
	pthread_mutex_unlock(&c->qlock);
	return NULL;
}

/* Queues a request, waiting while the connection is over its limits.
 * One of up to lim->inline_max bytes runs at once in the reader, which
 * has its payload in cache and saves a worker hand-off and wake-up;
 * larger ones go to the workers, so that their copies overlap the
 * reading of the next requests. */
static void enqueue(struct nbd_conn *c, struct nbd_req *r)
{
	int payload = r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE;

	r->qb = payload && !r->err ? r->len : 0;
	if (!c->lim->workers || r->len <= c->lim->inline_max) {
		execute(c, r);
		buf_put(c, r->data, r->cap);
		free(r);
		return;
	}
	pthread_mutex_lock(&c->qlock);
	while (c->qcount && (c->qcount >= NBD_QUEUE_MAX ||
			     c->qbytes + r->qb > c->lim->max_inflight))
		pthread_cond_wait(&c->qdone, &c->qlock);
	c->qcount++;
	c->qbytes += r->qb;
	if (c->qtail)
		c->qtail->next = r;
	else
		c->qhead = r;
	c->qtail = r;
	pthread_cond_signal(&c->qcond);
	pthread_mutex_unlock(&c->qlock);
}

/* Reads one request; 1 to go on, 0 at DISC, -1 to drop the connection. */
static int read_request(struct nbd_conn *c)
{
	uint8_t h[28];
	struct nbd_req *r;

	if (xmem__nbd_read_full(c, h, sizeof(h)))
		return -1;
	if (nbd_get32(h) != NBD_REQUEST_MAGIC)
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->flags = nbd_get16(h + 4);
	r->type = nbd_get16(h + 6);
	r->cookie = nbd_get64(h + 8);
	r->off = nbd_get64(h + 16);
	r->len = nbd_get32(h + 24);
	if (r->type == NBD_CMD_DISC) {
		free(r);
		return 0;
	}
	if (r->type == NBD_CMD_WRITE) {
		/* The payload follows whatever the header says; one too big
		 * to take cannot be skipped safely, so the connection ends. */
		if (r->len > c->lim->max_request ||
		    !(r->data = buf_get(c, r->len, &r->cap)) ||
		    xmem__nbd_read_full(c, r->data, r->len)) {
			buf_put(c, r->data, r->cap);
			free(r);
			return -1;
		}
	}
	r->err = validate(c, r);
	if (r->err && r->data) {
		/* An error reply carries no payload: the buffer goes back
		 * now, so refused requests hold no memory while queued. */
		buf_put(c, r->data, r->cap);
		r->data = NULL;
		r->cap = 0;
	}
	enqueue(c, r);
	return __atomic_load_n(&c->dead, __ATOMIC_RELAXED) ? -1 : 1;
}

/* Lets the workers drain the queue, then stops them. */
static void workers_stop(struct nbd_conn *c, pthread_t *t, unsigned n)
{
	pthread_mutex_lock(&c->qlock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->qcond);
	pthread_mutex_unlock(&c->qlock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

/* Handshake, workers, then the reader loop until the connection ends. */
int xmem__nbd_conn_run(const struct nbd_io *io, struct nbd_export **exps,
		       unsigned nexps, const struct nbd_limits *lim,
		       void (*entered)(void *), void *arg)
{
	struct nbd_conn c = {
		.io = io, .exps = exps, .nexps = nexps, .lim = lim
	};
	pthread_t t[16];
	unsigned nt = 0;
	int rc;

	rc = xmem__nbd_handshake(&c);
	if (rc <= 0)
		return rc;
	if (entered)
		entered(arg);
	pthread_mutex_init(&c.send_lock, NULL);
	pthread_mutex_init(&c.buf_lock, NULL);
	pthread_mutex_init(&c.qlock, NULL);
	pthread_cond_init(&c.qcond, NULL);
	pthread_cond_init(&c.qdone, NULL);
	while (nt < MIN(lim->workers, 16u) &&
	       pthread_create(&t[nt], NULL, worker, &c) == 0)
		nt++;
	if (lim->workers && !nt)
		rc = -1;
	while (rc > 0)
		rc = read_request(&c);
	workers_stop(&c, t, nt);
	pthread_cond_destroy(&c.qdone);
	pthread_cond_destroy(&c.qcond);
	pthread_mutex_destroy(&c.qlock);
	pthread_mutex_destroy(&c.send_lock);
	bufs_free(&c);
	pthread_mutex_destroy(&c.buf_lock);
	return rc;
}
