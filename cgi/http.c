/*
 * http.c - request parsing and response writing for FastCGI and CGI.
 */
#include "http.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/ascii.h"
#include "lib/log.h"
#include "lib/util.h"

/* Seconds a 503 unavailable asks the client to wait when nothing says
 * better (the store is down: it usually comes back in seconds). */
#define HTTP_RETRY_AFTER_UNAVAILABLE "5"

/* Response memory kept between requests; more is given back. */
#define HTTP_KEEP_BYTES (256u * 1024u)

/* Everything before the large parts, and the large parts' heads. */
static void clear(struct http_req *r)
{
	memset(r, 0, offsetof(struct http_req, path_own));
	r->path = "";
	free(r->path_own);
	r->path_own = NULL;
	qs_release(&r->qs);
	r->match.n = 0;
}

void http_req_init(struct http_req *r)
{
	qs_init(&r->qs);
	r->path_own = NULL;
	clear(r);
	buf_init(&r->head, 0);
	buf_init(&r->body, LIM_BODY_MAX_CEILING);
	buf_init(&r->out, 0);
}

void http_req_release(struct http_req *r)
{
	qs_release(&r->qs);
	free(r->path_own);
	r->path_own = NULL;
	buf_release(&r->head);
	buf_release(&r->body);
	buf_release(&r->out);
}

void http_req_reset(struct http_req *r)
{
	struct buf body = r->body, out = r->out;

	if (body.alloc > HTTP_KEEP_BYTES)
		buf_release(&body);
	/* The answer is written after any wait: a pooled request waiting
	 * on a provider holds no answer memory of the one before it. */
	buf_release(&out);
	buf_reset(&body);
	buf_reset(&r->head);
	clear(r);
	r->body = body;
	r->out = out;
}

const char *http_param(const struct http_req *r, const char *name)
{
	if (r->fc)
		return fcgi_param(r->fc, name);
	return getenv(name);
}

