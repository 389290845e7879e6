/* SPDX-License-Identifier: MIT */
/*
 * guest_devdax_crash.c - a region and a heap on /dev/dax0.0 survive the
 * machine being killed in the middle of their updates.
 *
 *   guest_devdax_crash prepare DEV      region, heap range, range r0
 *   guest_devdax_crash run DEV          iterations until killed
 *   guest_devdax_crash verify DEV ACK   after the next boot
 *
 * Iteration j creates range r<j>, destroys r<j-1>, then in one heap
 * transaction allocates an object holding j and puts it in the root's
 * ring of the last MAXOBJ objects (freeing the one it replaces), and
 * prints "ACK j". The host kills qemu at a random moment after a
 * few iterations and boots again; verify then requires:
 *
 *   - the region opens and its check is clean;
 *   - the ranges besides "heap" are {r<m>} or {r<m>, r<m+1>} (a crash
 *     between the create and the destroy of iteration m+1);
 *   - the heap opens (recovery runs) and its check is clean; its count c
 *     is m or m-1 with {r<m>}, m with {r<m>, r<m+1>}; object k holds k+1;
 *     the ring and the root are the only live objects (nothing leaked);
 *   - every acknowledged iteration is there: c >= ACK.
 *
 * The guest's stores reach the NVDIMM's backing file in program order
 * (TCG has no cache to lose), so this is a crash at an arbitrary
 * instruction, through the real device DAX driver; the crash simulator's
 * tests cover lost and torn cache lines.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "guest.h"
#include "guest_util.h"

#include <xmem/heap.h>

#define CHECK "crash-devdax"
#define HEAP_SIZE (16ull << 20)
#define R_SIZE (2ull << 20)
#define MAXOBJ 4000u
#define OBJ_TYPE 7u

struct root {
	uint64_t count;
	xmem_oid objs[MAXOBJ];
};

struct obj {
	uint64_t value;
};

/* The open pieces of one run. */
struct ctx {
	struct xmem_device *dev;
	struct xmem_region *reg;
	struct xmem_range *hr;
	struct xmem_heap *heap;
	struct root *root;
};

static void ctx_close(struct ctx *c)
{
	xmem_heap_close(&c->heap);
	xmem_range_close(&c->hr);
	xmem_region_close(&c->reg);
	xmem_device_close(&c->dev);
}

/* Opens device, region, heap range and heap (recovery runs here). */
static int ctx_open(struct ctx *c, const char *path)
{
	xmem_oid oid;
	int rc = xmem_device_open(&c->dev, path, 0, 0);

	if (!rc)
		rc = xmem_region_open(c->dev, &c->reg);
	if (!rc)
		rc = xmem_range_open(c->reg, "heap", 0, &c->hr);
	if (!rc)
		rc = xmem_heap_open(c->hr, 0, &c->heap);
	if (!rc)
		rc = xmem_heap_root(c->heap, sizeof(struct root), OBJ_TYPE,
				    &oid);
	if (rc) {
		GUEST_FAIL_RC(CHECK, "open region and heap", rc);
		return rc;
	}
	c->root = xmem_heap_ptr(c->heap, oid);
	return 0;
}

static int prepare(const char *path)
{
	struct xmem_device *dev = NULL;
	struct xmem_region *reg = NULL;
	struct xmem_range *hr = NULL;
	struct xmem_heap *heap = NULL;
	struct xmem_range_info info;
	xmem_oid oid;
	int rc = xmem_device_open(&dev, path, 0, 0);

	if (!rc && xmem_region_destroy(dev, XMEM_F_FORCE) == 0)
		fprintf(stderr, "an earlier region was destroyed\n");
	if (!rc)
		rc = xmem_region_create(dev, &reg);
	if (!rc)
		rc = xmem_range_create(reg, "heap", HEAP_SIZE, XMEM_ALIGN_2M,
				       XMEM_RANGE_HEAP, &info);
	if (!rc)
		rc = xmem_range_create(reg, "r0", R_SIZE, XMEM_ALIGN_2M,
				       XMEM_RANGE_RAW, &info);
	if (!rc)
		rc = xmem_range_open(reg, "heap", 0, &hr);
	if (!rc)
		rc = xmem_heap_create(hr, 0, &heap);
	if (!rc)
		rc = xmem_heap_root(heap, sizeof(struct root), OBJ_TYPE, &oid);
	if (rc)
		GUEST_FAIL_RC(CHECK, "prepare the region and heap", rc);
	xmem_heap_close(&heap);
	xmem_range_close(&hr);
	xmem_region_close(&reg);
	xmem_device_close(&dev);
	return guest_exit();
}

