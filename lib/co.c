/*
 * co.c - continuations on fibers and the event loop.
 *
 * A wait on the loop is: record what is awaited in the task, yield; the
 * one callback that ends it (transfer, timer, pool completion, wake-up
 * task) sets waiting back to CO_W_NONE and resumes the fiber, so a fiber
 * is resumed once per wait whatever else arrives.  Cancelling ends the
 * wait the same way, after undoing what can be undone (a transfer, a
 * timer, a place in a condition's queue); a store call in progress cannot
 * be, so a cancelled continuation still waits for it.
 */
#include "co.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "spool.h"
#include "util.h"

struct co_waiter {
	struct co_waiter *next, **pprev;   /* pprev NULL: not queued */
	struct co_task *t;
	struct ev_task wake;
	bool posted;      /* a broadcast took it off the queue (under the lock) */
	bool delivered;   /* its wake-up ran (loop thread) */
};

static struct ev_loop *the_loop;
static struct sp_pool *the_pool;
static atomic_int in_flight;

#define CO_KINDS 8

static struct {          /* group-commit kinds on the_pool */
	co_write_fn run;
	void *arg;
	int pool_kind;
} kinds[CO_KINDS];
static int nkinds;

void co_setup(struct ev_loop *loop, struct sp_pool *pool)
{
	the_loop = loop;
	the_pool = pool;
	nkinds = 0; /* kinds belong to a pool */
}

struct ev_loop *co_loop(void)
{
	return the_loop;
}

int co_in_flight(void)
{
	return atomic_load(&in_flight);
}

struct co_task *co_current(void)
{
	struct fib *f = fib_current();

	return f ? fib_data(f) : NULL;
}

/* The continuation, when it runs on its loop's thread: the waits below
 * then go through the loop.  NULL when they block in place. */
static struct co_task *on_loop(void)
{
	struct co_task *t = co_current();

	return t && t->on_loop ? t : NULL;
}

static void trampoline(void *arg)
{
	struct co_task *t = arg;

	t->body(t);
}

void co_task_init(struct co_task *t, co_fn body, co_fn ended, void *arg)
{
	memset(t, 0, sizeof *t);
	t->body = body;
	t->ended = ended;
	t->arg = arg;
	ev_timer_init(&t->timer, NULL, t);
}

static void xfer_done(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc,
		      struct up_response *resp, void *arg);

/* Loop thread, on the loop's own stack: start the transfer t yielded for
 * (co_perform).  True when it is under way and t waits for it; false with
 * t->xrc set when it could not start. */
static bool start_xfer(struct co_task *t)
{
	enum enr_err rc = ev_xfer_start(t->loop, t->xreq, t->xtimeout_ms, t->xbody_max, xfer_done,
					t, &t->xfer);

	t->xreq = NULL;
	if (rc) {
		t->xrc = rc;
		return false;
	}
	t->waiting = CO_W_XFER;
	return true;
}

/* Loop thread: carry t on until its next wait or its end. */
static void resume(struct co_task *t)
{
	bool done;

	log_set_request_id(t->rid);
	do {
		t->waiting = CO_W_NONE;
		done = fib_resume(t->fib);
	} while (!done && t->waiting == CO_W_STARTING && !start_xfer(t));
	log_set_request_id(NULL);
	if (!done)
		return;
	fib_free(t->fib);
	t->fib = NULL;
	atomic_fetch_sub(&in_flight, 1);
	t->ended(t);
}

static void arrive(struct ev_loop *l, void *arg)
{
	struct co_task *t = arg;

	(void)l;
	t->on_loop = true;
	if (t->moved)
		t->moved(t);
	resume(t);
}

enum enr_err co_start(struct co_task *t, bool *moved)
{
	enum enr_err rc = fib_new(trampoline, t, &t->fib);

	if (rc)
		return rc;
	fib_set_data(t->fib, t);
	for (;;) {
		if (fib_resume(t->fib)) {
			fib_free(t->fib);
			t->fib = NULL;
			*moved = false;
			return ENR_OK;
		}
		if (t->waiting != CO_W_HERE)
			break;
		t->waiting = CO_W_NONE;
		t->here_fn(t->here_arg); /* a store call, on this thread's stack */
	}
	/* It yielded to move (the only wait before the loop): from the post
	 * on, t is the loop's. */
	*moved = true;
	atomic_fetch_add(&in_flight, 1);
	ev_post_task(t->loop, &t->post, arrive, t);
	return ENR_OK;
}

