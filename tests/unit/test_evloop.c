/*
 * test_evloop.c - the event loop (lib/evloop.c, lib/evcurl.c) and its
 * fake transfer layer (lib/evfake.c).
 *
 * Timers, tasks and transfers are tested on the fake layer and fake clock
 * (no sockets, no sleeping).  The libcurl layer is tested against a small
 * HTTP/1.1 server on 127.0.0.1 that the test forks before any thread
 * starts: one process, one thread, epoll, keep-alive, canned answers by
 * path.  /hold?n=N keeps every request until N are waiting, tells the test
 * through a pipe, and answers them all when the test says so: that is how
 * the 2,000-transfer test knows all of them are in flight at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/evfake.h"
#include "lib/evloop.h"
#include "lib/upstream.h"
#include "lib/util.h"

#include "evfake_loop.h"
#include "harness.h"

/* ---- the local server (child process) ------------------------------------- */

#define SRV_FDS 16384

struct sconn {
	char in[16384];
	size_t have;
	char *out;
	size_t out_len, out_off;
	bool held;
};

static struct {
	pid_t pid;
	int port;
	int note_rd;   /* parent reads: 'A' when every held request arrived */
	int go_wr;     /* parent writes: answer the held requests */
} srv = { -1, 0, -1, -1 };

struct child {
	int ep, lfd, note_wr, go_rd;
	struct sconn *c[SRV_FDS];
	int accepted, open, maxopen, requests, held;
};

static void c_close(struct child *ch, int fd)
{
	if (fd < 0 || fd >= SRV_FDS || ch->c[fd] == NULL)
		return;
	epoll_ctl(ch->ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	if (ch->c[fd]->held)
		ch->held--;
	free(ch->c[fd]->out);
	free(ch->c[fd]);
	ch->c[fd] = NULL;
	ch->open--;
}

static void c_flush(struct child *ch, int fd)
{
	struct sconn *c = ch->c[fd];
	struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };

	while (c->out_off < c->out_len) {
		ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			e.events |= EPOLLOUT;
			break;
		}
		if (w <= 0) {
			c_close(ch, fd);
			return;
		}
		c->out_off += (size_t)w;
	}
	if (c->out_off == c->out_len) {
		free(c->out);
		c->out = NULL;
		c->out_len = c->out_off = 0;
	}
	epoll_ctl(ch->ep, EPOLL_CTL_MOD, fd, &e);
}

static void c_reply(struct child *ch, int fd, const char *status, const char *extra,
		    const char *body, size_t blen)
{
	struct sconn *c = ch->c[fd];
	char head[2048];
	int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n", status,
			 extra, blen);
	char *p = realloc(c->out, c->out_len + (size_t)n + blen);

	if (p == NULL)
		_exit(3);
	memcpy(p + c->out_len, head, (size_t)n);
	memcpy(p + c->out_len + (size_t)n, body, blen);
	c->out = p;
	c->out_len += (size_t)n + blen;
	c_flush(ch, fd);
}

static void release_held(struct child *ch)
{
	static const char body[] = "{\"status\":200,\"likelihood\":8,\"data\":{\"job_title\":\"cto\"}}";

	for (int fd = 0; fd < SRV_FDS; fd++) {
		if (ch->c[fd] && ch->c[fd]->held) {
			ch->c[fd]->held = false;
			ch->held--;
			c_reply(ch, fd, "200 OK", "Content-Type: application/json\r\n", body,
				sizeof body - 1);
		}
	}
}

/* One whole request in c->in: answer it; false when more bytes are needed. */
static bool c_request(struct child *ch, int fd)
{
	struct sconn *c = ch->c[fd];
	char *end = memmem(c->in, c->have, "\r\n\r\n", 4), path[512] = "", *cl, *sp;
	size_t head_len, body_len = 0;

	if (end == NULL)
		return false;
	head_len = (size_t)(end - c->in) + 4;
	*end = '\0';
	cl = strcasestr(c->in, "\r\ncontent-length:");
	if (cl) {
		for (cl += 17; *cl == ' '; cl++)
			;
		while (*cl >= '0' && *cl <= '9')
			body_len = body_len * 10 + (size_t)(*cl++ - '0');
	}
	if (c->have < head_len + body_len) {
		*end = '\r';
		return false;
	}
	sp = strchr(c->in, ' ');
	if (sp) {
		size_t i = 0;

		for (sp++; *sp && *sp != ' ' && i + 1 < sizeof path; sp++)
			path[i++] = *sp;
		path[i] = '\0';
	}
	ch->requests++;
	if (strcmp(path, "/hello") == 0) {
		c_reply(ch, fd, "200 OK",
			"Content-Type: application/json\r\nX-RateLimit-Remaining:   {\"minute\": 99}  \r\n"
			"RETRY-AFTER: 7\r\n", "{\"ok\":true}", 11);
	} else if (strcmp(path, "/echo") == 0) {
		c_reply(ch, fd, "201 Created", "", c->in + head_len, body_len);
	} else if (strcmp(path, "/redirect") == 0) {
		c_reply(ch, fd, "302 Found", "Location: /hello\r\n", "moved", 5);
	} else if (strcmp(path, "/big") == 0) {
		char big[5000];

		memset(big, 'x', sizeof big);
		c_reply(ch, fd, "200 OK", "", big, sizeof big);
	} else if (strcmp(path, "/slow") == 0) {
		/* never answered: the client times out or cancels */
	} else if (strncmp(path, "/hold?n=", 8) == 0) {
		int want = 0;
		char ok = 0;

		for (const char *d = path + 8; *d >= '0' && *d <= '9'; d++)
			want = want * 10 + (*d - '0');
		c->held = true;
		if (++ch->held >= want) {
			if (write(ch->note_wr, "A", 1) != 1 || read(ch->go_rd, &ok, 1) != 1)
				_exit(4);
			release_held(ch);
		}
	} else if (strcmp(path, "/stats") == 0) {
		char b[256];
		int n = snprintf(b, sizeof b, "accepted=%d open=%d maxopen=%d requests=%d",
				 ch->accepted, ch->open, ch->maxopen, ch->requests);

		c_reply(ch, fd, "200 OK", "", b, (size_t)n);
	} else {
		c_reply(ch, fd, "404 Not Found", "", "", 0);
	}
	if (ch->c[fd] == NULL)
		return false;
	memmove(c->in, c->in + head_len + body_len, c->have - head_len - body_len);
	c->have -= head_len + body_len;
	return true;
}

