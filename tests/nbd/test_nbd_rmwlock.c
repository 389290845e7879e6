/* SPDX-License-Identifier: MIT */
/*
 * test_nbd_rmwlock.c - the export lock between whole-sector writes
 * (shared) and partial-sector read-modify-writes (exclusive) starves
 * neither side. Two shared holders hand the lock to each other so that it
 * is never free of shared holders (with a reader-preferring lock the
 * exclusive side would wait forever); the exclusive side must still get
 * in, again and again, and exclusion must hold throughout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "blk/nbd_proto.h"
#include "test.h"

static struct nbd_rmwlock lk;
static pthread_mutex_t tok_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tok_c = PTHREAD_COND_INITIALIZER;
static int turn, stop;
static int inside_shared, inside_excl, violations;
static unsigned excl_done, shared_done;

static void wait_turn(int me)
{
	pthread_mutex_lock(&tok_m);
	while (turn != me && !__atomic_load_n(&stop, __ATOMIC_RELAXED))
		pthread_cond_wait(&tok_c, &tok_m);
	pthread_mutex_unlock(&tok_m);
}

static void give_turn(int to)
{
	pthread_mutex_lock(&tok_m);
	turn = to;
	pthread_cond_broadcast(&tok_c);
	pthread_mutex_unlock(&tok_m);
}

/* A shared holder: takes the lock on its turn, hands the turn over after
 * 1 ms (while still holding), and lets go 1 ms later, so that the other
 * one is already in when it leaves. */
static void *sharer(void *arg)
{
	int me = (int)(intptr_t)arg;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		wait_turn(me);
		xmem__nbd_rmw_shared(&lk);
		__atomic_add_fetch(&inside_shared, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&inside_excl, __ATOMIC_SEQ_CST))
			__atomic_add_fetch(&violations, 1, __ATOMIC_RELAXED);
		usleep(1000);
		give_turn(1 - me);
		usleep(1000);
		__atomic_sub_fetch(&inside_shared, 1, __ATOMIC_SEQ_CST);
		xmem__nbd_rmw_shared_unlock(&lk);
		__atomic_add_fetch(&shared_done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *excluder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		xmem__nbd_rmw_excl(&lk);
		__atomic_store_n(&inside_excl, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&inside_shared, __ATOMIC_SEQ_CST))
			__atomic_add_fetch(&violations, 1, __ATOMIC_RELAXED);
		usleep(200);
		__atomic_store_n(&inside_excl, 0, __ATOMIC_SEQ_CST);
		xmem__nbd_rmw_excl_unlock(&lk);
		__atomic_add_fetch(&excl_done, 1, __ATOMIC_RELAXED);
		usleep(500);
	}
	return NULL;
}

int main(void)
{
	pthread_t s[2], x;
	unsigned sh0;

	xmem__nbd_rmw_init(&lk);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&s[i], NULL, sharer,
				       (void *)(intptr_t)i) == 0);
	usleep(5000); /* the shared holders are handing over */
	sh0 = __atomic_load_n(&shared_done, __ATOMIC_RELAXED);
	REQUIRE(pthread_create(&x, NULL, excluder, NULL) == 0);
	/* 20 exclusive phases take ~0.1 s when fair; give them 10 s. */
	for (int t = 0;
	     t < 1000 && __atomic_load_n(&excl_done, __ATOMIC_RELAXED) < 20;
	     t++)
		usleep(10000);
	if (__atomic_load_n(&excl_done, __ATOMIC_RELAXED) < 20) {
		fprintf(stderr,
			"exclusive side starved: %u of 20 phases in 10 s\n",
			excl_done);
		_exit(1); /* the threads are stuck in the lock */
	}
	pthread_join(x, NULL);
	/* and the shared side went on meanwhile */
	CHECK(__atomic_load_n(&shared_done, __ATOMIC_RELAXED) > sh0 + 5);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	give_turn(-1);
	for (int i = 0; i < 2; i++)
		pthread_join(s[i], NULL);
	CHECK(violations == 0);
	xmem__nbd_rmw_destroy(&lk);
	return test_result();
}
