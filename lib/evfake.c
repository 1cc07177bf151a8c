/*
 * evfake.c - the fake transfer layer and clock (lib/evfake.h).
 *
 * The registry of transfers in flight is shared with the test's threads
 * (mu); the struct ev_xfer behind an entry is touched only on the loop
 * thread, where an end looks its id up again, so a cancelled transfer's
 * end finds nothing and is dropped.
 */
#include "evfake.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "upstream_int.h"
#include "util.h"

struct evf_x {
	uint64_t id;
	struct ev_xfer *x;
	struct evf *f;
	struct ev_timer timeout;
	struct evf_call call;
	struct evf_x *prev, *next;   /* oldest first */
};

struct evf {
	_Atomic int64_t now;
	atomic_uint_fast64_t started;
	struct ev_loop *_Atomic l;   /* set while a loop uses f */
	pthread_mutex_t mu;
	struct evf_x *head, *tail;
	size_t n;
};

enum end_kind { END_ANSWER, END_FAIL, END_TIMEOUT };

/* An end on its way to the loop. */
struct evf_end {
	struct ev_task task;
	struct evf *f;
	uint64_t id;
	enum end_kind kind;
	long status;
	char *headers;
	char *body;
	char error[128];
};

enum enr_err evf_new(int64_t start_ms, struct evf **out)
{
	struct evf *f = calloc(1, sizeof *f);

	if (f == NULL)
		return ENR_E_NOMEM;
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		free(f);
		return ENR_E_NOMEM;
	}
	atomic_init(&f->now, start_ms);
	atomic_init(&f->started, 0);
	*out = f;
	return ENR_OK;
}

