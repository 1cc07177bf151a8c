/*
 * test_webhook.c - webhook URL checks, resolution, signatures, backoff and
 * delivery (lib/webhook.c).
 *
 * Deliveries go to a tiny HTTP server on 127.0.0.1 started inside the
 * test (so allow_private is on for them).  It serves one connection at a
 * time, one request per connection, answers by path, and keeps the last
 * request it read so the tests can check the headers and recompute the
 * signature over the exact body received.  Only its /slow answer waits
 * (for the timeout test); the test itself never sleeps.  Resolution uses
 * "localhost" and IP literals only, so no test needs DNS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
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

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/ascii.h"
#include "lib/config.h"
#include "lib/limits.h"
#include "lib/util.h"
#include "lib/webhook.h"

#include "harness.h"
#include "http_stub.h"

/* ---- the server ---------------------------------------------------------- */

static struct {
	int lfd;
	int port;
	pthread_t thread;
	pthread_mutex_t mu;
	atomic_int accepted;
	atomic_int requests;
	char head[8192];     /* the last request's head, NUL-terminated */
	char body[8192];     /* and its body */
	size_t body_len;
} srv = { .lfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

/* Every answer ends its connection. */
static void reply(int fd, const char *status, const char *extra, const char *body, size_t blen)
{
	stub_answer(fd, status, extra, body, blen, true);
}

static void answer(int fd, const char *path)
{
	if (strncmp(path, "/hook", 5) == 0) {
		reply(fd, "200 OK", "Content-Type: text/plain\r\n", "thanks", 6);
	} else if (strcmp(path, "/accepted") == 0) {
		reply(fd, "202 Accepted", "", "", 0);
	} else if (strcmp(path, "/redirect") == 0) {
		reply(fd, "302 Found", "Location: /hook\r\n", "moved", 5);
	} else if (strcmp(path, "/fail") == 0) {
		reply(fd, "500 Internal Server Error", "", "oops", 4);
	} else if (strcmp(path, "/big") == 0) {
		size_t n = 4 * LIM_WH_RESPONSE_MAX;
		char *big = malloc(n);

		if (big) {
			memset(big, 'x', n);
			reply(fd, "200 OK", "", big, n);
			free(big);
		}
	} else if (strcmp(path, "/slow") == 0) {
		/* Hold the answer back for 3 s, or until the client gives up. */
		struct pollfd p = { fd, POLLIN | POLLRDHUP, 0 };

		if (poll(&p, 1, 3000) == 0)
			reply(fd, "200 OK", "", "late", 4);
	} else {
		reply(fd, "404 Not Found", "", "", 0);
	}
}

static void serve(int fd)
{
	char buf[16384];
	size_t have = 0;
	struct stub_request q;

	if (!stub_read(fd, buf, sizeof buf, &have, sizeof srv.body - 1, &q))
		return;
	pthread_mutex_lock(&srv.mu);
	buf[q.head_len - 4] = '\0'; /* the head without its empty line */
	util_strlcpy(srv.head, buf, sizeof srv.head);
	memcpy(srv.body, buf + q.head_len, q.body_len);
	srv.body[q.body_len] = '\0';
	srv.body_len = q.body_len;
	pthread_mutex_unlock(&srv.mu);
	atomic_fetch_add(&srv.requests, 1);
	answer(fd, q.path);
}

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(srv.lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		atomic_fetch_add(&srv.accepted, 1);
		serve(fd);
		close(fd);
	}
}

static int start_server(void)
{
	srv.lfd = stub_listen(&srv.port);
	if (srv.lfd < 0)
		return -1;
	return pthread_create(&srv.thread, NULL, accept_loop, NULL) == 0 ? 0 : -1;
}

static void stop_server(void)
{
	shutdown(srv.lfd, SHUT_RDWR);
	pthread_join(srv.thread, NULL);
	close(srv.lfd);
}

/* The value of header `name` in the last request head ("" when absent). */
static void last_header(const char *name, char *out, size_t outlen)
{
	char pat[128];
	const char *p, *e;

	out[0] = '\0';
	snprintf(pat, sizeof pat, "\r\n%s:", name);
	pthread_mutex_lock(&srv.mu);
	p = strcasestr(srv.head, pat);
	if (p) {
		p += strlen(pat);
		while (*p == ' ')
			p++;
		e = strstr(p, "\r\n");
		if (e == NULL)
			e = p + strlen(p);
		if ((size_t)(e - p) < outlen) {
			memcpy(out, p, (size_t)(e - p));
			out[e - p] = '\0';
		}
	}
	pthread_mutex_unlock(&srv.mu);
}

