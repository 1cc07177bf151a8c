/*
 * test_fcgi.c - the FastCGI responder's side (lib/fcgi.c) over a socket
 * pair: the web server's records are written by the test, the answer's
 * records read back and taken apart.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "lib/buf.h"
#include "lib/fcgi.h"
#include "lib/limits.h"

enum { BEGIN = 1, ABORT = 2, END = 3, PARAMS = 4, STDIN = 5, STDOUT = 6, GET_VALUES = 9,
       GET_VALUES_RESULT = 10, UNKNOWN_TYPE = 11 };

static void rec(struct buf *b, int type, unsigned id, const void *p, size_t n, size_t pad)
{
	unsigned char h[8] = { 1, (unsigned char)type, (unsigned char)(id >> 8), (unsigned char)id,
			       (unsigned char)(n >> 8), (unsigned char)n, (unsigned char)pad, 0 };
	static const char zeros[256];

	CHECK(buf_append(b, h, sizeof h) == ENR_OK);
	CHECK(buf_append(b, p, n) == ENR_OK);
	CHECK(buf_append(b, zeros, pad) == ENR_OK);
}

static void begin(struct buf *b, unsigned id, unsigned role, bool keep)
{
	unsigned char body[8] = { (unsigned char)(role >> 8), (unsigned char)role, keep ? 1 : 0 };

	rec(b, BEGIN, id, body, sizeof body, 0);
}

static void len_to(struct buf *b, size_t n)
{
	if (n < 128) {
		CHECK(buf_putc(b, (char)n) == ENR_OK);
		return;
	}
	CHECK(buf_putc(b, (char)(0x80 | (n >> 24))) == ENR_OK);
	CHECK(buf_putc(b, (char)(n >> 16)) == ENR_OK);
	CHECK(buf_putc(b, (char)(n >> 8)) == ENR_OK);
	CHECK(buf_putc(b, (char)n) == ENR_OK);
}

static void nv(struct buf *b, const char *name, const char *value)
{
	len_to(b, strlen(name));
	len_to(b, strlen(value));
	CHECK(buf_puts(b, name) == ENR_OK);
	CHECK(buf_puts(b, value) == ENR_OK);
}

/* pairs sent as PARAMS records of at most `per` bytes, then the empty one */
static void params(struct buf *b, unsigned id, const struct buf *pairs, size_t per)
{
	for (size_t o = 0; o < pairs->len; o += per) {
		size_t n = pairs->len - o < per ? pairs->len - o : per;

		rec(b, PARAMS, id, pairs->data + o, n, (o / per) % 3);
	}
	rec(b, PARAMS, id, "", 0, 0);
}

static void send_all(int fd, const struct buf *b)
{
	size_t o = 0;

	while (o < b->len) {
		ssize_t w = write(fd, b->data + o, b->len - o);

		CHECK(w > 0);
		if (w <= 0)
			return;
		o += (size_t)w;
	}
}

