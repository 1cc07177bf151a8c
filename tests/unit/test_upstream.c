/*
 * test_upstream.c - the HTTP client (lib/upstream.c) against a tiny HTTP
 * server on 127.0.0.1 started inside the test.
 *
 * The server accepts connections on a thread, serves each connection on
 * its own thread with HTTP/1.1 keep-alive, and answers canned responses by
 * path.  It counts connections and requests and keeps the last request it
 * read, so the tests can assert what went over the wire.  Only the
 * server's /slow answer waits (for the timeout test); the test itself
 * never sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/ascii.h"
#include "lib/limits.h"
#include "lib/upstream.h"
#include "lib/util.h"

#include "harness.h"
#include "http_stub.h"

#define MAX_CONNS 64

static struct {
	int lfd;
	int port;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_t conns[MAX_CONNS];
	int nconns;
	atomic_int accepted;
	atomic_int requests;
	char last[8192]; /* the last request read, head and body */
} srv = { .lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

static void answer(int fd, const char *path, const char *body, size_t blen)
{
	if (strncmp(path, "/hello", 6) == 0) {
		stub_reply(fd, "200 OK",
			   "Content-Type: application/json\r\n"
			   "X-RateLimit-Remaining:   {\"minute\": 99}  \r\n"
			   "RETRY-AFTER: 7\r\n"
			   "X-Empty:\r\n",
			   "{\"ok\":true}", 11);
	} else if (strcmp(path, "/big") == 0) {
		char *big = malloc(5000);

		if (big) {
			memset(big, 'x', 5000);
			stub_reply(fd, "200 OK", "", big, 5000);
			free(big);
		}
	} else if (strcmp(path, "/slow") == 0) {
		/* Hold the answer back for 3 s, or until the client gives up. */
		struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };

		if (poll(&p, 1, 3000) == 0)
			stub_reply(fd, "200 OK", "", "late", 4);
	} else if (strcmp(path, "/redirect") == 0) {
		stub_reply(fd, "302 Found", "Location: /hello\r\n", "moved", 5);
	} else if (strcmp(path, "/echo") == 0) {
		stub_reply(fd, "201 Created", "Content-Type: application/json\r\n", body, blen);
	} else if (strcmp(path, "/many") == 0) {
		char extra[8192];
		size_t n = 0;

		for (int i = 0; i < 100; i++)
			n += (size_t)snprintf(extra + n, sizeof extra - n, "X-H-%d: %d\r\n", i, i);
		stub_reply(fd, "200 OK", extra, "{}", 2);
	} else if (strcmp(path, "/continue") == 0) {
		static const char early[] = "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n";

		stub_send_all(fd, early, sizeof early - 1);
		stub_reply(fd, "200 OK", "X-Final: 1\r\n", "{}", 2);
	} else {
		stub_reply(fd, "404 Not Found", "", "", 0);
	}
}

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;
	struct stub_request q;

	while (stub_read(fd, buf, sizeof buf, &have, sizeof buf, &q)) {
		size_t n = q.head_len + q.body_len;

		pthread_mutex_lock(&srv.mu);
		memcpy(srv.last, buf, n);
		srv.last[n < sizeof srv.last ? n : sizeof srv.last - 1] = '\0';
		pthread_mutex_unlock(&srv.mu);
		atomic_fetch_add(&srv.requests, 1);
		answer(fd, q.path, buf + q.head_len, q.body_len);
		stub_next(buf, &have, &q);
	}
	close(fd);
	return NULL;
}

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(srv.lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		atomic_fetch_add(&srv.accepted, 1);
		pthread_mutex_lock(&srv.mu);
		if (srv.nconns < MAX_CONNS &&
		    pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd) == 0)
			srv.conns[srv.nconns++] = t;
		else
			close(fd);
		pthread_mutex_unlock(&srv.mu);
	}
}

static int start_server(void)
{
	srv.lfd = stub_listen(&srv.port);
	if (srv.lfd < 0)
		return -1;
	return pthread_create(&srv.acceptor, NULL, accept_loop, NULL) == 0 ? 0 : -1;
}

static void stop_server(void)
{
	/* Closing the client's connections ends the connection threads. */
	up_thread_cleanup();
	shutdown(srv.lfd, SHUT_RDWR);
	pthread_join(srv.acceptor, NULL);
	close(srv.lfd);
	for (int i = 0; i < srv.nconns; i++)
		pthread_join(srv.conns[i], NULL);
}