static void child_main(int lfd, int note_wr, int go_rd)
{
	static struct child ch;
	struct epoll_event evs[256], e = { .events = EPOLLIN, .data.fd = lfd };

	ch.lfd = lfd;
	ch.note_wr = note_wr;
	ch.go_rd = go_rd;
	ch.ep = epoll_create1(0);
	epoll_ctl(ch.ep, EPOLL_CTL_ADD, lfd, &e);
	for (;;) {
		int n = epoll_wait(ch.ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				int cfd;

				while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct epoll_event ce = { .events = EPOLLIN | EPOLLRDHUP,
								  .data.fd = cfd };

					if (cfd >= SRV_FDS || (ch.c[cfd] = calloc(1, sizeof *ch.c[cfd])) == NULL) {
						close(cfd);
						continue;
					}
					ch.accepted++;
					if (++ch.open > ch.maxopen)
						ch.maxopen = ch.open;
					epoll_ctl(ch.ep, EPOLL_CTL_ADD, cfd, &ce);
				}
				continue;
			}
			if (ch.c[fd] == NULL)
				continue;
			if (evs[i].events & EPOLLOUT) {
				c_flush(&ch, fd);
				if (ch.c[fd] == NULL)
					continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				struct sconn *c = ch.c[fd];
				ssize_t r = recv(fd, c->in + c->have, sizeof c->in - c->have, 0);

				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					c_close(&ch, fd);
					continue;
				}
				c->have += (size_t)r;
				while (ch.c[fd] && c_request(&ch, fd))
					;
			}
		}
	}
}

/* Fork the server; before any thread exists (fork copies only the caller). */
static int srv_start(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int lfd, note[2], go[2], one = 1;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		return -1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) != 0 || pipe(note) != 0 || pipe(go) != 0)
		return -1;
	srv.port = ntohs(sa.sin_port);
	srv.pid = fork();
	if (srv.pid < 0)
		return -1;
	if (srv.pid == 0) {
		close(note[0]);
		close(go[1]);
		child_main(lfd, note[1], go[0]);
		_exit(0);
	}
	close(lfd);
	close(note[1]);
	close(go[0]);
	srv.note_rd = note[0];
	srv.go_wr = go[1];
	return 0;
}

static void srv_stop(void)
{
	if (srv.pid > 0) {
		kill(srv.pid, SIGTERM);
		waitpid(srv.pid, NULL, 0);
		srv.pid = -1;
	}
}

/* ---- helpers ------------------------------------------------------------------ */

static long proc_status(const char *field)
{
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			int64_t x;
			char *p = line + n + 1, *e;

			while (*p == ' ' || *p == '\t')
				p++;
			for (e = p; *e >= '0' && *e <= '9'; e++)
				;
			if (util_parse_i64n(p, (size_t)(e - p), 0, INT64_MAX, &x) == ENR_OK)
				v = (long)x;
			break;
		}
	}
	fclose(f);
	return v;
}

static void make_req(struct prov_request *r, const char *method, const char *url)
{
	prov_request_init(r);
	util_strlcpy(r->method, method, sizeof r->method);
	enr_ignore(buf_puts(&r->url, url)); /* test URLs are short */
}

static void local_url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%d%s", srv.port, path);
}

/* What a transfer callback saw. */
struct got {
	int calls;
	enum enr_err rc;
	long status;
	bool timed_out;
	char body[8192];
	char error[128];
	char retry_after[64];
	char rl_remaining[64];
	bool lower_names;
	bool on_loop;
	bool *done;
	struct ev_xfer *cancel_other;   /* cancel this one from the callback */
};

static void on_xfer(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc, struct up_response *r,
		    void *arg)
{
	struct got *g = arg;
	const char *v;

	(void)x;
	g->calls++;
	g->rc = rc;
	g->status = r->resp.status;
	g->timed_out = r->resp.timed_out;
	g->on_loop = ev_on_loop_thread(l);
	util_strlcpy(g->body, r->resp.body, sizeof g->body);
	util_strlcpy(g->error, r->error, sizeof g->error);
	v = prov_header(&r->resp, "retry-after");
	util_strlcpy(g->retry_after, v ? v : "", sizeof g->retry_after);
	v = prov_header(&r->resp, "x-ratelimit-remaining");
	util_strlcpy(g->rl_remaining, v ? v : "", sizeof g->rl_remaining);
	g->lower_names = true;
	for (size_t i = 0; i < r->resp.nheaders; i++) {
		for (const char *p = r->resp.headers[i].name; *p; p++) {
			if (*p >= 'A' && *p <= 'Z')
				g->lower_names = false;
		}
	}
	if (g->cancel_other)
		ev_xfer_cancel(l, g->cancel_other);
	if (g->done)
		*g->done = true;
}

/* ---- timers (fake clock) ------------------------------------------------------ */

struct fire_log {
	int n;
	int64_t when;
	int order[16384];
	int64_t at[16384];
	struct ev_timer *stop_other;
	struct ev_loop *l;
};

struct tmr {
	struct ev_timer t;
	struct fire_log *log;
	int idx;
};

static void on_fire(struct ev_loop *l, struct ev_timer *t)
{
	struct tmr *m = t->arg;
	struct fire_log *g = m->log;

	if (g->n < (int)(sizeof g->order / sizeof g->order[0])) {
		g->order[g->n] = m->idx;
		g->at[g->n] = ev_now(l);
	}
	g->n++;
	g->when = ev_now(l);
	if (g->stop_other)
		ev_timer_stop(l, g->stop_other);
}