/* A wait (the move to the loop included).  Before a long one (the move,
 * which is followed by a transfer or a timer, and those) with many
 * continuations waiting, what its stack touched below it is given back
 * first: once a request, since its store calls before the move went
 * deepest.  With few, or before a short one (a store call or write on the
 * loop), it is kept: the pages cost less than giving them back (each
 * madvise that drops pages interrupts every other CPU to flush its TLB),
 * and the calls after the wait touch them again. */
static void wait_here(bool long_wait)
{
	if (long_wait && atomic_load(&in_flight) >= LIM_CO_TRIM_FROM)
		fib_trim();
	fib_yield();
}

/* Leave the starting thread for the loop; true when on it now. */
static bool move(void)
{
	struct co_task *t = co_current();

	if (t == NULL || the_loop == NULL)
		return false;
	if (t->on_loop)
		return true;
	t->loop = the_loop;
	t->waiting = CO_W_MOVING;
	wait_here(true);
	return true;
}

/* ---- transfers ------------------------------------------------------------ */

static void xfer_done(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc,
		      struct up_response *resp, void *arg)
{
	struct co_task *t = arg;
	struct up_response mine;

	(void)l;
	(void)x;
	if (t->waiting != CO_W_XFER)
		return;
	t->xfer = NULL;
	t->xrc = rc;
	if (rc == ENR_OK) {
		/* The loop recycles x's buffers and the waiter's old ones alike. */
		mine = *t->resp;
		*t->resp = *resp;
		*resp = mine;
	}
	resume(t);
}

static void as_timeout(struct up_response *out)
{
	buf_reset(&out->body);
	out->nheaders = 0;
	memset(&out->resp, 0, sizeof out->resp);
	out->resp.body = "";
	out->resp.timed_out = true;
	out->elapsed_ms = 0;
	util_strlcpy(out->error, "cancelled: the client went away", sizeof out->error);
}

enum enr_err co_perform(const struct prov_request *req, int timeout_ms, size_t body_max,
			struct up_response *out)
{
	struct co_task *t;

	if (!move())
		return up_perform(req, timeout_ms, body_max, out);
	t = co_current();
	if (t->cancelled) {
		as_timeout(out);
		return ENR_OK;
	}
	t->resp = out;
	/* The transfer is set up by resume, on the loop's stack: libcurl's
	 * setup is the deepest part of a waiting request's chain, and a
	 * fiber's stack keeps every page it touched for as long as it waits. */
	t->xreq = req;
	t->xtimeout_ms = timeout_ms;
	t->xbody_max = body_max;
	t->waiting = CO_W_STARTING;
	wait_here(true);
	return t->xrc;
}

/* ---- timers ---------------------------------------------------------------- */

static void timer_fired(struct ev_loop *l, struct ev_timer *tm)
{
	struct co_task *t = tm->arg;

	(void)l;
	if (t->waiting == CO_W_TIMER || t->waiting == CO_W_COND)
		resume(t);
}

void co_sleep_ms(int64_t ms)
{
	struct co_task *t;

	if (ms <= 0)
		return;
	if (!move()) {
		util_sleep_ms(ms);
		return;
	}
	t = co_current();
	if (t->cancelled)
		return;
	t->timer.fn = timer_fired;
	if (ev_timer_start(t->loop, &t->timer, ms) != ENR_OK) {
		/* No room for one more timer: the pause is skipped, not the work. */
		log_warn("co", "a pause of %lld ms was skipped: no timer free", (long long)ms);
		return;
	}
	t->waiting = CO_W_TIMER;
	wait_here(true);
	ev_timer_stop(t->loop, &t->timer);
}

int64_t co_deadline_left(int64_t deadline_mono_ms)
{
	struct co_task *t = co_current();

	if (t && t->cancelled)
		return 0;
	return util_deadline_left(deadline_mono_ms);
}

bool co_deadline_passed(int64_t deadline_mono_ms)
{
	return co_cancelled() || util_deadline_passed(deadline_mono_ms);
}