static bool read_n(int fd, unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One record from the responder: its type, id and content (into *content,
 * which the caller frees). */
static int read_rec(int fd, unsigned *id, unsigned char **content, size_t *len)
{
	unsigned char h[8], pad[256];

	*content = NULL;
	*len = 0;
	if (!read_n(fd, h, 8))
		return -1;
	CHECK_INT(h[0], 1);
	*id = (unsigned)(h[2] << 8 | h[3]);
	*len = (size_t)(h[4] << 8 | h[5]);
	*content = malloc(*len + 1);
	if (!read_n(fd, *content, *len) || !read_n(fd, pad, h[6]))
		return -1;
	(*content)[*len] = 0;
	return h[1];
}

/* The answer to request id: its STDOUT content in *out; true when the
 * records ended with END_REQUEST, status `status`. */
static bool read_answer(int fd, unsigned id, struct buf *out, int status)
{
	bool ended_stdout = false;

	for (;;) {
		unsigned rid;
		unsigned char *c;
		size_t n;
		int t = read_rec(fd, &rid, &c, &n);

		if (t < 0) {
			free(c);
			return false;
		}
		CHECK_INT(rid, id);
		if (t == STDOUT) {
			CHECK(!ended_stdout);
			CHECK(n <= 65535);
			if (n == 0)
				ended_stdout = true;
			CHECK(buf_append(out, c, n) == ENR_OK);
		} else {
			CHECK_INT(t, END);
			CHECK_INT(n, 8);
			CHECK_INT(c[4], status);
			free(c);
			return ended_stdout;
		}
		free(c);
	}
}

static void pair(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
}

/* The web server's side w sent on sv[1]: c takes sv[0] and has a request. */
static void begun(struct fcgi_conn *c, int sv[2], const struct buf *w)
{
	send_all(sv[1], w);
	fcgi_init(c);
	CHECK_INT(fcgi_next_on(c, sv[0]), FCGI_REQUEST);
}

TEST(a_request_its_parameters_and_its_body_are_read)
{
	int sv[2];
	struct buf w, pairs, out;
	struct fcgi_conn c;
	char body[64], longv[301];
	ssize_t n;
	size_t got = 0;

	pair(sv);
	buf_init(&w, 0);
	buf_init(&pairs, 0);
	buf_init(&out, 0);
	memset(longv, 'v', 300);
	longv[300] = '\0';
	nv(&pairs, "REQUEST_METHOD", "POST");
	nv(&pairs, "HTTP_X_LONG", longv);   /* four-byte length */
	nv(&pairs, "CONTENT_LENGTH", "11");
	nv(&pairs, "EMPTY", "");
	begin(&w, 1, 1, false);
	params(&w, 1, &pairs, 7);          /* pairs and lengths straddle records */
	rec(&w, STDIN, 1, "hello ", 6, 2);
	rec(&w, STDIN, 1, "world", 5, 0);
	rec(&w, STDIN, 1, "", 0, 0);
	begun(&c, sv, &w);
	CHECK_INT(c.id, 1);
	CHECK(!c.keep);
	CHECK_INT(c.nparams, 4);
	CHECK_STR(fcgi_param(&c, "REQUEST_METHOD"), "POST");
	CHECK_STR(fcgi_param(&c, "HTTP_X_LONG"), longv);
	CHECK_STR(fcgi_param(&c, "CONTENT_LENGTH"), "11");
	CHECK_STR(fcgi_param(&c, "EMPTY"), "");
	CHECK(fcgi_param(&c, "REQUEST") == NULL);
	CHECK(fcgi_param(&c, "POST") == NULL);   /* values are not names */
	while ((n = fcgi_read(&c, body + got, sizeof body - got)) > 0)
		got += (size_t)n;
	CHECK_INT(n, 0);
	CHECK_INT(got, 11);
	CHECK(memcmp(body, "hello world", 11) == 0);
	CHECK(fcgi_input_consumed(&c));
	CHECK(c.in == NULL);                       /* its read buffer went with the input */
	CHECK_INT(fcgi_read(&c, body, 1), 0);

	CHECK(fcgi_write(&c, "Status: 200 OK\r\n\r\n", 18) == ENR_OK);
	CHECK(fcgi_write(&c, "hi", 2) == ENR_OK);
	CHECK(fcgi_finish(&c) == ENR_OK);
	CHECK(!c.keep);
	CHECK(read_answer(sv[1], 1, &out, 0));
	CHECK_STR(buf_cstr(&out), "Status: 200 OK\r\n\r\nhi");
	fcgi_release(&c);
	close(sv[1]);
	buf_release(&w);
	buf_release(&pairs);
	buf_release(&out);
}

struct big_answer {
	struct fcgi_conn *c;
	const char *p;
	size_t n;
};

static void *write_big(void *arg)
{
	struct big_answer *a = arg;

	/* small pieces, one large one straight from memory, and the rest */
	CHECK(fcgi_write(a->c, a->p, 100) == ENR_OK);
	CHECK(fcgi_write(a->c, a->p + 100, 150000) == ENR_OK);
	for (size_t o = 150100; o < a->n; o += 1000)
		CHECK(fcgi_write(a->c, a->p + o, a->n - o < 1000 ? a->n - o : 1000) == ENR_OK);
	CHECK(fcgi_finish(a->c) == ENR_OK);
	return NULL;
}

TEST(a_large_answer_goes_in_records_of_at_most_64_KiB)
{
	int sv[2];
	struct buf w, pairs, out;
	struct fcgi_conn c;
	size_t n = 300000;
	char *big = malloc(n);
	pthread_t t;
	struct big_answer a = { &c, big, n };

	pair(sv);
	buf_init(&w, 0);
	buf_init(&pairs, 0);
	buf_init(&out, 0);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	nv(&pairs, "REQUEST_METHOD", "GET");
	begin(&w, 300, 1, false);
	params(&w, 300, &pairs, 1000);
	rec(&w, STDIN, 300, "", 0, 0);
	begun(&c, sv, &w);
	CHECK_INT(c.id, 300);
	CHECK(pthread_create(&t, NULL, write_big, &a) == 0);
	CHECK(read_answer(sv[1], 300, &out, 0));
	pthread_join(t, NULL);
	CHECK_INT(out.len, n);
	CHECK(out.len == n && memcmp(out.data, big, n) == 0);
	fcgi_release(&c);
	close(sv[1]);
	free(big);
	buf_release(&w);
	buf_release(&pairs);
	buf_release(&out);
}

static void *finish_later(void *arg)
{
	CHECK(fcgi_finish(arg) == ENR_OK);
	return NULL;
}

/* Fill sv's sending side until it takes no more; the bytes it took. */
static size_t fill_socket(int fd)
{
	static const char junk[512];
	size_t total = 0;
	ssize_t w;

	while ((w = send(fd, junk, sizeof junk, MSG_DONTWAIT)) > 0)
		total += (size_t)w;
	CHECK(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	return total;
}

/* A GET request with id and an empty body, as the web server sends it. */
static void get_request(struct buf *w, unsigned id)
{
	struct buf pairs;

	buf_init(&pairs, 0);
	nv(&pairs, "REQUEST_METHOD", "GET");
	begin(w, id, 1, false);
	params(w, id, &pairs, 100);
	rec(w, STDIN, id, "", 0, 0);
	buf_release(&pairs);
}

TEST(an_answer_the_socket_takes_at_once_is_finished_without_waiting)
{
	int sv[2], small = 4096;
	struct buf w, out;
	struct fcgi_conn c;
	char answer[20000], drop[512];
	size_t filled;
	pthread_t t;

	/* Taken at once: the same records fcgi_finish would write. */
	pair(sv);
	buf_init(&w, 0);
	buf_init(&out, 0);
	get_request(&w, 7);
	begun(&c, sv, &w);
	CHECK(fcgi_write(&c, "Status: 200 OK\r\n\r\nnow", 22) == ENR_OK);
	CHECK(fcgi_finish_now(&c));
	CHECK_INT(c.id, 0);
	CHECK(c.out.len == 0);
	CHECK(read_answer(sv[1], 7, &out, 0));
	CHECK_STR(buf_cstr(&out), "Status: 200 OK\r\n\r\nnow");
	fcgi_release(&c);
	close(sv[1]);

	/* A full socket: nothing is finished, and fcgi_finish then sends every
	 * byte once, what went before included, while the reader drains. */
	for (int round = 0; round < 2; round++) {
		pair(sv);
		CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
		begun(&c, sv, &w);
		memset(answer, 'x', sizeof answer);
		memcpy(answer, "Status: 200 OK\r\n\r\n", 18);
		CHECK(fcgi_write(&c, answer, sizeof answer) == ENR_OK);
		filled = fill_socket(sv[0]);
		if (round == 1) {
			/* Room for part of the records: some go now, the rest later. */
			CHECK(read_n(sv[1], (unsigned char *)drop, 512));
			filled -= 512;
		}
		CHECK(!fcgi_finish_now(&c));
		CHECK_INT(c.id, 7);
		if (round == 1)
			CHECK(c.out_sent > 0 && c.out_sent < sizeof answer + 32);
		CHECK(pthread_create(&t, NULL, finish_later, &c) == 0);
		for (size_t left = filled; left > 0;) {
			size_t k = left < sizeof drop ? left : sizeof drop;

			CHECK(read_n(sv[1], (unsigned char *)drop, k));
			left -= k;
		}
		buf_reset(&out);
		CHECK(read_answer(sv[1], 7, &out, 0));
		pthread_join(t, NULL);
		CHECK_INT(out.len, sizeof answer);
		CHECK(out.len == sizeof answer && memcmp(out.data, answer, sizeof answer) == 0);
		CHECK_INT(c.id, 0);
		fcgi_release(&c);
		close(sv[1]);
	}
	buf_release(&w);
	buf_release(&out);
}

TEST(management_records_other_roles_and_a_second_request_are_answered)
{
	int sv[2];
	struct buf w, pairs, ask, out;
	struct fcgi_conn c;
	unsigned id;
	unsigned char *content;
	size_t n;
	char body[16];

	pair(sv);
	buf_init(&w, 0);
	buf_init(&pairs, 0);
	buf_init(&ask, 0);
	buf_init(&out, 0);
	nv(&ask, "FCGI_MAX_CONNS", "");
	nv(&ask, "FCGI_MPXS_CONNS", "");
	rec(&w, GET_VALUES, 0, ask.data, ask.len, 0);
	rec(&w, 20, 0, "x", 1, 7);             /* a management type nobody knows */
	begin(&w, 2, 2, false);                /* an authorizer: not served */
	nv(&pairs, "REQUEST_METHOD", "POST");
	begin(&w, 5, 1, false);
	params(&w, 5, &pairs, 100);
	rec(&w, STDIN, 5, "ab", 2, 0);
	begin(&w, 6, 1, false);                /* a second request on the connection */
	rec(&w, PARAMS, 6, "\1\1ab", 4, 0);      /* its records are skipped */
	rec(&w, STDIN, 5, "cd", 2, 0);
	rec(&w, STDIN, 5, "", 0, 0);
	begun(&c, sv, &w);
	CHECK_INT(c.id, 5);
	CHECK_INT(read_rec(sv[1], &id, &content, &n), GET_VALUES_RESULT);
	CHECK_INT(id, 0);
	CHECK(n == 18 && memcmp(content, "\x0f\x01" "FCGI_MPXS_CONNS0", 18) == 0);
	free(content);
	CHECK_INT(read_rec(sv[1], &id, &content, &n), UNKNOWN_TYPE);
	CHECK(id == 0 && n == 8 && content[0] == 20);
	free(content);
	CHECK_INT(read_rec(sv[1], &id, &content, &n), END);
	CHECK(id == 2 && n == 8 && content[4] == 3);  /* UNKNOWN_ROLE */
	free(content);
	CHECK_INT(fcgi_read(&c, body, sizeof body), 2);
	CHECK_INT(fcgi_read(&c, body + 2, sizeof body - 2), 2);
	CHECK(memcmp(body, "abcd", 4) == 0);
	CHECK_INT(read_rec(sv[1], &id, &content, &n), END);
	CHECK(id == 6 && n == 8 && content[4] == 1);  /* CANT_MPX_CONN */
	free(content);
	CHECK_INT(fcgi_read(&c, body, sizeof body), 0);
	CHECK(fcgi_finish(&c) == ENR_OK);
	CHECK(read_answer(sv[1], 5, &out, 0));
	CHECK_INT(out.len, 0);
	fcgi_release(&c);
	close(sv[1]);
	buf_release(&w);
	buf_release(&pairs);
	buf_release(&ask);
	buf_release(&out);
}

TEST(a_kept_connection_carries_the_next_request)
{
	int sv[2];
	struct buf w, pairs, out;
	struct fcgi_conn c;
	char one;

	pair(sv);
	buf_init(&w, 0);
	buf_init(&pairs, 0);
	buf_init(&out, 0);
	nv(&pairs, "REQUEST_URI", "/first");
	begin(&w, 1, 1, true);
	params(&w, 1, &pairs, 100);
	rec(&w, STDIN, 1, "", 0, 0);
	begun(&c, sv, &w);
	CHECK(c.keep);
	CHECK_STR(fcgi_param(&c, "REQUEST_URI"), "/first");
	CHECK(fcgi_write(&c, "a", 1) == ENR_OK);
	CHECK(fcgi_finish(&c) == ENR_OK);
	/* its input was not read to its end: the connection cannot be kept */
	CHECK(!c.keep);
	CHECK(read_answer(sv[1], 1, &out, 0));
	fcgi_release(&c);
	close(sv[1]);

	pair(sv);
	buf_reset(&w);
	begin(&w, 1, 1, true);
	params(&w, 1, &pairs, 100);
	rec(&w, STDIN, 1, "", 0, 0);
	begun(&c, sv, &w);
	CHECK_INT(fcgi_read(&c, &one, 1), 0);
	CHECK(fcgi_finish(&c) == ENR_OK);
	CHECK(c.keep && c.fd == sv[0]);
	buf_reset(&out);
	CHECK(read_answer(sv[1], 1, &out, 0));
	/* the next request, on the same connection */
	buf_reset(&w);
	buf_reset(&pairs);
	nv(&pairs, "REQUEST_URI", "/second");
	begin(&w, 9, 1, false);
	params(&w, 9, &pairs, 100);
	rec(&w, STDIN, 9, "", 0, 0);
	send_all(sv[1], &w);
	CHECK_INT(fcgi_accept(&c, -1), FCGI_REQUEST);
	CHECK_INT(c.id, 9);
	CHECK(!c.keep);
	CHECK_STR(fcgi_param(&c, "REQUEST_URI"), "/second");
	CHECK_INT(c.nparams, 1);
	CHECK(fcgi_finish(&c) == ENR_OK);
	buf_reset(&out);
	CHECK(read_answer(sv[1], 9, &out, 0));
	fcgi_release(&c);
	close(sv[1]);
	buf_release(&w);
	buf_release(&pairs);
	buf_release(&out);
}

/* What the web server sends before it closes its end, and what
 * fcgi_next_on makes of it. */
static enum fcgi_rc next_from(const struct buf *w, struct fcgi_conn *c)
{
	int sv[2];
	enum fcgi_rc rc;

	pair(sv);
	send_all(sv[1], w);
	shutdown(sv[1], SHUT_WR);
	fcgi_init(c);
	rc = fcgi_next_on(c, sv[0]);
	close(sv[1]);
	return rc;
}

TEST(a_connection_that_breaks_the_protocol_gives_no_request)
{
	struct buf w, pairs;
	struct fcgi_conn c;
	unsigned char v2[8] = { 2, BEGIN, 0, 1, 0, 8, 0, 0 };

	buf_init(&w, 0);
	buf_init(&pairs, 0);
	nv(&pairs, "REQUEST_METHOD", "GET");

	CHECK_INT(next_from(&w, &c), FCGI_AGAIN);           /* nothing at all */
	CHECK(c.fd == -1);
	fcgi_release(&c);

	CHECK(buf_append(&w, v2, 8) == ENR_OK);               /* version 2 */
	CHECK(buf_append(&w, "\0\1\0\0\0\0\0\0", 8) == ENR_OK);
	CHECK_INT(next_from(&w, &c), FCGI_AGAIN);
	CHECK(c.fd == -1 && c.broken);
	fcgi_release(&c);

	buf_reset(&w);
	rec(&w, BEGIN, 1, "\0\1\0\0\0\0\0", 7, 0);            /* a short BEGIN_REQUEST */
	CHECK_INT(next_from(&w, &c), FCGI_AGAIN);
	fcgi_release(&c);

	buf_reset(&w);
	begin(&w, 1, 1, false);                               /* cut in its parameters */
	rec(&w, PARAMS, 1, pairs.data, pairs.len, 0);
	w.len -= 3;
	CHECK_INT(next_from(&w, &c), FCGI_AGAIN);
	fcgi_release(&c);

	buf_reset(&w);
	begin(&w, 1, 1, false);                               /* a body before the parameters end */
	rec(&w, STDIN, 1, "x", 1, 0);
	CHECK_INT(next_from(&w, &c), FCGI_AGAIN);
	fcgi_release(&c);

	buf_reset(&w);
	begin(&w, 1, 1, false);                               /* begun twice */
	begin(&w, 1, 1, false);
	CHECK_INT(next_from(&w, &c), FCGI_AGAIN);
	fcgi_release(&c);

	buf_reset(&w);                                        /* a pair whose lengths overrun */
	begin(&w, 1, 1, false);
	rec(&w, PARAMS, 1, "\x80\0\0\x10\2ab", 7, 0);
	rec(&w, PARAMS, 1, "", 0, 0);
	rec(&w, STDIN, 1, "", 0, 0);
	CHECK_INT(next_from(&w, &c), FCGI_REQUEST);
	CHECK_INT(c.nparams, 0);
	fcgi_release(&c);
	buf_release(&w);
	buf_release(&pairs);
}

TEST(an_abort_or_a_cut_body_ends_the_input_and_the_answer_still_ends)
{
	int sv[2];
	struct buf w, pairs, out;
	struct fcgi_conn c;
	char body[8];

	buf_init(&w, 0);
	buf_init(&pairs, 0);
	buf_init(&out, 0);
	nv(&pairs, "CONTENT_LENGTH", "10");
	for (int cut = 0; cut < 2; cut++) {
		pair(sv);
		buf_reset(&w);
		begin(&w, 3, 1, true);
		params(&w, 3, &pairs, 100);
		rec(&w, STDIN, 3, "abcd", 4, 0);
		if (cut)
			w.len -= 2;                    /* the connection goes mid-record */
		else
			rec(&w, ABORT, 3, "", 0, 0);
		send_all(sv[1], &w);
		if (cut)
			shutdown(sv[1], SHUT_WR);
		fcgi_init(&c);
		CHECK_INT(fcgi_next_on(&c, sv[0]), FCGI_REQUEST);
		CHECK_INT(fcgi_read(&c, body, sizeof body), cut ? 2 : 4);
		CHECK_INT(fcgi_read(&c, body, sizeof body), -1);
		CHECK_INT(fcgi_read(&c, body, sizeof body), -1);
		CHECK(!fcgi_input_consumed(&c));
		CHECK(fcgi_write(&c, "x", 1) == ENR_OK);
		CHECK(fcgi_finish(&c) == ENR_OK);
		CHECK(!c.keep);
		buf_reset(&out);
		CHECK(read_answer(sv[1], 3, &out, 0));
		CHECK_STR(buf_cstr(&out), "x");
		fcgi_release(&c);
		close(sv[1]);
	}
	buf_release(&w);
	buf_release(&pairs);
	buf_release(&out);
}

TEST(parameters_past_the_cap_are_dropped_and_said_so)
{
	int sv[2];
	struct buf w, pairs;
	struct fcgi_conn c;
	char *v = malloc(40001);
	char body[4];

	pair(sv);
	buf_init(&w, 0);
	buf_init(&pairs, 0);
	memset(v, 'h', 40000);
	v[40000] = '\0';
	nv(&pairs, "REQUEST_METHOD", "GET");
	nv(&pairs, "HTTP_A", v);
	nv(&pairs, "HTTP_B", v);
	begin(&w, 1, 1, false);
	params(&w, 1, &pairs, 65535);
	rec(&w, STDIN, 1, "", 0, 0);
	CHECK(w.len > LIM_FCGI_PARAMS_MAX);
	begun(&c, sv, &w);
	CHECK(c.params_dropped);
	CHECK(c.params_cap <= LIM_FCGI_PARAMS_MAX);
	CHECK_STR(fcgi_param(&c, "REQUEST_METHOD"), "GET");
	CHECK(fcgi_param(&c, "HTTP_A") != NULL && strlen(fcgi_param(&c, "HTTP_A")) == 40000);
	CHECK(fcgi_param(&c, "HTTP_B") == NULL);
	CHECK_INT(fcgi_read(&c, body, sizeof body), 0);  /* the request still reads to its end */
	fcgi_release(&c);
	close(sv[1]);
	free(v);
	buf_release(&w);
	buf_release(&pairs);
}

TEST(a_listening_socket_is_told_from_others)
{
	int sv[2], l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "enrichd-test-fcgi-%d", (int)getpid());

	pair(sv);
	CHECK(!fcgi_is_listener(sv[0]));
	CHECK(!fcgi_is_listener(-1));
	CHECK(!fcgi_is_listener(l));
	/* an abstract address: nothing in the file system */
	CHECK(bind(l, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) == 0);
	CHECK(listen(l, 1) == 0);
	CHECK(fcgi_is_listener(l));
	close(l);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	RUN(a_request_its_parameters_and_its_body_are_read);
	RUN(a_large_answer_goes_in_records_of_at_most_64_KiB);
	RUN(an_answer_the_socket_takes_at_once_is_finished_without_waiting);
	RUN(management_records_other_roles_and_a_second_request_are_answered);
	RUN(a_kept_connection_carries_the_next_request);
	RUN(a_connection_that_breaks_the_protocol_gives_no_request);
	RUN(an_abort_or_a_cut_body_ends_the_input_and_the_answer_still_ends);
	RUN(parameters_past_the_cap_are_dropped_and_said_so);
	RUN(a_listening_socket_is_told_from_others);
	return harness_done();
}