TEST(timer_fires_at_its_time)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	static struct fire_log g;
	struct tmr m = { .log = &g };

	REQUIRE(l);
	memset(&g, 0, sizeof g);
	ev_timer_init(&m.t, on_fire, &m);
	CHECK(!ev_timer_armed(&m.t));
	CHECK_INT(ev_timer_start(l, &m.t, 100), ENR_OK);
	CHECK(ev_timer_armed(&m.t));
	evf_advance(f, 99);
	ev_run_pending(l);
	CHECK_INT(g.n, 0);
	evf_advance(f, 1);
	CHECK(ev_run_pending(l) >= 1);
	CHECK_INT(g.n, 1);
	CHECK_INT(g.when, 1100);
	CHECK(!ev_timer_armed(&m.t));
	evf_advance(f, 5000);
	ev_run_pending(l);
	CHECK_INT(g.n, 1); /* once */
	/* A timer for "now" fires at the next turn; one in the past at once. */
	CHECK_INT(ev_timer_start(l, &m.t, 0), ENR_OK);
	ev_run_pending(l);
	CHECK_INT(g.n, 2);
	CHECK_INT(ev_timer_start_at(l, &m.t, 10), ENR_OK);
	ev_run_pending(l);
	CHECK_INT(g.n, 3);
	ev_free(l);
	evf_free(f);
}

TEST(cancel_a_timer)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	static struct fire_log g;
	struct tmr a = { .log = &g, .idx = 1 }, b = { .log = &g, .idx = 2 },
		   c = { .log = &g, .idx = 3 }, d = { .log = &g, .idx = 4 },
		   e = { .log = &g, .idx = 5 };
	struct ev_stats st;

	REQUIRE(l);
	memset(&g, 0, sizeof g);
	ev_timer_init(&a.t, on_fire, &a);
	ev_timer_init(&b.t, on_fire, &b);
	ev_timer_init(&c.t, on_fire, &c);
	ev_timer_init(&d.t, on_fire, &d);
	ev_timer_init(&e.t, on_fire, &e);
	ev_timer_stop(l, &a.t); /* never armed: nothing */
	CHECK_INT(ev_timer_start(l, &a.t, 50), ENR_OK);
	CHECK_INT(ev_timer_start(l, &b.t, 50), ENR_OK);
	CHECK_INT(ev_timer_start(l, &e.t, 10), ENR_OK);
	CHECK_INT(ev_timer_start(l, &e.t, 200), ENR_OK); /* moved, not doubled */
	ev_stats(l, &st);
	CHECK_INT(st.timers, 3);
	ev_timer_stop(l, &a.t);
	CHECK(!ev_timer_armed(&a.t));
	evf_advance(f, 50);
	ev_run_pending(l);
	CHECK_INT(g.n, 1);
	CHECK_INT(g.order[0], 2);
	ev_timer_stop(l, &b.t); /* already fired: nothing */

	/* One callback stops a timer due in the same pass. */
	CHECK_INT(ev_timer_start(l, &c.t, 20), ENR_OK);
	CHECK_INT(ev_timer_start(l, &d.t, 20), ENR_OK);
	g.stop_other = &d.t;
	evf_advance(f, 20);
	ev_run_pending(l);
	g.stop_other = NULL;
	CHECK_INT(g.n, 2);
	CHECK_INT(g.order[1], 3);
	CHECK(!ev_timer_armed(&d.t));
	evf_advance(f, 200);
	ev_run_pending(l);
	CHECK_INT(g.n, 3);
	CHECK_INT(g.order[2], 5);
	CHECK_INT(g.at[2], 1000 + 50 + 20 + 200);
	ev_stats(l, &st);
	CHECK_INT(st.timers, 0);
	ev_free(l);
	evf_free(f);
}

TEST(thousands_of_timers_in_order)
{
	enum { N = 10000, SPAN = 5000 };
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	static struct fire_log g;
	static struct tmr m[N];
	int expect = 0, bad_time = 0, bad_order = 0;
	int64_t t0;

	REQUIRE(l);
	memset(&g, 0, sizeof g);
	t0 = evf_now(f);
	for (int i = 0; i < N; i++) {
		m[i].log = &g;
		m[i].idx = i;
		ev_timer_init(&m[i].t, on_fire, &m[i]);
		CHECK_INT(ev_timer_start(l, &m[i].t, (int64_t)((i * 7919) % SPAN)), ENR_OK);
	}
	/* Every third one is cancelled before it fires. */
	for (int i = 0; i < N; i += 3)
		ev_timer_stop(l, &m[i].t);
	for (int i = 0; i < N; i++)
		expect += i % 3 != 0;
	for (int ms = 0; ms < SPAN; ms++) {
		ev_run_pending(l);
		evf_advance(f, 1);
	}
	ev_run_pending(l);
	CHECK_INT(g.n, expect);
	for (int k = 0; k < g.n && k < N; k++) {
		int i = g.order[k];

		if (i % 3 == 0 || g.at[k] != t0 + (i * 7919) % SPAN)
			bad_time++;
		if (k > 0) {
			int p = g.order[k - 1];
			int64_t ap = (p * 7919) % SPAN, ai = (i * 7919) % SPAN;

			/* by time, then in the order they were started */
			if (ap > ai || (ap == ai && p > i))
				bad_order++;
		}
	}
	CHECK_INT(bad_time, 0);
	CHECK_INT(bad_order, 0);
	ev_free(l);
	evf_free(f);
}

static void on_set_done(struct ev_loop *l, struct ev_timer *t)
{
	(void)l;
	*(bool *)t->arg = true;
}

TEST(timer_on_the_real_clock)
{
	struct ev_loop *l = NULL;
	struct ev_timer t;
	bool done = false;
	int64_t t0;

	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	ev_timer_init(&t, on_set_done, &done);
	t0 = util_mono_ms();
	CHECK_INT(ev_timer_start(l, &t, 30), ENR_OK);
	CHECK_INT(ev_run_until(l, &done, 10000), ENR_OK);
	CHECK(done);
	CHECK(util_mono_ms() - t0 >= 30);
	ev_free(l);
}

/* ---- descriptors ------------------------------------------------------------- */

struct closing {
	struct ev_io a, b, c;
	int sa[2], sb[2], sc[2];
	int a_calls, b_calls, c_calls;
	bool done, c_done;
};

/* Whichever of a and b comes first closes the other's descriptor, whose
 * event is ready in the same turn. */
static void on_pair(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	struct closing *x = w->arg;
	bool is_a = w == &x->a;
	struct ev_io *other = is_a ? &x->b : &x->a;
	int *ofd = is_a ? &x->sb[0] : &x->sa[0];

	(void)events;
	if (is_a)
		x->a_calls++;
	else
		x->b_calls++;
	if (other->active) {
		close(*ofd);
		*ofd = -1;
		ev_io_closed(l, other);
	}
	ev_io_stop(l, w);
	x->done = true;
}

