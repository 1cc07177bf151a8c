/*
 * evloop.c - the event loop (lib/evloop.h): epoll, the timer heap, the
 * task queue, and the life of a transfer around its transfer layer.
 *
 * Threads: only the queue (qhead/qtail under mu, wake_sent, stop) is
 * touched by other threads; everything else belongs to the thread running
 * the loop.  A posting thread appends under mu and writes the eventfd only
 * when no wake-up is outstanding (wake_sent), so a burst of posts costs one
 * write(2); the loop clears wake_sent before it takes the queue, so a post
 * that misses this round's queue always writes again.
 */
#include "evloop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "limits.h"
#include "upstream_int.h"
#include "util.h"

/* Rounds of ev_run_pending, and of queued tasks run by ev_free: a callback
 * that keeps re-arming itself for "now" cannot hold either forever. */
#define PENDING_ROUNDS 1000
#define FREE_ROUNDS 64

struct ev_xfer {
	uint64_t id;
	struct ev_xfer *prev, *next;  /* the live list, or the idle list (next) */
	ev_xfer_fn fn;
	void *arg;
	void *layer;
	bool live;                    /* started and neither ended nor cancelled */
	struct up_capture cap;
	struct up_response resp;
};

struct ev_loop {
	int ep;
	int wake_fd;
	struct ev_io wake_io;

	int64_t (*clock)(void *arg);
	void *clock_arg;
	bool own_clock;               /* util_mono_ms: the loop may sleep until a timer */

	struct ev_timer **heap;
	size_t nheap, aheap;
	uint64_t timer_seq;

	pthread_mutex_t mu;           /* the task queue */
	struct ev_task *qhead, *qtail;
	atomic_bool wake_sent;
	atomic_bool stop;
	bool freeing;

	struct epoll_event evs[LIM_EV_EVENTS];
	int cur_n;                    /* events being dispatched (ev_io_stop scrubs them) */

	const struct ev_xfer_ops *xops;
	void *be;
	struct ev_xfer *live;
	size_t nlive;
	struct ev_xfer *idle;
	size_t nidle;
	int max_xfers, free_xfers;
	uint64_t next_id;
	uint64_t started, ended, tasks_run;

	pthread_t thread;
	bool has_thread;
	enum enr_err thread_rc;
};

/* The loop the calling thread is running (ev_on_loop_thread). */
static _Thread_local const struct ev_loop *tl_running;

static int64_t mono_clock(void *arg)
{
	(void)arg;
	return util_mono_ms();
}

int64_t ev_now(const struct ev_loop *l)
{
	return l->clock(l->clock_arg);
}

bool ev_on_loop_thread(const struct ev_loop *l)
{
	return l != NULL && tl_running == l;
}

bool ev_stopping(const struct ev_loop *l)
{
	return l->freeing || atomic_load(&l->stop);
}

/* ---- timers -------------------------------------------------------------- */

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *arg)
{
	memset(t, 0, sizeof *t);
	t->fn = fn;
	t->arg = arg;
}

bool ev_timer_armed(const struct ev_timer *t)
{
	return t->slot != 0;
}

static bool before(const struct ev_timer *a, const struct ev_timer *b)
{
	return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void heap_put(struct ev_loop *l, size_t i, struct ev_timer *t)
{
	l->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct ev_loop *l, size_t i)
{
	struct ev_timer *t = l->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!before(t, l->heap[p]))
			break;
		heap_put(l, i, l->heap[p]);
		i = p;
	}
	heap_put(l, i, t);
}

static void sift_down(struct ev_loop *l, size_t i)
{
	struct ev_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!before(l->heap[c], t))
			break;
		heap_put(l, i, l->heap[c]);
		i = c;
	}
	heap_put(l, i, t);
}

static void heap_remove(struct ev_loop *l, struct ev_timer *t)
{
	size_t i = t->slot - 1;
	struct ev_timer *last = l->heap[--l->nheap];

	t->slot = 0;
	if (i == l->nheap)
		return;
	heap_put(l, i, last);
	if (i > 0 && before(last, l->heap[(i - 1) / 2]))
		sift_up(l, i);
	else
		sift_down(l, i);
}