bool co_cancelled(void)
{
	struct co_task *t = co_current();

	return t && t->cancelled;
}

/* ---- calls that may block ------------------------------------------------- */

struct call {
	void (*fn)(void *arg);
	void *arg;
	struct co_task *t;
};

static void call_run(struct store *st, void *arg)
{
	struct call *c = arg;

	(void)st;
	c->fn(c->arg);
}

static void call_done(struct ev_loop *l, void *arg)
{
	struct call *c = arg;

	(void)l;
	resume(c->t);
}

void co_call(void (*fn)(void *arg), void *arg)
{
	struct co_task *t = on_loop();
	struct call c = { fn, arg, t };

	if (t == NULL && (t = co_current()) != NULL) {
		/* Not moved yet: the starting thread runs it on its own stack, so
		 * the store's deep calls leave no pages on the fiber's. */
		t->here_fn = fn;
		t->here_arg = arg;
		t->waiting = CO_W_HERE;
		fib_yield();
		return;
	}
	if (t == NULL || the_pool == NULL ||
	    sp_submit(the_pool, call_run, &c, t->loop, call_done) != ENR_OK) {
		/* Off the loop, or the pool's queue is full: here, blocking. */
		fn(arg);
		return;
	}
	t->waiting = CO_W_CALL;
	wait_here(false);
}

/* ---- group commit ----------------------------------------------------------- */


static void write_woken(struct ev_loop *l, void *arg)
{
	(void)l;
	resume(arg);
}

static void write_batch(struct store *st, void **items, size_t n, void *arg)
{
	int k = (int)(intptr_t)arg;

	kinds[k].run(st, (struct co_write **)items, n, kinds[k].arg);
	/* Each waiter carries on once its write is done. */
	for (size_t i = 0; i < n; i++) {
		struct co_write *w = items[i];

		ev_post_task(w->t->loop, &w->wake, write_woken, w->t);
	}
}

int co_write_kind(co_write_fn run, void *arg)
{
	int pk;

	if (the_pool == NULL || nkinds == CO_KINDS)
		return -1;
	pk = sp_kind(the_pool, write_batch, (void *)(intptr_t)nkinds, CO_WRITE_BATCH_MAX);
	if (pk < 0)
		return -1;
	kinds[nkinds].run = run;
	kinds[nkinds].arg = arg;
	kinds[nkinds].pool_kind = pk;
	return nkinds++;
}

bool co_write(int kind, struct co_write *w)
{
	struct co_task *t = on_loop();

	if (t == NULL || the_pool == NULL || kind < 0 || kind >= nkinds)
		return false;
	w->t = t;
	if (sp_write(the_pool, kinds[kind].pool_kind, w) != ENR_OK)
		return false;
	t->waiting = CO_W_CALL;
	wait_here(false);
	return true;
}

/* ---- conditions --------------------------------------------------------------- */

enum enr_err co_cond_init(struct co_cond *c)
{
	c->head = NULL;
	return util_cond_init(&c->cv);
}

void co_cond_release(struct co_cond *c)
{
	pthread_cond_destroy(&c->cv);
}

static void unqueue(struct co_waiter *w)
{
	if (w->pprev == NULL)
		return;
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	w->pprev = NULL;
}

static void woken(struct ev_loop *l, void *arg)
{
	struct co_waiter *w = arg;
	struct co_task *t = w->t;

	(void)l;
	w->delivered = true;
	if (t->waiting == CO_W_COND)
		resume(t);
}

/* cancellable: a cancel ends the wait (co_cond_wait); a lock's wait
 * (co_mutex_lock) goes on until the lock is free. */