static void on_third(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	struct closing *x = w->arg;

	(void)events;
	x->c_calls++;
	ev_io_stop(l, w);
	x->c_done = true;
}

TEST(a_descriptor_closed_on_the_loop_leaves_no_event_behind)
{
	struct ev_loop *l = NULL;
	struct closing x;

	memset(&x, 0, sizeof x);
	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, x.sa) == 0);
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, x.sb) == 0);
	ev_io_init(&x.a, on_pair, &x);
	ev_io_init(&x.b, on_pair, &x);
	CHECK_INT(ev_io_start(l, &x.a, x.sa[0], EV_READ), ENR_OK);
	CHECK_INT(ev_io_start(l, &x.b, x.sb[0], EV_READ), ENR_OK);
	/* Both readable before the loop looks: one turn holds both events. */
	CHECK(write(x.sa[1], "a", 1) == 1);
	CHECK(write(x.sb[1], "b", 1) == 1);
	CHECK_INT(ev_run_until(l, &x.done, 10000), ENR_OK);
	CHECK_INT(x.a_calls + x.b_calls, 1);
	/* A new descriptor takes the closed one's number; the old watch is
	 * gone from epoll and from the loop, the new one alone is told. */
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, x.sc) == 0);
	ev_io_init(&x.c, on_third, &x);
	CHECK_INT(ev_io_start(l, &x.c, x.sc[0], EV_READ), ENR_OK);
	CHECK(write(x.sc[1], "c", 1) == 1);
	CHECK_INT(ev_run_until(l, &x.c_done, 10000), ENR_OK);
	CHECK_INT(x.c_calls, 1);
	CHECK_INT(x.a_calls + x.b_calls, 1);
	for (int i = 0; i < 2; i++) {
		if (x.sa[i] >= 0)
			close(x.sa[i]);
		if (x.sb[i] >= 0)
			close(x.sb[i]);
		close(x.sc[i]);
	}
	ev_free(l);
}

/* ---- tasks --------------------------------------------------------------------- */

enum { POSTERS = 8, PER_POSTER = 20000 };

static struct {
	struct ev_loop *l;
	unsigned char hits[POSTERS * PER_POSTER];
	struct ev_task tasks[POSTERS * PER_POSTER];
	int off_loop;
	int run;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished;
	int post_errors;
} pt = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void on_posted(struct ev_loop *l, void *arg)
{
	size_t i = (size_t)(uintptr_t)arg;

	if (!ev_on_loop_thread(l))
		pt.off_loop++;
	pt.hits[i]++;
	pt.run++;
}

static void on_last(struct ev_loop *l, void *arg)
{
	(void)l;
	(void)arg;
	pthread_mutex_lock(&pt.mu);
	pt.finished = true;
	pthread_cond_signal(&pt.cv);
	pthread_mutex_unlock(&pt.mu);
}

static void *poster(void *arg)
{
	size_t base = (size_t)(uintptr_t)arg * PER_POSTER;

	for (size_t i = base; i < base + PER_POSTER; i++) {
		/* half with the loop's allocation, half with tasks of our own */
		if (i % 2 == 0) {
			if (ev_post(pt.l, on_posted, (void *)(uintptr_t)i) != ENR_OK)
				__atomic_add_fetch(&pt.post_errors, 1, __ATOMIC_RELAXED);
		} else {
			ev_post_task(pt.l, &pt.tasks[i], on_posted, (void *)(uintptr_t)i);
		}
	}
	return NULL;
}

TEST(post_from_eight_threads_reaches_the_loop_once_each)
{
	struct evf *f;
	pthread_t th[POSTERS];
	int missing = 0, twice = 0;

	REQUIRE(util_cond_init(&pt.cv) == ENR_OK); /* timed waits on the monotonic clock */
	pt.l = fake_loop_at(1000, 0, &f);
	REQUIRE(pt.l);
	REQUIRE(ev_thread_start(pt.l) == ENR_OK);
	for (int i = 0; i < POSTERS; i++)
		REQUIRE(pthread_create(&th[i], NULL, poster, (void *)(uintptr_t)i) == 0);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(th[i], NULL);
	/* Posted after every other post returned, so it runs after them all. */
	CHECK_INT(ev_post(pt.l, on_last, NULL), ENR_OK);
	pthread_mutex_lock(&pt.mu);
	while (!pt.finished) {
		if (util_cond_wait_ms(&pt.cv, &pt.mu, 30000) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&pt.mu);
	CHECK(pt.finished);
	ev_thread_join(pt.l);
	for (size_t i = 0; i < POSTERS * PER_POSTER; i++) {
		missing += pt.hits[i] == 0;
		twice += pt.hits[i] > 1;
	}
	CHECK_INT(pt.post_errors, 0);
	CHECK_INT(missing, 0);
	CHECK_INT(twice, 0);
	CHECK_INT(pt.run, POSTERS * PER_POSTER);
	CHECK_INT(pt.off_loop, 0);
	ev_free(pt.l);
	evf_free(f);
	pthread_cond_destroy(&pt.cv);
}

struct seq_log {
	int n;
	int seen[8];
	bool stopping[8];
	struct ev_task t[8];
};

struct seq_arg {
	struct seq_log *s;
	int v;
};

static void on_seq(struct ev_loop *l, void *arg)
{
	struct seq_log *s = ((struct seq_arg *)arg)->s;
	int v = ((struct seq_arg *)arg)->v;

	if (s->n < 8) {
		s->seen[s->n] = v;
		s->stopping[s->n] = ev_stopping(l);
	}
	s->n++;
}

TEST(tasks_run_in_order_and_at_free)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	static struct seq_log s;
	static struct seq_arg args[6];

	REQUIRE(l);
	memset(&s, 0, sizeof s);
	for (int i = 0; i < 6; i++) {
		args[i].s = &s;
		args[i].v = i;
	}
	for (int i = 0; i < 3; i++)
		ev_post_task(l, &s.t[i], on_seq, &args[i]);
	CHECK_INT(ev_run_pending(l), 3);
	CHECK_INT(s.n, 3);
	CHECK_INT(s.seen[0], 0);
	CHECK_INT(s.seen[1], 1);
	CHECK_INT(s.seen[2], 2);
	CHECK(!s.stopping[0]);
	/* Queued and never run by a turn: ev_free runs them, stopping. */
	for (int i = 3; i < 6; i++)
		ev_post_task(l, &s.t[i], on_seq, &args[i]);
	ev_free(l);
	CHECK_INT(s.n, 6);
	CHECK_INT(s.seen[5], 5);
	CHECK(s.stopping[3] && s.stopping[5]);
	evf_free(f);
}

