/*
 * spool.c - the store pool (lib/spool.h).
 *
 * One lock (mu) guards the queues.  Work waits in one ready list of
 * units, each in it at most once: a plain closure, a lane (whose own FIFO
 * holds its closures), or a kind of batched write (whose FIFO holds its
 * writes).  A thread takes the first unit: a closure runs; a lane gives
 * one closure and goes to the back of the list if it has more (so one
 * busy lane cannot starve the others); a kind gives everything queued, up
 * to its batch size, and is "running" until that batch is done, so its
 * writes never overtake each other.
 *
 * Writes are numbered as they are queued (wseq).  A closure submitted
 * with SP_AFTER_WRITES remembers the number of the last write queued
 * before it; before it runs, its thread runs every earlier write that is
 * still queued itself and waits for batches in progress that hold one.
 */
#include "spool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "util.h"

enum unit_type { U_TASK, U_LANE, U_KIND };

struct unit {
	struct unit *next;
	enum unit_type type;
};

struct item {
	struct unit u;            /* first: a plain closure is its own unit */
	struct item *next;        /* a lane's FIFO */
	sp_fn fn;
	void *arg;
	struct ev_loop *loop;
	sp_done_fn done;
	uint64_t need;            /* SP_AFTER_WRITES: writes up to this number run first */
	struct ev_task task;
};

struct witem {
	struct witem *next;
	void *item;
	uint64_t seq;
};

struct lane {
	struct unit u;
	struct item *head, *tail;
	bool scheduled;           /* in the ready list or being served */
};

struct kind {
	struct unit u;
	sp_batch_fn fn;
	void *arg;
	size_t batch_max;
	struct witem *head, *tail;
	size_t n;                 /* writes queued */
	bool scheduled;           /* in the ready list */
	bool running;             /* a batch is being written */
	bool lingering;           /* a thread waits for the batch to fill */
	uint64_t running_first;   /* number of that batch's first write */
};

struct worker {
	struct sp_pool *p;
	pthread_t t;
	void **scratch;           /* LIM_SP_BATCH_MAX items of one batch */
};

struct sp_pool {
	struct store *st;
	int nthreads;
	size_t queue_max;
	void (*thread_exit)(struct store *st, void *arg);
	void *thread_arg;

	pthread_mutex_t mu;
	pthread_cond_t work, idle, batch_done;
	pthread_cond_t fill;      /* a lingering batch is full or taken, or the pool stops */
	int linger_ms;
	int draining;             /* sp_drain callers waiting: no lingering */
	int lingerers;            /* threads lingering now (at most one) */
	struct unit *rhead, *rtail;
	struct lane lanes[LIM_SP_LANES];
	struct kind kinds[LIM_SP_KINDS_MAX];
	int nkinds;
	size_t queued;
	int active;
	bool stopping;
	uint64_t wseq;

	struct worker *workers;
	int started;

	atomic_uint_fast64_t run, writes, batches, refused;
};

static void ready_push(struct sp_pool *p, struct unit *u)
{
	u->next = NULL;
	if (p->rtail)
		p->rtail->next = u;
	else
		p->rhead = u;
	p->rtail = u;
	pthread_cond_signal(&p->work);
}

static struct unit *ready_pop(struct sp_pool *p)
{
	struct unit *u = p->rhead;

	if (u) {
		p->rhead = u->next;
		if (p->rhead == NULL)
			p->rtail = NULL;
	}
	return u;
}

static void done_task(struct ev_loop *l, void *arg)
{
	struct item *it = arg;
	sp_done_fn done = it->done;
	void *a = it->arg;

	free(it);
	done(l, a);
}

/* After fn: post the completion (the item travels with it) or free. */
static void complete(struct sp_pool *p, struct item *it)
{
	atomic_fetch_add(&p->run, 1);
	if (it->done)
		ev_post_task(it->loop, &it->task, done_task, it);
	else
		free(it);
}

/* Write one batch of k: what is queued, up to its batch size and, when
 * upto is not UINT64_MAX, up to write number upto.  mu held, k not
 * running; mu is released while the batch runs. */
