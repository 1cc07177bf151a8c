/*
 * evcurl.c - the event loop's libcurl transfer layer (ev_curl_ops in
 * lib/evloop.h): a few multi handles per loop, driven by
 * curl_multi_socket_action from the loop's epoll and their timers.
 *
 * Prefix: evc_.  Each multi handle owns a connection cache: connections to
 * a provider host are reused, capped by the loop's options, and
 * multiplexed over HTTP/2 when the provider offers it in TLS (ALPN); plain
 * http (loopback tests) stays HTTP/1.1.  Easy handles are kept on a free
 * list and curl_easy_reset for the next transfer; each call's options come
 * from lib/upstream_int.h.
 *
 * Why several multi handles (shards, transfers dealt round robin): to
 * start a transfer, libcurl walks every connection it has to that host
 * looking for one to reuse, busy ones included.  With thousands of
 * transfers waiting on one provider, one cache makes each start cost a
 * walk of thousands, and the loop spent most of its time there (measured
 * at 5,000 in flight).  EVC_SHARDS caches make the walks that much
 * shorter.  A transfer goes to the first shard running fewer than
 * EVC_SHARD_FILL, else to the one running fewest: a light load stays on
 * one cache and its connections (each multi handle costs its own timer
 * work, measured at 10% of the CPU at 1,000 in flight when all eight
 * shared them), a heavy one spreads.  The loop's connection caps are split
 * between the shards so that their sum is the cap.
 *
 * libcurl calls back into this file only from inside
 * curl_multi_socket_action and curl_multi_add_handle: the socket callback
 * (watch or forget a socket) and the timer callback (arm the shard's
 * timer).  Transfers end in drain(), after socket_action returned, so a
 * transfer's callback may start and cancel others freely.
 *
 * Name resolution is libcurl's threaded resolver: a lookup runs on a
 * short-lived thread of libcurl's, and each multi handle's DNS cache (60 s)
 * keeps that to a few per provider host a minute.  Addresses given as
 * numbers (the tests' 127.0.0.1) start no thread.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "evloop.h"
#include "limits.h"
#include "upstream_int.h"

#define EVC_SHARDS 8
#define EVC_SHARD_FILL 512  /* transfers a shard takes before the next is used */

struct evc;

/* One multi handle and its timer. */
struct evc_shard {
	struct evc *c;
	CURLM *m;
	struct ev_timer timer;
	int running;           /* transfers in it now */
};

/* One socket libcurl asked us to watch. */
struct evc_sock {
	struct ev_io io;
	struct evc_shard *sh;
	struct evc_sock *prev, *next;
};

/* An easy handle and what one transfer of it needs besides the loop's
 * struct ev_xfer. */
struct evc_x {
	CURL *h;
	struct curl_slist *hdrs;
	struct evc_shard *sh;  /* the multi handle it is in, while it runs */
	struct evc_x *next;
};

struct evc {
	struct ev_loop *l;
	struct evc_shard sh[EVC_SHARDS];
	int nsh;
	struct evc_sock *socks;
	struct evc_x *idle;
	int nidle, max_idle;
};

static void drain(struct evc_shard *sh)
{
	struct evc *c = sh->c;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(sh->m, &left)) != NULL) {
		CURL *h;
		CURLcode cc;
		char *priv = NULL;
		struct ev_xfer *x;
		struct evc_x *e;
		enum enr_err rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg is gone once the handle is removed: copy what we need. */
		h = msg->easy_handle;
		cc = msg->data.result;
		curl_easy_getinfo(h, CURLINFO_PRIVATE, &priv);
		x = (struct ev_xfer *)(void *)priv;
		if (x == NULL) {
			curl_multi_remove_handle(sh->m, h);
			continue;
		}
		e = ev_xfer_layer_data(x);
		curl_multi_remove_handle(sh->m, h);
		sh->running--;
		e->sh = NULL;
		rc = up_call_end(h, cc, ev_xfer_capture(x), e->hdrs);
		e->hdrs = NULL;
		/* Back on the free list before the callback, which may start
		 * the next transfer on the same handle. */
		curl_easy_reset(h);
		if (c->nidle < c->max_idle) {
			e->next = c->idle;
			c->idle = e;
			c->nidle++;
		} else {
			curl_easy_cleanup(h);
			free(e);
		}
		ev_xfer_set_layer_data(x, NULL);
		ev_xfer_done(c->l, x, rc);
	}
}