/* ---- transfers on the fake layer ------------------------------------------------ */

TEST(fake_transfer_answer_goes_through_the_capture)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	struct prov_request r;
	struct evf_call call;
	struct got g = { 0 };
	struct ev_xfer *x = NULL;
	struct ev_stats st;
	uint64_t id;

	REQUIRE(l);
	make_req(&r, "GET", "https://api.provider.test/v5/person/enrich?email=a%40b.c");
	CHECK_INT(prov_request_header(&r, "X-Api-Key", "sekrit"), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1500, 0, on_xfer, &g, &x), ENR_OK);
	prov_request_release(&r); /* the loop copied it */
	REQUIRE(x);
	CHECK_INT(evf_count(f), 1);
	id = evf_nth(f, 0);
	CHECK_INT(id, ev_xfer_id(x));
	REQUIRE(evf_call(f, id, &call));
	CHECK_STR(call.method, "GET");
	CHECK_STR(call.url, "https://api.provider.test/v5/person/enrich?email=a%40b.c");
	CHECK_INT(call.nheaders, 1);
	CHECK_STR(call.headers[0], "X-Api-Key: sekrit");
	CHECK_INT(call.timeout_ms, 1500);
	CHECK_INT(evf_answer(f, id, 200, "X-RateLimit-Remaining:   {\"minute\": 99}  \nRETRY-AFTER: 7",
			     "{\"ok\":true}"), ENR_OK);
	CHECK_INT(g.calls, 0); /* nothing before the loop turns */
	ev_run_pending(l);
	CHECK_INT(g.calls, 1);
	CHECK_INT(g.rc, ENR_OK);
	CHECK_INT(g.status, 200);
	CHECK_STR(g.body, "{\"ok\":true}");
	CHECK_STR(g.retry_after, "7");
	CHECK_STR(g.rl_remaining, "{\"minute\": 99}");
	CHECK(g.lower_names);
	CHECK(g.on_loop);
	CHECK_INT(evf_count(f), 0);
	ev_stats(l, &st);
	CHECK_INT(st.xfers, 0);
	CHECK_INT(st.xfers_ended, 1);

	/* A recycled transfer starts empty: no header of the last answer. */
	memset(&g, 0, sizeof g);
	make_req(&r, "POST", "https://api.provider.test/v2/person");
	CHECK_INT(buf_puts(&r.body, "{\"q\":1}"), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1500, 0, on_xfer, &g, &x), ENR_OK);
	prov_request_release(&r);
	REQUIRE(evf_call(f, ev_xfer_id(x), &call));
	CHECK_STR(call.body, "{\"q\":1}");
	CHECK(ev_xfer_id(x) != id);
	CHECK_INT(evf_answer(f, ev_xfer_id(x), 404, NULL, ""), ENR_OK);
	ev_run_pending(l);
	CHECK_INT(g.status, 404);
	CHECK_STR(g.retry_after, "");
	ev_free(l);
	evf_free(f);
}

TEST(fake_transfer_fails_and_times_out)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	struct prov_request r;
	struct got a = { 0 }, b = { 0 }, c = { 0 };
	struct ev_xfer *xa, *xb, *xc;

	REQUIRE(l);
	make_req(&r, "GET", "https://api.provider.test/x");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &a, &xa), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 500, 0, on_xfer, &b, &xb), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 10, on_xfer, &c, &xc), ENR_OK);
	prov_request_release(&r);
	CHECK_INT(evf_fail(f, ev_xfer_id(xa), "Connection reset by peer"), ENR_OK);
	CHECK_INT(evf_answer(f, ev_xfer_id(xc), 200, NULL, "01234567890123456789"), ENR_OK);
	ev_run_pending(l);
	CHECK_INT(a.calls, 1);
	CHECK_INT(a.rc, ENR_OK);
	CHECK_INT(a.status, 0);
	CHECK(!a.timed_out);
	CHECK_STR(a.error, "Connection reset by peer");
	/* over the body cap of 10: no answer, said so */
	CHECK_INT(c.calls, 1);
	CHECK_INT(c.status, 0);
	CHECK_STR(c.error, "response too large");
	CHECK_STR(c.body, "");
	/* b times out on the clock */
	evf_advance(f, 499);
	ev_run_pending(l);
	CHECK_INT(b.calls, 0);
	evf_advance(f, 1);
	ev_run_pending(l);
	CHECK_INT(b.calls, 1);
	CHECK(b.timed_out);
	CHECK_INT(b.status, 0);
	CHECK_STR(b.error, "Timeout was reached");
	CHECK_INT(evf_count(f), 0);
	ev_free(l);
	evf_free(f);
}

TEST(completion_after_cancel_is_dropped)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	struct prov_request r;
	struct got a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	struct ev_xfer *xa, *xb, *xc, *xd;
	struct ev_stats st;

	REQUIRE(l);
	make_req(&r, "GET", "https://api.provider.test/x");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &a, &xa), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &b, &xb), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &c, &xc), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &d, &xd), ENR_OK);
	prov_request_release(&r);
	/* a: its answer is on its way when it is cancelled */
	CHECK_INT(evf_answer(f, ev_xfer_id(xa), 200, NULL, "late"), ENR_OK);
	CHECK_INT(evf_time_out(f, ev_xfer_id(xa)), ENR_OK);
	ev_xfer_cancel(l, xa);
	/* b and c end in one turn; b's callback cancels c */
	b.cancel_other = xc;
	CHECK_INT(evf_answer(f, ev_xfer_id(xb), 200, NULL, "b"), ENR_OK);
	CHECK_INT(evf_answer(f, ev_xfer_id(xc), 200, NULL, "c"), ENR_OK);
	/* d is cancelled and its timeout must not fire either */
	ev_xfer_cancel(l, xd);
	ev_run_pending(l);
	evf_advance(f, 5000);
	ev_run_pending(l);
	CHECK_INT(a.calls, 0);
	CHECK_INT(b.calls, 1);
	CHECK_INT(c.calls, 0);
	CHECK_INT(d.calls, 0);
	CHECK_INT(evf_count(f), 0);
	ev_stats(l, &st);
	CHECK_INT(st.xfers, 0);
	CHECK_INT(st.timers, 0);
	/* A transfer still running when the loop is freed: no callback. */
	make_req(&r, "GET", "https://api.provider.test/x");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &a, NULL), ENR_OK);
	prov_request_release(&r);
	ev_free(l);
	CHECK_INT(a.calls, 0);
	evf_free(f);
}

