/*
 * http.h - the HTTP edge of the responder: one request in, one response out.
 *
 * Prefix: http_.  A struct http_req is owned by one responder thread and
 * reused for every request it serves (http_req_reset between requests), so
 * it owns all of a request's memory.  The same struct serves FastCGI
 * (lib/fcgi.h) and plain CGI (environment, stdin, stdout).
 *
 * This is the only place where an enum enr_err becomes an HTTP status and
 * a JSON error body.
 */
#ifndef ENR_HTTP_H
#define ENR_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/fcgi.h"
#include "lib/limits.h"
#include "lib/query.h"
#include "lib/router.h"

#define HTTP_MAX_PARAMS 4

#define HTTP_HEADER_NAME_MAX 63    /* bytes of a response header's name kept */
#define HTTP_HEADER_VALUE_MAX 255  /* bytes of its value kept */

struct auth_ctx; /* cgi/auth edge, filled after authentication */

struct http_req {
	/* transport: exactly one of fc / cgi is in use */
	struct fcgi_conn *fc;
	bool cgi;

	/* request */
	const char *method;
	const char *path;                 /* the path the web server matched (see http.c) */
	bool path_too_long;               /* over LIM_PATH_MAX: path is "" and matches nothing */
	const char *query;                /* raw QUERY_STRING ("" when none) */
	char rid[LIM_REQUEST_ID_MAX + 1];
	int64_t start_us;
	struct cfg *cfg;                  /* snapshot for this request */
	const char *params[HTTP_MAX_PARAMS]; /* {id} captures of the route, in path */
	unsigned nparams;
	const char *route;                /* route pattern, for metrics */
	struct buf body;
	bool body_read;

	/* authentication result (cgi/routes.c) */
	int64_t account_id;
	int64_t key_id;                   /* the client key used (-1 before authentication) */
	char account_name[LIM_NAME_MAX + 1];
	unsigned scopes;
	struct cfg_account_limits limits; /* the account's, config defaults applied */

	/* response */
	int status;
	unsigned nheaders;                /* lines in head */
	struct buf out;
	bool head_sent;
	bool responded;

	/* The large parts last: a request clears only their heads (http.c), so
	 * a pooled request keeps resident only what its requests used. */
	char *path_own;                   /* path, when it had to be cut out of REQUEST_URI */
	struct qs qs;                     /* the query, checked against the route's table */
	struct rt_match match;
	/* The response's own headers as they are sent, "Name: value\r\n"
	 * lines (LIM_RESPONSE_HEADERS at most); the memory is kept for the
	 * next request. */
	struct buf head;
};

void http_req_init(struct http_req *r);
void http_req_release(struct http_req *r);

/* Prepare r for a request arriving on fc (or on CGI when fc is NULL):
 * read the method, path and request id. */
void http_req_begin(struct http_req *r, struct fcgi_conn *fc, struct cfg *cfg);

/* Forget the request, keep (bounded) memory for the next one. */
void http_req_reset(struct http_req *r);

/* A CGI/FastCGI parameter ("HTTP_AUTHORIZATION", "CONTENT_TYPE"...);
 * NULL when absent.  Borrowed until the request ends. */
const char *http_param(const struct http_req *r, const char *name);

/* True when the request's Content-Type is type (case-insensitive,
 * parameters such as charset ignored). */
bool http_content_type_is(const struct http_req *r, const char *type);

/* False when the Content-Type names a charset other than UTF-8 (bodies are
 * UTF-8; none named means UTF-8). */
bool http_charset_ok(const struct http_req *r);

/* Read the whole body, at most max bytes: ENR_E_TOO_LARGE beyond,
 * ENR_E_INVALID on a bad Content-Length or a short body. */
enum enr_err http_read_body(struct http_req *r, size_t max);

/* A request that announces no body: read the record that ends its input
 * now (nginx sends it with the parameters), so that its connection can be
 * closed at once when it is answered. */
void http_take_empty_input(struct http_req *r);

/* True when the FastCGI input was read to its end (the body and the
 * record that ends it): the client has nothing more to send. */
bool http_input_consumed(const struct http_req *r);

/* Add a response header (copied; values are cut at 255 bytes, CR/LF
 * removed).  Replaces a header of the same name. */
void http_set_header(struct http_req *r, const char *name, const char *value);

/* Send a complete JSON response: status, headers, body = json_dumps(j).
 * Steals the reference to j. */
void http_json(struct http_req *r, int status, json_t *j);

/* Send a complete response with the given content type and body. */
void http_send(struct http_req *r, int status, const char *ctype, const char *body, size_t len);

/* Send the JSON error for e: {"error":{"code","message","request_id"[,"details"]}}.
 * message NULL uses the code's default sentence; details (may be NULL) is
 * stolen. */
void http_error(struct http_req *r, enum enr_err e, const char *message, json_t *details);

/* Streaming: send status and headers now, then body chunks. */
void http_begin_stream(struct http_req *r, int status, const char *ctype);
enum enr_err http_write(struct http_req *r, const void *p, size_t n);

#endif
