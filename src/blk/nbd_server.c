/* SPDX-License-Identifier: MIT */
/*
 * nbd_server.c - the NBD server: listening sockets (TCP, loopback by
 * default, and Unix), one thread per connection, a client limit, and a
 * shutdown that answers the requests in flight and flushes every export.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blk/nbd_proto.h"
#include "core/error.h"
#include "core/util.h"

#define MAX_LISTEN 8

struct conn_slot {
	struct conn_slot *next;
	struct xmem_nbd_server *srv;
	pthread_t thread;
	int fd;
	int done; /* the thread finished; join and free */
	/* End of the handshake's time (CLOCK_MONOTONIC ns), 0 once it is
	 * over: the limit covers the whole handshake, not each recv, so a
	 * client sending a byte at a time cannot hold a slot. */
	uint64_t deadline;
	/* What one recv brought beyond what was asked: request headers and
	 * small payloads arrive several per recv (only the connection's
	 * reader thread touches these) */
	uint8_t *rbuf;
	size_t rpos, rlen;
};

#define RBUF_SIZE 65536u /* reads at least this large bypass rbuf */

struct xmem_nbd_server {
	struct nbd_limits lim;
	unsigned max_clients, handshake_secs;
	struct nbd_export **exps;
	unsigned nexps;
	int lfd[MAX_LISTEN];
	unsigned nlisten;
	uint16_t port;
	char *unix_path;
	int stop_pipe[2];
	pthread_mutex_t lock;
	struct conn_slot *conns;
	unsigned nconns;
};

/* A server with no export and no listener yet. */
XMEM_EXPORT int xmem_nbd_server_new(const struct xmem_nbd_opts *o,
				    struct xmem_nbd_server **srvp)
{
	struct xmem_nbd_server *s = calloc(1, sizeof(*s));

	*srvp = NULL;
	if (!s)
		return xmem__err(-ENOMEM, "NBD server: out of memory");
	s->max_clients = o && o->max_clients ? o->max_clients : 64;
	s->lim.workers = o && o->workers ? MIN(o->workers, 16u) : 4;
	s->lim.max_request = o && o->max_request ? o->max_request : 32u << 20;
	s->lim.max_inflight =
		o && o->max_inflight ? o->max_inflight : 64ull << 20;
	if (s->lim.max_inflight < s->lim.max_request)
		s->lim.max_inflight = s->lim.max_request;
	/* Requests up to 1 MiB run in the connection's reader: a worker
	 * hand-off and wake-up cost more than they gain below that. With
	 * bench_nbd (nbdcopy, 4 connections of 256 KiB requests) the server
	 * moved 15-35% more MiB per CPU second than with a 64 KiB limit, and
	 * one connection was as fast either way. */
	s->lim.inline_max = 1u << 20;
	s->lim.verbose = o ? o->verbose : 0;
	s->handshake_secs = o && o->handshake_secs ? o->handshake_secs : 30;
	if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(s);
		return xmem__err(-errno, "NBD server: pipe: %s",
				 strerror(errno));
	}
	pthread_mutex_init(&s->lock, NULL);
	*srvp = s;
	return 0;
}

/* Adds an export; names are unique and at most 4096 bytes. */
XMEM_EXPORT int xmem_nbd_server_add_export(struct xmem_nbd_server *s,
					   const char *name, const char *desc,
					   struct xmem_blk *blk, int rdonly)
{
	struct nbd_export *e, **p;