TEST(refused_requests_send_nothing)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 3, &f);
	struct prov_request r;
	struct got g = { 0 };
	struct ev_xfer *x[3];

	REQUIRE(l);
	make_req(&r, "GET", "http://192.0.2.1/plain-http-off-loopback");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, NULL), ENR_E_INVALID);
	prov_request_release(&r);
	make_req(&r, "GET", "ftp://127.0.0.1/file");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, NULL), ENR_E_INVALID);
	prov_request_release(&r);
	make_req(&r, "PUT", "https://api.provider.test/x");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, NULL), ENR_E_INVALID);
	prov_request_release(&r);
	make_req(&r, "GET", "https://api.provider.test/x");
	CHECK_INT(ev_xfer_start(l, &r, 0, 0, on_xfer, &g, NULL), ENR_E_INVALID);
	CHECK_INT(evf_started(f), 0);
	/* max_xfers = 3 */
	for (int i = 0; i < 3; i++)
		CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, &x[i]), ENR_OK);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, NULL), ENR_E_UNAVAILABLE);
	ev_xfer_cancel(l, x[1]);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, &x[1]), ENR_OK);
	/* plain http to loopback is allowed (tests) */
	ev_xfer_cancel(l, x[1]);
	prov_request_release(&r);
	make_req(&r, "GET", "http://127.0.0.1:9/x");
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, &x[1]), ENR_OK);
	prov_request_release(&r);
	/* a stopping loop starts nothing */
	ev_stop(l);
	make_req(&r, "GET", "https://api.provider.test/x");
	ev_xfer_cancel(l, x[0]);
	CHECK_INT(ev_xfer_start(l, &r, 1000, 0, on_xfer, &g, NULL), ENR_E_UNAVAILABLE);
	prov_request_release(&r);
	CHECK_INT(evf_started(f), 5);
	CHECK_INT(g.calls, 0);
	ev_free(l);
	evf_free(f);
}

struct tally {
	int *calls;       /* per transfer, by index */
	int idx;
	int *ok;
};

static void on_tally(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc, struct up_response *r,
		     void *arg)
{
	struct tally *t = arg;

	(void)l;
	(void)x;
	t->calls[t->idx]++;
	*t->ok += rc == ENR_OK && r->resp.status == 200;
}

TEST(ten_thousand_transfers_in_flight)
{
	enum { N = 10000 };
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f); /* the default cap: LIM_EV_XFERS_DEFAULT */
	struct prov_request r;
	static struct tally t[N];
	static int calls[N];
	static uint64_t ids[N];
	int ok = 0, wrong = 0;
	struct ev_stats st;

	REQUIRE(l);
	memset(calls, 0, sizeof calls);
	make_req(&r, "GET", "https://api.provider.test/x");
	for (int i = 0; i < N; i++) {
		struct ev_xfer *x;

		t[i] = (struct tally){ calls, i, &ok };
		REQUIRE(ev_xfer_start(l, &r, 60000, 0, on_tally, &t[i], &x) == ENR_OK);
		ids[i] = ev_xfer_id(x);
	}
	CHECK_INT(ev_xfer_start(l, &r, 60000, 0, on_tally, &t[0], NULL), ENR_E_UNAVAILABLE);
	prov_request_release(&r);
	CHECK_INT(evf_count(f), N);
	ev_stats(l, &st);
	CHECK_INT(st.xfers, N);
	CHECK_INT(st.timers, N); /* the fake's timeouts */
	/* answered newest first */
	for (int i = N - 1; i >= 0; i--)
		CHECK_INT(evf_answer(f, ids[i], 200, NULL, "{}"), ENR_OK);
	ev_run_pending(l);
	for (int i = 0; i < N; i++)
		wrong += calls[i] != 1;
	CHECK_INT(wrong, 0);
	CHECK_INT(ok, N);
	ev_stats(l, &st);
	CHECK_INT(st.xfers, 0);
	CHECK_INT(st.timers, 0);
	ev_free(l);
	evf_free(f);
}

/* ---- the synchronous driver ------------------------------------------------------- */

static void *answer_when_started(void *arg)
{
	struct evf *f = arg;
	int64_t end = util_mono_ms() + 10000;
	uint64_t id = 0;

	/* The test thread is inside ev_run_until: wait until it started the
	 * transfer, then answer from here (posted to its loop). */
	while ((id = evf_nth(f, 0)) == 0 && util_mono_ms() < end)
		sched_yield();
	if (id)
		enr_ignore(evf_answer(f, id, 200, "X-Ok: 1", "sync"));
	return NULL;
}

struct sync_start {
	struct prov_request *r;
	struct got *g;
	enum enr_err rc;
};

static void start_from_task(struct ev_loop *l, void *arg)
{
	struct sync_start *s = arg;

	s->rc = ev_xfer_start(l, s->r, 5000, 0, on_xfer, s->g, NULL);
}