/* Appends an object holding j to the root's ring of the last MAXOBJ
 * objects, freeing the one it replaces, in one transaction. */
static int heap_append(struct ctx *c, uint64_t j)
{
	struct root *r = c->root;
	uint64_t slot = r->count % MAXOBJ;
	struct obj *o;
	xmem_oid oid;
	int rc = xmem_tx_begin(c->heap);

	if (rc)
		return rc;
	rc = xmem_tx_add_range(c->heap, &r->count, sizeof(r->count));
	if (!rc)
		rc = xmem_tx_add_range(c->heap, &r->objs[slot],
				       sizeof(r->objs[0]));
	if (!rc && r->objs[slot])
		rc = xmem_tx_free(c->heap, r->objs[slot]);
	if (!rc)
		rc = xmem_tx_alloc(c->heap, sizeof(*o), OBJ_TYPE, 0, &oid);
	if (!rc) {
		o = xmem_heap_ptr(c->heap, oid);
		rc = xmem_tx_add_range(c->heap, o, sizeof(*o));
		if (!rc) {
			o->value = j;
			r->objs[slot] = oid;
			r->count++;
		}
	}
	if (rc) {
		xmem_tx_abort(c->heap);
		return rc;
	}
	return xmem_tx_commit(c->heap);
}

static int run(const char *path)
{
	struct ctx c = { 0 };
	struct xmem_range_info info;
	char name[16];
	int rc = ctx_open(&c, path);

	for (uint64_t j = 1; !rc; j++) {
		snprintf(name, sizeof(name), "r%" PRIu64, j);
		rc = xmem_range_create(c.reg, name, R_SIZE, XMEM_ALIGN_2M,
				       XMEM_RANGE_RAW, &info);
		snprintf(name, sizeof(name), "r%" PRIu64, j - 1);
		if (!rc)
			rc = xmem_range_destroy(c.reg, name, 0);
		if (!rc)
			rc = heap_append(&c, j);
		if (rc)
			GUEST_FAIL_RC(CHECK, "an iteration of the workload",
				      rc);
		else
			printf("ACK %" PRIu64 "\n", j);
		fflush(stdout);
	}
	ctx_close(&c);
	return guest_exit();
}

static void print_problem(const struct xmem_check_problem *p, void *arg)
{
	fprintf(stderr, "%s at %" PRIu64 ": %s\n", p->structure, p->offset,
		p->what);
	(void)arg;
}

/* The r<n> ranges: their count and the lowest and highest n. */
static int scan_ranges(struct xmem_region *reg, size_t *n, uint64_t *lo,
		       uint64_t *hi)
{
	struct xmem_range_info *v = NULL;
	size_t count = 0;
	uint64_t x;
	int rc = xmem_range_list(reg, &v, &count);

	*n = 0;
	*lo = UINT64_MAX;
	*hi = 0;
	for (size_t i = 0; !rc && i < count; i++) {
		if (!strcmp(v[i].name, "heap"))
			continue;
		if (sscanf(v[i].name, "r%" SCNu64, &x) != 1)
			rc = -EINVAL;
		++*n;
		*lo = x < *lo ? x : *lo;
		*hi = x > *hi ? x : *hi;
	}
	free(v);
	return rc;
}