static void on_timer(struct ev_loop *l, struct ev_timer *t)
{
	struct evc_shard *sh = t->arg;
	int running;

	(void)l;
	curl_multi_socket_action(sh->m, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(sh);
}

static void on_io(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	struct evc_sock *s = w->arg;
	struct evc_shard *sh = s->sh;
	int fd = w->fd, flags = 0, running;

	(void)l;
	if (events & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & EV_ERROR)
		flags |= CURL_CSELECT_ERR;
	/* s may be freed inside (CURL_POLL_REMOVE): not used after this. */
	curl_multi_socket_action(sh->m, fd, flags, &running);
	drain(sh);
}

static void sock_free(struct evc *c, struct evc_sock *s)
{
	ev_io_stop(c->l, &s->io);
	if (s->prev)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct evc_shard *sh = userp;
	struct evc *c = sh->c;
	struct evc_sock *s = socketp;
	unsigned events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s)
			sock_free(c, s);
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof *s);
		if (s == NULL)
			return -1;
		ev_io_init(&s->io, on_io, s);
		s->sh = sh;
		s->next = c->socks;
		if (c->socks)
			c->socks->prev = s;
		c->socks = s;
		curl_multi_assign(sh->m, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EV_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EV_WRITE;
	return ev_io_start(c->l, &s->io, fd, events) == ENR_OK ? 0 : -1;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct evc_shard *sh = userp;

	(void)m;
	if (timeout_ms < 0) {
		ev_timer_stop(sh->c->l, &sh->timer);
		return 0;
	}
	/* Never called back from here: socket_action runs on the timer. */
	return ev_timer_start(sh->c->l, &sh->timer, timeout_ms) == ENR_OK ? 0 : -1;
}

/* Shard i's part of a cap split over n shards: the parts add up to it. */
static long part(int cap, int i, int n)
{
	return cap / n + (i < cap % n ? 1 : 0);
}

static void shards_close(struct evc *c)
{
	for (int i = 0; i < c->nsh; i++) {
		ev_timer_stop(c->l, &c->sh[i].timer);
		curl_multi_cleanup(c->sh[i].m);
	}
	c->nsh = 0;
}

static enum enr_err evc_open(struct ev_loop *l, const struct ev_opts *o, void **be)
{
	struct evc *c;
	enum enr_err rc = up_global_init();