TEST(sync_driver_runs_until_the_completion)
{
	struct evf *f;
	struct ev_loop *l = fake_loop_at(1000, 0, &f);
	struct prov_request r;
	bool done = false;
	struct got g = { .done = &done };
	struct sync_start s = { &r, &g, ENR_E_INTERNAL };
	pthread_t th;

	REQUIRE(l);
	make_req(&r, "GET", "https://api.provider.test/sync");
	/* The state machine starts on the loop, as it will in the responder. */
	CHECK_INT(ev_post(l, start_from_task, &s), ENR_OK);
	REQUIRE(pthread_create(&th, NULL, answer_when_started, f) == 0);
	CHECK_INT(ev_run_until(l, &done, 0), ENR_OK);
	pthread_join(th, NULL);
	prov_request_release(&r);
	CHECK_INT(s.rc, ENR_OK);
	CHECK(done);
	CHECK_INT(g.status, 200);
	CHECK_STR(g.body, "sync");
	ev_free(l);
	evf_free(f);
}

TEST(sync_driver_gives_up_at_its_bound)
{
	struct ev_loop *l = NULL;
	bool done = false;
	int64_t t0 = util_mono_ms();

	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	CHECK_INT(ev_run_until(l, &done, 50), ENR_E_TIMEOUT);
	CHECK(util_mono_ms() - t0 >= 50);
	ev_stop(l);
	CHECK_INT(ev_run_until(l, &done, 0), ENR_E_UNAVAILABLE);
	ev_free(l);
}

/* ---- transfers on libcurl, against the local server ---------------------------------- */

static enum enr_err curl_one(struct ev_loop *l, const char *method, const char *path,
			     const char *body, int timeout_ms, size_t body_max, struct got *g)
{
	struct prov_request r;
	char url[256];
	bool done = false;
	enum enr_err rc;

	local_url(url, sizeof url, path);
	make_req(&r, method, url);
	if (body)
		enr_ignore(buf_puts(&r.body, body)); /* short test bodies */
	g->done = &done;
	rc = ev_xfer_start(l, &r, timeout_ms, body_max, on_xfer, g, NULL);
	prov_request_release(&r);
	if (rc)
		return rc;
	return ev_run_until(l, &done, 20000);
}

TEST(curl_answer_headers_and_body)
{
	struct ev_loop *l = NULL;
	struct got g = { 0 };

	if (srv.pid <= 0)
		SKIP("the local server did not start");
	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	CHECK_INT(curl_one(l, "GET", "/hello", NULL, 5000, 0, &g), ENR_OK);
	CHECK_INT(g.calls, 1);
	CHECK_INT(g.rc, ENR_OK);
	CHECK_INT(g.status, 200);
	CHECK_STR(g.body, "{\"ok\":true}");
	CHECK_STR(g.retry_after, "7");
	CHECK_STR(g.rl_remaining, "{\"minute\": 99}");
	CHECK(g.lower_names);
	CHECK(g.on_loop);
	memset(&g, 0, sizeof g);
	CHECK_INT(curl_one(l, "POST", "/echo", "{\"email\":\"a@b.c\"}", 5000, 0, &g), ENR_OK);
	CHECK_INT(g.status, 201);
	CHECK_STR(g.body, "{\"email\":\"a@b.c\"}");
	memset(&g, 0, sizeof g);
	CHECK_INT(curl_one(l, "GET", "/redirect", NULL, 5000, 0, &g), ENR_OK);
	CHECK_INT(g.status, 302); /* not followed */
	CHECK_STR(g.body, "moved");
	memset(&g, 0, sizeof g);
	CHECK_INT(curl_one(l, "GET", "/big", NULL, 5000, 1000, &g), ENR_OK);
	CHECK_INT(g.status, 0);
	CHECK_STR(g.error, "response too large");
	/* Allowed, it arrives whole: five times libcurl's receive buffer. */
	memset(&g, 0, sizeof g);
	CHECK_INT(curl_one(l, "GET", "/big", NULL, 5000, 0, &g), ENR_OK);
	CHECK_INT(g.status, 200);
	CHECK_INT(strlen(g.body), 5000);
	CHECK_INT(strspn(g.body, "x"), 5000);
	memset(&g, 0, sizeof g);
	CHECK_INT(curl_one(l, "GET", "/slow", NULL, 200, 0, &g), ENR_OK);
	CHECK_INT(g.status, 0);
	CHECK(g.timed_out);
	ev_free(l);
}

TEST(curl_cancel_in_flight)
{
	struct ev_loop *l = NULL;
	struct prov_request r;
	struct got slow = { 0 }, fast = { 0 };
	struct ev_xfer *xs = NULL;
	struct ev_stats st;
	char url[256];

	if (srv.pid <= 0)
		SKIP("the local server did not start");
	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	local_url(url, sizeof url, "/slow");
	make_req(&r, "GET", url);
	CHECK_INT(ev_xfer_start(l, &r, 10000, 0, on_xfer, &slow, &xs), ENR_OK);
	prov_request_release(&r);
	/* /hello's callback cancels the slow one, which is connected by then */
	fast.cancel_other = xs;
	CHECK_INT(curl_one(l, "GET", "/hello", NULL, 5000, 0, &fast), ENR_OK);
	CHECK_INT(fast.status, 200);
	CHECK_INT(slow.calls, 0);
	ev_stats(l, &st);
	CHECK_INT(st.xfers, 0);
	/* the loop goes on: another transfer works */
	memset(&fast, 0, sizeof fast);
	CHECK_INT(curl_one(l, "GET", "/hello", NULL, 5000, 0, &fast), ENR_OK);
	CHECK_INT(fast.status, 200);
	CHECK_INT(slow.calls, 0);
	ev_free(l);
}

/* The server's counters, read over one more transfer. */
static int srv_stat(struct ev_loop *l, const char *name)
{
	struct got g = { 0 };
	const char *p;
	int64_t v;
	size_t n;

	if (curl_one(l, "GET", "/stats", NULL, 5000, 0, &g) != ENR_OK || g.status != 200)
		return -1;
	p = strstr(g.body, name);
	if (p == NULL)
		return -1;
	p += strlen(name) + 1;
	n = strspn(p, "0123456789");
	return util_parse_i64n(p, n, 0, INT32_MAX, &v) == ENR_OK ? (int)v : -1;
}

struct many {
	int ended, ok;
	bool done;
	int want;
};

static void on_many(struct ev_loop *l, struct ev_xfer *x, enum enr_err rc, struct up_response *r,
		    void *arg)
{
	struct many *m = arg;

	(void)l;
	(void)x;
	m->ended++;
	m->ok += rc == ENR_OK && r->resp.status == 200;
	if (m->ended == m->want)
		m->done = true;
}

