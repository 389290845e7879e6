/* SPDX-License-Identifier: MIT */
/*
 * nbd_rmwlock.c - an export's lock between whole-sector writes (shared:
 * the BTT makes each sector atomic on its own) and partial-sector
 * read-modify-writes (exclusive: two of them on one sector, or one and a
 * whole write, must not interleave).
 *
 * It is phase-fair, so neither side can starve the other, however many
 * connections keep sending: once an exclusive request waits, no new shared
 * holder enters until that exclusive holder has been in and out; when it
 * leaves, every shared request that waited for it enters before the next
 * exclusive one, and exclusive requests are served in arrival order. A
 * shared request thus waits at most for one exclusive phase (plus the ones
 * queued before it arrived), an exclusive one for the holders present when
 * it arrived and for one shared phase per exclusive request ahead of it.
 */
#include "blk/nbd_proto.h"

/* An unlocked lock. */
void xmem__nbd_rmw_init(struct nbd_rmwlock *l)
{
	*l = (struct nbd_rmwlock){ 0 };
	pthread_mutex_init(&l->m, NULL);
	pthread_cond_init(&l->cv, NULL);
}

void xmem__nbd_rmw_destroy(struct nbd_rmwlock *l)
{
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->m);
}

/* Shared: waits only while an exclusive request holds or waits, and then
 * only until the end of the next exclusive phase. */
void xmem__nbd_rmw_shared(struct nbd_rmwlock *l)
{
	pthread_mutex_lock(&l->m);
	if (l->excl || l->xwait) {
		uint64_t g = l->epoch;

		l->swait++;
		while (l->epoch == g)
			pthread_cond_wait(&l->cv, &l->m);
		l->swait--;
		l->spass--; /* one of those the release admitted */
	}
	l->shared++;
	pthread_mutex_unlock(&l->m);
}

void xmem__nbd_rmw_shared_unlock(struct nbd_rmwlock *l)
{
	pthread_mutex_lock(&l->m);
	if (--l->shared == 0 && l->xwait)
		pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->m);
}

/* Exclusive: in ticket order, once no shared holder is in and every
 * shared request admitted by the last exclusive release has entered. */
void xmem__nbd_rmw_excl(struct nbd_rmwlock *l)
{
	uint64_t t;

	pthread_mutex_lock(&l->m);
	t = l->xnext++;
	l->xwait++;
	while (l->excl || l->shared || l->spass || l->xserve != t)
		pthread_cond_wait(&l->cv, &l->m);
	l->xwait--;
	l->excl = 1;
	pthread_mutex_unlock(&l->m);
}

/* Ends the exclusive phase: the shared requests waiting now all enter
 * before the next exclusive request. */
void xmem__nbd_rmw_excl_unlock(struct nbd_rmwlock *l)
{
	pthread_mutex_lock(&l->m);
	l->excl = 0;
	l->xserve++;
	l->epoch++;
	l->spass = l->swait;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->m);
}