/* Checks that the heap's list matches the ranges and the last ACK. */
static int check_state(struct ctx *c, uint64_t ack, uint64_t objects,
		       char *desc, size_t len)
{
	uint64_t cnt = c->root->count, lo, hi;
	size_t n;
	int ok;

	if (scan_ranges(c->reg, &n, &lo, &hi)) {
		GUEST_FAIL(CHECK, "a range that is not r<n> or heap");
		return -1;
	}
	if (n == 1)
		ok = cnt == lo || cnt + 1 == lo;
	else
		ok = n == 2 && hi == lo + 1 && cnt == lo;
	if (!ok || cnt < ack) {
		GUEST_FAIL(CHECK,
			   "%zu ranges r%" PRIu64 "..r%" PRIu64
			   " with heap count %" PRIu64 " after ACK %" PRIu64
			   ": not a state the workload passes through",
			   n, lo, hi, cnt, ack);
		return -1;
	}
	for (uint64_t k = cnt > MAXOBJ ? cnt - MAXOBJ : 0; k < cnt; k++) {
		struct obj *o = NULL;

		if (xmem_heap_get(c->heap, c->root->objs[k % MAXOBJ], OBJ_TYPE,
				  (void **)&o) ||
		    o->value != k + 1) {
			GUEST_FAIL(CHECK, "heap object %" PRIu64 " is wrong",
				   k);
			return -1;
		}
	}
	/* The ring and the root: anything else leaked in the crash. */
	if (objects != (cnt < MAXOBJ ? cnt : MAXOBJ) + 1) {
		GUEST_FAIL(CHECK,
			   "%" PRIu64 " live heap objects, expected %" PRIu64,
			   objects, (cnt < MAXOBJ ? cnt : MAXOBJ) + 1);
		return -1;
	}
	if (n == 1)
		snprintf(desc, len,
			 "ranges {r%" PRIu64 "}, heap count %" PRIu64, lo, cnt);
	else
		snprintf(desc, len,
			 "ranges {r%" PRIu64 ", r%" PRIu64
			 "}, heap count %" PRIu64,
			 lo, hi, cnt);
	return 0;
}

static int verify(const char *path, uint64_t ack)
{
	struct xmem_heap_stats st;
	struct ctx c = { 0 };
	struct xmem_device *dev = NULL;
	unsigned nreg = 0, nheap = 0;
	char desc[160];
	int rc = xmem_device_open(&dev, path, 0, XMEM_F_RDONLY);

	if (!rc)
		rc = xmem_region_check(dev, 0, print_problem, NULL, &nreg);
	xmem_device_close(&dev);
	if (rc) {
		GUEST_FAIL_RC(CHECK, "xmem_region_check", rc);
		return guest_exit();
	}
	if (ctx_open(&c, path))
		goto out;
	rc = xmem_heap_check(c.heap, 0, print_problem, NULL, &nheap);
	if (!rc)
		rc = xmem_heap_stats(c.heap, &st);
	if (rc)
		GUEST_FAIL_RC(CHECK, "xmem_heap_check", rc);
	else if (check_state(&c, ack, st.objects, desc, sizeof(desc)) == 0)
		GUEST_PASS(CHECK,
			   "qemu killed after ACK %" PRIu64 "; on the next "
			   "boot region check clean, %s, heap recovery "
			   "replayed or rolled back %" PRIu64 " record(s), "
			   "heap check clean, every acknowledged iteration "
			   "present",
			   ack, desc, st.recovered_records);
out:
	ctx_close(&c);
	return guest_exit();
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 2 ? argv[1] : "";

	if (!strcmp(cmd, "prepare"))
		return prepare(argv[2]);
	if (!strcmp(cmd, "run"))
		return run(argv[2]);
	if (!strcmp(cmd, "verify") && argc > 3)
		return verify(argv[2], strtoull(argv[3], NULL, 10));
	fprintf(stderr, "usage: %s prepare|run DEV | verify DEV ACK\n",
		argv[0]);
	return 2;
}
