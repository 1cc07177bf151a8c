/*
 * bulk.c - the bulk collector (lib/bulk.h): open batches per provider,
 * made by whichever caller finds them due.
 *
 * One lock guards the list of open batches and every item's done flag; a
 * condition variable wakes waiters when a batch fills or is made.  A batch
 * leaves the list when a caller takes it to make it, so items submitted
 * meanwhile open the next one.  The batch is freed by the caller that made
 * it, after marking its items done; waiters never touch a batch once their
 * item is done.
 */
#include "bulk.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "co.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct bulk_batch {
	const struct cfg_provider *p;
	struct rot_ctx ctx;          /* the first item's; deadline: the earliest item's */
	struct bulk_item **items;
	int n, cap;
	int64_t due_mono_ms;         /* opened + linger */
	bool taken;                  /* being made */
	struct bulk_batch *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct co_cond cv;   /* threads and continuations wait on it together */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct bulk_batch *open_batches;
static struct mx_family *mx_calls, *mx_items;

static void init_once(void)
{
	if (co_cond_init(&cv) != ENR_OK)
		pthread_cond_init(&cv.cv, NULL);
}

void bulk_init(void)
{
	pthread_once(&once, init_once);
	mx_calls = mx_counter("enrichd_bulk_batches_total",
			      "Bulk batches made (one or more bulk calls each), by provider.");
	mx_items = mx_counter("enrichd_bulk_items_total",
			      "Lookups made in bulk batches, by provider.");
}

void bulk_item_init(struct bulk_item *it)
{
	memset(it, 0, sizeof *it);
	prov_result_init(&it->res);
}

void bulk_item_release(struct bulk_item *it)
{
	prov_result_release(&it->res);
}

static bool same_batch(const struct bulk_batch *b, const struct rot_ctx *ctx,
		       const struct cfg_provider *p)
{
	return !b->taken && b->p == p && b->ctx.cfg == ctx->cfg && b->ctx.store == ctx->store &&
	       b->ctx.endpoint == ctx->endpoint && b->n < b->cap;
}

enum enr_err bulk_submit(const struct rot_ctx *ctx, struct bulk_item *it, int batch_size,
			 int linger_ms)
{
	const struct prov_ops *ops = prov_ops_find(it->p->kind);
	struct bulk_batch *b;

	if (ops == NULL || ops->bulk_max <= 0)
		return ENR_E_INVALID;
	if (batch_size < 1)
		batch_size = 1;
	if (batch_size > ops->bulk_max)
		batch_size = ops->bulk_max;
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	for (b = open_batches; b; b = b->next) {
		if (same_batch(b, ctx, it->p))
			break;
	}
	if (b == NULL) {
		b = calloc(1, sizeof *b);
		if (b)
			b->items = calloc((size_t)batch_size, sizeof *b->items);
		if (b == NULL || b->items == NULL) {
			free(b);
			pthread_mutex_unlock(&lock);
			return ENR_E_NOMEM;
		}
		b->p = it->p;
		b->ctx = *ctx;
		b->cap = batch_size;
		b->due_mono_ms = util_mono_ms() + linger_ms;
		b->next = open_batches;
		open_batches = b;
	}
	b->items[b->n++] = it;
	it->batch = b;
	it->done = false;
	if (it->deadline_mono_ms > 0 &&
	    (b->ctx.deadline_mono_ms == 0 || it->deadline_mono_ms < b->ctx.deadline_mono_ms))
		b->ctx.deadline_mono_ms = it->deadline_mono_ms;
	if (b->n == b->cap)
		co_cond_broadcast(&cv);
	pthread_mutex_unlock(&lock);
	return ENR_OK;
}

static bool due(const struct bulk_batch *b, int64_t now)
{
	return !b->taken && (b->n == b->cap || now >= b->due_mono_ms);
}