enum enr_err ev_timer_start_at(struct ev_loop *l, struct ev_timer *t, int64_t at_ms)
{
	if (t->slot)
		heap_remove(l, t);
	if (l->nheap == l->aheap) {
		size_t na = l->aheap ? l->aheap * 2 : 64;
		struct ev_timer **h;

		if (l->aheap >= (size_t)LIM_EV_TIMERS_MAX)
			return ENR_E_RANGE;
		if (na > (size_t)LIM_EV_TIMERS_MAX)
			na = (size_t)LIM_EV_TIMERS_MAX;
		h = realloc(l->heap, na * sizeof *h);
		if (h == NULL)
			return ENR_E_NOMEM;
		l->heap = h;
		l->aheap = na;
	}
	t->at_ms = at_ms;
	t->seq = ++l->timer_seq;
	l->heap[l->nheap] = t;
	t->slot = ++l->nheap;
	sift_up(l, l->nheap - 1);
	return ENR_OK;
}

enum enr_err ev_timer_start(struct ev_loop *l, struct ev_timer *t, int64_t delay_ms)
{
	int64_t now = ev_now(l);

	if (delay_ms < 0)
		delay_ms = 0;
	if (delay_ms > INT64_MAX - now)
		delay_ms = INT64_MAX - now;
	return ev_timer_start_at(l, t, now + delay_ms);
}

void ev_timer_stop(struct ev_loop *l, struct ev_timer *t)
{
	if (t->slot)
		heap_remove(l, t);
}

/* Fire the timers due now that were armed before this pass began: one
 * re-armed "for now" from its own callback waits for the next turn. */
static int run_timers(struct ev_loop *l)
{
	int64_t now = ev_now(l);
	uint64_t limit = l->timer_seq;
	int n = 0;

	while (l->nheap > 0) {
		struct ev_timer *t = l->heap[0];

		if (t->at_ms > now || t->seq > limit)
			break;
		heap_remove(l, t);
		t->fn(l, t);
		n++;
	}
	return n;
}

/* ---- tasks ------------------------------------------------------------------ */

