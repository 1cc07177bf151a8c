/*
 * fastup.c - the benchmark's fast upstream: a PDL stand-in that answers
 * every person (or company) enrichment with the same hit after a fixed
 * delay, HTTP/1.1 with keep-alive, on one epoll thread per --threads.
 *
 * The provider simulator (tests/sim/providersim.py) speaks every provider
 * faithfully but is Python: on two cores it caps near ten thousand
 * answers a second, too close to what the latency rows measure.  This
 * answers the shape lib/providers/pdl.c reads and nothing more.  With a
 * fixed delay, answers fall due in the order requests arrive, so one FIFO
 * per thread is the whole timer.
 *
 *   fastup --port-file FILE [--port N] [--delay-ms MS] [--threads N]
 *
 * Writes the port to FILE.tmp and renames it to FILE once listening.
 * SIGTERM/SIGINT: exit 0 (the port file is removed).
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

struct conn {
	char in[IN_MAX];
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
	int kind;               /* 0 person, 1 company, 2 not found */
};

struct worker {
	int ep, lfd;
	struct due *q;          /* ring of answers in the order they fall due */
	size_t qcap, qhead, qlen;
	unsigned long long served;
};

static struct conn *conns[MAX_FDS];
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER; /* slot ownership only */
static int delay_ms = 100;
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
	free(c->out);
	pthread_mutex_lock(&conns_mu);
	conns[fd] = NULL;
	pthread_mutex_unlock(&conns_mu);
	free(c);
	close(fd);
}

static void conn_flush(struct worker *w, int fd)
{
	struct conn *c = conns[fd];
	struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };

	while (c->out_off < c->out_len) {
		ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

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

static void answer(struct worker *w, int fd, int kind)
{
	struct conn *c = conns[fd];
	const char *body = kind == 0 ? person_body : kind == 1 ? company_body : missing_body;
	size_t blen = strlen(body);
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "x-ratelimit-remaining: {\"minute\": 1000000}\r\n\r\n",
			 kind == 2 ? "404 Not Found" : "200 OK", blen);
	char *p = realloc(c->out, c->out_len + (size_t)n + blen);

	if (p == NULL) {
		conn_close(w, fd);
		return;
	}
	memcpy(p + c->out_len, head, (size_t)n);
	memcpy(p + c->out_len + (size_t)n, body, blen);
	c->out = p;
	c->out_len += (size_t)n + blen;
	c->waiting--;
	w->served++;
	conn_flush(w, fd);
}

static int enqueue(struct worker *w, int fd, int kind)
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
		if (enqueue(w, fd, kind) != 0) {
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
		if (conns[d->fd] && conns[d->fd]->gen == d->gen)
			answer(w, d->fd, d->kind);
	}
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
			if (evs[i].events & EPOLLOUT) {
				conn_flush(w, fd);
				if (conns[fd] == NULL)
					continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				ssize_t r = recv(fd, c->in + c->have, sizeof c->in - c->have, 0);

				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					conn_close(w, fd);
					continue;
				}
				if (r > 0) {
					c->have += (size_t)r;
					requests(w, fd);
				}
			}
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
		else {
			fprintf(stderr, "usage: fastup --port-file FILE [--port N] [--delay-ms MS] "
					"[--threads 1..%d]\n", THREADS_MAX);
			return 2;
		}
	}
	if (port_file[0] == '\0') {
		fprintf(stderr, "fastup: --port-file is required\n");
		return 2;
	}
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
	printf("fastup listening on 127.0.0.1:%d, answers after %d ms, %d thread%s\n", port,
	       delay_ms, nthreads, nthreads > 1 ? "s" : "");
	fflush(stdout);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&tids[i], NULL, serve, &workers[i]);
	for (int i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	unlink(port_file);
	return 0;
}
