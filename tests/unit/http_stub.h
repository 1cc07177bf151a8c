/*
 * http_stub.h - the pieces of a loopback HTTP/1.1 server the tests of
 * lib/upstream and lib/webhook answer their clients with: a listener on
 * 127.0.0.1, reading one request (head and Content-Length body, keeping
 * what follows it for the next request on the connection) and writing an
 * answer.  What a path answers is the test's.
 */
#ifndef ENR_TEST_HTTP_STUB_H
#define ENR_TEST_HTTP_STUB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/ascii.h"
#include "lib/util.h"

/* A listening socket on 127.0.0.1 at a port the system picks (*port);
 * -1 when there is none. */
static inline int stub_listen(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static inline void stub_send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* "HTTP/1.1 status", the extra header lines (each ending in CRLF), the
 * length, "Connection: close" when the server closes after this answer,
 * and the body. */
static inline void stub_answer(int fd, const char *status, const char *extra, const char *body,
			       size_t blen, bool closing)
{
	char head[16384];
	int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n%s\r\n",
			 status, extra, blen, closing ? "Connection: close\r\n" : "");

	stub_send_all(fd, head, (size_t)n);
	stub_send_all(fd, body, blen);
}

static inline void stub_reply(int fd, const char *status, const char *extra, const char *body,
			      size_t blen)
{
	stub_answer(fd, status, extra, body, blen, false);
}

/* One request read from fd into buf (bufsz bytes, *have of them already
 * read by the previous call): its head (head_len bytes, ending with the
 * empty line), its body after it (body_len bytes, at most body_max) and
 * its path.  False when the connection ends or the request does not fit.
 * stub_next() drops the request before the next read. */
struct stub_request {
	size_t head_len, body_len;
	char path[256];
};

static inline bool stub_read(int fd, char *buf, size_t bufsz, size_t *have, size_t body_max,
			     struct stub_request *q)
{
	char *end, *cl;
	ssize_t r;

	while ((end = memmem(buf, *have, "\r\n\r\n", 4)) == NULL) {
		if (*have == bufsz)
			return false;
		r = recv(fd, buf + *have, bufsz - *have, 0);
		if (r <= 0)
			return false;
		*have += (size_t)r;
	}
	q->head_len = (size_t)(end - buf) + 4;
	q->body_len = 0;
	*end = '\0';
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl) {
		const char *d = cl + 17;
		size_t nd = 0;
		int64_t v;

		while (*d == ' ')
			d++;
		while (ascii_is_digit(d[nd]))
			nd++;
		if (util_parse_i64n(d, nd, 0, (int64_t)body_max, &v) != ENR_OK)
			return false;
		q->body_len = (size_t)v;
	}
	*end = '\r';
	if (q->head_len + q->body_len > bufsz)
		return false;
	while (*have < q->head_len + q->body_len) {
		r = recv(fd, buf + *have, bufsz - *have, 0);
		if (r <= 0)
			return false;
		*have += (size_t)r;
	}
	q->path[0] = '\0';
	sscanf(buf, "%*s %255s", q->path);
	return true;
}

/* Forget the request just read, keep what came after it. */
static inline void stub_next(char *buf, size_t *have, const struct stub_request *q)
{
	size_t used = q->head_len + q->body_len;

	memmove(buf, buf + used, *have - used);
	*have -= used;
}

#endif