static bool rid_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];

		if (!(ascii_is_alnum(c) || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return n > 0 && n <= LIM_REQUEST_ID_MAX;
}

void http_req_begin(struct http_req *r, struct fcgi_conn *fc, struct cfg *cfg)
{
	const char *uri, *rid;
	size_t plen;

	r->fc = fc;
	r->cgi = fc == NULL;
	r->cfg = cfg;
	r->start_us = util_mono_us();
	r->status = 200;
	r->account_id = -1;
	r->key_id = -1;

	r->method = http_param(r, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "GET";

	/* Route on exactly the path the web server matched its own rules on.
	 * DOCUMENT_URI is nginx's decoded, normalised path: taken whole, so a
	 * '?' in it (sent as %3F) stays part of the path and matches no route,
	 * rather than turning "/metrics%3F" into a /metrics nginx did not guard.
	 * A plain CGI server gives PATH_INFO (the path after the script, decoded,
	 * no query); only the raw REQUEST_URI has its query to cut off, and it is
	 * not decoded.  The query comes from QUERY_STRING alone. */
	uri = http_param(r, "DOCUMENT_URI");
	if (uri == NULL || *uri == '\0')
		uri = http_param(r, "PATH_INFO");
	if (uri && *uri) {
		plen = strlen(uri);
	} else if ((uri = http_param(r, "REQUEST_URI")) != NULL && *uri) {
		plen = strcspn(uri, "?");
	} else {
		uri = "/";
		plen = strlen(uri);
	}
	if (plen > LIM_PATH_MAX) {
		/* Cut, it could name a route it never asked for: it matches none. */
		r->path_too_long = true;
	} else if (uri[plen] == '\0') {
		r->path = uri; /* the parameter itself: it lives as long as the request */
	} else if ((r->path_own = strndup(uri, plen)) != NULL) {
		r->path = r->path_own;
	} else {
		r->path_too_long = true; /* no memory for it: it matches nothing */
	}
	r->query = http_param(r, "QUERY_STRING");
	if (r->query == NULL)
		r->query = "";

	/* nginx passes $request_id; a CGI server may pass nothing. */
	rid = http_param(r, "REQUEST_ID");
	if (rid && rid_ok(rid)) {
		util_strlcpy(r->rid, rid, sizeof r->rid);
	} else {
		unsigned char raw[16];

		if (util_random(raw, sizeof raw) != ENR_OK)
			memset(raw, 0, sizeof raw);
		util_hex(raw, sizeof raw, r->rid);
	}
	log_set_request_id(r->rid);
}

bool http_content_type_is(const struct http_req *r, const char *type)
{
	const char *ct = http_param(r, "CONTENT_TYPE");
	size_t n, tl = strlen(type);

	if (ct == NULL)
		return false;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == tl && strncasecmp(ct, type, tl) == 0;
}

bool http_charset_ok(const struct http_req *r)
{
	const char *ct = http_param(r, "CONTENT_TYPE");
	const char *p = ct ? strchr(ct, ';') : NULL;

	while (p && *p) {
		size_t n, vn;
		const char *v;

		p += strspn(p, "; \t");
		n = strcspn(p, ";");
		if (n > 8 && strncasecmp(p, "charset=", 8) == 0) {
			v = p + 8;
			vn = n - 8;
			while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
				vn--;
			if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
				v++;
				vn -= 2;
			}
			if (!(util_strn_ieq(v, vn, "utf-8") || util_strn_ieq(v, vn, "utf8")))
				return false;
		} else if (n == 8 && strncasecmp(p, "charset=", 8) == 0) {
			return false; /* "charset=" and nothing */
		}
		p += n;
	}
	return true;
}

static ssize_t body_read_some(struct http_req *r, char *p, size_t n)
{
	if (r->fc)
		return fcgi_read(r->fc, p, n);
	return read(0, p, n);
}

/* Read the record that ends the FastCGI input, where nginx sends it (after
 * the body, or with the parameters): the read buffer goes with it, before
 * the request may wait on a provider for a while.  What comes instead is
 * logged as unexpected. */
static void take_input_end(struct http_req *r, const char *unexpected)
{
	char c;

	if (r->fc == NULL || r->fc->in_ended)
		return;
	if (fcgi_read(r->fc, &c, 1) != 0)
		log_debug("http", "request %s: %s", r->rid, unexpected);
}

void http_take_empty_input(struct http_req *r)
{
	const char *cl = http_param(r, "CONTENT_LENGTH");

	if (cl == NULL || *cl == '\0' || strcmp(cl, "0") == 0)
		take_input_end(r, "a body CONTENT_LENGTH did not announce");
}

bool http_input_consumed(const struct http_req *r)
{
	return r->fc != NULL && fcgi_input_consumed(r->fc);
}

enum enr_err http_read_body(struct http_req *r, size_t max)
{
	const char *cl = http_param(r, "CONTENT_LENGTH");
	int64_t want = 0;
	enum enr_err rc;

	if (r->body_read)
		return ENR_OK;
	if (cl && *cl) {
		rc = util_parse_i64(cl, 0, INT64_MAX, &want);
		if (rc)
			return ENR_E_INVALID;
	}
	if ((uint64_t)want > max)
		return ENR_E_TOO_LARGE;
	buf_reset(&r->body);
	rc = buf_reserve(&r->body, (size_t)want);
	if (rc)
		return rc;
	while (r->body.len < (size_t)want) {
		ssize_t got = body_read_some(r, r->body.data + r->body.len,
					     (size_t)want - r->body.len);

		if (got <= 0)
			return ENR_E_INVALID; /* the client sent less than it announced */
		r->body.len += (size_t)got;
	}
	r->body.data[r->body.len] = '\0';
	r->body_read = true;
	/* Take the stream's end too (nginx sends it right after the body):
	 * then the connection can be closed at once (cgi/main.c). */
	take_input_end(r, "more body than CONTENT_LENGTH said");
	return ENR_OK;
}

/* Where the line of header name (n bytes) starts in r->head, or -1. */
static long header_at(const struct http_req *r, const char *name, size_t n)
{
	const char *h = r->head.data;

	for (size_t at = 0; at < r->head.len;) {
		const char *eol = strstr(h + at, "\r\n");

		if (strncasecmp(h + at, name, n) == 0 && h[at + n] == ':')
			return (long)at;
		at = (size_t)(eol - h) + 2;
	}
	return -1;
}

void http_set_header(struct http_req *r, const char *name, const char *value)
{
	size_t n = strnlen(name, HTTP_HEADER_NAME_MAX), was, v = 0;
	long at = header_at(r, name, n);

	if (at >= 0) {
		/* replaced: its line goes, the new one comes last */
		char *line = r->head.data + at, *next = strstr(line, "\r\n") + 2;

		memmove(line, next, (size_t)(r->head.data + r->head.len - next) + 1);
		r->head.len -= (size_t)(next - line);
		r->nheaders--;
	} else if (r->nheaders == LIM_RESPONSE_HEADERS) {
		return; /* full */
	}
	was = r->head.len;
	if (buf_append(&r->head, name, n) != ENR_OK || buf_append(&r->head, ": ", 2) != ENR_OK)
		goto nomem;
	for (const char *p = value; *p && v < HTTP_HEADER_VALUE_MAX;) {
		size_t run = strcspn(p, "\r\n"); /* line breaks are left out */

		if (run > HTTP_HEADER_VALUE_MAX - v)
			run = HTTP_HEADER_VALUE_MAX - v;
		if (buf_append(&r->head, p, run) != ENR_OK)
			goto nomem;
		v += run;
		p += run;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	if (buf_append(&r->head, "\r\n", 2) != ENR_OK)
		goto nomem;
	r->nheaders++;
	return;
nomem:
	buf_truncate(&r->head, was); /* no memory: the header is left out */
}

static bool has_header(const struct http_req *r, const char *name)
{
	return header_at(r, name, strlen(name)) >= 0;
}

static void out_write(struct http_req *r, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (r->fc) {
		(void)fcgi_write(r->fc, p, n);
		return;
	}
	fwrite(p, 1, n, stdout);
}

static void out_str(struct http_req *r, const char *s)
{
	out_write(r, s, strlen(s));
}

static void out_num(struct http_req *r, long long v)
{
	char d[24];

	out_write(r, d, util_fmt_i64(v, d));
}

/* The head goes straight into the FastCGI connection's answer, piece by
 * piece: nothing to build. */
static void send_head(struct http_req *r, int status, const char *ctype, long long clen)
{
	if (r->head_sent)
		return;
	r->head_sent = true;
	r->status = status;
	out_str(r, "Status: ");
	out_num(r, status);
	out_str(r, " ");
	out_str(r, enr_http_reason(status));
	if (ctype) {
		out_str(r, "\r\nContent-Type: ");
		out_str(r, ctype);
	}
	if (clen >= 0) {
		out_str(r, "\r\nContent-Length: ");
		out_num(r, clen);
	}
	out_str(r, "\r\nX-Request-Id: ");
	out_str(r, r->rid);
	out_str(r, "\r\nCache-Control: no-store\r\n");
	out_write(r, r->head.data, r->head.len);
	out_str(r, "\r\n");
}

void http_send(struct http_req *r, int status, const char *ctype, const char *body, size_t len)
{
	if (r->responded)
		return;
	r->responded = true;
	send_head(r, status, ctype, (long long)len);
	if (strcmp(r->method, "HEAD") != 0)
		out_write(r, body, len);
}

void http_json(struct http_req *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (s == NULL) {
		static const char oom[] =
			"{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

		http_send(r, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	buf_reset(&r->out);
	if (buf_puts(&r->out, s) != ENR_OK || buf_putc(&r->out, '\n') != ENR_OK) {
		static const char oom[] =
			"{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

		free(s);
		http_send(r, 500, "application/json", oom, sizeof oom - 1);
		return;
	}
	free(s);
	http_send(r, status, "application/json", r->out.data, r->out.len);
}

void http_error(struct http_req *r, enum enr_err e, const char *message, json_t *details)
{
	json_t *err = json_object();
	json_t *top = json_object();

	if (err == NULL || top == NULL) {
		json_decref(err);
		json_decref(top);
		json_decref(details);
		http_json(r, 500, NULL);
		return;
	}
	json_object_set_new(err, "code", json_string(enr_code(e)));
	json_object_set_new(err, "message", json_string(message ? message : enr_strerror(e)));
	json_object_set_new(err, "request_id", json_string(r->rid));
	if (details)
		json_object_set_new(err, "details", details);
	json_object_set_new(top, "error", err);
	if (e == ENR_E_UNAUTHORIZED)
		http_set_header(r, "WWW-Authenticate", "Bearer realm=\"enrichd\"");
	/* Every 503 unavailable says when to come back; a handler that knows
	 * better (a key's comeback) has set it already. */
	if (e == ENR_E_UNAVAILABLE && !has_header(r, "Retry-After"))
		http_set_header(r, "Retry-After", HTTP_RETRY_AFTER_UNAVAILABLE);
	http_json(r, enr_http_status(e), top);
}

void http_begin_stream(struct http_req *r, int status, const char *ctype)
{
	if (r->responded)
		return;
	r->responded = true;
	send_head(r, status, ctype, -1);
}

enum enr_err http_write(struct http_req *r, const void *p, size_t n)
{
	if (r->fc)
		return fcgi_write(r->fc, p, n) == ENR_OK ? ENR_OK : ENR_E_IO;
	return fwrite(p, 1, n, stdout) == n ? ENR_OK : ENR_E_IO;
}
