/*
 * upstream.c - the HTTP client that calls providers (lib/upstream.h).
 *
 * Prefix: up_.  Each thread keeps one libcurl easy handle; curl_easy_reset
 * between calls clears the options but keeps the handle's connection and
 * TLS session caches, so calls to one provider reuse a warm connection.
 * The rules of a call (lib/upstream_int.h: URL check, options, response
 * capture) are shared with the event loop's transfers (lib/evcurl.c).
 *
 * Request headers carry API keys: they are handed to libcurl, wiped from
 * its list afterwards, and never logged or stored.  Error texts come from
 * curl_easy_strerror (static strings), never from the peer.
 */
#include "upstream.h"
#include "upstream_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ascii.h"
#include "limits.h"
#include "util.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static _Thread_local CURL *tl_handle;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

enum enr_err up_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_rc == CURLE_OK ? ENR_OK : ENR_E_INTERNAL;
}

void up_thread_cleanup(void)
{
	if (tl_handle) {
		curl_easy_cleanup(tl_handle);
		tl_handle = NULL;
	}
}

static void free_headers(struct up_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++)
		free(r->headers[i].name); /* value lives in the same block */
	r->nheaders = 0;
}

void up_response_init(struct up_response *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->body, LIM_UPSTREAM_BODY_MAX);
	r->resp.body = "";
}

void up_response_release(struct up_response *r)
{
	free_headers(r);
	free(r->headers);
	buf_release(&r->body);
	up_response_init(r);
}

void up_response_clear(struct up_response *out)
{
	free_headers(out);
	buf_reset(&out->body);
	out->error[0] = '\0';
	out->elapsed_ms = 0.0;
	out->resp = (struct prov_response){ 0 };
	out->resp.body = "";
}

void up_capture_init(struct up_capture *c, struct up_response *out, size_t body_max)
{
	up_response_clear(out);
	c->out = out;
	c->body_max = body_max == 0 || body_max > LIM_UPSTREAM_BODY_MAX ? LIM_UPSTREAM_BODY_MAX
									 : body_max;
	c->too_large = false;
	c->nomem = false;
}

size_t up_capture_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct up_capture *c = ud;
	size_t n = size * nmemb;
	enum enr_err rc;

	if (n > c->body_max || c->out->body.len > c->body_max - n) {
		c->too_large = true;
		return 0; /* a short count makes libcurl stop with a write error */
	}
	rc = buf_append(&c->out->body, data, n);
	if (rc) {
		if (rc == ENR_E_NOMEM)
			c->nomem = true;
		else
			c->too_large = true;
		return 0;
	}
	return n;
}

static bool is_tchar(unsigned char ch)
{
	/* RFC 9110 5.6.2 token characters */
	return ascii_is_alnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* One header line as libcurl delivers it: a status line, "Name: value",
 * or the blank line ending the block.  A new status line (after a 1xx)
 * starts the headers afresh so only the final answer's remain.  Lines that
 * are too long, malformed, or beyond the count cap are skipped. */
size_t up_capture_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct up_capture *c = ud;
	struct up_response *r = c->out;
	size_t n = size * nmemb, name_len, vstart, vend;
	char *block;

	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		free_headers(r);
		return n;
	}
	if (n > LIM_UPSTREAM_HEADER_MAX || r->nheaders >= LIM_UPSTREAM_HEADERS_MAX)
		return n;
	for (name_len = 0; name_len < n && is_tchar((unsigned char)data[name_len]); name_len++)
		;
	if (name_len == 0 || name_len >= n || data[name_len] != ':')
		return n;
	vstart = name_len + 1;
	vend = n;
	while (vstart < vend && (data[vstart] == ' ' || data[vstart] == '\t'))
		vstart++;
	while (vend > vstart && (data[vend - 1] == ' ' || data[vend - 1] == '\t' ||
				 data[vend - 1] == '\r' || data[vend - 1] == '\n'))
		vend--;
	if (r->nheaders == r->aheaders) {
		size_t na = r->aheaders ? r->aheaders * 2 : 16;
		struct prov_header *h;

		if (na > LIM_UPSTREAM_HEADERS_MAX)
			na = LIM_UPSTREAM_HEADERS_MAX;
		h = realloc(r->headers, na * sizeof *h);
		if (h == NULL) {
			c->nomem = true;
			return 0;
		}
		r->headers = h;
		r->aheaders = na;
	}
	/* name NUL value NUL in one block */
	block = malloc(name_len + 1 + (vend - vstart) + 1);
	if (block == NULL) {
		c->nomem = true;
		return 0;
	}
	for (size_t i = 0; i < name_len; i++)
		block[i] = ascii_to_lower(data[i]);
	block[name_len] = '\0';
	memcpy(block + name_len + 1, data + vstart, vend - vstart);
	block[name_len + 1 + (vend - vstart)] = '\0';
	r->headers[r->nheaders].name = block;
	r->headers[r->nheaders].value = block + name_len + 1;
	r->nheaders++;
	return n;
}