static void wake_write(struct ev_loop *l)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is full, so the loop is being woken anyway. */
	while (write(l->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

static void post(struct ev_loop *l, struct ev_task *t, ev_task_fn fn, void *arg, bool owned)
{
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	t->owned = owned;
	pthread_mutex_lock(&l->mu);
	if (l->qtail)
		l->qtail->next = t;
	else
		l->qhead = t;
	l->qtail = t;
	pthread_mutex_unlock(&l->mu);
	if (!atomic_exchange(&l->wake_sent, true))
		wake_write(l);
}

void ev_post_task(struct ev_loop *l, struct ev_task *t, ev_task_fn fn, void *arg)
{
	post(l, t, fn, arg, false);
}

enum enr_err ev_post(struct ev_loop *l, ev_task_fn fn, void *arg)
{
	struct ev_task *t = malloc(sizeof *t);

	if (t == NULL)
		return ENR_E_NOMEM;
	post(l, t, fn, arg, true);
	return ENR_OK;
}

void ev_wake(struct ev_loop *l)
{
	wake_write(l);
}

void ev_stop(struct ev_loop *l)
{
	atomic_store(&l->stop, true);
	wake_write(l);
}

static int run_tasks(struct ev_loop *l)
{
	struct ev_task *t;
	int n = 0;

	atomic_store(&l->wake_sent, false);
	pthread_mutex_lock(&l->mu);
	t = l->qhead;
	l->qhead = l->qtail = NULL;
	pthread_mutex_unlock(&l->mu);
	while (t) {
		/* fn may free or re-post its task: read it all first. */
		struct ev_task *next = t->next;
		ev_task_fn fn = t->fn;
		void *arg = t->arg;

		if (t->owned)
			free(t);
		fn(l, arg);
		n++;
		t = next;
	}
	l->tasks_run += (uint64_t)n;
	return n;
}

static void on_wake(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	uint64_t v;

	(void)events;
	while (read(w->fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	run_tasks(l);
}

/* ---- descriptors ------------------------------------------------------------ */

void ev_io_init(struct ev_io *w, ev_io_fn fn, void *arg)
{
	memset(w, 0, sizeof *w);
	w->fn = fn;
	w->arg = arg;
	w->fd = -1;
}

enum enr_err ev_io_start(struct ev_loop *l, struct ev_io *w, int fd, unsigned events)
{
	struct epoll_event e;
	int op;

	memset(&e, 0, sizeof e);
	e.events = ((events & EV_READ) ? EPOLLIN : 0u) | ((events & EV_WRITE) ? EPOLLOUT : 0u) |
		   ((events & EV_HUP) ? EPOLLRDHUP : 0u);
	e.data.ptr = w;
	if (w->active && w->fd != fd)
		ev_io_stop(l, w);
	op = w->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->ep, op, fd, &e) != 0) {
		/* A number libcurl closed and got again is still known to epoll
		 * (or no longer): try the other operation once. */
		if (errno == EEXIST)
			op = EPOLL_CTL_MOD;
		else if (errno == ENOENT)
			op = EPOLL_CTL_ADD;
		else
			return ENR_E_IO;
		if (epoll_ctl(l->ep, op, fd, &e) != 0)
			return ENR_E_IO;
	}
	w->fd = fd;
	w->events = events;
	w->active = true;
	return ENR_OK;
}

void ev_io_closed(struct ev_loop *l, struct ev_io *w)
{
	if (!w->active)
		return;
	w->active = false;
	for (int i = 0; i < l->cur_n; i++) {
		if (l->evs[i].data.ptr == w)
			l->evs[i].data.ptr = NULL;
	}
}

void ev_io_stop(struct ev_loop *l, struct ev_io *w)
{
	if (!w->active)
		return;
	/* The descriptor may be closed already (then epoll forgot it). */
	epoll_ctl(l->ep, EPOLL_CTL_DEL, w->fd, NULL);
	ev_io_closed(l, w);
}

/* ---- one turn --------------------------------------------------------------- */

/* How long the next epoll_wait may sleep: until the first timer on the
 * loop's own clock; with a foreign clock, until someone wakes the loop. */
static int wait_ms(const struct ev_loop *l)
{
	int64_t d;

	if (atomic_load(&l->stop))
		return 0;
	if (l->nheap == 0)
		return -1;
	d = l->heap[0]->at_ms - ev_now(l);
	if (d <= 0)
		return 0;
	if (!l->own_clock)
		return -1;
	return d > INT_MAX ? INT_MAX : (int)d;
}

/* Wait at most timeout ms (-1: no bound), dispatch what is ready, fire due
 * timers.  Returns the callbacks run, -1 when epoll failed. */
static int turn(struct ev_loop *l, int timeout)
{
	uint64_t tasks_before = l->tasks_run;
	int n, ran = 0;

	n = epoll_wait(l->ep, l->evs, LIM_EV_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR)
			return -1;
		n = 0;
	}
	l->cur_n = n;
	for (int i = 0; i < n; i++) {
		struct ev_io *w = l->evs[i].data.ptr;
		uint32_t e = l->evs[i].events;
		unsigned ev = 0;

		if (w == NULL)
			continue; /* stopped by an earlier callback of this turn */
		if (e & EPOLLIN)
			ev |= EV_READ;
		if (e & EPOLLOUT)
			ev |= EV_WRITE;
		if (e & (EPOLLERR | EPOLLHUP))
			ev |= EV_ERROR;
		if (e & EPOLLRDHUP)
			ev |= EV_HUP;
		w->fn(l, w, ev);
		if (w != &l->wake_io)
			ran++;
	}
	l->cur_n = 0;
	ran += run_timers(l);
	return ran + (int)(l->tasks_run - tasks_before);
}

enum enr_err ev_run(struct ev_loop *l)
{
	const struct ev_loop *prev = tl_running;
	enum enr_err rc = ENR_OK;

	tl_running = l;
	while (!atomic_load(&l->stop)) {
		if (turn(l, wait_ms(l)) < 0) {
			rc = ENR_E_IO;
			break;
		}
	}
	tl_running = prev;
	return rc;
}

enum enr_err ev_run_until(struct ev_loop *l, const bool *done, int64_t timeout_ms)
{
	const struct ev_loop *prev = tl_running;
	int64_t end = timeout_ms > 0 ? ev_now(l) + timeout_ms : 0;
	enum enr_err rc = ENR_OK;

	tl_running = l;
	while (!*done) {
		int w;

		if (atomic_load(&l->stop)) {
			rc = ENR_E_UNAVAILABLE;
			break;
		}
		w = wait_ms(l);
		if (end) {
			int64_t left = end - ev_now(l);

			if (left <= 0) {
				rc = ENR_E_TIMEOUT;
				break;
			}
			if (l->own_clock && (w < 0 || w > left))
				w = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (turn(l, w) < 0) {
			rc = ENR_E_IO;
			break;
		}
	}
	tl_running = prev;
	return rc;
}

int ev_run_pending(struct ev_loop *l)
{
	const struct ev_loop *prev = tl_running;
	int total = 0;

	tl_running = l;
	for (int i = 0; i < PENDING_ROUNDS; i++) {
		int n = turn(l, 0);

		if (n <= 0)
			break;
		total += n;
	}
	tl_running = prev;
	return total;
}

static void *loop_thread(void *arg)
{
	struct ev_loop *l = arg;

	l->thread_rc = ev_run(l);
	return NULL;
}

enum enr_err ev_thread_start(struct ev_loop *l)
{
	if (l->has_thread)
		return ENR_E_INVALID;
	if (pthread_create(&l->thread, NULL, loop_thread, l) != 0)
		return ENR_E_UNAVAILABLE;
	l->has_thread = true;
	return ENR_OK;
}

void ev_thread_join(struct ev_loop *l)
{
	if (!l->has_thread)
		return;
	ev_stop(l);
	pthread_join(l->thread, NULL);
	l->has_thread = false;
}

/* ---- transfers ------------------------------------------------------------ */

struct up_capture *ev_xfer_capture(struct ev_xfer *x)
{
	return &x->cap;
}

void *ev_xfer_layer_data(const struct ev_xfer *x)
{
	return x->layer;
}

void ev_xfer_set_layer_data(struct ev_xfer *x, void *p)
{
	x->layer = p;
}

uint64_t ev_xfer_id(const struct ev_xfer *x)
{
	return x->id;
}

static void unlink_live(struct ev_loop *l, struct ev_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		l->live = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	x->live = false;
	l->nlive--;
}

/* Keep x for the next transfer (without a large body buffer), or free it. */
static void recycle(struct ev_loop *l, struct ev_xfer *x)
{
	if (l->nidle >= (size_t)l->free_xfers || l->freeing) {
		up_response_release(&x->resp);
		free(x);
		return;
	}
	up_response_clear(&x->resp);
	if (x->resp.body.alloc > LIM_EV_KEEP_BODY)
		buf_release(&x->resp.body);
	x->fn = NULL;
	x->arg = NULL;
	x->layer = NULL;
	x->next = l->idle;
	l->idle = x;
	l->nidle++;
}

enum enr_err ev_xfer_start(struct ev_loop *l, const struct prov_request *req, int timeout_ms,
			   size_t body_max, ev_xfer_fn fn, void *arg, struct ev_xfer **out)
{
	struct ev_xfer *x;
	enum enr_err rc;

	if (fn == NULL)
		return ENR_E_INVALID;
	rc = up_call_check(req, timeout_ms);
	if (rc)
		return rc;
	if (ev_stopping(l) || l->nlive >= (size_t)l->max_xfers)
		return ENR_E_UNAVAILABLE;
	if (l->idle) {
		x = l->idle;
		l->idle = x->next;
		l->nidle--;
	} else {
		x = calloc(1, sizeof *x);
		if (x == NULL)
			return ENR_E_NOMEM;
		up_response_init(&x->resp);
	}
	x->id = ++l->next_id;
	x->fn = fn;
	x->arg = arg;
	x->layer = NULL;
	up_capture_init(&x->cap, &x->resp, body_max);
	x->prev = NULL;
	x->next = l->live;
	if (l->live)
		l->live->prev = x;
	l->live = x;
	l->nlive++;
	x->live = true;
	rc = l->xops->start(l->be, x, req, timeout_ms);
	if (rc) {
		unlink_live(l, x);
		recycle(l, x);
		return rc;
	}
	l->started++;
	if (out)
		*out = x;
	return ENR_OK;
}

void ev_xfer_done(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc)
{
	if (!x->live)
		return;
	unlink_live(l, x);
	l->ended++;
	x->fn(l, x, rc, &x->resp, x->arg);
	recycle(l, x);
}

void ev_xfer_cancel(struct ev_loop *l, struct ev_xfer *x)
{
	if (x == NULL || !x->live)
		return;
	l->xops->cancel(l->be, x);
	unlink_live(l, x);
	recycle(l, x);
}

void ev_stats(const struct ev_loop *l, struct ev_stats *out)
{
	out->timers = l->nheap;
	out->xfers = l->nlive;
	out->xfers_idle = l->nidle;
	out->xfers_started = l->started;
	out->xfers_ended = l->ended;
	out->tasks_run = l->tasks_run;
}

/* ---- life ------------------------------------------------------------------ */

enum enr_err ev_new(const struct ev_opts *o, struct ev_loop **out)
{
	static const struct ev_opts defaults;
	struct ev_loop *l;
	enum enr_err rc = ENR_E_IO;

	if (o == NULL)
		o = &defaults;
	if (o->max_xfers < 0 || o->max_xfers > LIM_EV_XFERS_MAX || o->free_xfers < 0 ||
	    o->max_connections < 0 || o->max_host_connections < 0 || o->max_idle_connections < 0 ||
	    o->max_streams < 0)
		return ENR_E_INVALID;
	l = calloc(1, sizeof *l);
	if (l == NULL)
		return ENR_E_NOMEM;
	l->ep = -1;
	l->wake_fd = -1;
	if (pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l);
		return ENR_E_NOMEM;
	}
	l->clock = o->clock ? o->clock : mono_clock;
	l->clock_arg = o->clock ? o->clock_arg : NULL;
	l->own_clock = o->clock == NULL;
	l->max_xfers = o->max_xfers ? o->max_xfers : LIM_EV_XFERS_DEFAULT;
	l->free_xfers = o->free_xfers ? o->free_xfers : LIM_EV_FREE_DEFAULT;
	l->xops = o->xfer ? o->xfer : &ev_curl_ops;
	atomic_init(&l->wake_sent, false);
	atomic_init(&l->stop, false);

	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0)
		goto fail;
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0)
		goto fail;
	ev_io_init(&l->wake_io, on_wake, NULL);
	rc = ev_io_start(l, &l->wake_io, l->wake_fd, EV_READ);
	if (rc)
		goto fail;
	rc = l->xops->open(l, o, &l->be);
	if (rc)
		goto fail;
	*out = l;
	return ENR_OK;
