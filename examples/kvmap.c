/* SPDX-License-Identifier: MIT */
/*
 * kvmap - a persistent key-value hash map on an xmem heap.
 *
 *   kvmap FILE put KEY VALUE      insert or replace
 *   kvmap FILE get KEY            print the value (exit 1 if absent)
 *   kvmap FILE del KEY            delete (exit 1 if absent)
 *   kvmap FILE scan               print every KEY=VALUE
 *   kvmap FILE fill N [PREFIX]    insert PREFIX0..PREFIX<N-1>, one
 *                                 transaction each
 *   kvmap FILE check              verify the map and the heap
 *
 * FILE is created on first use (64 MiB, a region with one range "kv" in
 * mode heap). Every change is one transaction: after a crash the map
 * holds each key either with its old or its new value, never a torn one.
 * Buckets grow twice as large, in one transaction, when the map holds
 * more than two entries per bucket.
 *
 * --crash-at N (with put or fill) kills the process with SIGKILL in the
 * middle of the Nth change, after the map was modified in place and
 * before the commit: the next run recovers the map as it was.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xmem.h>

#define KV_MAGIC 0x4b564d4150763031ull /* "KVMAPv01" */
#define T_MAP 1
#define T_BUCKETS 2
#define T_ENTRY 3

struct kv_root {
	uint64_t magic;
	xmem_oid map;
};

struct kv_map {
	uint64_t count;
	uint64_t nbuckets;
	xmem_oid buckets; /* xmem_oid[nbuckets] */
};

struct kv_entry {
	xmem_oid next;
	uint32_t klen, vlen;
	char data[]; /* key, then value */
};

static struct xmem_heap *heap;
static struct kv_root *root;
static long crash_at, changes;

static void *P(xmem_oid o)
{
	return xmem_heap_ptr(heap, o);
}

static uint64_t hash(const char *k, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n--)
		h = (h ^ (uint8_t)*k++) * 1099511628211ull;
	return h;
}

/* Kills the process here if this is the change --crash-at names. */
static void maybe_crash(void)
{
	if (crash_at && changes == crash_at) {
		fprintf(stderr, "kvmap: simulated crash in change %ld\n",
			changes);
		raise(SIGKILL);
	}
}

/* Finds KEY: returns the link that points at its entry (or at NULL). */
static xmem_oid *find(struct kv_map *m, const char *k, size_t kl)
{
	xmem_oid *b = P(m->buckets);
	xmem_oid *link = &b[hash(k, kl) % m->nbuckets];

	while (*link) {
		struct kv_entry *e = P(*link);
		if (e->klen == kl && !memcmp(e->data, k, kl))
			break;
		link = &e->next;
	}
	return link;
}

/* Moves every entry to a bucket array twice as large (one transaction). */
static int grow(struct kv_map *m)
{
	uint64_t n = m->nbuckets * 2;
	xmem_oid nb, *ob = P(m->buckets), *nbp;
	int rc;

	if ((rc = xmem_tx_begin(heap)))
		return rc;
	if ((rc = xmem_tx_alloc(heap, n * 8, T_BUCKETS, XMEM_F_HEAP_ZERO,
				&nb)) ||
	    (rc = xmem_tx_add_range(heap, ob, m->nbuckets * 8)))
		goto fail;
	nbp = P(nb);
	for (uint64_t i = 0; i < m->nbuckets; i++)
		while (ob[i]) {
			struct kv_entry *e = P(ob[i]);
			xmem_oid eo = ob[i];
			uint64_t h = hash(e->data, e->klen) % n;

			ob[i] = e->next;
			/* stored at commit: no snapshot, no fence each */
			if ((rc = xmem_tx_set64(heap, &e->next, nbp[h])))
				goto fail;
			nbp[h] = eo;
		}
	if ((rc = xmem_tx_free(heap, m->buckets)) ||
	    (rc = xmem_tx_add_range(heap, m, sizeof(*m))))
		goto fail;
	m->buckets = nb;
	m->nbuckets = n;
	return xmem_tx_commit(heap);
fail:
	xmem_tx_abort(heap);
	return rc;
}