/* Take b off the list (lock held). */
static void take(struct bulk_batch *b)
{
	for (struct bulk_batch **pp = &open_batches; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	b->taken = true;
}

/* Make a taken batch (without the lock), then mark its items done and
 * free it (with the lock). */
static void make(struct bulk_batch *b)
{
	size_t nb = b->n > 0 ? (size_t)b->n : 1;
	struct rot_item *ri = calloc(nb, sizeof *ri);
	struct bulk_item **send = calloc(nb, sizeof *send);
	char labels[LIM_METRIC_LABELS_MAX], pv[LIM_NAME_MAX * 2 + 1];
	struct {
		void (*fn)(struct bulk_item *, void *);
		struct bulk_item *it;
		void *arg;
	} *cbs;
	int64_t now = util_mono_ms();
	int m = 0;
	enum enr_err rc = ENR_E_NOMEM;

	for (int i = 0; i < b->n; i++) {
		struct bulk_item *it = b->items[i];

		prov_result_reset(&it->res);
		memset(&it->rep, 0, sizeof it->rep);
		/* An item whose own time is up is not sent. */
		if (it->deadline_mono_ms > 0 && now >= it->deadline_mono_ms) {
			it->rep.status = ROT_DEADLINE;
			continue;
		}
		if (ri && send) {
			ri[m].q = &it->q;
			ri[m].res = &it->res;
			ri[m].rep = &it->rep;
			send[m++] = it;
		} else {
			it->rep.status = ROT_FAILED;
		}
	}
	if (ri && send && m > 0) {
		rc = rot_call_bulk(&b->ctx, b->p, ri, (size_t)m);
		mx_label(b->p->name, pv, sizeof pv);
		snprintf(labels, sizeof labels, "provider=\"%s\"", pv);
		mx_add(mx_calls, labels, 1);
		mx_add(mx_items, labels, m);
	}
	if (rc && m > 0) {
		log_error("bulk", "%s: a bulk batch of %d lookups failed (%s)", b->p->name, m,
			  enr_strerror(rc));
		for (int i = 0; i < m; i++) {
			prov_result_reset(&send[i]->res);
			memset(&send[i]->rep, 0, sizeof send[i]->rep);
			send[i]->rep.status = ROT_FAILED;
		}
	}
	/* Every answer goes to the cache before anyone is told: a crash
	 * from here on repays nothing. */
	for (int i = 0; i < m; i++) {
		struct bulk_item *it = send[i];

		if (it->cacheable && it->rep.status == ROT_ANSWERED &&
		    cache_put(b->ctx.store, b->ctx.cfg, it->key, b->p->name, &it->res,
			      util_now_ms()) != ENR_OK)
			it->cache_failed = true;
	}
	/* Callbacks are noted first: once an item is done its owner may free
	 * it (a blocking waiter), and an item with a callback has no waiter. */
	cbs = calloc(nb, sizeof *cbs);
	for (int i = 0; cbs && i < b->n; i++) {
		cbs[i].fn = b->items[i]->on_done;
		cbs[i].it = b->items[i];
		cbs[i].arg = b->items[i]->arg;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < b->n; i++) {
		b->items[i]->batch = NULL;
		b->items[i]->done = true;
	}
	co_cond_broadcast(&cv);
	pthread_mutex_unlock(&lock);
	for (int i = 0; cbs && i < b->n; i++) {
		if (cbs[i].fn)
			cbs[i].fn(cbs[i].it, cbs[i].arg);
	}
	if (cbs == NULL)
		log_error("bulk", "out of memory: completions of a batch not delivered");
	free(cbs);
	free(ri);
	free(send);
	free(b->items);
	free(b);
}

void bulk_wait(struct bulk_item *it)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	while (!it->done) {
		struct bulk_batch *b = it->batch;
		int64_t now = util_mono_ms();

		if (b && due(b, now)) {
			take(b);
			pthread_mutex_unlock(&lock);
			make(b);
			pthread_mutex_lock(&lock);
			continue;
		}
		/* Not due yet, or someone is making it: woken when a batch fills
		 * or is made, or when ours falls due. */
		co_cond_wait(&cv, &lock,
			     now + (b && !b->taken && b->due_mono_ms > now ? b->due_mono_ms - now : 100));
	}
	pthread_mutex_unlock(&lock);
}

int64_t bulk_poll(int64_t now_mono_ms)
{
	int64_t next = 0;

	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	for (;;) {
		struct bulk_batch *b;

		for (b = open_batches; b; b = b->next) {
			if (due(b, now_mono_ms))
				break;
		}
		if (b == NULL)
			break;
		take(b);
		pthread_mutex_unlock(&lock);
		make(b);
		pthread_mutex_lock(&lock);
	}
	for (struct bulk_batch *b = open_batches; b; b = b->next) {
		if (next == 0 || b->due_mono_ms < next)
			next = b->due_mono_ms;
	}
	pthread_mutex_unlock(&lock);
	return next;
}
