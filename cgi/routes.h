/*
 * routes.h - the route table and the request pipeline of the responder.
 *
 * Prefix: route_.  A route is (method, path pattern) -> handler, with the
 * endpoint toggle it obeys and the scope it needs.  Patterns are literal
 * segments and "{id}" captures ("/enrich/jobs/{id}/results").  The
 * pipeline for every request: match (404/405), endpoint toggle (503),
 * authentication and limits, handler, error body, access log and metrics.
 */
#ifndef ENR_ROUTES_H
#define ENR_ROUTES_H

#include "http.h"

/* Client key scopes (bit set). */
#define SCOPE_ENRICH  1u
#define SCOPE_ENQUEUE 2u
#define SCOPE_ADMIN   4u

typedef enum enr_err (*route_handler)(struct http_req *r);

struct route {
	const char *method;
	const char *pattern;
	route_handler handler;
	int endpoint;    /* enum cfg_endpoint_id whose toggle applies, or -1 */
	unsigned scope;  /* required scope bits; 0 = open to anyone */
};

/* Register metrics families; call once before serving. */
void route_init(void);

/* Serve one request that http_req_begin() prepared. Thread-safe. */
void route_dispatch(struct http_req *r);

/* Handlers (cgi/h_*.c). */
enum enr_err h_health(struct http_req *r);
enum enr_err h_metrics(struct http_req *r);

#endif