/* N transfers at once under a cap of `cap` connections to the host: all
 * answered, no more connections made than the cap (the loop's connection
 * caches split it between them). */
static void under_a_cap(int cap)
{
	enum { N = 300 };
	struct ev_opts o = { .max_host_connections = cap, .max_idle_connections = cap };
	struct ev_loop *l = NULL;
	struct prov_request r;
	struct many m = { .want = N };
	char url[256];
	int before, after;

	REQUIRE(ev_new(&o, &l) == ENR_OK);
	before = srv_stat(l, "accepted");
	REQUIRE(before >= 0);
	local_url(url, sizeof url, "/hello");
	make_req(&r, "GET", url);
	for (int i = 0; i < N; i++)
		CHECK_INT(ev_xfer_start(l, &r, 20000, 0, on_many, &m, NULL), ENR_OK);
	prov_request_release(&r);
	CHECK_INT(ev_run_until(l, &m.done, 30000), ENR_OK);
	CHECK_INT(m.ok, N);
	after = srv_stat(l, "accepted");
	/* the /stats transfer before may have opened one connection, kept */
	CHECK(after - before <= cap);
	ev_free(l);
}

TEST(curl_one_at_a_time_keeps_to_one_connection)
{
	struct ev_loop *l = NULL;
	int before, after;

	if (srv.pid <= 0)
		SKIP("the local server did not start");
	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	before = srv_stat(l, "accepted");
	REQUIRE(before >= 0);
	for (int i = 0; i < 20; i++) {
		struct got g = { 0 };

		CHECK_INT(curl_one(l, "GET", "/hello", NULL, 5000, 0, &g), ENR_OK);
		CHECK_INT(g.status, 200);
	}
	after = srv_stat(l, "accepted");
	/* the connection /stats opened carries every one of them */
	CHECK_INT(after - before, 0);
	ev_free(l);
}

TEST(curl_connections_reused_under_a_cap)
{
	if (srv.pid <= 0)
		SKIP("the local server did not start");
	under_a_cap(8);
	under_a_cap(3);  /* fewer than the connection caches */
	under_a_cap(11); /* not a multiple of them */
	under_a_cap(1);
}

struct hold {
	struct ev_io io;
	long rss_kb, threads;
	size_t heap;
	bool noted;
};

static void on_note(struct ev_loop *l, struct ev_io *w, unsigned events)
{
	struct hold *h = w->arg;
	char c;

	(void)events;
	if (read(w->fd, &c, 1) == 1) {
		/* every transfer is waiting now: measure, then let them go */
		h->rss_kb = proc_status("VmRSS");
		h->threads = proc_status("Threads");
		h->heap = mallinfo2().uordblks;
		h->noted = true;
		if (write(srv.go_wr, "g", 1) != 1)
			h->noted = false;
	}
	ev_io_stop(l, w);
}

TEST(curl_two_thousand_on_one_thread)
{
	enum { N = 2000 };
	struct ev_loop *l = NULL;
	struct prov_request r;
	struct many m = { .want = N };
	struct hold h = { .rss_kb = -1 };
	struct got warm = { 0 };
	char url[256];
	long rss0, threads0;
	size_t heap0;

	if (srv.pid <= 0)
		SKIP("the local server did not start");
	REQUIRE(ev_new(NULL, &l) == ENR_OK);
	/* libcurl's one-time set-up happens before the baseline */
	CHECK_INT(curl_one(l, "GET", "/hello", NULL, 5000, 0, &warm), ENR_OK);
	rss0 = proc_status("VmRSS");
	threads0 = proc_status("Threads");
	heap0 = mallinfo2().uordblks;
	ev_io_init(&h.io, on_note, &h);
	REQUIRE(ev_io_start(l, &h.io, srv.note_rd, EV_READ) == ENR_OK);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hold?n=%d", srv.port, N);
	make_req(&r, "GET", url);
	for (int i = 0; i < N; i++)
		CHECK_INT(ev_xfer_start(l, &r, 60000, 0, on_many, &m, NULL), ENR_OK);
	prov_request_release(&r);
	CHECK_INT(ev_run_until(l, &m.done, 60000), ENR_OK);
	CHECK(h.noted);
	CHECK_INT(m.ended, N);
	CHECK_INT(m.ok, N);
	/* one thread ran them all: no thread was added while they waited */
	CHECK_INT(h.threads, threads0);
	if (h.noted && rss0 > 0 && h.rss_kb > 0) {
		double per = (double)(h.rss_kb - rss0) / N;

		printf("# %d transfers waiting at once on one thread (%ld threads in the process): "
		       "RSS %ld -> %ld KiB, %.1f KiB per waiting transfer (heap in use %.1f KiB "
		       "each)\n", N, h.threads, rss0, h.rss_kb, per,
		       ((double)h.heap - (double)heap0) / 1024.0 / N);
		/* kilobytes, not a thread's stack and arena each (sanitizers
		 * shadow every byte: no bound there) */
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
		CHECK(per < 64.0);
#endif
	}
	ev_free(l);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (srv_start() != 0)
		srv.pid = -1;
	RUN(timer_fires_at_its_time);
	RUN(cancel_a_timer);
	RUN(thousands_of_timers_in_order);
	RUN(timer_on_the_real_clock);
	RUN(a_descriptor_closed_on_the_loop_leaves_no_event_behind);
	RUN(post_from_eight_threads_reaches_the_loop_once_each);
	RUN(tasks_run_in_order_and_at_free);
	RUN(fake_transfer_answer_goes_through_the_capture);
	RUN(fake_transfer_fails_and_times_out);
	RUN(completion_after_cancel_is_dropped);
	RUN(refused_requests_send_nothing);
	RUN(ten_thousand_transfers_in_flight);
	RUN(sync_driver_runs_until_the_completion);
	RUN(sync_driver_gives_up_at_its_bound);
	RUN(curl_answer_headers_and_body);
	RUN(curl_cancel_in_flight);
	RUN(curl_one_at_a_time_keeps_to_one_connection);
	RUN(curl_connections_reused_under_a_cap);
	RUN(curl_two_thousand_on_one_thread);
	srv_stop();
	return harness_done();
}