static void cond_wait(struct co_cond *c, pthread_mutex_t *lock, int64_t deadline_mono_ms,
		      bool cancellable)
{
	struct co_task *t = co_current();
	struct co_waiter w;
	int64_t left = util_deadline_left(deadline_mono_ms);

	if (t == NULL || the_loop == NULL) {
		if (deadline_mono_ms == 0)
			pthread_cond_wait(&c->cv, lock);
		else if (left > 0)
			(void)util_cond_wait_ms(&c->cv, lock, left);
		return;
	}
	if (!t->on_loop) {
		/* Never yield holding the lock: move, then let the caller look
		 * again (a spurious wake-up). */
		pthread_mutex_unlock(lock);
		(void)move();
		pthread_mutex_lock(lock);
		return;
	}
	if ((cancellable && t->cancelled) || left <= 0)
		return;
	memset(&w, 0, sizeof w);
	w.t = t;
	w.next = c->head;
	if (w.next)
		w.next->pprev = &w.next;
	w.pprev = &c->head;
	c->head = &w;
	t->cw = &w;
	t->cw_lock = lock;
	t->cw_cancellable = cancellable;
	t->timer.fn = timer_fired;
	if (deadline_mono_ms > 0 && ev_timer_start(t->loop, &t->timer, left) != ENR_OK) {
		unqueue(&w);
		return; /* no timer: a spurious wake-up */
	}
	t->waiting = CO_W_COND;
	pthread_mutex_unlock(lock);
	fib_yield();
	pthread_mutex_lock(lock);
	ev_timer_stop(t->loop, &t->timer);
	if (!w.posted) {
		unqueue(&w);
	} else {
		/* A broadcast took w and its wake-up is on its way: w must live
		 * until it has run. */
		while (!w.delivered) {
			t->waiting = CO_W_COND;
			pthread_mutex_unlock(lock);
			fib_yield();
			pthread_mutex_lock(lock);
		}
	}
	t->cw = NULL;
	t->cw_lock = NULL;
}

void co_cond_wait(struct co_cond *c, pthread_mutex_t *lock, int64_t deadline_mono_ms)
{
	cond_wait(c, lock, deadline_mono_ms, true);
}

void co_cond_broadcast(struct co_cond *c)
{
	struct co_waiter *w = c->head, *next;

	c->head = NULL;
	for (; w; w = next) {
		next = w->next;
		w->pprev = NULL;
		w->posted = true;
		ev_post_task(w->t->loop, &w->wake, woken, w);
	}
	pthread_cond_broadcast(&c->cv);
}

/* ---- a lock held across waits ----------------------------------------------------- */

enum enr_err co_mutex_init(struct co_mutex *x)
{
	x->held = false;
	if (pthread_mutex_init(&x->m, NULL) != 0)
		return ENR_E_INTERNAL;
	return co_cond_init(&x->free);
}

void co_mutex_lock(struct co_mutex *x)
{
	pthread_mutex_lock(&x->m);
	/* A cancelled continuation still takes its turn: what it does under
	 * the lock (a store write) must not be skipped. */
	while (x->held)
		cond_wait(&x->free, &x->m, 0, false);
	x->held = true;
	pthread_mutex_unlock(&x->m);
}

void co_mutex_unlock(struct co_mutex *x)
{
	pthread_mutex_lock(&x->m);
	x->held = false;
	co_cond_broadcast(&x->free);
	pthread_mutex_unlock(&x->m);
}

void co_mutex_release(struct co_mutex *x)
{
	pthread_mutex_destroy(&x->m);
	co_cond_release(&x->free);
}

/* ---- cancelling ----------------------------------------------------------------- */

void co_cancel(struct co_task *t)
{
	if (t->cancelled)
		return;
	t->cancelled = true;
	switch (t->waiting) {
	case CO_W_XFER:
		ev_xfer_cancel(t->loop, t->xfer);
		t->xfer = NULL;
		t->xrc = ENR_OK;
		as_timeout(t->resp);
		resume(t);
		break;
	case CO_W_TIMER:
		ev_timer_stop(t->loop, &t->timer);
		resume(t);
		break;
	case CO_W_COND: {
		bool queued;

		if (!t->cw_cancellable)
			break; /* a lock's turn comes when it is free */
		pthread_mutex_lock(t->cw_lock);
		queued = !t->cw->posted;
		unqueue(t->cw);
		pthread_mutex_unlock(t->cw_lock);
		/* Posted: its wake-up resumes it, and must find it waiting. */
		if (queued)
			resume(t);
		break;
	}
	case CO_W_NONE:
	case CO_W_MOVING:
	case CO_W_STARTING: /* never seen: resume starts the transfer before it returns */
	case CO_W_HERE:     /* never seen: only before the move */
	case CO_W_CALL:
		break; /* a store call cannot be taken back: it ends by itself */
	}
}