static void url_for(char *out, size_t outlen, const char *host, const char *path)
{
	snprintf(out, outlen, "http://%s:%d%s", host, srv.port, path);
}

static struct cfg test_cfg(const char *secret, bool allow_private, int timeout_ms)
{
	struct cfg c;

	memset(&c, 0, sizeof c);
	c.webhooks.secret = (char *)secret;
	c.webhooks.allow_private = allow_private;
	c.webhooks.timeout_ms = timeout_ms;
	c.webhooks.max_attempts = 5;
	return c;
}

/* ---- URL checks ---------------------------------------------------------- */

static void expect_url(const char *url, bool allow_private, bool ok, int line)
{
	char why[128] = "untouched";
	enum enr_err rc = wh_check_url(url, allow_private, why, sizeof why);

	if (ok && rc != ENR_OK)
		HARNESS_FAIL("line %d: %s (allow_private=%d) refused: %s", line, url,
			     allow_private, why);
	if (!ok && rc != ENR_E_INVALID)
		HARNESS_FAIL("line %d: %s (allow_private=%d) accepted (rc %d)", line,
			     url ? url : "(null)", allow_private, rc);
	if (!ok && (why[0] == '\0' || strcmp(why, "untouched") == 0))
		HARNESS_FAIL("line %d: %s refused without a reason", line, url ? url : "(null)");
}

#define ACCEPT(url, priv) expect_url((url), (priv), true, __LINE__)
#define REFUSE(url, priv) expect_url((url), (priv), false, __LINE__)

TEST(url_accepts_public_https)
{
	static const char *const good[] = {
		"https://example.com/hook",
		"https://example.com",
		"https://example.com?x",
		"https://hooks.example.com:8443/a/b?x=1&y=%20z",
		"HTTPS://Example.COM/Hook",
		"https://a-b.example/x~y_z.-!$&'()*+,;=:@/?/?",
		"https://xn--bcher-kva.example/",
		"https://8.8.8.8/x",
		"https://1.1.1.1:443/",
		"https://[2606:4700:4700::1111]/",
		"https://[2606:4700:4700::1111]:8443/x",
		"https://127.0.0.1.nip.io/",       /* a name; its addresses are checked later */
		"https://0x7f.example.com/",      /* hex-looking label, but a name */
		"https://example.com/a?@127.0.0.1", /* "@" in the query is not userinfo */
		"https://example.com:1/",
		"https://example.com:65535/",
	};

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ACCEPT(good[i], false);
		ACCEPT(good[i], true);
	}
}

TEST(url_http_only_when_private_allowed)
{
	REFUSE("http://example.com/hook", false);
	ACCEPT("http://example.com/hook", true);
	REFUSE("HTTP://example.com/hook", false);
	ACCEPT("http://127.0.0.1:8080/hook", true);
	REFUSE("http://127.0.0.1:8080/hook", false);
}

