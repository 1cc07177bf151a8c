/*
 * fastup.c - the benchmark's fast upstream: a PDL stand-in that answers
 * every person (or company) enrichment with the same hit after a fixed
 * delay, HTTP/1.1 with keep-alive, on one epoll thread per --threads.  With
 * --tls-cert and --tls-key it speaks TLS, and with --h2 too ALPN may pick
 * HTTP/2 for a connection (every request a stream of it).  enrichd speaks
 * HTTP/2 only over TLS, so neither does this.
 *
 * The provider simulator (tests/sim/providersim.py) speaks every provider
 * faithfully but is Python: on two cores it caps near ten thousand
 * answers a second, too close to what the latency rows measure.  This
 * answers the shape lib/providers/pdl.c reads and nothing more.  With a
 * fixed delay, answers fall due in the order requests arrive, so one FIFO
 * per thread is the whole timer.
 *
 *   fastup --port-file FILE [--port N] [--delay-ms MS] [--threads N] [--h2]
 *          [--max-streams N] [--tls-cert PEM --tls-key PEM]
 *
 * --max-streams: the streams an HTTP/2 connection may carry at once, as the
 * server's SETTINGS say (default 1000).
 *
 * Writes the port to FILE.tmp and renames it to FILE once listening.
 * SIGTERM/SIGINT: exit 0 (the port file is removed) after one line on
 * stdout: "fastup: N connections, N answers".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_FDS 65536
#define IN_MAX 16384
#define THREADS_MAX 16

static const char person_body[] =
	"{\"status\":200,\"likelihood\":8,\"data\":{\"full_name\":\"john doe\","
	"\"first_name\":\"john\",\"last_name\":\"doe\",\"job_title\":\"engineering manager\","
	"\"job_title_role\":\"engineering\",\"job_title_levels\":[\"manager\"],"
	"\"linkedin_url\":\"linkedin.com/in/john-doe\",\"location_name\":\"austin, texas, "
	"united states\",\"location_locality\":\"austin\",\"location_region\":\"texas\","
	"\"location_country\":\"united states\",\"mobile_phone\":\"+15125550100\","
	"\"phone_numbers\":[\"+15125550100\"],\"work_email\":\"john.doe@acme.com\","
	"\"personal_emails\":[],\"job_company_name\":\"acme\",\"job_company_industry\":"
	"\"computer software\",\"job_company_size\":\"51-200\",\"job_company_website\":"
	"\"acme.com\"}}";
static const char company_body[] =
	"{\"status\":200,\"likelihood\":7,\"name\":\"acme\",\"website\":\"acme.com\","
	"\"industry\":\"computer software\",\"size\":\"51-200\"}";
static const char missing_body[] =
	"{\"status\":404,\"error\":{\"type\":\"not_found\",\"message\":\"No records were found "
	"matching your request\"}}";

struct worker;

struct conn {
	char in[IN_MAX];
	nghttp2_session *h2;    /* HTTP/2: the connection's session */
	SSL *ssl;               /* TLS: the connection's */
	bool handshaken;
	struct worker *w;
	int fd;
	size_t have;
	char *out;
	size_t out_len, out_off;
	uint32_t gen;
	int waiting;            /* answers queued and not yet sent */
	bool closing;
};

struct due {
	int64_t at_ms;
	int fd;
	uint32_t gen;
	int32_t stream;         /* --h2: the request's stream */
	int kind;               /* 0 person, 1 company, 2 not found */
};

struct worker {
	int ep, lfd;
	struct due *q;          /* ring of answers in the order they fall due */
	size_t qcap, qhead, qlen;
	unsigned long long served, accepted;
};

static struct conn *conns[MAX_FDS];
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER; /* slot ownership only */
static int delay_ms = 100;
static int max_streams = 1000;
static bool h2_mode;
static SSL_CTX *tls_ctx;
static nghttp2_session_callbacks *h2_cbs;
static volatile sig_atomic_t stop;
static char port_file[4096];

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > hi)
			return -1;
	}
	if (v < lo)
		return -1;
	*out = (int)v;
	return 0;
}