/* Inserts or replaces KEY (one transaction). */
static int put(const char *k, const char *v)
{
	struct kv_map *m = P(root->map);
	size_t kl = strlen(k), vl = strlen(v);
	xmem_oid *link, eo;
	struct kv_entry *e;
	int rc;

	changes++;
	if ((rc = xmem_tx_begin(heap)))
		return rc;
	link = find(m, k, kl);
	if ((rc = xmem_tx_alloc(heap, sizeof(*e) + kl + vl, T_ENTRY, 0, &eo)) ||
	    (rc = xmem_tx_add_range(heap, link, 8)))
		goto fail;
	e = P(eo);
	e->klen = (uint32_t)kl;
	e->vlen = (uint32_t)vl;
	memcpy(e->data, k, kl);
	memcpy(e->data + kl, v, vl);
	if (*link) { /* replace */
		struct kv_entry *old = P(*link);
		e->next = old->next;
		if ((rc = xmem_tx_free(heap, *link)))
			goto fail;
	} else {
		e->next = 0;
		if ((rc = xmem_tx_add_range(heap, &m->count, 8)))
			goto fail;
		m->count++;
	}
	*link = eo;
	maybe_crash();
	if ((rc = xmem_tx_commit(heap)))
		return rc;
	return m->count > 2 * m->nbuckets ? grow(m) : 0;
fail:
	xmem_tx_abort(heap);
	return rc;
}

/* Deletes KEY; -ENOENT if absent. */
static int del(const char *k)
{
	struct kv_map *m = P(root->map);
	xmem_oid *link = find(m, k, strlen(k));
	int rc;

	if (!*link)
		return -ENOENT;
	if ((rc = xmem_tx_begin(heap)))
		return rc;
	if ((rc = xmem_tx_add_range(heap, link, 8)) ||
	    (rc = xmem_tx_add_range(heap, &m->count, 8)) ||
	    (rc = xmem_tx_free(heap, *link)))
		goto fail;
	*link = ((struct kv_entry *)P(*link))->next;
	m->count--;
	return xmem_tx_commit(heap);
fail:
	xmem_tx_abort(heap);
	return rc;
}

/* Prints every entry; returns how many there are. */
static uint64_t scan(int print)
{
	struct kv_map *m = P(root->map);
	xmem_oid *b = P(m->buckets);
	uint64_t n = 0;

	for (uint64_t i = 0; i < m->nbuckets; i++)
		for (xmem_oid o = b[i]; o;) {
			struct kv_entry *e = P(o);
			if (print)
				printf("%.*s=%.*s\n", (int)e->klen, e->data,
				       (int)e->vlen, e->data + e->klen);
			n++;
			o = e->next;
		}
	return n;
}

/* Creates the map in a fresh heap. */
static int init_map(void)
{
	struct kv_map *m;
	xmem_oid b;
	int rc;

	if ((rc = xmem_tx_begin(heap)))
		return rc;
	if ((rc = xmem_tx_add_range(heap, root, sizeof(*root))) ||
	    (rc = xmem_tx_alloc(heap, sizeof(*m), T_MAP, XMEM_F_HEAP_ZERO,
				&root->map)) ||
	    (rc = xmem_tx_alloc(heap, 16 * 8, T_BUCKETS, XMEM_F_HEAP_ZERO,
				&b))) {
		xmem_tx_abort(heap);
		return rc;
	}
	m = P(root->map);
	m->nbuckets = 16;
	m->buckets = b;
	root->magic = KV_MAGIC;
	return xmem_tx_commit(heap);
}

/* Opens (creating on first use) FILE's region, range "kv" and heap. */
static int open_store(const char *path, struct xmem_device **dev,
		      struct xmem_region **reg, struct xmem_range **r)
{
	int fresh = access(path, F_OK) != 0, rc;
	xmem_oid ro;