TEST(url_refuses_malformed)
{
	static const char *const bad[] = {
		"",
		"https://",
		"https:///x",
		"https://:443/",
		"https://user:pw@example.com/",
		"https://user@example.com/",
		"https://@example.com/",
		"https://example.com@evil.example/",
		"https://example.com/#frag",
		"https://example.com#",
		"https://ex\\ample.com/",
		"https://example.com\\@evil.example/",
		"https://exa mple.com/",
		"https://example.com/a b",
		"https://example.com/\x01",
		"https://example.com/\xc3\xa9",
		"https://\xc3\xbc.example/",
		"https://example.com:/",
		"https://example.com:0/",
		"https://example.com:65536/",
		"https://example.com:123456/",
		"https://example.com:+443/",
		"https://example.com:44a/",
		"https://example.com:443:443/",
		"https://-a.example/",
		"https://a-.example/",
		"https://a..example/",
		".example.com",
		"https://.example.com/",
		"https://example.com./",
		"https://exa_mple.com/",
		"https://example.com/%zz",
		"https://example.com/%4",
		"https://example.com/<script>",
		"https://example.com/\"q\"",
		"https://example.com/[x]",
		"https://example.com/{x}",
		"https://[::1%25eth0]/",
		"https://[fe80::1%eth0]/",
		"https://[::1/",
		"https://[]/",
		"https://[zz::1]/",
		"https://[1.2.3.4]/",
		"https://[2606:4700::1111]x/",
		"https://[2606:4700::1111]:/",
		"ftp://example.com/",
		"file:///etc/passwd",
		"javascript:alert(1)",
		"example.com/hook",
		"//example.com/hook",
		"https:example.com",
		"https:/example.com",
	};
	char label[80], url[LIM_WH_URL_MAX + 64];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		REFUSE(bad[i], false);
		REFUSE(bad[i], true);
	}
	REFUSE(NULL, true);

	/* labels of 63 bytes are fine, 64 are not */
	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(url, sizeof url, "https://%s.example/", label);
	ACCEPT(url, false);
	snprintf(url, sizeof url, "https://%sa.example/", label);
	REFUSE(url, false);

	/* 253-byte names are fine, 254 are not */
	{
		char host[300];
		size_t n = 0;

		while (n + 10 <= 253) {
			memcpy(host + n, "abcdefghi.", 10);
			n += 10;
		}
		while (n < 253)
			host[n++] = 'x';
		host[n] = '\0';
		snprintf(url, sizeof url, "https://%s/", host);
		ACCEPT(url, false);
		snprintf(url, sizeof url, "https://%sx/", host);
		REFUSE(url, false);
	}

	/* exactly LIM_WH_URL_MAX bytes is the largest URL */
	{
		size_t n = (size_t)snprintf(url, sizeof url, "https://example.com/");

		memset(url + n, 'p', LIM_WH_URL_MAX - n);
		url[LIM_WH_URL_MAX] = '\0';
		ACCEPT(url, false);
		url[LIM_WH_URL_MAX] = 'p';
		url[LIM_WH_URL_MAX + 1] = '\0';
		REFUSE(url, false);
	}
	/* and a huge one is refused without reading past the cap */
	{
		size_t n = 1024 * 1024;
		char *huge = malloc(n + 1);

		REQUIRE(huge != NULL);
		memcpy(huge, "https://example.com/", 20);
		memset(huge + 20, 'a', n - 20);
		huge[n] = '\0';
		REFUSE(huge, true);
		free(huge);
	}
}

/* Hosts refused unless allow_private: every range, every spelling. */
static const char *const forbidden_hosts[] = {
	"127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1",
	"172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.255", "169.254.169.254",
	"0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
	"192.0.0.8", "198.18.0.1", "198.19.255.255", "192.0.2.1", "198.51.100.7",
	"203.0.113.9",
	"[::1]", "[::]", "[0:0:0:0:0:0:0:1]", "[0000::0001]", "[fe80::1]", "[FE80::1]",
	"[febf:ffff::1]", "[fec0::1]", "[fc00::1]", "[fd12:3456::1]", "[ff02::1]",
	"[ff0e::1]",
	"[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::FFFF:10.0.0.1]",
	"[::ffff:169.254.169.254]", "[::ffff:192.168.0.1]", "[::ffff:0.0.0.0]",
	"[0:0:0:0:0:ffff:127.0.0.1]", "[::ffff:0:127.0.0.1]", "[::127.0.0.1]",
	"[::8.8.8.8]", "[64:ff9b::7f00:1]", "[64:ff9b::10.1.2.3]", "[64:ff9b:1::1]",
	"[2002:7f00:1::]", "[2002:c0a8:101::1]", "[2002:a9fe:a9fe::1]",
	"[2001:db8::1]", "[2001:0:4136:e378::1]", "[100::1]", "[3fff::1]",
	"[::ffff:1ff:0:1]", "[1fff::1]", "[4000::1]", "[fbff::1]", "[fe7f::1]",
	"[64:ff9b::1:0:7f00:1]",
	"localhost", "LOCALHOST", "localhost:8443", "foo.localhost", "a.b.LocalHost",
};

/* Public neighbours of the forbidden ranges. */
static const char *const public_hosts[] = {
	"1.0.0.1", "9.255.255.255", "11.0.0.1", "126.255.255.255", "128.0.0.1",
	"172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1", "100.63.255.255",
	"100.128.0.1", "169.253.255.255", "169.255.0.1", "198.17.255.255", "198.20.0.1",
	"223.255.255.255", "192.0.1.1", "192.0.3.1",
	"[2606:4700:4700::1111]", "[::ffff:8.8.8.8]", "[64:ff9b::808:808]",
	"[2002:808:808::1]", "[2000::1]", "[3ffe::1]", "[2001:4860:4860::8888]",
	"[2a00:1450:4001::1]",
	"localhost.example.com", "notlocalhost", "localhostx.example",
};

