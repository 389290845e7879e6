/* SPDX-License-Identifier: MIT */
/*
 * bench_heap_map.h - the chained hash map of PMDK's hashmap_tx example,
 * written for each library (same algorithm, the same words changed in
 * the same transactions):
 *   insert: one transaction changes the bucket slot and the count,
 *           allocates the entry and links it at the head of its chain;
 *   grow:   when count > 10 x buckets, one transaction allocates a
 *           bucket array twice as large, moves every entry (changing its
 *           next pointer), frees the old array.
 * libpmemobj changes existing words as hashmap_tx does: an undo snapshot
 * (pmemobj_tx_add_range_direct), then a store. xmem runs twice: with
 * xmem_tx_set64 (the word is written at commit from the COMMIT record:
 * no snapshot, no fence) and, as a second row, with xmem_tx_add_range
 * and a store, the same calls as hashmap_tx.
 * Included by bench_heap.c only.
 */
#define HM_INIT 10
#define HM_MAX_LOAD 10
#define HM_P 32212254719ull
#define HM_A 1313109283ull
#define HM_B 2718281828ull

static uint64_t hm_hash(uint64_t key, uint64_t n)
{
	return ((HM_A * key + HM_B) % HM_P) % n;
}

/* xmem */
struct xhm {
	uint64_t count;
	xmem_oid buckets;
};
struct xbk {
	uint64_t n;
	xmem_oid b[];
};
struct xent {
	uint64_t key, value;
	xmem_oid next;
};

/* Stores v at *p in the transaction: with set, a redo word written at
 * commit (xmem_tx_set64); else an undo snapshot and a store, as
 * hashmap_tx does. */
static void x_store(struct xh *x, int set, uint64_t *p, uint64_t v)
{
	if (set ? xmem_tx_set64(x->h, p, v) : xmem_tx_add_range(x->h, p, 8))
		die("hm store");
	if (!set)
		*p = v;
}

static void x_hm_grow(struct xh *x, struct xhm *m, uint64_t nlen, int set)
{
	struct xbk *ob = xmem_heap_ptr(x->h, m->buckets), *nb;
	xmem_oid no;

	if (xmem_tx_begin(x->h) ||
	    xmem_tx_alloc(x->h, sizeof(*nb) + nlen * 8, 11, XMEM_F_HEAP_ZERO,
			  &no) ||
	    xmem_tx_add_range(x->h, ob, sizeof(*ob) + ob->n * 8))
		die("hm grow");
	nb = xmem_heap_ptr(x->h, no);
	nb->n = nlen;
	for (uint64_t i = 0; i < ob->n; i++) {
		while (ob->b[i]) {
			struct xent *e = xmem_heap_ptr(x->h, ob->b[i]);
			uint64_t h = hm_hash(e->key, nlen);

			ob->b[i] = e->next;
			x_store(x, set, &e->next, nb->b[h]);
			nb->b[h] = xmem_heap_oid(x->h, e);
		}
	}
	if (xmem_tx_free(x->h, m->buckets))
		die("hm grow free");
	x_store(x, set, &m->buckets, no);
	if (xmem_tx_commit(x->h))
		die("hm grow commit");
}

static struct xhm *x_hm_new(struct xh *x)
{
	struct xhm *m;
	struct xbk *b;
	xmem_oid bo;

	if (xmem_heap_alloc(x->h, &x->r->map, sizeof(*m), 10, XMEM_F_HEAP_ZERO,
			    NULL, NULL))
		die("hm new");
	m = xmem_heap_ptr(x->h, x->r->map);
	if (xmem_tx_begin(x->h) ||
	    xmem_tx_alloc(x->h, sizeof(*b) + HM_INIT * 8, 11, XMEM_F_HEAP_ZERO,
			  &bo) ||
	    xmem_tx_add_range(x->h, &m->buckets, 8))
		die("hm new tx");
	b = xmem_heap_ptr(x->h, bo);
	b->n = HM_INIT;
	m->buckets = bo;
	if (xmem_tx_commit(x->h))
		die("hm new commit");
	return m;
}