	if (!name || strlen(name) > 4096 || (desc && strlen(desc) > 4096) ||
	    !blk)
		return xmem__err(-EINVAL, "NBD export: bad name or no BTT");
	for (unsigned i = 0; i < s->nexps; i++)
		if (strcmp(s->exps[i]->name, name) == 0)
			return xmem__err(-EEXIST, "NBD export '%s' exists",
					 name);
	p = realloc(s->exps, (s->nexps + 1) * sizeof(*p));
	if (!p)
		return xmem__err(-ENOMEM, "NBD server: out of memory");
	s->exps = p;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name)) ||
	    !(e->desc = strdup(desc ? desc : ""))) {
		if (e)
			free(e->name);
		free(e);
		return xmem__err(-ENOMEM, "NBD server: out of memory");
	}
	struct xmem_blk_info bi;

	xmem_blk_get_info(blk, &bi);
	e->blk = blk;
	e->rdonly = rdonly || bi.rdonly;
	e->lbasize = xmem_blk_lbasize(blk);
	e->size = xmem_blk_nlba(blk) * e->lbasize;
	xmem__nbd_rmw_init(&e->rmw);
	s->exps[s->nexps++] = e;
	return 0;
}

/* Starts listening on a bound socket and keeps it. */
static int add_listener(struct xmem_nbd_server *s, int fd)
{
	if (s->nlisten >= MAX_LISTEN) {
		close(fd);
		return xmem__err(-EMFILE, "NBD server: too many listeners");
	}
	if (listen(fd, 64) < 0) {
		int e = errno;

		close(fd);
		return xmem__err(-e, "NBD server: listen: %s", strerror(e));
	}
	s->lfd[s->nlisten++] = fd;
	return 0;
}

/* Binds a TCP socket (127.0.0.1 unless told otherwise). */
XMEM_EXPORT int xmem_nbd_server_listen_tcp(struct xmem_nbd_server *s,
					   const char *host, uint16_t port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	char ps[8];
	int fd, one = 1, rc;

	snprintf(ps, sizeof(ps), "%u", port);
	rc = getaddrinfo(host ? host : "127.0.0.1", ps, &hints, &ai);
	if (rc)
		return xmem__err(-EINVAL, "NBD server: address '%s': %s",
				 host ? host : "127.0.0.1", gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return xmem__err(-e, "NBD server: bind %s:%u: %s",
				 host ? host : "127.0.0.1", port, strerror(e));
	}
	freeaddrinfo(ai);
	if (!s->port) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		getsockname(fd, (struct sockaddr *)&ss, &sl);
		s->port =
			ntohs(ss.ss_family == AF_INET6
				      ? ((struct sockaddr_in6 *)&ss)->sin6_port
				      : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return add_listener(s, fd);
}

/* Binds a Unix socket, replacing a stale one. */
XMEM_EXPORT int xmem_nbd_server_listen_unix(struct xmem_nbd_server *s,
					    const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return xmem__err(-ENAMETOOLONG,
				 "NBD server: socket path "
				 "'%s' too long",
				 path);
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale socket of an earlier run */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return xmem__err(-e, "NBD server: bind '%s': %s", path,
				 strerror(e));
	}
	free(s->unix_path);
	s->unix_path = strdup(path);
	return add_listener(s, fd);
}

/* The TCP port bound (the chosen one when 0 was asked). */
XMEM_EXPORT uint16_t xmem_nbd_server_port(const struct xmem_nbd_server *s)
{
	return s->port;
}

/* One recv() retried on EINTR, within the handshake's deadline. */
static ssize_t sock_recv(struct conn_slot *cs, void *buf, size_t len, int flags)
{
	ssize_t n;

	do {
		if (cs->deadline) {
			struct timespec now;
			struct timeval tv;
			uint64_t t;

			clock_gettime(CLOCK_MONOTONIC, &now);
			t = (uint64_t)now.tv_sec * 1000000000u +
			    (uint64_t)now.tv_nsec;
			if (t >= cs->deadline) {
				errno = ETIMEDOUT;
				return -1;
			}
			t = (cs->deadline - t) / 1000 + 1;
			tv.tv_sec = (time_t)(t / 1000000);
			tv.tv_usec = (suseconds_t)(t % 1000000);
			setsockopt(cs->fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				   sizeof(tv));
		}
		n = recv(cs->fd, buf, len, flags);
	} while (n < 0 && errno == EINTR);
	return n;
}