TEST(url_refuses_forbidden_hosts_unless_allowed)
{
	char url[128];

	for (size_t i = 0; i < sizeof forbidden_hosts / sizeof forbidden_hosts[0]; i++) {
		snprintf(url, sizeof url, "https://%s/hook", forbidden_hosts[i]);
		REFUSE(url, false);
		ACCEPT(url, true);
	}
	for (size_t i = 0; i < sizeof public_hosts / sizeof public_hosts[0]; i++) {
		snprintf(url, sizeof url, "https://%s/hook", public_hosts[i]);
		ACCEPT(url, false);
	}
}

TEST(url_reasons)
{
	char why[128];

	CHECK_INT(wh_check_url("https://127.0.0.1/", false, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "host is a loopback address");
	CHECK_INT(wh_check_url("https://[::ffff:10.1.2.3]/", false, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_STR(why, "host is a private address");
	CHECK_INT(wh_check_url("https://[fe80::1]/", false, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "host is a link-local address");
	CHECK_INT(wh_check_url("https://100.100.0.1/", false, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "host is a shared (CGNAT) address");
	CHECK_INT(wh_check_url("https://u@example.com/", false, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "URL may not have a user name or password");
	CHECK_INT(wh_check_url("http://example.com/", false, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "URL must use https://");
	CHECK_INT(wh_check_url("https://example.com/#top", false, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_STR(why, "URL may not have a fragment");
	CHECK_INT(wh_check_url("https://example.com:0/", false, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "port outside 1..65535");

	/* a short buffer is truncated and terminated; NULL is fine */
	memset(why, 'z', sizeof why);
	CHECK_INT(wh_check_url("https://127.0.0.1/", false, why, 8), ENR_E_INVALID);
	CHECK_STR(why, "host is");
	CHECK_INT(why[8], 'z');
	CHECK_INT(wh_check_url("https://127.0.0.1/", false, NULL, 0), ENR_E_INVALID);
	CHECK_INT(wh_check_url("https://example.com/", false, NULL, 0), ENR_OK);

	CHECK_STR(wh_addr_refused(AF_INET, "\x7f\x00\x00\x01"), "loopback");
	CHECK(wh_addr_refused(AF_INET, "\x08\x08\x08\x08") == NULL);
	CHECK_STR(wh_addr_refused(AF_UNIX, "\x08\x08\x08\x08"), "unknown family");
	{
		struct in6_addr a6;

		REQUIRE(inet_pton(AF_INET6, "::ffff:192.168.0.1", &a6) == 1);
		CHECK_STR(wh_addr_refused(AF_INET6, &a6), "private");
		REQUIRE(inet_pton(AF_INET6, "ff02::1", &a6) == 1);
		CHECK_STR(wh_addr_refused(AF_INET6, &a6), "multicast");
		REQUIRE(inet_pton(AF_INET6, "fd00::1", &a6) == 1);
		CHECK_STR(wh_addr_refused(AF_INET6, &a6), "unique-local");
		REQUIRE(inet_pton(AF_INET6, "4000::1", &a6) == 1);
		CHECK_STR(wh_addr_refused(AF_INET6, &a6), "reserved");
		REQUIRE(inet_pton(AF_INET6, "2606:4700::1", &a6) == 1);
		CHECK(wh_addr_refused(AF_INET6, &a6) == NULL);
	}
	CHECK(wh_addr_refused(AF_INET6, NULL) != NULL);
}

/* Numeric hosts other than dotted-quad decimal are refused even when
 * private targets are allowed: C libraries and URL parsers read them as
 * IPv4 addresses, each in its own way. */
TEST(url_refuses_numeric_host_tricks)
{
	static const char *const tricks[] = {
		"http://2130706433/",         /* 127.0.0.1 as one decimal number */
		"http://0x7f.1/",             /* hex and a two-part form */
		"http://017700000001/",       /* octal */
		"http://0x7f000001/",
		"https://127.1/",
		"https://127.0.1/",
		"https://0177.0.0.1/",
		"https://0x7f.0.0.1/",
		"https://127.0.0.01/",
		"https://127.000.000.001/",
		"https://010.0.0.1/",
		"https://8.8.8.08/",
		"https://8.8.8/",
		"https://1.2.3.4.5/",
		"https://256.1.1.1/",
		"https://1.2.3.256/",
		"https://1.2.3.1000/",
		"https://a.0x1/",
		"https://example.123/",
		"https://0x/",
		"https://0/",
		"https://127.0.0.1./",
		"https://4294967295/",
		"https://99999999999999999999/",
	};
	char why[128];

	for (size_t i = 0; i < sizeof tricks / sizeof tricks[0]; i++) {
		REFUSE(tricks[i], false);
		REFUSE(tricks[i], true);
	}
	CHECK_INT(wh_check_url("http://2130706433/", true, why, sizeof why), ENR_E_INVALID);
	CHECK_STR(why, "a numeric host must be a dotted-quad decimal IPv4 address");
	/* the one accepted spelling */
	ACCEPT("https://8.8.8.8/", false);
	ACCEPT("https://0.0.0.0/", true);
	ACCEPT("https://255.255.255.255/", true);
}

/* ---- resolution ---------------------------------------------------------- */

TEST(resolve_localhost_only_when_allowed)
{
	char addrs[WH_ADDRS_LEN], why[128];

	addrs[0] = '\0';
	CHECK_INT(wh_resolve("https://localhost/", false, addrs, sizeof addrs, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_STR(why, "host is a loopback address");
	CHECK_STR(addrs, ""); /* untouched on failure */

	CHECK_INT(wh_resolve("http://localhost:8080/x", true, addrs, sizeof addrs, why,
			     sizeof why),
		  ENR_OK);
	CHECK(strstr(addrs, "127.0.0.1") != NULL || strstr(addrs, "[::1]") != NULL);

	/* a name that resolves to loopback is refused at resolution time,
	 * whatever it looks like */
	CHECK_INT(wh_resolve("https://LocalHost:1/", false, addrs, sizeof addrs, why, sizeof why),
		  ENR_E_INVALID);

	/* literals are taken as they are, without a lookup */
	CHECK_INT(wh_resolve("https://8.8.8.8/", false, addrs, sizeof addrs, why, sizeof why),
		  ENR_OK);
	CHECK_STR(addrs, "8.8.8.8");
	CHECK_INT(wh_resolve("https://[2606:4700:4700:0::1111]:8443/", false, addrs, sizeof addrs,
			     why, sizeof why),
		  ENR_OK);
	CHECK_STR(addrs, "[2606:4700:4700::1111]");
	CHECK_INT(wh_resolve("https://[::ffff:127.0.0.1]/", false, addrs, sizeof addrs, why,
			     sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(wh_resolve("https://[::ffff:127.0.0.1]/", true, addrs, sizeof addrs, why,
			     sizeof why),
		  ENR_OK);
	CHECK_STR(addrs, "[::ffff:127.0.0.1]");

	/* syntax first, and a buffer too small is the caller's bug */
	CHECK_INT(wh_resolve("http://2130706433/", true, addrs, sizeof addrs, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(wh_resolve("https://8.8.8.8/", false, addrs, 16, why, sizeof why),
		  ENR_E_INTERNAL);
}

/* ---- signatures ---------------------------------------------------------- */

/* True when /etc/hosts names `name`, so a lookup never waits for DNS. */
static bool in_etc_hosts(const char *name)
{
	FILE *f = fopen("/etc/hosts", "r");
	char line[512];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		const char *p = line + strspn(line, " \t");
		bool first = true;

		/* "address name [alias...]"; a comment ends the line */
		while (!found && *p && *p != '#' && *p != '\n') {
			size_t n = strcspn(p, " \t\r\n#");

			found = !first && n == strlen(name) && strncasecmp(p, name, n) == 0;
			first = false;
			p += n;
			p += strspn(p, " \t\r");
		}
	}
	fclose(f);
	return found;
}

/* A name other than localhost that resolves to a refused address is
 * refused at resolution time.  Debian maps the machine's own name to
 * 127.0.1.1 (or 127.0.0.1) in /etc/hosts; that is the one such name a
 * test can count on without DNS. */
TEST(resolve_refuses_names_of_refused_addresses)
{
	char host[256], url[300], addrs[WH_ADDRS_LEN], why[128] = "";
	struct addrinfo hints, *res = NULL;
	bool refused = false;

	if (gethostname(host, sizeof host) != 0)
		SKIP("no host name");
	if (!in_etc_hosts(host))
		SKIP("host name %s not in /etc/hosts", host);
	snprintf(url, sizeof url, "https://%s:8443/hook", host);
	if (wh_check_url(url, false, NULL, 0) != ENR_OK)
		SKIP("host name %s is not a URL host", host);
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	REQUIRE(getaddrinfo(host, NULL, &hints, &res) == 0);
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			refused |= wh_addr_refused(AF_INET, &((struct sockaddr_in *)(void *)
							      ai->ai_addr)->sin_addr) != NULL;
		else if (ai->ai_family == AF_INET6)
			refused |= wh_addr_refused(AF_INET6, &((struct sockaddr_in6 *)(void *)
							       ai->ai_addr)->sin6_addr) != NULL;
	}
	freeaddrinfo(res);
	REQUIRE(refused);
	CHECK_INT(wh_resolve(url, false, addrs, sizeof addrs, why, sizeof why), ENR_E_INVALID);
	CHECK(strncmp(why, "host resolves to a ", 19) == 0);
	CHECK_INT(wh_resolve(url, true, addrs, sizeof addrs, why, sizeof why), ENR_OK);
	CHECK(addrs[0] != '\0');
}

TEST(sign_known_vectors)
{
	char sig[WH_SIG_LEN];
	char key1[21];
	const char *data = "what do ya want for nothing?";

	/* RFC 4231 test case 2 */
	wh_sign("Jefe", data, strlen(data), sig);
	CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	CHECK_INT(strlen(sig), WH_SIG_LEN - 1);

	/* RFC 4231 test case 1: twenty 0x0b bytes, "Hi There" */
	memset(key1, 0x0b, 20);
	key1[20] = '\0';
	wh_sign(key1, "Hi There", 8, sig);
	CHECK_STR(sig, "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

	/* only len bytes are signed */
	wh_sign("Jefe", "what do ya want for nothing?TRAILING", strlen(data), sig);
	CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

	/* empty key, empty message */
	wh_sign("", "", 0, sig);
	CHECK_STR(sig, "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	wh_sign(NULL, NULL, 0, sig);
	CHECK_STR(sig, "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* ---- backoff ------------------------------------------------------------- */

TEST(backoff)
{
	int64_t prev = 0;

	CHECK_INT(wh_backoff_ms(1, 0.0), 1000);
	CHECK_INT(wh_backoff_ms(2, 0.0), 2000);
	CHECK_INT(wh_backoff_ms(3, 0.0), 4000);
	CHECK_INT(wh_backoff_ms(9, 0.0), 256000);
	CHECK_INT(wh_backoff_ms(10, 0.0), LIM_WH_BACKOFF_MAX_MS);
	CHECK_INT(wh_backoff_ms(50, 0.0), LIM_WH_BACKOFF_MAX_MS);
	CHECK_INT(wh_backoff_ms(INT_MAX, 0.0), LIM_WH_BACKOFF_MAX_MS);
	CHECK_INT(wh_backoff_ms(0, 0.0), 1000);
	CHECK_INT(wh_backoff_ms(-7, 0.0), 1000);
	CHECK_INT(wh_backoff_ms(INT_MIN, 0.0), 1000);
	/* up to a quarter more */
	CHECK_INT(wh_backoff_ms(1, 0.5), 1125);
	CHECK_INT(wh_backoff_ms(3, 0.999), 4999);
	CHECK_INT(wh_backoff_ms(10, 0.999), LIM_WH_BACKOFF_MAX_MS + 74925);
	/* out-of-range jitter is clamped */
	CHECK_INT(wh_backoff_ms(1, -1.0), 1000);
	CHECK_INT(wh_backoff_ms(1, NAN), 1000);
	CHECK_INT(wh_backoff_ms(1, 7.0), 1250);
	CHECK_INT(wh_backoff_ms(1, INFINITY), 1250);
	for (int a = 1; a <= 40; a++) {
		int64_t d = wh_backoff_ms(a, 0.0);

		CHECK(d >= prev);
		CHECK(wh_backoff_ms(a, 0.9999) < d + d / 4 + 1);
		prev = d;
	}
}

/* ---- delivery ------------------------------------------------------------ */

static bool is_hex32(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (; *s; s++) {
		if (!ascii_is_lower_xdigit(*s))
			return false;
	}
	return true;
}

TEST(post_delivers_a_signed_body)
{
	struct cfg cfg = test_cfg("s3cret-key", true, 2000);
	const char *body = "{\"job\":\"j_1\",\"state\":\"done\",\"rows\":3}";
	char url[256], why[128] = "", v[256], id1[64], want[WH_SIG_LEN], n[32];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int status = -1;

	url_for(url, sizeof url, "127.0.0.1", "/hook?x=1");
	CHECK_INT(wh_post(&cfg, url, body, "job.completed", &status, why, sizeof why), ENR_OK);
	CHECK_INT(status, 200);

	pthread_mutex_lock(&srv.mu);
	CHECK(strncmp(srv.head, "POST /hook?x=1 HTTP/1.1\r\n", 25) == 0);
	CHECK_STR(srv.body, body);
	CHECK_INT(srv.body_len, strlen(body));
	/* the signature, recomputed here over the bytes the server received */
	REQUIRE(HMAC(EVP_sha256(), "s3cret-key", 10, (const unsigned char *)srv.body,
		     srv.body_len, md, &mdlen) != NULL);
	pthread_mutex_unlock(&srv.mu);
	memcpy(want, "sha256=", 7);
	util_hex(md, mdlen, want + 7);

	last_header("X-Enrichd-Signature", v, sizeof v);
	CHECK_STR(v, want);
	last_header("Content-Type", v, sizeof v);
	CHECK_STR(v, "application/json");
	last_header("User-Agent", v, sizeof v);
	CHECK_STR(v, "enrichd-webhook");
	last_header("X-Enrichd-Event", v, sizeof v);
	CHECK_STR(v, "job.completed");
	last_header("Content-Length", v, sizeof v);
	snprintf(n, sizeof n, "%zu", strlen(body));
	CHECK_STR(v, n);
	last_header("Expect", v, sizeof v);
	CHECK_STR(v, "");
	last_header("X-Enrichd-Delivery", id1, sizeof id1);
	CHECK(is_hex32(id1));

	/* every attempt has its own delivery id */
	CHECK_INT(wh_post(&cfg, url, body, "job.completed", &status, why, sizeof why), ENR_OK);
	last_header("X-Enrichd-Delivery", v, sizeof v);
	CHECK(is_hex32(v));
	CHECK(strcmp(v, id1) != 0);

	/* any 2xx is a delivery */
	url_for(url, sizeof url, "127.0.0.1", "/accepted");
	CHECK_INT(wh_post(&cfg, url, body, "job.failed", &status, why, sizeof why), ENR_OK);
	CHECK_INT(status, 202);
}

TEST(post_without_secret_is_unsigned)
{
	struct cfg cfg = test_cfg("", true, 2000);
	char url[256], why[128], v[256];
	int status = -1;

	url_for(url, sizeof url, "127.0.0.1", "/hook");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why), ENR_OK);
	CHECK_INT(status, 200);
	pthread_mutex_lock(&srv.mu);
	CHECK(strcasestr(srv.head, "\r\nX-Enrichd-Signature:") == NULL);
	pthread_mutex_unlock(&srv.mu);
	last_header("X-Enrichd-Event", v, sizeof v);
	CHECK_STR(v, "job.completed");

	cfg.webhooks.secret = NULL;
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why), ENR_OK);
}

/* By name, the pinned addresses are used and the Host header keeps the name. */
TEST(post_by_name_is_pinned)
{
	struct cfg cfg = test_cfg("k", true, 2000);
	char url[256], why[128] = "", v[256], want[64];
	int status = -1;

	url_for(url, sizeof url, "LocalHost", "/hook");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why), ENR_OK);
	CHECK_INT(status, 200);
	last_header("Host", v, sizeof v);
	snprintf(want, sizeof want, "localhost:%d", srv.port);
	CHECK_STR(v, want);
}

TEST(post_redirect_is_a_failure_and_not_followed)
{
	struct cfg cfg = test_cfg("k", true, 2000);
	char url[256], why[128] = "";
	int status = -1, before = atomic_load(&srv.requests);

	url_for(url, sizeof url, "127.0.0.1", "/redirect");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_UPSTREAM);
	CHECK_INT(status, 302);
	CHECK_STR(why, "redirect (HTTP 302) not followed");
	CHECK_INT(atomic_load(&srv.requests) - before, 1);
}

TEST(post_server_error_is_a_failure)
{
	struct cfg cfg = test_cfg("k", true, 2000);
	char url[256], why[128] = "";
	int status = -1;

	url_for(url, sizeof url, "127.0.0.1", "/fail");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_UPSTREAM);
	CHECK_INT(status, 500);
	CHECK_STR(why, "HTTP 500");

	url_for(url, sizeof url, "127.0.0.1", "/nowhere");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_UPSTREAM);
	CHECK_INT(status, 404);
}

TEST(post_large_answer_is_counted_by_status)
{
	struct cfg cfg = test_cfg("k", true, 2000);
	char url[256], why[128] = "";
	int status = -1;

	url_for(url, sizeof url, "127.0.0.1", "/big");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why), ENR_OK);
	CHECK_INT(status, 200);
}

TEST(post_timeout)
{
	struct cfg cfg = test_cfg("k", true, 200);
	char url[256], why[128] = "";
	int status = -1;
	int64_t t0, ms;

	url_for(url, sizeof url, "127.0.0.1", "/slow");
	t0 = util_mono_ms();
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_TIMEOUT);
	ms = util_mono_ms() - t0;
	CHECK_INT(status, 0);
	CHECK_STR(why, "timed out after 200 ms");
	CHECK(ms >= 150 && ms < 2500);
}

TEST(post_connection_refused)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	struct cfg cfg = test_cfg("k", true, 2000);
	char url[256], why[128] = "";
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

	/* a port that was free a moment ago and has no listener */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
		getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", ntohs(a.sin_port));
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_UPSTREAM);
	CHECK_INT(status, 0);
	CHECK(why[0] != '\0');
}

/* Refusals happen before any connection is opened. */
TEST(post_refuses_before_connecting)
{
	struct cfg cfg = test_cfg("k", false, 2000);
	char url[256], why[128] = "";
	int status = -1, acc = atomic_load(&srv.accepted);

	url_for(url, sizeof url, "127.0.0.1", "/hook");
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(status, 0);
	CHECK_STR(why, "URL must use https://");

	snprintf(url, sizeof url, "https://127.0.0.1:%d/hook", srv.port);
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_STR(why, "host is a loopback address");
	snprintf(url, sizeof url, "https://[::ffff:127.0.0.1]:%d/hook", srv.port);
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	snprintf(url, sizeof url, "https://localhost:%d/hook", srv.port);
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);

	/* bad arguments */
	cfg.webhooks.allow_private = true;
	url_for(url, sizeof url, "127.0.0.1", "/hook");
	CHECK_INT(wh_post(&cfg, url, "{}", "Job Completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_STR(why, "bad event name");
	CHECK_INT(wh_post(&cfg, url, "{}", "job\r\nX-Injected: 1", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(wh_post(&cfg, url, "{}", "", &status, why, sizeof why), ENR_E_INVALID);
	CHECK_INT(wh_post(NULL, url, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(wh_post(&cfg, NULL, "{}", "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(wh_post(&cfg, url, NULL, "job.completed", &status, why, sizeof why),
		  ENR_E_INVALID);
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", NULL, why, sizeof why),
		  ENR_E_INVALID);
	cfg.webhooks.timeout_ms = 0;
	CHECK_INT(wh_post(&cfg, url, "{}", "job.completed", &status, NULL, 0), ENR_E_INVALID);

	CHECK_INT(atomic_load(&srv.accepted), acc);
}

int main(void)
{
	if (start_server() != 0) {
		fprintf(stderr, "test_webhook: cannot start\n");
		return 1;
	}
	RUN(url_accepts_public_https);
	RUN(url_http_only_when_private_allowed);
	RUN(url_refuses_malformed);
	RUN(url_refuses_forbidden_hosts_unless_allowed);
	RUN(url_reasons);
	RUN(url_refuses_numeric_host_tricks);
	RUN(resolve_localhost_only_when_allowed);
	RUN(resolve_refuses_names_of_refused_addresses);
	RUN(sign_known_vectors);
	RUN(backoff);
	RUN(post_delivers_a_signed_body);
	RUN(post_without_secret_is_unsigned);
	RUN(post_by_name_is_pinned);
	RUN(post_redirect_is_a_failure_and_not_followed);
	RUN(post_server_error_is_a_failure);
	RUN(post_large_answer_is_counted_by_status);
	RUN(post_timeout);
	RUN(post_connection_refused);
	RUN(post_refuses_before_connecting);
	stop_server();
	return harness_done();
}
