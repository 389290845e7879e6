/* SPDX-License-Identifier: MIT */
/*
 * nbd_proto.h - the NBD protocol's wire constants (fixed newstyle
 * handshake, transmission phase), and the connection interface shared by
 * the server and the fuzz target (internal). All wire integers are
 * big-endian.
 */
#ifndef XMEM_NBD_PROTO_H
#define XMEM_NBD_PROTO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <xmem/blk.h>

#define NBD_MAGIC 0x4e42444d41474943ull	   /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ull
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

/* Options. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u

/* Option replies. */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_ERR(n) ((1u << 31) | (n))
#define NBD_REP_ERR_UNSUP NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID NBD_REP_ERR(3)
#define NBD_REP_ERR_UNKNOWN NBD_REP_ERR(6)
#define NBD_REP_ERR_TOO_BIG NBD_REP_ERR(9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)

/* Commands and their flags. */
#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE (1u << 0)
#define NBD_REPLY_TYPE_NONE 0u
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_ERROR ((1u << 15) | 1u)

/* Errors on the wire. */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

#define NBD_OPT_MAX 4096u	   /* option payload we read */
#define NBD_OPT_DISCARD (1u << 20) /* larger options close the connection */
#define NBD_OPTS_MAX 1024u	   /* options per handshake */

/* A byte stream: read returns bytes read (>0), 0 at end, <0 on error;
 * write returns bytes written or <0. */
struct nbd_io {
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	ssize_t (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

/* Whole-sector writes (shared) against partial-sector read-modify-writes
 * (exclusive), phase-fair: neither can starve (nbd_rmwlock.c). */
struct nbd_rmwlock {
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned shared; /* shared holders */
	unsigned swait;	 /* shared requests waiting for an exclusive phase */
	unsigned spass;	 /* of those, admitted but not yet in */
	unsigned xwait;	 /* exclusive requests waiting */
	int excl;	 /* an exclusive holder is in */
	uint64_t epoch;	 /* exclusive phases ended */
	uint64_t xnext, xserve; /* exclusive tickets */
};

void xmem__nbd_rmw_init(struct nbd_rmwlock *l);
void xmem__nbd_rmw_destroy(struct nbd_rmwlock *l);
void xmem__nbd_rmw_shared(struct nbd_rmwlock *l);
void xmem__nbd_rmw_shared_unlock(struct nbd_rmwlock *l);
void xmem__nbd_rmw_excl(struct nbd_rmwlock *l);
void xmem__nbd_rmw_excl_unlock(struct nbd_rmwlock *l);

struct nbd_export {
	char *name;
	char *desc;
	struct xmem_blk *blk;
	int rdonly;
	uint64_t size;
	uint32_t lbasize;
	struct nbd_rmwlock rmw; /* exclusive for partial-sector writes */
};

struct nbd_limits {
	unsigned workers;      /* 0: requests run inline in the reader */
	uint32_t max_request;  /* payload bytes */
	uint64_t max_inflight; /* payload bytes queued per connection */
	uint32_t inline_max;   /* requests of up to this many bytes run in the
				* reader, not queued (workers > 0) */
	int verbose;
};

/*
 * Runs one connection: the handshake, then requests until the client
 * disconnects, sends garbage, or reading fails. Never touches bytes outside
 * the chosen export. `entered` (may be NULL) is called once the
 * transmission phase begins (the server lifts the handshake timeout).
 * Returns 0 on an orderly end, -1 if the connection was dropped.
 */
int xmem__nbd_conn_run(const struct nbd_io *io, struct nbd_export **exps,
		       unsigned nexps, const struct nbd_limits *lim,
		       void (*entered)(void *), void *arg);

/* One connection's state, shared by the handshake and transmission. */
struct nbd_req;
struct nbd_conn {
	const struct nbd_io *io;
	struct nbd_export **exps;
	unsigned nexps;
	const struct nbd_limits *lim;
	struct nbd_export *exp; /* chosen by GO or EXPORT_NAME */
	int structured;		/* structured replies negotiated */
	int no_zeroes;
	int fixed;
	int dead; /* a write failed: stop (atomic: set by workers, read by the
		   * reader thread) */
	pthread_mutex_t send_lock;
	/* request queue (workers > 0) */
	pthread_mutex_t qlock;
	pthread_cond_t qcond, qdone;
	struct nbd_req *qhead, *qtail;
	uint64_t qbytes;
	unsigned qcount, busy, stopping;
	/* payload buffers kept for reuse (large mallocs would be mmap'ed
	 * and unmapped again for every request) */
	pthread_mutex_t buf_lock;
	void *bufs[16];
	size_t buf_caps[16];
	unsigned nbufs;
};

/* Exact reads and writes on the connection: 0, or -1 at end or error. */
int xmem__nbd_read_full(struct nbd_conn *c, void *buf, size_t len);
int xmem__nbd_write_full(struct nbd_conn *c, const void *buf, size_t len);

/* The handshake: 1 when the transmission phase begins (c->exp set), 0 when
 * the client ended it (ABORT), -1 when the connection must be dropped. */
int xmem__nbd_handshake(struct nbd_conn *c);

static inline void nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nbd_put32(uint8_t *p, uint32_t v)
{
	nbd_put16(p, (uint16_t)(v >> 16));
	nbd_put16(p + 2, (uint16_t)v);
}

static inline void nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}

static inline uint16_t nbd_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)nbd_get16(p) << 16 | nbd_get16(p + 2);
}

static inline uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

#endif /* XMEM_NBD_PROTO_H */