/* https:// anywhere; http:// only to a loopback host, so keys never
 * cross a network in clear text: the rule the configuration enforces at
 * load, kept here for every URL an adapter builds. */
enum enr_err up_call_check(const struct prov_request *req, int timeout_ms)
{
	const char *url;

	if (req == NULL || timeout_ms <= 0)
		return ENR_E_INVALID;
	if (strcmp(req->method, "POST") != 0 && strcmp(req->method, "GET") != 0)
		return ENR_E_INVALID;
	url = buf_cstr(&req->url);
	if (url[0] == '\0' || !cfg_url_check(url, NULL, 0))
		return ENR_E_INVALID;
	return ENR_OK;
}

void up_free_slist(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next) {
		if (p->data)
			explicit_bzero(p->data, strlen(p->data));
	}
	curl_slist_free_all(l);
}

enum enr_err up_call_begin(CURL *h, const struct prov_request *req, int timeout_ms,
			   struct up_capture *c, struct curl_slist **hdrs)
{
	struct curl_slist *list = NULL, *tmp;
	bool post;
	enum enr_err rc = up_call_check(req, timeout_ms);

	if (rc)
		return rc;
	post = strcmp(req->method, "POST") == 0;
	for (unsigned i = 0; i < req->nheaders && i < PROV_MAX_HEADERS; i++) {
		tmp = curl_slist_append(list, req->headers[i]);
		if (tmp == NULL)
			goto nomem;
		list = tmp;
	}
	if (post) {
		/* No "Expect: 100-continue" round trip before small bodies. */
		tmp = curl_slist_append(list, "Expect:");
		if (tmp == NULL)
			goto nomem;
		list = tmp;
	}

	curl_easy_setopt(h, CURLOPT_URL, buf_cstr(&req->url));
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, req->http2 == PROV_HTTP2_OFF ?
			 (long)CURL_HTTP_VERSION_1_1 : (long)CURL_HTTP_VERSION_2TLS);
	if (req->ca_file && req->ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 1000 ? timeout_ms : 1000));
	/* Answers land in our own buffer, so libcurl's receive buffer (16 KiB
	 * by default, held by every transfer in flight) only sizes each read:
	 * its smallest, 1 KiB, costs a few more reads of a large answer and
	 * saves 3 KiB of every waiting transfer against 4 KiB. */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 1024L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 60L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 30L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, up_capture_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, up_capture_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	if (post) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
		if (curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, buf_cstr(&req->body)) != CURLE_OK)
			goto nomem;
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	*hdrs = list;
	return ENR_OK;
nomem:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	up_free_slist(list);
	return ENR_E_NOMEM;
}

enum enr_err up_capture_end(struct up_capture *c, bool complete, long status, bool timed_out,
			    const char *error, double elapsed_ms)
{
	struct up_response *out = c->out;

	out->elapsed_ms = elapsed_ms;
	if (c->nomem) {
		up_response_clear(out);
		return ENR_E_NOMEM;
	}
	if (!complete) {
		/* No complete answer: report none, so the adapter makes it
		 * transient rather than reading half a response. */
		free_headers(out);
		buf_reset(&out->body);
		util_strlcpy(out->error, c->too_large ? "response too large" : error ? error : "",
			     sizeof out->error);
		out->resp.timed_out = timed_out;
		status = 0;
	}
	out->resp.status = status;
	out->resp.body = buf_cstr(&out->body);
	out->resp.body_len = out->body.len;
	out->resp.headers = out->headers;
	out->resp.nheaders = out->nheaders;
	return ENR_OK;
}

enum enr_err up_call_end(CURL *h, CURLcode cc, struct up_capture *c, struct curl_slist *hdrs)
{
	long status = 0;
	double total = 0.0;

	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	/* The handle must not keep pointers to this call's list or state. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	up_free_slist(hdrs);
	return up_capture_end(c, cc == CURLE_OK, status, cc == CURLE_OPERATION_TIMEDOUT,
			      curl_easy_strerror(cc), total * 1000.0);
}

enum enr_err up_perform(const struct prov_request *req, int timeout_ms, size_t body_max,
			struct up_response *out)
{
	struct curl_slist *hdrs = NULL;
	struct up_capture c;
	enum enr_err rc;
	CURLcode cc;

	if (out == NULL)
		return ENR_E_INVALID;
	rc = up_call_check(req, timeout_ms);
	if (rc)
		return rc;
	up_capture_init(&c, out, body_max);
	if (tl_handle == NULL) {
		tl_handle = curl_easy_init();
		if (tl_handle == NULL)
			return ENR_E_NOMEM;
	}
	curl_easy_reset(tl_handle);
	rc = up_call_begin(tl_handle, req, timeout_ms, &c, &hdrs);
	if (rc)
		return rc;
	cc = curl_easy_perform(tl_handle);
	return up_call_end(tl_handle, cc, &c, hdrs);
}
