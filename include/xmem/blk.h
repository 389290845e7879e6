/* SPDX-License-Identifier: MIT */
/*
 * xmem/blk.h - block mode: a BTT with power-fail-atomic sectors, and an
 * NBD server that exports it.
 *
 * The BTT (Block Translation Table) has the on-media layout of the
 * UEFI/NVDIMM namespace specification and of Linux's nd_btt: a BTT that
 * the kernel wrote on a sector-mode namespace opens here from a raw image
 * of that namespace, and the reverse. A sector write survives power loss
 * whole or not at all: the data goes to a free block, a flog entry records
 * the move, and one 4-byte map store publishes it.
 *
 * A BTT sits in a "namespace": a range in mode blk, a window of a raw image
 * file, or any mapping (pointer, length, persistence operations). Version
 * 1.1 starts 4 KiB into the namespace, version 2.0 at offset 0.
 *
 * Reads and writes from several threads are safe: each call takes a lane
 * (a free block and a flog slot of its own), and a read-tracking table
 * keeps a writer from reusing a block that a reader still copies.
 */
#ifndef XMEM_BLK_H
#define XMEM_BLK_H

#include <stddef.h>
#include <stdint.h>
#include "persist.h"
#include "region.h"

#ifdef __cplusplus
extern "C" {
#endif

struct xmem_blk;

struct xmem_blk_format_opts {
	uint32_t lbasize;	/* 512 or 4096 (also 520, 528, 4104, 4160,
				   4224); 0 means 4096 */
	uint16_t version_major; /* 1 (v1.1, default) or 2 (v2.0) */
	uint16_t version_minor;
	uint8_t uuid[16];	 /* all zero: a random one */
	uint8_t parent_uuid[16]; /* the namespace's uuid, or all zero */
};

/* Flags of the open calls. */
#define XMEM_F_BLK_RDONLY (1u << 0) /* no writes; recovery is not applied */

struct xmem_blk_info {
	uint8_t uuid[16];
	uint8_t parent_uuid[16];
	uint16_t version_major, version_minor;
	uint32_t lbasize;	   /* external (user-visible) sector size */
	uint32_t internal_lbasize; /* data block size on media */
	uint64_t nlba;		   /* sectors */
	uint64_t size;		   /* nlba * lbasize */
	uint64_t btt_offset;	   /* namespace offset of the first arena */
	uint64_t namespace_size;
	uint32_t narenas;
	uint32_t nfree; /* free blocks per arena */
	uint32_t nlanes;
	uint32_t flog_slots[2]; /* flog slots in use: (0,1) or (0,2) */
	uint32_t recovered;	/* flog entries finished on open */
	uint32_t arena_errors;	/* arenas whose info block flags an error */
	int rdonly;
};

/*
 * Writes a fresh BTT into the namespace [addr, addr+len), persisting with
 * `ops`. Every sector then reads as zeroes. The info blocks are written
 * last, so a crash during format leaves no valid BTT. Needs len >= 16 MiB
 * (plus 4 KiB for v1.1).
 */
int xmem_blk_format_mem(void *addr, uint64_t len,
			const struct xmem_persist_ops *ops,
			const struct xmem_blk_format_opts *opts);

/*
 * Opens the BTT in the namespace [addr, addr+len): looks for a v1.1 info
 * block at 4 KiB, then a v2.0 one at 0. Validates every info block and
 * flog group, and that each lane's free block is claimed by that lane
 * only and mapped by no sector (else two writers could share a block);
 * only then, unless XMEM_F_BLK_RDONLY, finishes each lane's in-flight
 * update (the first write open makes). Invalid metadata fails with
 * XMEM_E_CORRUPT and a message naming the structure and its namespace
 * offset (for a free block: arena, lane and block); no BTT at all fails
 * with XMEM_E_NOREGION. O(arenas * nfree log nfree + nlba): one pass over
 * the map (4 bytes per sector); the data blocks are not read.
 */
int xmem_blk_open_mem(void *addr, uint64_t len,
		      const struct xmem_persist_ops *ops, unsigned flags,
		      struct xmem_blk **blkp);

/*
 * The same on a window [offset, offset+len) of a file or device, for
 * example a raw image of a kernel sector-mode namespace (offset 0 when the
 * namespace starts the file). len 0 means up to the end of the file. The
 * blk owns the device and its mapping.
 */
int xmem_blk_format_raw(const char *path, uint64_t offset, uint64_t len,
			const struct xmem_blk_format_opts *opts);
int xmem_blk_open_raw(const char *path, uint64_t offset, uint64_t len,
		      unsigned flags, struct xmem_blk **blkp);

/* On a range in mode blk (XMEM_E_MODE otherwise). The parent uuid is the
 * range's uuid; open refuses a BTT whose parent uuid names another
 * namespace before it writes anything. The blk keeps the mapping; the caller
 * keeps the range open until the blk is closed. */
int xmem_blk_format(struct xmem_range *range,
		    const struct xmem_blk_format_opts *opts);
int xmem_blk_open(struct xmem_range *range, unsigned flags,
		  struct xmem_blk **blkp);

/* Closes the BTT (and what the raw open made). Sets *blkp to NULL. */
void xmem_blk_close(struct xmem_blk **blkp);

void xmem_blk_get_info(const struct xmem_blk *blk, struct xmem_blk_info *info);
uint32_t xmem_blk_lbasize(const struct xmem_blk *blk);
uint64_t xmem_blk_nlba(const struct xmem_blk *blk);

/*
 * Sector I/O: count sectors from lba. Each sector is written atomically
 * and is durable when the call returns. A sector marked as an error fails
 * a read with XMEM_E_MEDIA (the sectors before it are filled). Out of
 * range: -EINVAL. Read-only: -EROFS.
 */
int xmem_blk_read(struct xmem_blk *blk, uint64_t lba, void *buf,
		  uint64_t count);
int xmem_blk_write(struct xmem_blk *blk, uint64_t lba, const void *buf,
		   uint64_t count);

/* Sectors read as zeroes afterwards (both set the map's zero flag; trim is
 * the same on this media). Atomic per sector. */
int xmem_blk_write_zeroes(struct xmem_blk *blk, uint64_t lba, uint64_t count);
int xmem_blk_trim(struct xmem_blk *blk, uint64_t lba, uint64_t count);

/* Marks a sector as a media error (reads fail until it is written or
 * cleared); clearing makes it read as zeroes. */
int xmem_blk_set_error(struct xmem_blk *blk, uint64_t lba);
int xmem_blk_clear_error(struct xmem_blk *blk, uint64_t lba);

/* Every completed write is already durable (each one is persisted at the
 * mapping's granularity before it returns); this is a fence for callers
 * that want an explicit flush point, as NBD_CMD_FLUSH does. */
int xmem_blk_flush(struct xmem_blk *blk);

/* One problem found by a check. */
struct xmem_blk_problem {
	const char *structure; /* "arena 0 info block", "arena 1 map", ... */
	uint64_t offset;       /* namespace offset of the structure */
	char what[160];
};
typedef void (*xmem_blk_check_fn)(const struct xmem_blk_problem *p, void *arg);

/*
 * Checks the BTT in [addr, addr+len) without changing it: info blocks and
 * their backups, every flog group, every map entry, and that each data
 * block is owned exactly once (by a map entry or a lane's free slot, taking
 * pending flog updates into account): duplicates and lost blocks are
 * reported. Returns 0 when clean, XMEM_E_CORRUPT when problems were found
 * (*nproblems counts them), XMEM_E_NOREGION when there is no BTT.
 * O(nlba) time, O(nlba / 8) memory.
 */
int xmem_blk_check_mem(const void *addr, uint64_t len, xmem_blk_check_fn fn,
		       void *arg, unsigned *nproblems);
int xmem_blk_check_raw(const char *path, uint64_t offset, uint64_t len,
		       xmem_blk_check_fn fn, void *arg, unsigned *nproblems);

/*
 * The repairs that need no guess (open and check never repair): info
 * blocks restored from their good copies (a damaged first info block from
 * the first arena's backup, if that is valid and where format put it; a
 * backup that differs from its valid info block from that block), and a
 * lane whose free block is also owned by a sector or another lane given a
 * block that nothing owns (a new flog entry; an unfinished write of that
 * lane is dropped). Map and data are never changed. Returns 0 when every
 * info block is then valid (*nrepaired counts the info blocks and lanes
 * rewritten), XMEM_E_NOREGION when there is nothing to restore from,
 * XMEM_E_CORRUPT when something stays invalid. O(arenas + nlba).
 */
int xmem_blk_repair_mem(void *addr, uint64_t len,
			const struct xmem_persist_ops *ops,
			unsigned *nrepaired);
int xmem_blk_repair_raw(const char *path, uint64_t offset, uint64_t len,
			unsigned *nrepaired);

/*
 * The NBD server: fixed newstyle handshake (GO, INFO, LIST, EXPORT_NAME,
 * ABORT, STRUCTURED_REPLY), commands READ, WRITE (with FUA), FLUSH, TRIM,
 * WRITE_ZEROES and DISC, one export per BTT.
 */
struct xmem_nbd_server;

struct xmem_nbd_opts {
	unsigned max_clients;	 /* 0: 64 */
	unsigned workers;	 /* per connection; 0: 4 */
	uint32_t max_request;	 /* bytes per request; 0: 32 MiB */
	uint64_t max_inflight;	 /* payload bytes queued per connection;
				    0: 64 MiB */
	unsigned handshake_secs; /* idle limit during the handshake; 0: 30 */
	int verbose;		 /* log connections to stderr */
};

int xmem_nbd_server_new(const struct xmem_nbd_opts *opts,
			struct xmem_nbd_server **srvp);

/* Adds an export of `blk` under `name` (the first one is also the default
 * export ""). The server does not own blk; close it after the server. */
int xmem_nbd_server_add_export(struct xmem_nbd_server *srv, const char *name,
			       const char *description, struct xmem_blk *blk,
			       int rdonly);

/* Listens on TCP (host NULL: 127.0.0.1; port 0 picks one, see
 * xmem_nbd_server_port) or on a Unix socket path (replaced if stale). */
int xmem_nbd_server_listen_tcp(struct xmem_nbd_server *srv, const char *host,
			       uint16_t port);
int xmem_nbd_server_listen_unix(struct xmem_nbd_server *srv, const char *path);
uint16_t xmem_nbd_server_port(const struct xmem_nbd_server *srv);

/* Serves until xmem_nbd_server_stop(); then closes every connection after
 * its requests in flight are answered, flushes every export and returns. */
int xmem_nbd_server_run(struct xmem_nbd_server *srv);

/* Asks run() to return. Async-signal-safe (for a SIGTERM handler). */
void xmem_nbd_server_stop(struct xmem_nbd_server *srv);

/* Frees the server (after run() returned, or if it never ran); removes a
 * Unix socket it created. Sets *srvp to NULL. */
void xmem_nbd_server_delete(struct xmem_nbd_server **srvp);

#ifdef __cplusplus
}
#endif
#endif /* XMEM_BLK_H */
