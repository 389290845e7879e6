/* SPDX-License-Identifier: MIT */
/*
 * heap_shadow.c - the durability shadow (see heap_shadow.h).
 *
 * Per heap, a table of the lines with changes not yet flushed: each
 * change is noted with the seq of its record and a stamp taken before
 * the record was applied; a flush that starts after the stamp clears it.
 * When a checkpoint is about to make C durable, any change of a record
 * with seq <= C still in the table is a violation. With
 * XMEM_HEAP_SHADOW_PAUSE=1 in the environment the heap also pauses where
 * a race would need the other thread to be preempted (in a checkpoint
 * between reading the lanes and flushing, after some applies, and in
 * some owners' windows between reading that a run is private and the
 * plain update: heap_bits.c's barrier must wait for those).
 *
 * Costs: a global mutex per hook; O(lines changed) memory. For tests.
 */
#ifdef XMEM_HEAP_SHADOW
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "heap/heap_internal.h"
#include "heap/heap_shadow.h"

#define SH_BITS 18 /* lines tracked at once: 2^n (then it stops) */
#define SH_PEND 3  /* changes kept per line */

struct sh_line {
	uint64_t line; /* + 1; 0: free slot */
	uint64_t seq[SH_PEND], stamp[SH_PEND];
	unsigned n;
};

struct xmem_shadow {
	pthread_mutex_t mu;
	struct sh_line *tab;
	uint64_t *used; /* slots in use */
	size_t nused;
	_Atomic uint64_t stamp;
	uint64_t violations;
	int full, pause;
	_Atomic unsigned napply;
	_Atomic unsigned nwin; /* pauses inside owners' windows */
};

static struct sh_line *sh_find(struct xmem_shadow *s, uint64_t line, int add)
{
	uint64_t i = (line * 0x9e3779b97f4a7c15ull) >> (64 - SH_BITS);

	for (unsigned k = 0; k < 64; k++, i = (i + 1) & ((1u << SH_BITS) - 1)) {
		struct sh_line *e = &s->tab[i];

		if (e->line == line + 1)
			return e;
		if (!e->line) {
			if (!add)
				return NULL;
			e->line = line + 1;
			s->used[s->nused++] = i;
			return e;
		}
	}
	if (add)
		s->full = 1; /* too many lines: stop checking */
	return NULL;
}

void xmem__shadow_open(struct xmem_heap *h)
{
	struct xmem_shadow *s = calloc(1, sizeof(*s));

	if (s) {
		s->tab = calloc(1u << SH_BITS, sizeof(*s->tab));
		s->used = calloc(1u << SH_BITS, sizeof(*s->used));
		if (!s->tab || !s->used) {
			free(s->tab);
			free(s->used);
			free(s);
			s = NULL;
		}
	}
	if (s) {
		pthread_mutex_init(&s->mu, NULL);
		s->stamp = 1;
		s->pause = getenv("XMEM_HEAP_SHADOW_PAUSE") != NULL;
	}
	h->shadow = s;
}

void xmem__shadow_close(struct xmem_heap *h)
{
	struct xmem_shadow *s = h->shadow;

	if (!s)
		return;
	if (s->full)
		fprintf(stderr,
			"heap shadow: over %u lines changed at once; "
			"the check stopped there\n",
			1u << SH_BITS);
	if (s->violations) { /* an assertion of a test build */
		fprintf(stderr,
			"heap shadow: %llu changes of retired records were "
			"not flushed\n",
			(unsigned long long)s->violations);
		abort();
	}
	pthread_mutex_destroy(&s->mu);
	free(s->tab);
	free(s->used);
	free(s);
	h->shadow = NULL;
}

uint64_t xmem__shadow_stamp(struct xmem_heap *h)
{
	return h->shadow ? atomic_fetch_add(&h->shadow->stamp, 1) : 0;
}

void xmem__shadow_write(struct xmem_heap *h, uint64_t off, uint64_t len,
			uint64_t seq, uint64_t stamp)
{
	struct xmem_shadow *s = h->shadow;

	if (!s || !len)
		return;
	pthread_mutex_lock(&s->mu);
	for (uint64_t ln = off >> 6; ln <= (off + len - 1) >> 6 && !s->full;
	     ln++) {
		struct sh_line *e = sh_find(s, ln, 1);

		if (!e)
			break;
		if (e->n == SH_PEND) /* keep the oldest changes */
			continue;
		e->seq[e->n] = seq;
		e->stamp[e->n++] = stamp;
	}
	pthread_mutex_unlock(&s->mu);
	if (s->pause && atomic_fetch_add(&s->napply, 1) % 64 == 0)
		usleep(50);
}

void xmem__shadow_flush(struct xmem_heap *h, uint64_t off, uint64_t len)
{
	struct xmem_shadow *s = h->shadow;
	uint64_t now;

	if (!s || !len || off >= h->size)
		return;
	now = atomic_fetch_add(&s->stamp, 1);
	pthread_mutex_lock(&s->mu);
	for (uint64_t ln = off >> 6; ln <= (off + len - 1) >> 6; ln++) {
		struct sh_line *e = sh_find(s, ln, 0);
		unsigned k = 0;

		if (!e)
			continue;
		for (unsigned i = 0; i < e->n; i++)
			if (e->stamp[i] >= now) { /* changed after it began */
				e->seq[k] = e->seq[i];
				e->stamp[k++] = e->stamp[i];
			}
		e->n = k;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Before C = c is made durable: every change of a record up to c must
 * have been flushed. */
void xmem__shadow_retire(struct xmem_heap *h, uint64_t c)
{
	struct xmem_shadow *s = h->shadow;
	size_t k = 0;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nused; i++) {
		struct sh_line *e = &s->tab[s->used[i]];
		unsigned m = 0;

		for (unsigned j = 0; j < e->n; j++) {
			if (e->seq[j] > c) {
				e->seq[m] = e->seq[j];
				e->stamp[m++] = e->stamp[j];
				continue;
			}
			if (!s->violations++)
				fprintf(stderr,
					"heap shadow: C=%llu retires record "
					"%llu, whose change of line at %#llx "
					"was not flushed\n",
					(unsigned long long)c,
					(unsigned long long)e->seq[j],
					(unsigned long long)(e->line - 1) << 6);
		}
		e->n = m;
		s->used[k++] = s->used[i]; /* (slots stay taken) */
	}
	s->nused = k;
	pthread_mutex_unlock(&s->mu);
}

void xmem__shadow_pause(struct xmem_heap *h, unsigned where)
{
	struct xmem_shadow *s = h->shadow;

	if (!s || !s->pause)
		return;
	/* 1: inside an owner's window, between reading that its run is
	 * private and the plain update (one time in 64) */
	if (where == 1 && atomic_fetch_add(&s->nwin, 1) % 64)
		return;
	usleep(where ? 50 : 100);
}

uint64_t xmem__shadow_violations(struct xmem_heap *h)
{
	return h->shadow ? h->shadow->violations : 0;
}
#endif