static void x_hm_insert(struct xh *x, struct xhm *m, uint64_t key,
			uint64_t value, int set)
{
	struct xbk *b = xmem_heap_ptr(x->h, m->buckets);
	uint64_t h = hm_hash(key, b->n);
	struct xent *e;
	xmem_oid eo;

	for (xmem_oid o = b->b[h]; o; o = e->next) {
		e = xmem_heap_ptr(x->h, o);
		if (e->key == key)
			return;
	}
	if (xmem_tx_begin(x->h))
		die("hm insert");
	if (!set && (xmem_tx_add_range(x->h, &b->b[h], 8) ||
		     xmem_tx_add_range(x->h, &m->count, 8)))
		die("hm insert snapshot");
	if (xmem_tx_alloc(x->h, sizeof(*e), 12, 0, &eo))
		die("hm insert alloc");
	e = xmem_heap_ptr(x->h, eo);
	e->key = key;
	e->value = value;
	e->next = b->b[h];
	if (set) {
		if (xmem_tx_set64(x->h, &b->b[h], eo) ||
		    xmem_tx_set64(x->h, &m->count, m->count + 1))
			die("hm insert set");
	} else {
		b->b[h] = eo;
		m->count++;
	}
	if (xmem_tx_commit(x->h))
		die("hm insert commit");
	if (m->count > b->n * HM_MAX_LOAD)
		x_hm_grow(x, m, b->n * 2, set);
}

static uint64_t x_hm_get(struct xh *x, struct xhm *m, uint64_t key)
{
	struct xbk *b = xmem_heap_ptr(x->h, m->buckets);
	struct xent *e;

	for (xmem_oid o = b->b[hm_hash(key, b->n)]; o; o = e->next) {
		e = xmem_heap_ptr(x->h, o);
		if (e->key == key)
			return e->value;
	}
	return 0;
}

/* libpmemobj */
struct phm {
	uint64_t count;
	PMEMoid buckets;
};
struct pbk {
	uint64_t n;
	PMEMoid b[];
};
struct pent {
	uint64_t key, value;
	PMEMoid next;
};

static void p_hm_grow(struct ph *p, struct phm *m, uint64_t nlen)
{
	struct pbk *ob = pmemobj_direct(m->buckets), *nb;

	TX_BEGIN(p->pop)
	{
		PMEMoid no = pmemobj_tx_zalloc(
			sizeof(*nb) + nlen * sizeof(PMEMoid), 11);
		pmemobj_tx_add_range_direct(
			ob, sizeof(*ob) + ob->n * sizeof(PMEMoid));
		nb = pmemobj_direct(no);
		nb->n = nlen;
		for (uint64_t i = 0; i < ob->n; i++) {
			while (!OID_IS_NULL(ob->b[i])) {
				PMEMoid eo = ob->b[i];
				struct pent *e = pmemobj_direct(eo);
				uint64_t h = hm_hash(e->key, nlen);

				ob->b[i] = e->next;
				pmemobj_tx_add_range_direct(&e->next,
							    sizeof(PMEMoid));
				e->next = nb->b[h];
				nb->b[h] = eo;
			}
		}
		pmemobj_tx_free(m->buckets);
		pmemobj_tx_add_range_direct(&m->buckets, sizeof(PMEMoid));
		m->buckets = no;
	}
	TX_ONABORT
	{
		die("pmemobj hm grow");
	}
	TX_END
}

static struct phm *p_hm_new(struct ph *p)
{
	struct phm *m;

	if (pmemobj_zalloc(p->pop, &p->r->map, sizeof(*m), 10))
		die("pmemobj hm new");
	m = pmemobj_direct(p->r->map);
	TX_BEGIN(p->pop)
	{
		PMEMoid bo = pmemobj_tx_zalloc(
			sizeof(struct pbk) + HM_INIT * sizeof(PMEMoid), 11);
		((struct pbk *)pmemobj_direct(bo))->n = HM_INIT;
		pmemobj_tx_add_range_direct(&m->buckets, sizeof(PMEMoid));
		m->buckets = bo;
	}
	TX_END
	return m;
}