fail:
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	if (l->ep >= 0)
		close(l->ep);
	pthread_mutex_destroy(&l->mu);
	free(l->heap);
	free(l);
	return rc;
}

void ev_free(struct ev_loop *l)
{
	const struct ev_loop *prev = tl_running;

	if (l == NULL)
		return;
	ev_thread_join(l);
	tl_running = l;
	l->freeing = true;
	atomic_store(&l->stop, true);
	/* Tasks hand work to the loop (a request, a store answer): run them,
	 * seeing ev_stopping(), so their owners can let go of it. */
	for (int i = 0; i < FREE_ROUNDS && run_tasks(l) > 0; i++)
		;
	while (l->live) {
		struct ev_xfer *x = l->live;

		l->xops->cancel(l->be, x);
		unlink_live(l, x);
		recycle(l, x);
	}
	l->xops->close(l->be);
	for (size_t i = 0; i < l->nheap; i++)
		l->heap[i]->slot = 0;
	l->nheap = 0;
	free(l->heap);
	while (l->idle) {
		struct ev_xfer *x = l->idle;

		l->idle = x->next;
		up_response_release(&x->resp);
		free(x);
	}
	/* Whatever the last rounds posted (bounded above) is dropped. */
	while (l->qhead) {
		struct ev_task *t = l->qhead;

		l->qhead = t->next;
		if (t->owned)
			free(t);
	}
	close(l->wake_fd);
	close(l->ep);
	pthread_mutex_destroy(&l->mu);
	free(l);
	tl_running = prev;
}