static void get(struct prov_request *r, const char *path)
{
	prov_request_init(r);
	CHECK_INT(buf_printf(&r->url, "http://127.0.0.1:%d%s", srv.port, path), ENR_OK);
}

TEST(status_headers_and_body)
{
	struct prov_request req;
	struct up_response out;
	bool all_lower = true, saw_ct = false;

	get(&req, "/hello?a=1");
	REQUIRE(prov_request_header(&req, "Accept", "application/json") == ENR_OK);
	REQUIRE(prov_request_header(&req, "X-Api-Key", "k-123") == ENR_OK);
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK(!out.resp.timed_out);
	CHECK_STR(out.error, "");
	CHECK_STR(out.resp.body, "{\"ok\":true}");
	CHECK_INT(out.resp.body_len, 11);
	CHECK(out.elapsed_ms >= 0.0 && out.elapsed_ms < 2000.0);
	CHECK_STR(prov_header(&out.resp, "x-ratelimit-remaining"), "{\"minute\": 99}");
	CHECK_STR(prov_header(&out.resp, "Retry-After"), "7");
	CHECK_STR(prov_header(&out.resp, "x-empty"), "");
	CHECK_STR(prov_header(&out.resp, "content-length"), "11");
	CHECK(prov_header(&out.resp, "x-absent") == NULL);
	for (size_t i = 0; i < out.resp.nheaders; i++) {
		for (const char *c = out.resp.headers[i].name; *c; c++)
			all_lower &= !ascii_is_upper(*c);
		saw_ct |= strcmp(out.resp.headers[i].name, "content-type") == 0;
	}
	CHECK(all_lower);
	CHECK(saw_ct);
	pthread_mutex_lock(&srv.mu);
	CHECK(strncmp(srv.last, "GET /hello?a=1 HTTP/1.1\r\n", 25) == 0);
	CHECK(strstr(srv.last, "\r\nX-Api-Key: k-123\r\n") != NULL);
	CHECK(strstr(srv.last, "\r\nAccept: application/json\r\n") != NULL);
	pthread_mutex_unlock(&srv.mu);
	/* the response can be reused */
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_INT(out.resp.nheaders, out.nheaders);
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(post_sends_the_body_without_expect)
{
	struct prov_request req;
	struct up_response out;

	get(&req, "/echo");
	util_strlcpy(req.method, "POST", sizeof req.method);
	REQUIRE(buf_puts(&req.body, "{\"people\":[{\"externalID\":\"1\"}]}") == ENR_OK);
	REQUIRE(prov_request_header(&req, "Content-Type", "application/json") == ENR_OK);
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 201);
	CHECK_STR(out.resp.body, "{\"people\":[{\"externalID\":\"1\"}]}");
	pthread_mutex_lock(&srv.mu);
	CHECK(strncmp(srv.last, "POST /echo HTTP/1.1\r\n", 21) == 0);
	CHECK(strcasestr(srv.last, "\r\nExpect:") == NULL);
	CHECK(strstr(srv.last, "\r\nContent-Type: application/json\r\n") != NULL);
	CHECK(strstr(srv.last, "\r\n\r\n{\"people\":[{\"externalID\":\"1\"}]}") != NULL);
	pthread_mutex_unlock(&srv.mu);
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(body_cap)
{
	struct prov_request req;
	struct up_response out;

	get(&req, "/big");
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 1000, &out), ENR_OK);
	CHECK_INT(out.resp.status, 0);
	CHECK(!out.resp.timed_out);
	CHECK_STR(out.error, "response too large");
	CHECK_INT(out.resp.body_len, 0);
	CHECK_STR(out.resp.body, "");
	CHECK_INT(out.resp.nheaders, 0);
	/* exactly at the cap is fine */
	CHECK_INT(up_perform(&req, 2000, 5000, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_INT(out.resp.body_len, 5000);
	CHECK_STR(out.error, "");
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(header_count_is_capped_and_only_the_final_block_kept)
{
	struct prov_request req;
	struct up_response out;

	get(&req, "/many");
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_INT(out.resp.nheaders, LIM_UPSTREAM_HEADERS_MAX);
	CHECK_STR(prov_header(&out.resp, "x-h-0"), "0");
	CHECK(prov_header(&out.resp, "x-h-99") == NULL);
	prov_request_release(&req);

	get(&req, "/continue");
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_STR(prov_header(&out.resp, "x-final"), "1");
	CHECK(prov_header(&out.resp, "x-early") == NULL);
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(timeout)
{
	struct prov_request req;
	struct up_response out;

	get(&req, "/slow");
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 200, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 0);
	CHECK(out.resp.timed_out);
	CHECK(out.error[0] != '\0');
	CHECK(out.elapsed_ms >= 150.0 && out.elapsed_ms < 2500.0);
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(connection_refused)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	struct prov_request req;
	struct up_response out;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	/* a port that was free a moment ago and has no listener */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
		getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	port = ntohs(a.sin_port);
	close(fd);
	prov_request_init(&req);
	CHECK_INT(buf_printf(&req.url, "http://127.0.0.1:%d/x", port), ENR_OK);
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 0);
	CHECK(!out.resp.timed_out);
	CHECK(out.error[0] != '\0');
	CHECK_INT(out.resp.body_len, 0);
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(redirect_not_followed)
{
	struct prov_request req;
	struct up_response out;
	int before = atomic_load(&srv.requests);

	get(&req, "/redirect");
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 302);
	CHECK_STR(prov_header(&out.resp, "location"), "/hello");
	CHECK_STR(out.resp.body, "moved");
	CHECK_INT(atomic_load(&srv.requests) - before, 1);
	up_response_release(&out);
	prov_request_release(&req);
}

TEST(https_only)
{
	static const char *const refused[] = {
		"http://example.com/",
		"http://0.0.0.0:%d/hello",          /* reaches this host, but not loopback by name */
		"http://[::ffff:127.0.0.1]:%d/hello",
		"http://127.0.0.1.nip.io:%d/hello",
		"ftp://127.0.0.1:%d/hello",
		"file:///etc/passwd",
		"127.0.0.1:%d/hello",
		"",
	};
	struct prov_request req;
	struct up_response out;
	int acc = atomic_load(&srv.accepted), reqs = atomic_load(&srv.requests);

	up_response_init(&out);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		const char *d = strstr(refused[i], "%d");

		prov_request_init(&req);
		/* "%d" stands for the server's port */
		if (d) {
			CHECK_INT(buf_append(&req.url, refused[i], (size_t)(d - refused[i])), ENR_OK);
			CHECK_INT(buf_printf(&req.url, "%d%s", srv.port, d + 2), ENR_OK);
		} else {
			CHECK_INT(buf_puts(&req.url, refused[i]), ENR_OK);
		}
		if (up_perform(&req, 500, 0, &out) != ENR_E_INVALID)
			HARNESS_FAIL("%s was not refused", buf_cstr(&req.url));
		prov_request_release(&req);
	}
	CHECK_INT(atomic_load(&srv.accepted), acc);
	CHECK_INT(atomic_load(&srv.requests), reqs);

	/* other refusals before any I/O */
	get(&req, "/hello");
	util_strlcpy(req.method, "PUT", sizeof req.method);
	CHECK_INT(up_perform(&req, 500, 0, &out), ENR_E_INVALID);
	util_strlcpy(req.method, "GET", sizeof req.method);
	CHECK_INT(up_perform(&req, 0, 0, &out), ENR_E_INVALID);
	CHECK_INT(atomic_load(&srv.requests), reqs);
	prov_request_release(&req);

	/* loopback names are allowed, in any case */
	prov_request_init(&req);
	CHECK_INT(buf_printf(&req.url, "HTTP://127.0.0.1:%d/hello", srv.port), ENR_OK);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	prov_request_release(&req);
	prov_request_init(&req);
	CHECK_INT(buf_printf(&req.url, "http://LocalHost:%d/hello", srv.port), ENR_OK);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	prov_request_release(&req);
	up_response_release(&out);
}

TEST(connection_reuse)
{
	struct prov_request req;
	struct up_response out;
	int before;

	up_thread_cleanup(); /* start without cached connections */
	before = atomic_load(&srv.accepted);
	get(&req, "/hello");
	up_response_init(&out);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_INT(up_perform(&req, 2000, 0, &out), ENR_OK);
	CHECK_INT(out.resp.status, 200);
	CHECK_INT(atomic_load(&srv.accepted) - before, 1);
	up_response_release(&out);
	prov_request_release(&req);
}

int main(void)
{
	if (up_global_init() != ENR_OK || start_server() != 0) {
		fprintf(stderr, "test_upstream: cannot start\n");
		return 1;
	}
	RUN(status_headers_and_body);
	RUN(post_sends_the_body_without_expect);
	RUN(body_cap);
	RUN(header_count_is_capped_and_only_the_final_block_kept);
	RUN(timeout);
	RUN(connection_refused);
	RUN(redirect_not_followed);
	RUN(https_only);
	RUN(connection_reuse);
	stop_server();
	return harness_done();
}