static void p_hm_insert(struct ph *p, struct phm *m, uint64_t key,
			uint64_t value)
{
	struct pbk *b = pmemobj_direct(m->buckets);
	uint64_t h = hm_hash(key, b->n);
	struct pent *e;

	for (PMEMoid o = b->b[h]; !OID_IS_NULL(o); o = e->next) {
		e = pmemobj_direct(o);
		if (e->key == key)
			return;
	}
	TX_BEGIN(p->pop)
	{
		pmemobj_tx_add_range_direct(&b->b[h], sizeof(PMEMoid));
		pmemobj_tx_add_range_direct(&m->count, 8);
		PMEMoid eo = pmemobj_tx_alloc(sizeof(*e), 12);
		e = pmemobj_direct(eo);
		e->key = key;
		e->value = value;
		e->next = b->b[h];
		b->b[h] = eo;
		m->count++;
	}
	TX_ONABORT
	{
		die("pmemobj hm insert");
	}
	TX_END
	if (m->count > b->n * HM_MAX_LOAD)
		p_hm_grow(p, m, b->n * 2);
}

static uint64_t p_hm_get(struct ph *p, struct phm *m, uint64_t key)
{
	struct pbk *b = pmemobj_direct(m->buckets);
	struct pent *e;

	for (PMEMoid o = b->b[hm_hash(key, b->n)]; !OID_IS_NULL(o);
	     o = e->next) {
		e = pmemobj_direct(o);
		if (e->key == key)
			return e->value;
	}
	return 0;
}

static uint64_t hm_key(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ull + 1;
}

/* Fills an xmem map with hm_keys keys (set: see x_store); returns
 * inserts/s and sets *fences to the fences per insert. */
static double x_hm_fill(struct xh *x, struct xhm **mp, int set, double *fences)
{
	uint64_t f;
	double t;

	unlink(xpath);
	x_up(x, POOL_SIZE, 1);
	*mp = x_hm_new(x);
	f = x_fences(x);
	t = now();
	for (uint64_t i = 0; i < hm_keys; i++)
		x_hm_insert(x, *mp, hm_key(i), i, set);
	t = now() - t;
	*fences = (double)(x_fences(x) - f) / (double)hm_keys;
	return (double)hm_keys / t;
}

/* The hash map rows: inserts then lookups, interleaved per repetition;
 * xmem twice, its stores to existing words as undo snapshots (as
 * hashmap_tx) and as redo words (xmem_tx_set64). */
static void map_rows(void)
{
	double xi[8], xs[8], pi[8], xl[8], pl[8], fi = 0, fs = 0;
	int n = reps < 3 ? reps : 3;
	uint64_t sum = 0;

	for (int r = 0; r < n; r++) {
		struct xh x;
		struct ph p;
		struct xhm *xm;
		struct phm *pm;
		double t;

		xi[r] = x_hm_fill(&x, &xm, 0, &fi);
		x_down(&x);
		xs[r] = x_hm_fill(&x, &xm, 1, &fs);
		t = now();
		for (uint64_t i = 0; i < hm_keys; i++)
			sum += x_hm_get(&x, xm, hm_key(i));
		xl[r] = (double)hm_keys / (now() - t);
		x_down(&x);
		unlink(xpath);

		unlink(ppath);
		p_up(&p, POOL_SIZE, 1);
		pm = p_hm_new(&p);
		t = now();
		for (uint64_t i = 0; i < hm_keys; i++)
			p_hm_insert(&p, pm, hm_key(i), i);
		pi[r] = (double)hm_keys / (now() - t);
		t = now();
		for (uint64_t i = 0; i < hm_keys; i++)
			sum -= p_hm_get(&p, pm, hm_key(i));
		pl[r] = (double)hm_keys / (now() - t);
		p_down(&p);
		unlink(ppath);
	}
	if (sum)
		fprintf(stderr, "bench_heap: the two maps disagree\n");
	char name[64];
	snprintf(name, sizeof(name), "hashmap %llu inserts (ops/s)",
		 (unsigned long long)hm_keys);
	row(name, xs, pi, n, fs,
	    "fences per insert (grows included); xmem sets words at commit");
	floor_line(fs, median(pi, n));
	row("  undo snapshots, as hashmap_tx", xi, pi, n, fi,
	    "the same with xmem_tx_add_range + stores");
	snprintf(name, sizeof(name), "hashmap %llu lookups (ops/s)",
		 (unsigned long long)hm_keys);
	row(name, xl, pl, n, 0, "");
}