static void conn_close(struct worker *w, int fd)
{
	struct conn *c = conns[fd];

	if (c == NULL)
		return;
	epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL);
	nghttp2_session_del(c->h2);
	SSL_free(c->ssl);
	free(c->out);
	pthread_mutex_lock(&conns_mu);
	conns[fd] = NULL;
	pthread_mutex_unlock(&conns_mu);
	free(c);
	close(fd);
}

/* recv(2) and send(2), through TLS where the connection has it: -1 with
 * errno EAGAIN when it would block. */
static ssize_t tls_result(struct conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);

	ERR_clear_error();
	if (r > 0)
		return r;
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
	return -1;
}

static ssize_t io_recv(struct conn *c, void *p, size_t n)
{
	if (c->ssl == NULL)
		return recv(c->fd, p, n, 0);
	return n == 0 ? 0 : tls_result(c, SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n));
}

static ssize_t io_send(struct conn *c, const void *p, size_t n)
{
	if (c->ssl == NULL)
		return send(c->fd, p, n, MSG_NOSIGNAL);
	return tls_result(c, SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n));
}

static void conn_flush(struct worker *w, int fd)
{
	struct conn *c = conns[fd];
	struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };

	while (c->out_off < c->out_len) {
		ssize_t n = io_send(c, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EAGAIN) {
			e.events |= EPOLLOUT;
			break;
		}
		if (n <= 0) {
			conn_close(w, fd);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_len = c->out_off = 0;
		if (c->closing && c->waiting == 0) {
			conn_close(w, fd);
			return;
		}
	}
	epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &e);
}

static const char *body_of(int kind)
{
	return kind == 0 ? person_body : kind == 1 ? company_body : missing_body;
}

static bool out_append(struct conn *c, const void *p, size_t n)
{
	char *o = realloc(c->out, c->out_len + n);

	if (o == NULL)
		return false;
	memcpy(o + c->out_len, p, n);
	c->out = o;
	c->out_len += n;
	return true;
}

/* Move what the session has to say into c->out and send it; false when the
 * connection went. */
static bool h2_send(struct worker *w, int fd)
{
	struct conn *c = conns[fd];

	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2, &data);

		if (n < 0 || (n > 0 && !out_append(c, data, (size_t)n))) {
			conn_close(w, fd);
			return false;
		}
		if (n == 0)
			break;
	}
	if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
	    c->out_off == c->out_len) {
		conn_close(w, fd);
		return false;
	}
	conn_flush(w, fd);
	return conns[fd] != NULL;
}

/* The body of a stream's answer; the stream's user data is how much of it
 * went out (a frame may carry less than all of it). */