void evf_free(struct evf *f)
{
	if (f == NULL)
		return;
	while (f->head) {
		struct evf_x *e = f->head;

		f->head = e->next;
		free(e);
	}
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static int64_t fake_clock(void *arg)
{
	struct evf *f = arg;

	return atomic_load(&f->now);
}

int64_t evf_now(const struct evf *f)
{
	return atomic_load(&((struct evf *)f)->now);
}

void evf_advance(struct evf *f, int64_t ms)
{
	atomic_fetch_add(&f->now, ms);
	if (f->l)
		ev_wake(f->l);
}

size_t evf_count(struct evf *f)
{
	size_t n;

	pthread_mutex_lock(&f->mu);
	n = f->n;
	pthread_mutex_unlock(&f->mu);
	return n;
}

uint64_t evf_started(const struct evf *f)
{
	return atomic_load(&((struct evf *)f)->started);
}

uint64_t evf_nth(struct evf *f, size_t n)
{
	uint64_t id = 0;

	pthread_mutex_lock(&f->mu);
	for (struct evf_x *e = f->head; e; e = e->next) {
		if (n-- == 0) {
			id = e->id;
			break;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return id;
}

static struct evf_x *find(struct evf *f, uint64_t id)
{
	for (struct evf_x *e = f->head; e; e = e->next) {
		if (e->id == id)
			return e;
	}
	return NULL;
}

bool evf_call(struct evf *f, uint64_t id, struct evf_call *out)
{
	struct evf_x *e;

	pthread_mutex_lock(&f->mu);
	e = find(f, id);
	if (e)
		*out = e->call;
	pthread_mutex_unlock(&f->mu);
	return e != NULL;
}

/* Take e out of the registry (loop thread). */
static void unregister(struct evf *f, struct evf_x *e)
{
	pthread_mutex_lock(&f->mu);
	if (e->prev)
		e->prev->next = e->next;
	else
		f->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		f->tail = e->prev;
	f->n--;
	pthread_mutex_unlock(&f->mu);
	ev_timer_stop(f->l, &e->timeout);
}

/* End e's transfer: feed the answer through the real capture. */
static void finish(struct evf *f, struct evf_x *e, enum end_kind kind, long status,
		   const char *headers, const char *body, const char *error)
{
	struct up_capture *c = ev_xfer_capture(e->x);
	struct ev_xfer *x = e->x;
	double elapsed = (double)(evf_now(f) - e->call.started_ms);
	bool complete = kind == END_ANSWER;
	enum enr_err rc;

	unregister(f, e);
	free(e);
	if (complete) {
		char line[LIM_UPSTREAM_HEADER_MAX + 64];
		int n = snprintf(line, sizeof line, "HTTP/1.1 %ld\r\n", status);

		up_capture_header(line, 1, (size_t)n, c);
		for (const char *p = headers; p && *p;) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);

			if (len + 3 <= sizeof line) {
				memcpy(line, p, len);
				memcpy(line + len, "\r\n", 3);
				up_capture_header(line, 1, len + 2, c);
			}
			p += len + (nl ? 1 : 0);
		}
		up_capture_header("\r\n", 1, 2, c);
		if (body && *body && up_capture_body((char *)body, 1, strlen(body), c) != strlen(body))
			complete = false;
	}
	if (kind == END_TIMEOUT)
		error = "Timeout was reached";
	rc = up_capture_end(c, complete, status, kind == END_TIMEOUT, error, elapsed);
	ev_xfer_done(f->l, x, rc);
}

static void on_timeout(struct ev_loop *l, struct ev_timer *t)
{
	struct evf_x *e = t->arg;

	(void)l;
	finish(e->f, e, END_TIMEOUT, 0, NULL, NULL, NULL);
}

static void on_end(struct ev_loop *l, void *arg)
{
	struct evf_end *end = arg;
	struct evf *f = end->f;
	struct evf_x *e;

	(void)l;
	pthread_mutex_lock(&f->mu);
	e = find(f, end->id);
	pthread_mutex_unlock(&f->mu);
	/* Cancelled or ended meanwhile: nothing to end. */
	if (e)
		finish(f, e, end->kind, end->status, end->headers, end->body, end->error);
	free(end->headers);
	free(end->body);
	free(end);
}

static enum enr_err post_end(struct evf *f, uint64_t id, enum end_kind kind, long status,
			     const char *headers, const char *body, const char *error)
{
	struct evf_end *end = calloc(1, sizeof *end);

	if (end == NULL)
		return ENR_E_NOMEM;
	end->f = f;
	end->id = id;
	end->kind = kind;
	end->status = status;
	if (headers && (end->headers = strdup(headers)) == NULL)
		goto nomem;
	if (body && (end->body = strdup(body)) == NULL)
		goto nomem;
	util_strlcpy(end->error, error ? error : "", sizeof end->error);
	ev_post_task(f->l, &end->task, on_end, end);
	return ENR_OK;
nomem:
	free(end->headers);
	free(end);
	return ENR_E_NOMEM;
}

enum enr_err evf_answer(struct evf *f, uint64_t id, long status, const char *headers,
			const char *body)
{
	return post_end(f, id, END_ANSWER, status, headers, body, NULL);
}

enum enr_err evf_fail(struct evf *f, uint64_t id, const char *error)
{
	return post_end(f, id, END_FAIL, 0, NULL, NULL, error ? error : "Couldn't connect to server");
}

enum enr_err evf_time_out(struct evf *f, uint64_t id)
{
	return post_end(f, id, END_TIMEOUT, 0, NULL, NULL, NULL);
}

/* ---- the layer ------------------------------------------------------------- */

static enum enr_err fake_open(struct ev_loop *l, const struct ev_opts *o, void **be)
{
	struct evf *f = o->xfer_arg;

	if (f == NULL)
		return ENR_E_INVALID;
	f->l = l;
	*be = f;
	return ENR_OK;
}

static void fake_close(void *be)
{
	struct evf *f = be;

	f->l = NULL;
}

static enum enr_err fake_start(void *be, struct ev_xfer *x, const struct prov_request *req,
			       int timeout_ms)
{
	struct evf *f = be;
	struct evf_x *e = calloc(1, sizeof *e);
	enum enr_err rc;

	if (e == NULL)
		return ENR_E_NOMEM;
	e->id = ev_xfer_id(x);
	e->x = x;
	e->f = f;
	util_strlcpy(e->call.method, req->method, sizeof e->call.method);
	util_strlcpy(e->call.url, buf_cstr(&req->url), sizeof e->call.url);
	util_strlcpy(e->call.body, buf_cstr(&req->body), sizeof e->call.body);
	e->call.body_len = req->body.len;
	e->call.nheaders = req->nheaders < PROV_MAX_HEADERS ? req->nheaders : PROV_MAX_HEADERS;
	for (unsigned i = 0; i < e->call.nheaders; i++)
		util_strlcpy(e->call.headers[i], req->headers[i], sizeof e->call.headers[i]);
	e->call.timeout_ms = timeout_ms;
	e->call.started_ms = evf_now(f);
	ev_timer_init(&e->timeout, on_timeout, e);
	rc = ev_timer_start(f->l, &e->timeout, timeout_ms);
	if (rc) {
		free(e);
		return rc;
	}
	ev_xfer_set_layer_data(x, e);
	pthread_mutex_lock(&f->mu);
	e->prev = f->tail;
	if (f->tail)
		f->tail->next = e;
	else
		f->head = e;
	f->tail = e;
	f->n++;
	pthread_mutex_unlock(&f->mu);
	atomic_fetch_add(&f->started, 1);
	return ENR_OK;
}

static void fake_cancel(void *be, struct ev_xfer *x)
{
	struct evf *f = be;
	struct evf_x *e = ev_xfer_layer_data(x);

	if (e == NULL)
		return;
	unregister(f, e);
	free(e);
	ev_xfer_set_layer_data(x, NULL);
}

static const struct ev_xfer_ops fake_ops = {
	.name = "fake",
	.open = fake_open,
	.close = fake_close,
	.start = fake_start,
	.cancel = fake_cancel,
};

void evf_opts(struct evf *f, struct ev_opts *o)
{
	o->xfer = &fake_ops;
	o->xfer_arg = f;
	o->clock = fake_clock;
	o->clock_arg = f;
}