static void run_batch(struct sp_pool *p, struct kind *k, uint64_t upto, void **scratch)
{
	struct witem *first = k->head, *w = first, *last = NULL;
	size_t n = 0;

	while (w && n < k->batch_max && w->seq <= upto) {
		scratch[n++] = w->item;
		last = w;
		w = w->next;
	}
	if (n == 0)
		return;
	k->head = w;
	if (w == NULL)
		k->tail = NULL;
	last->next = NULL;
	k->n -= n;
	k->running = true;
	if (k->lingering)
		pthread_cond_broadcast(&p->fill); /* a barrier took it: no more waiting */
	k->running_first = first->seq;
	p->queued -= n;
	pthread_mutex_unlock(&p->mu);
	k->fn(p->st, scratch, n, k->arg);
	while (first) {
		struct witem *next = first->next;

		free(first);
		first = next;
	}
	atomic_fetch_add(&p->writes, n);
	atomic_fetch_add(&p->batches, 1);
	pthread_mutex_lock(&p->mu);
	k->running = false;
	pthread_cond_broadcast(&p->batch_done);
	if (k->head && !k->scheduled) {
		k->scheduled = true;
		ready_push(p, &k->u);
	}
}

/* SP_AFTER_WRITES: every write numbered up to need has run.  mu held. */
static void wait_writes(struct sp_pool *p, uint64_t need, void **scratch)
{
	for (;;) {
		bool pending = false;

		for (int i = 0; i < p->nkinds && !pending; i++) {
			struct kind *k = &p->kinds[i];

			if (k->running && k->running_first <= need) {
				pthread_cond_wait(&p->batch_done, &p->mu);
				pending = true;
			} else if (!k->running && k->head && k->head->seq <= need) {
				run_batch(p, k, need, scratch);
				pending = true;
			}
		}
		if (!pending)
			return;
	}
}

static void run_item(struct sp_pool *p, struct item *it, void **scratch)
{
	if (it->need) {
		pthread_mutex_lock(&p->mu);
		wait_writes(p, it->need, scratch);
		pthread_mutex_unlock(&p->mu);
	}
	it->fn(p->st, it->arg);
	complete(p, it);
}

/* Give a batch that is not full linger_ms to fill: a commit costs the same
 * for one write as for a hundred.  Ends early when the batch fills, a
 * barrier writes it (SP_AFTER_WRITES never waits for a linger) or the
 * pool stops.  mu held. */
static void linger(struct sp_pool *p, struct kind *k)
{
	int64_t deadline;

	/* One thread lingers at a time: the others stay free for the
	 * closures the loop waits on. */
	if (p->linger_ms <= 0 || k->n >= k->batch_max || p->stopping || p->lingerers > 0)
		return;
	deadline = util_deadline_in(p->linger_ms);
	k->lingering = true;
	p->lingerers++;
	while (!p->stopping && p->draining == 0 && !k->running && k->n > 0 && k->n < k->batch_max &&
	       !util_deadline_passed(deadline))
		(void)util_cond_wait_ms(&p->fill, &p->mu, util_deadline_left(deadline));
	p->lingerers--;
	k->lingering = false;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct sp_pool *p = wk->p;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct unit *u;

		while (p->rhead == NULL && !p->stopping)
			pthread_cond_wait(&p->work, &p->mu);
		u = ready_pop(p);
		if (u == NULL)
			break; /* stopping, and nothing is left */
		p->active++;
		if (u->type == U_TASK) {
			p->queued--;
			pthread_mutex_unlock(&p->mu);
			run_item(p, (struct item *)u, wk->scratch);
			pthread_mutex_lock(&p->mu);
		} else if (u->type == U_LANE) {
			struct lane *ln = (struct lane *)u;
			struct item *it = ln->head;

			ln->head = it->next;
			if (ln->head == NULL)
				ln->tail = NULL;
			p->queued--;
			pthread_mutex_unlock(&p->mu);
			run_item(p, it, wk->scratch);
			pthread_mutex_lock(&p->mu);
			if (ln->head)
				ready_push(p, &ln->u);
			else
				ln->scheduled = false;
		} else {
			struct kind *k = (struct kind *)u;

			k->scheduled = false;
			/* One running already (a barrier is writing it): that
			 * thread puts the kind back when it has more. */
			if (!k->running)
				linger(p, k);
			if (!k->running)
				run_batch(p, k, UINT64_MAX, wk->scratch);
		}
		p->active--;
		if (p->queued == 0 && p->active == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	if (p->thread_exit)
		p->thread_exit(p->st, p->thread_arg);
	return NULL;
}

static void stop_workers(struct sp_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->fill);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->started; i++)
		pthread_join(p->workers[i].t, NULL);
	p->started = 0;
}