static ssize_t h2_body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
		       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	const char *body = src->ptr;
	size_t off = (size_t)(uintptr_t)nghttp2_session_get_stream_user_data(s, stream);
	size_t n = strlen(body) - off;

	(void)ud;
	if (n > len)
		n = len;
	memcpy(buf, body + off, n);
	off += n;
	nghttp2_session_set_stream_user_data(s, stream, (void *)(uintptr_t)off);
	if (body[off] == '\0')
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static void answer_h2(struct worker *w, int fd, int32_t stream, int kind)
{
	struct conn *c = conns[fd];
	const char *body = body_of(kind);
	char len[24];
	nghttp2_nv nv[] = {
		{ (uint8_t *)":status", (uint8_t *)(kind == 2 ? "404" : "200"), 7, 3,
		  NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16,
		  NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-length", (uint8_t *)len, 14, 0, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"x-ratelimit-remaining", (uint8_t *)"{\"minute\": 1000000}", 21, 19,
		  NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider dp = { .source.ptr = (void *)body, .read_callback = h2_body };

	nv[2].valuelen = (size_t)snprintf(len, sizeof len, "%zu", strlen(body));
	c->waiting--;
	/* The client may have reset the stream while it waited. */
	if (nghttp2_session_set_stream_user_data(c->h2, stream, NULL) != 0 ||
	    nghttp2_submit_response(c->h2, stream, nv, sizeof nv / sizeof nv[0], &dp) != 0)
		return;
	w->served++;
	h2_send(w, fd);
}

static void answer(struct worker *w, int fd, int kind)
{
	struct conn *c = conns[fd];
	const char *body = body_of(kind);
	size_t blen = strlen(body);
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "x-ratelimit-remaining: {\"minute\": 1000000}\r\n\r\n",
			 kind == 2 ? "404 Not Found" : "200 OK", blen);

	if (!out_append(c, head, (size_t)n) || !out_append(c, body, blen)) {
		conn_close(w, fd);
		return;
	}
	c->waiting--;
	w->served++;
	conn_flush(w, fd);
}

static int enqueue(struct worker *w, int fd, int32_t stream, int kind)
{
	struct due *d;

	if (w->qlen == w->qcap) {
		size_t ncap = w->qcap ? w->qcap * 2 : 4096;
		struct due *q = malloc(ncap * sizeof *q);

		if (q == NULL)
			return -1;
		for (size_t i = 0; i < w->qlen; i++)
			q[i] = w->q[(w->qhead + i) % w->qcap];
		free(w->q);
		w->q = q;
		w->qcap = ncap;
		w->qhead = 0;
	}
	d = &w->q[(w->qhead + w->qlen) % w->qcap];
	d->at_ms = now_ms() + delay_ms;
	d->fd = fd;
	d->gen = conns[fd]->gen;
	d->stream = stream;
	d->kind = kind;
	w->qlen++;
	conns[fd]->waiting++;
	return 0;
}

/* Take every whole request out of c->in; false when the connection went. */
static bool requests(struct worker *w, int fd)
{
	struct conn *c = conns[fd];

	for (;;) {
		char *end = memmem(c->in, c->have, "\r\n\r\n", 4), *cl;
		size_t head_len, body_len = 0;
		int kind = 2;

		if (end == NULL) {
			if (c->have == sizeof c->in) {
				conn_close(w, fd);
				return false;
			}
			return true;
		}
		head_len = (size_t)(end - c->in) + 4;
		*end = '\0';
		cl = strcasestr(c->in, "\r\ncontent-length:");
		if (cl) {
			for (cl += 17; *cl == ' '; cl++)
				;
			while (*cl >= '0' && *cl <= '9' && body_len < IN_MAX)
				body_len = body_len * 10 + (size_t)(*cl++ - '0');
		}
		if (head_len + body_len > sizeof c->in) {
			conn_close(w, fd);
			return false;
		}
		if (c->have < head_len + body_len) {
			*end = '\r';
			return true;
		}
		if (strstr(c->in, "/v5/person/enrich"))
			kind = 0;
		else if (strstr(c->in, "/v5/company/enrich"))
			kind = 1;
		if (strcasestr(c->in, "\r\nconnection: close"))
			c->closing = true;
		if (enqueue(w, fd, 0, kind) != 0) {
			conn_close(w, fd);
			return false;
		}
		memmove(c->in, c->in + head_len + body_len, c->have - head_len - body_len);
		c->have -= head_len + body_len;
	}
}

static void fire_due(struct worker *w)
{
	int64_t now = now_ms();

	while (w->qlen > 0) {
		struct due *d = &w->q[w->qhead];

		if (d->at_ms > now)
			break;
		w->qhead = (w->qhead + 1) % w->qcap;
		w->qlen--;
		/* The connection may have closed, its number gone to another. */
		if (conns[d->fd] == NULL || conns[d->fd]->gen != d->gen)
			continue;
		if (conns[d->fd]->h2)
			answer_h2(w, d->fd, d->stream, d->kind);
		else
			answer(w, d->fd, d->kind);
	}
}

/* --h2: a request's kind comes with its :path; it is due once its stream
 * ends (the body, if any, is not read). */
static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
			size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			void *ud)
{
	char path[256];
	int kind = 2;

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || namelen != 5 || memcmp(name, ":path", 5) != 0)
		return 0;
	snprintf(path, sizeof path, "%.*s", (int)valuelen, (const char *)value);
	if (strstr(path, "/v5/person/enrich"))
		kind = 0;
	else if (strstr(path, "/v5/company/enrich"))
		kind = 1;
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, (void *)(uintptr_t)(kind + 1));
	return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct conn *c = ud;
	uintptr_t kind;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	kind = (uintptr_t)nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (enqueue(c->w, c->fd, f->hd.stream_id, kind ? (int)kind - 1 : 2) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static bool h2_open(struct conn *c)
{
	nghttp2_settings_entry iv = { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
				      (uint32_t)max_streams };

	return nghttp2_session_server_new(&c->h2, h2_cbs, c) == 0 &&
	       nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &iv, 1) == 0;
}