	if (rc)
		return rc;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return ENR_E_NOMEM;
	c->l = l;
	c->max_idle = o->free_xfers ? o->free_xfers : LIM_EV_FREE_DEFAULT;
	/* No more shards than the smallest cap: each has a connection at least. */
	c->nsh = EVC_SHARDS;
	if (o->max_connections > 0 && o->max_connections < c->nsh)
		c->nsh = o->max_connections;
	if (o->max_host_connections > 0 && o->max_host_connections < c->nsh)
		c->nsh = o->max_host_connections;
	if (o->max_idle_connections > 0 && o->max_idle_connections < c->nsh)
		c->nsh = o->max_idle_connections;
	for (int i = 0; i < c->nsh; i++) {
		struct evc_shard *sh = &c->sh[i];

		sh->c = c;
		sh->m = curl_multi_init();
		if (sh->m == NULL) {
			c->nsh = i;
			shards_close(c);
			free(c);
			return ENR_E_NOMEM;
		}
		ev_timer_init(&sh->timer, on_timer, sh);
		curl_multi_setopt(sh->m, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(sh->m, CURLMOPT_SOCKETDATA, sh);
		curl_multi_setopt(sh->m, CURLMOPT_TIMERFUNCTION, on_curl_timer);
		curl_multi_setopt(sh->m, CURLMOPT_TIMERDATA, sh);
		curl_multi_setopt(sh->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
		if (o->max_connections > 0)
			curl_multi_setopt(sh->m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
					  part(o->max_connections, i, c->nsh));
		if (o->max_host_connections > 0)
			curl_multi_setopt(sh->m, CURLMOPT_MAX_HOST_CONNECTIONS,
					  part(o->max_host_connections, i, c->nsh));
		if (o->max_idle_connections > 0)
			curl_multi_setopt(sh->m, CURLMOPT_MAXCONNECTS,
					  part(o->max_idle_connections, i, c->nsh));
		/* Not split: it is per connection. */
		if (o->max_streams > 0)
			curl_multi_setopt(sh->m, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)o->max_streams);
	}
	*be = c;
	return ENR_OK;
}

static void evc_close(void *be)
{
	struct evc *c = be;

	shards_close(c);
	/* Sockets libcurl did not say goodbye to (it closed them itself). */
	while (c->socks)
		sock_free(c, c->socks);
	while (c->idle) {
		struct evc_x *e = c->idle;

		c->idle = e->next;
		curl_easy_cleanup(e->h);
		free(e);
	}
	free(c);
}

static enum enr_err evc_start(void *be, struct ev_xfer *x, const struct prov_request *req,
			      int timeout_ms)
{
	struct evc *c = be;
	struct evc_x *e = c->idle;
	enum enr_err rc;

	if (e) {
		c->idle = e->next;
		c->nidle--;
	} else {
		e = calloc(1, sizeof *e);
		if (e == NULL)
			return ENR_E_NOMEM;
		e->h = curl_easy_init();
		if (e->h == NULL) {
			free(e);
			return ENR_E_NOMEM;
		}
	}
	rc = up_call_begin(e->h, req, timeout_ms, ev_xfer_capture(x), &e->hdrs);
	if (rc)
		goto fail;
	curl_easy_setopt(e->h, CURLOPT_PRIVATE, (void *)x);
	/* Where HTTP/2 may come, wait for a connection being set up to say
	 * whether it multiplexes rather than open a second one to the host. */
	if (req->http2 == PROV_HTTP2_AUTO && strncmp(buf_cstr(&req->url), "https://", 8) == 0)
		curl_easy_setopt(e->h, CURLOPT_PIPEWAIT, 1L);
	ev_xfer_set_layer_data(x, e);
	e->sh = &c->sh[0];
	for (int i = 0; i < c->nsh; i++) {
		if (c->sh[i].running < EVC_SHARD_FILL) {
			e->sh = &c->sh[i];
			break;
		}
		if (c->sh[i].running < e->sh->running)
			e->sh = &c->sh[i];
	}
	if (curl_multi_add_handle(e->sh->m, e->h) != CURLM_OK) {
		ev_xfer_set_layer_data(x, NULL);
		e->sh = NULL;
		rc = ENR_E_NOMEM;
		goto fail;
	}
	e->sh->running++;
	return ENR_OK;
fail:
	curl_easy_setopt(e->h, CURLOPT_HTTPHEADER, NULL);
	up_free_slist(e->hdrs);
	e->hdrs = NULL;
	curl_easy_cleanup(e->h);
	free(e);
	return rc;
}

static void evc_cancel(void *be, struct ev_xfer *x)
{
	struct evc *c = be;
	struct evc_x *e = ev_xfer_layer_data(x);

	if (e == NULL)
		return;
	curl_multi_remove_handle(e->sh->m, e->h);
	e->sh->running--;
	e->sh = NULL;
	curl_easy_setopt(e->h, CURLOPT_HTTPHEADER, NULL);
	up_free_slist(e->hdrs);
	e->hdrs = NULL;
	curl_easy_reset(e->h);
	ev_xfer_set_layer_data(x, NULL);
	if (c->nidle < c->max_idle) {
		e->next = c->idle;
		c->idle = e;
		c->nidle++;
	} else {
		curl_easy_cleanup(e->h);
		free(e);
	}
}

const struct ev_xfer_ops ev_curl_ops = {
	.name = "libcurl",
	.open = evc_open,
	.close = evc_close,
	.start = evc_start,
	.cancel = evc_cancel,
};
