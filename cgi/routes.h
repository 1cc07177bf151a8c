/*
 * routes.h - the route table and the request pipeline of the responder.
 *
 * Prefix: route_.  A route is (method, path pattern) -> handler, with the
 * endpoint toggle it obeys and the scope it needs.  Patterns are literal
 * segments and "{id}" captures ("/enrich/jobs/{id}/results").  The
 * pipeline for every request: match (404/405), endpoint toggle (503),
 * authentication (a key needs one of the route's scopes) and limits (a key
 * with one of the route's unmetered scopes, such as metrics on /metrics,
 * skips them), the query against the route's parameter table
 * (400 with details: unknown, repeated, over-long or invalid parameters),
 * handler, error body, access log and metrics.  Handlers read parameters
 * with qs_get(&r->qs, name): only values the table accepted are there.
 */
#ifndef ENR_ROUTES_H
#define ENR_ROUTES_H

#include "http.h"
#include "lib/auth.h"
#include "lib/query.h"

/* Client key scopes (bit set, lib/auth.h). */
#define SCOPE_ENRICH  AUTH_SCOPE_ENRICH
#define SCOPE_ENQUEUE AUTH_SCOPE_ENQUEUE
#define SCOPE_ADMIN   AUTH_SCOPE_ADMIN
#define SCOPE_METRICS AUTH_SCOPE_METRICS
#define SCOPE_SEARCH  AUTH_SCOPE_SEARCH

typedef enum enr_err (*route_handler)(struct http_req *r);

struct route {
	const char *method;
	const char *pattern;
	route_handler handler;
	int endpoint;    /* enum cfg_endpoint_id whose toggle applies, or -1 */
	unsigned scope;  /* a key needs one of these scope bits; 0 = open to anyone */
	unsigned unmetered; /* a key holding one of these bits skips admission */
	int records;     /* records counted against the quotas at admission */
	const struct qs_param *params; /* the query parameters it takes (NULL: none) */
	size_t nparams;
};

/* Register metrics families; call once before serving. */
void route_init(void);

/* Serve one request that http_req_begin() prepared. Thread-safe. */
void route_dispatch(struct http_req *r);

/* Admission for the authenticated account of r: take request_cost tokens
 * and count records against the quotas; sets the RateLimit headers (and
 * Retry-After on 429).  ENR_E_RATE_LIMITED / ENR_E_QUOTA when refused;
 * *records_fit (may be NULL) says how many records would have fitted. */
enum enr_err route_admit(struct http_req *r, int request_cost, int64_t records,
			 int64_t *records_fit);

/* Handlers (cgi/h_*.c). */
enum enr_err h_health(struct http_req *r);
enum enr_err h_health_ready(struct http_req *r);
enum enr_err h_metrics(struct http_req *r);
enum enr_err h_admin_usage(struct http_req *r);
enum enr_err h_admin_keys(struct http_req *r);
enum enr_err h_admin_key_revive(struct http_req *r);
enum enr_err h_admin_accounts(struct http_req *r);
enum enr_err h_admin_account_create(struct http_req *r);
enum enr_err h_admin_account_show(struct http_req *r);
enum enr_err h_admin_account_update(struct http_req *r);
enum enr_err h_admin_client_key_create(struct http_req *r);
enum enr_err h_admin_client_keys(struct http_req *r);
enum enr_err h_admin_client_key_revoke(struct http_req *r);
enum enr_err h_admin_audit(struct http_req *r);
enum enr_err h_admin_alerts(struct http_req *r);
enum enr_err h_jobs_list(struct http_req *r);
enum enr_err h_enrich(struct http_req *r);
enum enr_err h_enqueue(struct http_req *r);
enum enr_err h_job_status(struct http_req *r);
enum enr_err h_job_results(struct http_req *r);
enum enr_err h_job_retry(struct http_req *r);
enum enr_err h_job_cancel(struct http_req *r);
enum enr_err h_search_people(struct http_req *r);
enum enr_err h_search_companies(struct http_req *r);
void h_enrich_init(void);

/* POST /enrich/enqueue with {"from_search": {"cursor": ...} | {"rows": [...]},
 * "enrich", "webhook_url"} (cgi/h_search.c): *used false when the body is
 * not of that form (nothing done); otherwise in holds the submission (as
 * job_parse_json makes it), or ENR_E_INVALID with *details, or the
 * request was answered (r->responded: 403, 503, 502, 504). */
struct job_input;
enum enr_err h_from_search(struct http_req *r, struct job_input *in, json_t **details,
			   bool *used);

/* Shared by handlers with JSON bodies (cgi/h_enrich.c). */
bool http_is_json(const struct http_req *r);
bool h_read_json_body(struct http_req *r);

/* Take a place among the requests that may wait on providers (the engine's
 * max_in_flight); false: answered 503 unavailable with Retry-After.  Give
 * it back with eng_leave(app_engine()). */
bool h_engine_enter(struct http_req *r);

#endif