static void destroy(struct sp_pool *p)
{
	for (int i = 0; i < p->nthreads && p->workers; i++)
		free(p->workers[i].scratch);
	free(p->workers);
	pthread_cond_destroy(&p->batch_done);
	pthread_cond_destroy(&p->fill);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

enum enr_err sp_new(const struct sp_opts *o, struct sp_pool **out)
{
	struct sp_pool *p;

	if (o == NULL || o->threads < 0 || o->threads > LIM_SP_THREADS_MAX || o->queue_max < 0 ||
	    o->queue_max > LIM_SP_QUEUE_MAX || o->write_linger_ms < 0 || o->write_linger_ms > 60000)
		return ENR_E_INVALID;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return ENR_E_NOMEM;
	if (util_cond_init(&p->fill) != ENR_OK) {
		free(p);
		return ENR_E_NOMEM;
	}
	/* With one thread a linger would hold up every other closure. */
	p->linger_ms = o->threads > 1 ? o->write_linger_ms : 0;
	p->st = o->store;
	p->nthreads = o->threads;
	p->queue_max = (size_t)(o->queue_max ? o->queue_max : LIM_SP_QUEUE_DEFAULT);
	p->thread_exit = o->thread_exit;
	p->thread_arg = o->thread_arg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	pthread_cond_init(&p->batch_done, NULL);
	for (int i = 0; i < LIM_SP_LANES; i++)
		p->lanes[i].u.type = U_LANE;
	if (p->nthreads > 0) {
		p->workers = calloc((size_t)p->nthreads, sizeof *p->workers);
		if (p->workers == NULL)
			goto nomem;
		for (int i = 0; i < p->nthreads; i++) {
			p->workers[i].p = p;
			p->workers[i].scratch = malloc(LIM_SP_BATCH_MAX * sizeof(void *));
			if (p->workers[i].scratch == NULL)
				goto nomem;
		}
		for (int i = 0; i < p->nthreads; i++) {
			if (pthread_create(&p->workers[i].t, NULL, worker_main, &p->workers[i]) != 0) {
				stop_workers(p);
				destroy(p);
				return ENR_E_UNAVAILABLE;
			}
			p->started++;
		}
	}
	*out = p;
	return ENR_OK;
nomem:
	destroy(p);
	return ENR_E_NOMEM;
}

void sp_free(struct sp_pool *p)
{
	if (p == NULL)
		return;
	stop_workers(p);
	destroy(p);
}

/* Lane numbers are often small and close together (row ids): mix them
 * before choosing a queue (splitmix64's finaliser). */
static size_t lane_slot(uint64_t lane)
{
	lane ^= lane >> 30;
	lane *= 0xbf58476d1ce4e5b9ull;
	lane ^= lane >> 27;
	lane *= 0x94d049bb133111ebull;
	lane ^= lane >> 31;
	return (size_t)(lane % LIM_SP_LANES);
}

static enum enr_err submit(struct sp_pool *p, struct lane *ln, unsigned flags, sp_fn fn, void *arg,
			   struct ev_loop *loop, sp_done_fn done)
{
	struct item *it;

	if (fn == NULL || (done && loop == NULL))
		return ENR_E_INVALID;
	it = calloc(1, sizeof *it);
	if (it == NULL)
		return ENR_E_NOMEM;
	it->fn = fn;
	it->arg = arg;
	it->loop = loop;
	it->done = done;
	if (p->nthreads == 0) {
		/* Inline: the writes before it ran when they were queued. */
		fn(p->st, arg);
		complete(p, it);
		return ENR_OK;
	}
	pthread_mutex_lock(&p->mu);
	if (p->stopping || p->queued >= p->queue_max) {
		pthread_mutex_unlock(&p->mu);
		atomic_fetch_add(&p->refused, 1);
		free(it);
		return ENR_E_UNAVAILABLE;
	}
	if (flags & SP_AFTER_WRITES)
		it->need = p->wseq;
	p->queued++;
	if (ln) {
		if (ln->tail)
			ln->tail->next = it;
		else
			ln->head = it;
		ln->tail = it;
		if (!ln->scheduled) {
			ln->scheduled = true;
			ready_push(p, &ln->u);
		}
	} else {
		it->u.type = U_TASK;
		ready_push(p, &it->u);
	}
	pthread_mutex_unlock(&p->mu);
	return ENR_OK;
}

enum enr_err sp_submit(struct sp_pool *p, sp_fn fn, void *arg, struct ev_loop *loop,
		       sp_done_fn done)
{
	return submit(p, NULL, 0, fn, arg, loop, done);
}

enum enr_err sp_submit_lane(struct sp_pool *p, uint64_t lane, unsigned flags, sp_fn fn, void *arg,
			    struct ev_loop *loop, sp_done_fn done)
{
	return submit(p, &p->lanes[lane_slot(lane)], flags, fn, arg, loop, done);
}

int sp_kind(struct sp_pool *p, sp_batch_fn fn, void *arg, size_t batch_max)
{
	struct kind *k;

	if (fn == NULL || p->nkinds == LIM_SP_KINDS_MAX)
		return -1;
	k = &p->kinds[p->nkinds];
	memset(k, 0, sizeof *k);
	k->u.type = U_KIND;
	k->fn = fn;
	k->arg = arg;
	k->batch_max = batch_max == 0 || batch_max > LIM_SP_BATCH_MAX ? LIM_SP_BATCH_MAX : batch_max;
	return p->nkinds++;
}

enum enr_err sp_write(struct sp_pool *p, int kind, void *item)
{
	struct kind *k;
	struct witem *w;

	if (kind < 0 || kind >= p->nkinds)
		return ENR_E_INVALID;
	k = &p->kinds[kind];
	if (p->nthreads == 0) {
		k->fn(p->st, &item, 1, k->arg);
		atomic_fetch_add(&p->writes, 1);
		atomic_fetch_add(&p->batches, 1);
		return ENR_OK;
	}
	w = malloc(sizeof *w);
	if (w == NULL)
		return ENR_E_NOMEM;
	w->next = NULL;
	w->item = item;
	pthread_mutex_lock(&p->mu);
	if (p->stopping || p->queued >= p->queue_max) {
		pthread_mutex_unlock(&p->mu);
		atomic_fetch_add(&p->refused, 1);
		free(w);
		return ENR_E_UNAVAILABLE;
	}
	w->seq = ++p->wseq;
	if (k->tail)
		k->tail->next = w;
	else
		k->head = w;
	k->tail = w;
	k->n++;
	p->queued++;
	if (k->lingering) {
		/* The thread waiting for it takes it. */
		if (k->n >= k->batch_max)
			pthread_cond_signal(&p->fill);
	} else if (!k->scheduled && !k->running) {
		k->scheduled = true;
		ready_push(p, &k->u);
	}
	pthread_mutex_unlock(&p->mu);
	return ENR_OK;
}

void sp_drain(struct sp_pool *p)
{
	if (p->nthreads == 0)
		return;
	pthread_mutex_lock(&p->mu);
	/* Whoever waits for everything to be written does not wait for a
	 * batch to fill. */
	p->draining++;
	pthread_cond_broadcast(&p->fill);
	while (p->queued > 0 || p->active > 0)
		pthread_cond_wait(&p->idle, &p->mu);
	p->draining--;
	pthread_mutex_unlock(&p->mu);
}

void sp_stats(struct sp_pool *p, struct sp_stats *out)
{
	pthread_mutex_lock(&p->mu);
	out->queued = p->queued;
	pthread_mutex_unlock(&p->mu);
	out->run = atomic_load(&p->run);
	out->writes = atomic_load(&p->writes);
	out->batches = atomic_load(&p->batches);
	out->refused = atomic_load(&p->refused);
}