/*
 * Reads for the connection code, which always wants all len bytes. Small
 * reads are served from rbuf, refilled by one recv() of whatever has
 * arrived (a 4 KiB write's header and payload, and often the next
 * requests, in one system call). Large ones bypass it: the kernel waits
 * for all their bytes (MSG_WAITALL: one call per payload, not one per
 * chunk the client's writes arrive in). A timeout or shutdown still
 * returns early.
 */
static ssize_t sock_read(void *ctx, void *buf, size_t len)
{
	struct conn_slot *cs = ctx;
	ssize_t n;

	if (cs->rpos == cs->rlen) {
		if (len >= RBUF_SIZE / 2 || !cs->rbuf)
			return sock_recv(cs, buf, len, MSG_WAITALL);
		n = sock_recv(cs, cs->rbuf, RBUF_SIZE, 0);
		if (n <= 0)
			return n;
		cs->rpos = 0;
		cs->rlen = (size_t)n;
	}
	n = (ssize_t)MIN(len, cs->rlen - cs->rpos);
	memcpy(buf, cs->rbuf + cs->rpos, (size_t)n);
	cs->rpos += (size_t)n;
	return n;
}

/* send() retried on EINTR, without SIGPIPE. */
static ssize_t sock_write(void *ctx, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = send(((struct conn_slot *)ctx)->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Lifts the handshake's idle limit once transmission starts. */
static void conn_entered(void *arg)
{
	struct conn_slot *cs = arg;
	struct timeval tv = { 0, 0 };

	cs->deadline = 0;
	setsockopt(cs->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* One connection: handshake timeout, protocol, then cleanup. */
static void *conn_thread(void *arg)
{
	struct conn_slot *cs = arg;
	struct xmem_nbd_server *s = cs->srv;
	struct nbd_io io = { sock_read, sock_write, cs };
	struct timeval tv = { s->handshake_secs, 0 };
	int one = 1, bufsz = 4 << 20, rc;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	cs->deadline = s->handshake_secs ? (uint64_t)now.tv_sec * 1000000000u +
						   (uint64_t)now.tv_nsec +
						   (uint64_t)s->handshake_secs *
							   1000000000u
					 : 0;

	setsockopt(cs->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* A client that stops reading its replies cannot hold a worker (or
	 * the shutdown) forever. */
	tv.tv_sec = 60;
	setsockopt(cs->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(cs->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Room for several large requests and replies in the socket, so
	 * that a 256 KiB reply is sent without waiting for the client to
	 * drain the one before (the kernel caps this at its wmem_max). */
	setsockopt(cs->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(cs->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	cs->rbuf = malloc(RBUF_SIZE); /* without it, every read is a recv */
	rc = xmem__nbd_conn_run(&io, s->exps, s->nexps, &s->lim, conn_entered,
				cs);
	free(cs->rbuf);
	cs->rbuf = NULL;
	if (s->lim.verbose)
		fprintf(stderr, "xmem nbd: connection %d %s\n", cs->fd,
			rc < 0 ? "dropped" : "closed");
	pthread_mutex_lock(&s->lock);
	shutdown(cs->fd, SHUT_RDWR);
	cs->done = 1;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Joins and frees finished connections (all of them when `all`). */
static void conns_reap(struct xmem_nbd_server *s, int all)
{
	struct conn_slot **pp = &s->conns;

	pthread_mutex_lock(&s->lock);
	while (*pp) {
		struct conn_slot *cs = *pp;

		if (!cs->done && !all) {
			pp = &cs->next;
			continue;
		}
		*pp = cs->next;
		s->nconns--;
		pthread_mutex_unlock(&s->lock);
		pthread_join(cs->thread, NULL);
		close(cs->fd);
		free(cs);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Accepts a connection and gives it a thread, within the limit. */
static void conn_accept(struct xmem_nbd_server *s, int lfd)
{
	struct conn_slot *cs;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	conns_reap(s, 0);
	cs = calloc(1, sizeof(*cs));
	if (!cs || s->nconns >= s->max_clients) {
		free(cs);
		close(fd); /* over the client limit */
		return;
	}
	cs->srv = s;
	cs->fd = fd;
	pthread_mutex_lock(&s->lock);
	if (pthread_create(&cs->thread, NULL, conn_thread, cs) != 0) {
		pthread_mutex_unlock(&s->lock);
		close(fd);
		free(cs);
		return;
	}
	cs->next = s->conns;
	s->conns = cs;
	s->nconns++;
	pthread_mutex_unlock(&s->lock);
}

/* Shuts every open connection down in direction `how`. */
static void conns_shutdown(struct xmem_nbd_server *s, int how)
{
	pthread_mutex_lock(&s->lock);
	for (struct conn_slot *cs = s->conns; cs; cs = cs->next)
		if (!cs->done)
			shutdown(cs->fd, how);
	pthread_mutex_unlock(&s->lock);
}

/* Non-zero while a connection thread still runs. */
static int conns_busy(struct xmem_nbd_server *s)
{
	int busy = 0;

	pthread_mutex_lock(&s->lock);
	for (struct conn_slot *cs = s->conns; cs; cs = cs->next)
		busy |= !cs->done;
	pthread_mutex_unlock(&s->lock);
	return busy;
}

/* The accept loop, then the shutdown: stop reading, answer what is
 * queued, cut stuck clients after 5 s, flush every export. */
XMEM_EXPORT int xmem_nbd_server_run(struct xmem_nbd_server *s)
{
	struct pollfd pf[MAX_LISTEN + 1];
	char c;

	if (!s->nlisten || !s->nexps)
		return xmem__err(-EINVAL, "NBD server: no listener or export");
	for (unsigned i = 0; i < s->nlisten; i++)
		pf[i] = (struct pollfd){ .fd = s->lfd[i], .events = POLLIN };
	pf[s->nlisten] =
		(struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
	for (;;) {
		if (poll(pf, s->nlisten + 1, 1000) < 0 && errno != EINTR)
			break;
		if (pf[s->nlisten].revents)
			break;
		for (unsigned i = 0; i < s->nlisten; i++)
			if (pf[i].revents & POLLIN)
				conn_accept(s, s->lfd[i]);
		conns_reap(s, 0);
	}
	while (read(s->stop_pipe[0], &c, 1) == 1)
		;
	/* No new connections; each open one stops reading, answers what
	 * it has queued, and ends. */
	for (unsigned i = 0; i < s->nlisten; i++)
		close(s->lfd[i]);
	s->nlisten = 0;
	conns_shutdown(s, SHUT_RD);
	/* A client that does not read its replies gets 5 s, then its
	 * connection is cut so that the shutdown is bounded. */
	for (int i = 0; i < 50 && conns_busy(s); i++)
		usleep(100000);
	conns_shutdown(s, SHUT_RDWR);
	conns_reap(s, 1);
	for (unsigned i = 0; i < s->nexps; i++)
		if (!s->exps[i]->rdonly)
			xmem_blk_flush(s->exps[i]->blk);
	return 0;
}

/* Wakes run() through its pipe (async-signal-safe). */
XMEM_EXPORT void xmem_nbd_server_stop(struct xmem_nbd_server *s)
{
	char c = 1;
	ssize_t n = write(s->stop_pipe[1], &c, 1);

	(void)n;
}

/* Frees the server and removes its Unix socket. */
XMEM_EXPORT void xmem_nbd_server_delete(struct xmem_nbd_server **srvp)
{
	struct xmem_nbd_server *s = srvp ? *srvp : NULL;

	if (!s)
		return;
	conns_reap(s, 1);
	for (unsigned i = 0; i < s->nlisten; i++)
		close(s->lfd[i]);
	if (s->unix_path) {
		unlink(s->unix_path);
		free(s->unix_path);
	}
	for (unsigned i = 0; i < s->nexps; i++) {
		xmem__nbd_rmw_destroy(&s->exps[i]->rmw);
		free(s->exps[i]->name);
		free(s->exps[i]->desc);
		free(s->exps[i]);
	}
	free(s->exps);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*srvp = NULL;
}