/* ALPN: h2 where --h2 and the client offers it, else HTTP/1.1. */
static int tls_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
		    const unsigned char *in, unsigned inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2", h1[] = "\x08http/1.1";
	unsigned char *o;

	(void)s;
	(void)arg;
	if ((h2_mode && SSL_select_next_proto(&o, outlen, h2, 3, in, inlen) == OPENSSL_NPN_NEGOTIATED) ||
	    SSL_select_next_proto(&o, outlen, h1, 9, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
		*out = o;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* Go on with the TLS handshake; true once it is done (and the session of
 * an h2 connection is open). */
static bool tls_handshake(struct worker *w, int fd)
{
	struct conn *c = conns[fd];
	const unsigned char *proto;
	unsigned proto_len;
	int r = SSL_do_handshake(c->ssl);

	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);

		ERR_clear_error();
		if (e == SSL_ERROR_WANT_WRITE) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.fd = fd };

			epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev);
		} else if (e != SSL_ERROR_WANT_READ) {
			conn_close(w, fd);
		}
		return false;
	}
	c->handshaken = true;
	SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
	if (proto_len == 2 && memcmp(proto, "h2", 2) == 0) {
		if (!h2_open(c)) {
			conn_close(w, fd);
			return false;
		}
		return h2_send(w, fd);
	}
	return true;
}

/* The connection is readable: take what came and answer it in time. */
static void conn_read(struct worker *w, int fd)
{
	struct conn *c = conns[fd];

	if (c->ssl && !c->handshaken && !tls_handshake(w, fd))
		return;
	/* TLS may hold decrypted bytes the socket no longer shows: read until
	 * it would block. */
	do {
		ssize_t r = io_recv(c, c->in + c->have, sizeof c->in - c->have);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(w, fd);
			return;
		}
		if (r < 0)
			return;
		if (c->h2) {
			if (nghttp2_session_mem_recv(c->h2, (const uint8_t *)c->in, (size_t)r) < 0) {
				conn_close(w, fd);
				return;
			}
			if (!h2_send(w, fd))
				return;
		} else {
			c->have += (size_t)r;
			if (!requests(w, fd))
				return;
		}
	} while (c->ssl);
}

static void *serve(void *arg)
{
	static uint32_t next_gen;
	struct worker *w = arg;
	struct epoll_event evs[512], le = { .events = EPOLLIN, .data.fd = w->lfd };

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &le);
	while (!stop) {
		int timeout = 1000, n;

		if (w->qlen > 0) {
			int64_t d = w->q[w->qhead].at_ms - now_ms();

			timeout = d < 0 ? 0 : d > 1000 ? 1000 : (int)d;
		}
		n = epoll_wait(w->ep, evs, 512, timeout);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct conn *c;

			if (fd == w->lfd) {
				int cfd;

				while ((cfd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct epoll_event ce = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = cfd };
					int one = 1;

					if (cfd >= MAX_FDS || (c = calloc(1, sizeof *c)) == NULL) {
						close(cfd);
						continue;
					}
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					c->w = w;
					c->fd = cfd;
					if (tls_ctx && ((c->ssl = SSL_new(tls_ctx)) == NULL ||
							!SSL_set_fd(c->ssl, cfd))) {
						SSL_free(c->ssl);
						free(c);
						close(cfd);
						continue;
					}
					if (c->ssl)
						SSL_set_accept_state(c->ssl);
					w->accepted++;
					pthread_mutex_lock(&conns_mu);
					c->gen = ++next_gen;
					conns[cfd] = c;
					pthread_mutex_unlock(&conns_mu);
					epoll_ctl(w->ep, EPOLL_CTL_ADD, cfd, &ce);
				}
				continue;
			}
			c = conns[fd];
			if (c == NULL)
				continue;
			if ((evs[i].events & EPOLLOUT) && c->handshaken == (c->ssl != NULL)) {
				conn_flush(w, fd);
				if (conns[fd] == NULL)
					continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				conn_read(w, fd);
		}
		fire_due(w);
	}
	return NULL;
}