	if ((rc = xmem_device_open(dev, path, fresh ? 64ull << 20 : 0,
				   fresh ? XMEM_F_CREATE : 0)))
		return rc;
	if (fresh &&
	    ((rc = xmem_region_create(*dev, reg)) ||
	     (rc = xmem_range_create(*reg, "kv", 32ull << 20, XMEM_ALIGN_2M,
				     XMEM_RANGE_HEAP, NULL))))
		return rc;
	if (!fresh && (rc = xmem_region_open(*dev, reg)))
		return rc;
	if ((rc = xmem_range_open(*reg, "kv", 0, r)))
		return rc;
	rc = fresh ? xmem_heap_create(*r, 0, &heap)
		   : xmem_heap_open(*r, 0, &heap);
	if (rc || (rc = xmem_heap_root(heap, sizeof(*root), 0, &ro)))
		return rc;
	root = P(ro);
	return root->magic == KV_MAGIC ? 0 : init_map();
}

static int usage(void)
{
	fprintf(stderr, "usage: kvmap FILE [--crash-at N] "
			"put KEY VALUE|get KEY|del KEY|scan|fill N [PREFIX]|"
			"check\n");
	return 2;
}

/* Runs one command; returns the exit code. */
static int run(int argc, char **argv)
{
	const char *cmd = argv[0];
	char k[64], v[64];
	int rc = 0;

	if (!strcmp(cmd, "put") && argc == 3) {
		rc = put(argv[1], argv[2]);
	} else if (!strcmp(cmd, "get") && argc == 2) {
		struct kv_map *m = P(root->map);
		xmem_oid *l = find(m, argv[1], strlen(argv[1]));
		struct kv_entry *e = *l ? P(*l) : NULL;
		if (!e)
			return 1;
		printf("%.*s\n", (int)e->vlen, e->data + e->klen);
	} else if (!strcmp(cmd, "del") && argc == 2) {
		if ((rc = del(argv[1])) == -ENOENT)
			return 1;
	} else if (!strcmp(cmd, "scan") && argc == 1) {
		scan(1);
	} else if (!strcmp(cmd, "fill") && (argc == 2 || argc == 3)) {
		long n = atol(argv[1]);
		for (long i = 0; i < n && !rc; i++) {
			snprintf(k, sizeof(k), "%s%ld",
				 argc == 3 ? argv[2] : "key", i);
			snprintf(v, sizeof(v), "value%ld", i);
			rc = put(k, v);
		}
	} else if (!strcmp(cmd, "check") && argc == 1) {
		struct kv_map *m = P(root->map);
		unsigned np = 0;
		uint64_t n = scan(0);
		rc = xmem_heap_check(heap, 0, NULL, NULL, &np);
		printf("%llu entries (count %llu, %llu buckets), heap check: "
		       "%u "
		       "problem(s)\n",
		       (unsigned long long)n, (unsigned long long)m->count,
		       (unsigned long long)m->nbuckets, np);
		return n == m->count && !rc ? 0 : 1;
	} else {
		return usage();
	}
	if (rc)
		fprintf(stderr, "kvmap: %s: %s\n", xmem_strerror(rc),
			xmem_errormsg());
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = NULL;
	struct xmem_range *r = NULL;
	int rc, a = 2;

	if (argc < 3)
		return usage();
	if (!strcmp(argv[2], "--crash-at")) {
		if (argc < 5)
			return usage();
		crash_at = atol(argv[3]);
		a = 4;
	}
	if ((rc = open_store(argv[1], &dev, &reg, &r))) {
		fprintf(stderr, "kvmap: %s: %s\n", argv[1], xmem_errormsg());
		return 1;
	}
	rc = run(argc - a, argv + a);
	xmem_heap_close(&heap);
	xmem_range_close(&r);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	return rc;
}