static int open_listener(int port, int reuseport)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 65535) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static struct worker workers[THREADS_MAX];
	pthread_t tids[THREADS_MAX];
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int port = 0, nthreads = 1;
	unsigned long long accepted = 0, served = 0;
	const char *cert = NULL, *key = NULL;
	char tmp[4200];
	FILE *f;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(argv[i], "--port-file") == 0 && snprintf(port_file, sizeof port_file, "%s", v) > 0)
			i++;
		else if (strcmp(argv[i], "--port") == 0 && parse_int(v, 0, 65535, &port) == 0)
			i++;
		else if (strcmp(argv[i], "--delay-ms") == 0 && parse_int(v, 0, 600000, &delay_ms) == 0)
			i++;
		else if (strcmp(argv[i], "--threads") == 0 &&
			 parse_int(v, 1, THREADS_MAX, &nthreads) == 0)
			i++;
		else if (strcmp(argv[i], "--h2") == 0)
			h2_mode = true;
		else if (strcmp(argv[i], "--max-streams") == 0 &&
			 parse_int(v, 1, 1000000, &max_streams) == 0)
			i++;
		else if (strcmp(argv[i], "--tls-cert") == 0 && *v && (cert = v) != NULL)
			i++;
		else if (strcmp(argv[i], "--tls-key") == 0 && *v && (key = v) != NULL)
			i++;
		else {
			fprintf(stderr, "usage: fastup --port-file FILE [--port N] [--delay-ms MS] "
					"[--threads 1..%d] [--h2] [--max-streams N] "
					"[--tls-cert PEM --tls-key PEM]\n",
				THREADS_MAX);
			return 2;
		}
	}
	if (port_file[0] == '\0') {
		fprintf(stderr, "fastup: --port-file is required\n");
		return 2;
	}
	if ((cert == NULL) != (key == NULL)) {
		fprintf(stderr, "fastup: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (h2_mode && cert == NULL) {
		fprintf(stderr, "fastup: --h2 needs --tls-cert and --tls-key\n");
		return 2;
	}
	if (cert) {
		tls_ctx = SSL_CTX_new(TLS_server_method());
		if (tls_ctx == NULL || SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
			fprintf(stderr, "fastup: cannot load %s and %s\n", cert, key);
			return 1;
		}
		SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		SSL_CTX_set_alpn_select_cb(tls_ctx, tls_alpn, NULL);
	}
	if (nghttp2_session_callbacks_new(&h2_cbs) != 0) {
		fprintf(stderr, "fastup: out of memory\n");
		return 1;
	}
	nghttp2_session_callbacks_set_on_header_callback(h2_cbs, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(h2_cbs, h2_on_frame);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	workers[0].lfd = open_listener(port, nthreads > 1);
	if (workers[0].lfd < 0 || getsockname(workers[0].lfd, (struct sockaddr *)&sa, &len) != 0) {
		perror("fastup: listen");
		return 1;
	}
	port = ntohs(sa.sin_port);
	for (int i = 1; i < nthreads; i++) {
		workers[i].lfd = open_listener(port, 1);
		if (workers[i].lfd < 0) {
			perror("fastup: listen");
			return 1;
		}
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, port_file) != 0) {
		perror("fastup: port file");
		return 1;
	}
	printf("fastup listening on 127.0.0.1:%d, %s, answers after %d ms, %d thread%s\n", port,
	       tls_ctx ? (h2_mode ? "TLS, HTTP/2 or HTTP/1.1 by ALPN" : "TLS, HTTP/1.1") :
	       "HTTP/1.1", delay_ms, nthreads,
	       nthreads > 1 ? "s" : "");
	fflush(stdout);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&tids[i], NULL, serve, &workers[i]);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(tids[i], NULL);
		accepted += workers[i].accepted;
		served += workers[i].served;
	}
	unlink(port_file);
	printf("fastup: %llu connections, %llu answers\n", accepted, served);
	return 0;
}
