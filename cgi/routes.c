/*
 * routes.c - route table, matching and the per-request pipeline:
 * match (404/405) -> endpoint toggle (503) -> authentication (401/403)
 * -> admission: rate limit and quotas (429) -> handler -> error body,
 * access log and metrics.
 */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "lib/admission.h"
#include "lib/auth.h"
#include "lib/co.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/ratelimit.h"
#include "lib/router.h"
#include "lib/util.h"

/* Query parameters of each route: name, most decoded bytes, validator. */
static const struct qs_range usage_days = { 1, 366 };
static const char *const result_formats[] = { "csv", "ndjson", NULL };

static const char *const booleans[] = { "true", "false", NULL };
static const struct qs_param enqueue_params[] = {
	/* CSV bodies only; 19 field names with commas fit in 512 bytes. */
	{ "enrich", 512, qs_valid_fields, NULL },
	/* true: what the batch would cost; nothing is created or spent. */
	{ "dry_run", 8, qs_valid_choice, booleans },
};
static const char *const result_formulas[] = { "neutralise", "raw", NULL };
static const struct qs_param results_params[] = {
	{ "format", 16, qs_valid_choice, result_formats },
	/* CSV: cells that start like a formula get a quote, unless raw. */
	{ "formulas", 16, qs_valid_choice, result_formulas },
};
static const struct qs_param usage_params[] = {
	{ "account", LIM_NAME_MAX, qs_valid_name, NULL },
	{ "days", 3, qs_valid_int, &usage_days },
};
/* A jobs cursor: "CREATED_MS.SEQ" as next_cursor gave it. */
static bool valid_job_cursor(const char *v, size_t len, const void *arg, char *why, size_t whylen)
{
	size_t dots = 0, digits = 0;

	(void)arg;
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '.' && digits > 0 && dots == 0) {
			dots++;
			digits = 0;
		} else if (v[i] >= '0' && v[i] <= '9' && digits < 19) {
			digits++;
		} else {
			digits = 0;
			break;
		}
	}
	if (dots == 1 && digits > 0)
		return true;
	snprintf(why, whylen, "not a cursor of this listing (use next_cursor as given)");
	return false;
}

static const struct qs_range page_limit = { 1, 100 };
static const struct qs_range log_limit = { 1, 200 };
static const struct qs_range log_cursor = { 1, INT64_MAX };
static const struct qs_param jobs_list_params[] = {
	{ "limit", 3, qs_valid_int, &page_limit },
	{ "cursor", 40, valid_job_cursor, NULL },
	{ "account", LIM_NAME_MAX, qs_valid_name, NULL },
};
static const struct qs_param log_params[] = {
	{ "limit", 3, qs_valid_int, &log_limit },
	{ "cursor", 19, qs_valid_int, &log_cursor },
};
static const struct qs_param client_key_params[] = {
	{ "account", LIM_NAME_MAX, qs_valid_name, NULL },
};

#define PARAMS(t) (t), (sizeof(t) / sizeof((t)[0]))

/* Records a request counts against the account's quotas at admission.
 * Batch submissions count their records in the handler, once the body has
 * been read. */
#define ROUTE(m, p, h, ep, scope, recs) { m, p, h, ep, scope, 0, recs, NULL, 0 }
#define ROUTE_Q(m, p, h, ep, scope, t) { m, p, h, ep, scope, 0, 0, PARAMS(t) }
#define ADMIN(m, p, h) ROUTE(m, p, h, CFG_EP_ADMIN, SCOPE_ADMIN, 0)
#define ADMIN_Q(m, p, h, t) ROUTE_Q(m, p, h, CFG_EP_ADMIN, SCOPE_ADMIN, t)
/* A job is its account's (enqueue scope); an admin key reaches every account's. */
#define JOBS_SCOPES (SCOPE_ENQUEUE | SCOPE_ADMIN)
static const struct route routes[] = {
	ROUTE("GET", "/health", h_health, -1, 0, 0),
	ROUTE("GET", "/health/ready", h_health_ready, -1, 0, 0),
	/* A scraper's key (metrics scope) is not rate-limited. */
	{ "GET", "/metrics", h_metrics, CFG_EP_ADMIN, SCOPE_ADMIN | SCOPE_METRICS, SCOPE_METRICS, 0,
	  NULL, 0 },
	ROUTE("POST", "/enrich", h_enrich, CFG_EP_ENRICH, SCOPE_ENRICH, 1),
	ROUTE_Q("POST", "/enrich/enqueue", h_enqueue, CFG_EP_ENQUEUE, SCOPE_ENQUEUE, enqueue_params),
	ROUTE_Q("GET", "/enrich/jobs", h_jobs_list, CFG_EP_JOBS, JOBS_SCOPES, jobs_list_params),
	ROUTE("GET", "/enrich/jobs/{id}", h_job_status, CFG_EP_JOBS, JOBS_SCOPES, 0),
	ROUTE("DELETE", "/enrich/jobs/{id}", h_job_cancel, CFG_EP_JOBS, JOBS_SCOPES, 0),
	ROUTE_Q("GET", "/enrich/jobs/{id}/results", h_job_results, CFG_EP_JOBS, JOBS_SCOPES,
		results_params),
	ROUTE("POST", "/enrich/jobs/{id}/retry", h_job_retry, CFG_EP_JOBS, JOBS_SCOPES, 0),
	/* A search counts its limit against the record quota in the handler,
	 * once the body is read, and gives back what the page did not fill. */
	ROUTE("POST", "/search/people", h_search_people, CFG_EP_SEARCH_PEOPLE, SCOPE_SEARCH, 0),
	ROUTE("POST", "/search/companies", h_search_companies, CFG_EP_SEARCH_COMPANIES,
	      SCOPE_SEARCH, 0),
	ADMIN_Q("GET", "/admin/usage", h_admin_usage, usage_params),
	ADMIN("GET", "/admin/keys", h_admin_keys),
	ADMIN("POST", "/admin/keys/{id}/revive", h_admin_key_revive),
	ADMIN("GET", "/admin/accounts", h_admin_accounts),
	ADMIN("POST", "/admin/accounts", h_admin_account_create),
	ADMIN("GET", "/admin/accounts/{name}", h_admin_account_show),
	ADMIN("PATCH", "/admin/accounts/{name}", h_admin_account_update),
	ADMIN("POST", "/admin/accounts/{name}/keys", h_admin_client_key_create),
	ADMIN_Q("GET", "/admin/client-keys", h_admin_client_keys, client_key_params),
	ADMIN("DELETE", "/admin/client-keys/{id}", h_admin_client_key_revoke),
	ADMIN_Q("GET", "/admin/audit", h_admin_audit, log_params),
	ADMIN_Q("GET", "/admin/alerts", h_admin_alerts, log_params),
};

#define NROUTES (sizeof routes / sizeof routes[0])

static struct mx_family *mx_requests;
static struct mx_family *mx_latency;
static struct mx_family *mx_auth_failures;
static struct mx_family *mx_rejections;
static struct mx_family *mx_bucket_checks;

void route_init(void)
{
	mx_requests = mx_counter("enrichd_http_requests_total",
				 "HTTP requests answered, by route and status.");
	mx_latency = mx_histogram("enrichd_http_request_duration_seconds",
				  "Time to answer a request, by route.", mx_latency_bounds,
				  mx_latency_nbounds);
	mx_auth_failures = mx_counter("enrichd_auth_failures_total",
				      "Requests refused by authentication, by reason.");
	mx_rejections = mx_counter("enrichd_ratelimit_rejections_total",
				   "Requests refused by rate limit or quota, by account and kind.");
	h_enrich_init();
	mx_bucket_checks = mx_counter("enrichd_ratelimit_checks_total",
				      "Admission checks made against the store, by verdict.");
}

/* Match path against pattern; on success keep the {id} captures in r. */
static bool match(struct http_req *r, const char *pattern, const char *path)
{
	if (!rt_match(pattern, path, &r->match))
		return false;
	r->nparams = r->match.n;
	for (unsigned i = 0; i < r->match.n; i++)
		r->params[i] = r->match.cap[i];
	return true;
}

static const struct route *find_route(struct http_req *r, char *allow, size_t allowlen)
{
	const struct route *hit = NULL;
	size_t o = 0;

	allow[0] = '\0';
	for (size_t i = 0; i < NROUTES; i++) {
		if (!match(r, routes[i].pattern, r->path))
			continue;
		if (strcmp(routes[i].method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			hit = &routes[i];
			break;
		}
		if (!strstr(allow, routes[i].method)) {
			int n = snprintf(allow + o, allowlen - o, "%s%s", o ? ", " : "",
					 routes[i].method);

			if (n > 0 && (size_t)n < allowlen - o)
				o += (size_t)n;
		}
	}
	if (hit)
		match(r, hit->pattern, r->path); /* captures of the chosen route */
	return hit;
}

static void auth_failed(const char *reason)
{
	char labels[64];

	snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
	mx_add(mx_auth_failures, labels, 1);
}

/* Recently used keys, per thread (no lock).  An entry is good while the
 * store's authentication generation is unchanged (any key or account change
 * by any process on any host moves it; a process sees the move within
 * ST_AUTH_POLL_MS) and for at most a second (changes made to the database
 * by other means). */
#define AUTH_CACHE 16
#define AUTH_CACHE_MS 1000

struct auth_entry {
	unsigned char hash[AUTH_HASH_LEN];
	uint64_t gen;
	int64_t at_ms;
	struct st_client_key key;
};

static _Thread_local struct auth_entry auth_cache[AUTH_CACHE];
static _Thread_local unsigned auth_next;

static enum enr_err key_lookup(const unsigned char hash[AUTH_HASH_LEN], struct st_client_key *k)
{
	uint64_t gen = st_auth_generation(app_store());
	int64_t now = util_mono_ms();
	enum enr_err rc;

	if (gen != 0) {
		for (unsigned i = 0; i < AUTH_CACHE; i++) {
			struct auth_entry *e = &auth_cache[i];

			if (e->gen == gen && now - e->at_ms < AUTH_CACHE_MS &&
			    memcmp(e->hash, hash, AUTH_HASH_LEN) == 0) {
				*k = e->key;
				return ENR_OK;
			}
		}
	}
	rc = st_client_key_by_hash(app_store(), hash, k);
	if (rc == ENR_OK && gen != 0) {
		struct auth_entry *e = &auth_cache[auth_next++ % AUTH_CACHE];

		memcpy(e->hash, hash, AUTH_HASH_LEN);
		e->gen = gen;
		e->at_ms = now;
		e->key = *k;
	}
	return rc;
}

/* Every failure answers the same 401 body: a client learns nothing about
 * which keys or accounts exist.  The reason goes to the log and metrics. */
static CO_OWN_FRAME enum enr_err authenticate(struct http_req *r, const struct route *rt)
{
	char key[AUTH_KEY_LEN + 1];
	unsigned char hash[AUTH_HASH_LEN];
	struct st_client_key k;
	const char *ah = http_param(r, "HTTP_AUTHORIZATION");
	const char *xk = http_param(r, "HTTP_X_API_KEY");
	int64_t now_s = util_now_ms() / 1000;
	enum enr_err rc;

	if ((ah == NULL || !*ah) && (xk == NULL || !*xk)) {
		auth_failed("missing");
		return ENR_E_UNAUTHORIZED;
	}
	if (auth_parse_headers(ah, xk, key) != ENR_OK) {
		auth_failed("malformed");
		return ENR_E_UNAUTHORIZED;
	}
	auth_key_hash(key, AUTH_KEY_LEN, hash);
	explicit_bzero(key, sizeof key);
	rc = key_lookup(hash, &k);
	if (rc == ENR_E_NOT_FOUND) {
		auth_failed("unknown");
		return ENR_E_UNAUTHORIZED;
	}
	if (rc)
		return rc == ENR_E_UNAVAILABLE ? rc : ENR_E_UNAVAILABLE;
	if (k.revoked_at) {
		auth_failed("revoked");
		log_info("auth", "revoked key %lld (...%s) of account %s refused", (long long)k.id,
			 k.last4, k.account);
		return ENR_E_UNAUTHORIZED;
	}
	if (k.expires_at && k.expires_at <= now_s) {
		auth_failed("expired");
		log_info("auth", "expired key %lld (...%s) of account %s refused", (long long)k.id,
			 k.last4, k.account);
		return ENR_E_UNAUTHORIZED;
	}
	if ((k.scopes & rt->scope) == 0) {
		auth_failed("scope");
		return ENR_E_FORBIDDEN;
	}
	r->account_id = k.account_id;
	r->key_id = k.id;
	util_strlcpy(r->account_name, k.account, sizeof r->account_name);
	r->scopes = k.scopes;
	st_account_limits(&k.account_row, &r->cfg->accounts_default, &r->limits);
	return ENR_OK;
}

static void set_num_header(struct http_req *r, const char *name, long long v)
{
	char val[21];

	util_fmt_i64(v, val);
	http_set_header(r, name, val);
}

enum enr_err route_admit(struct http_req *r, int request_cost, int64_t records,
			 int64_t *records_fit)
{
	struct adm_res res;
	const struct cfg_account_limits *l = &r->limits;
	char val[256], labels[LIM_METRIC_LABELS_MAX], acc[LIM_NAME_MAX * 2 + 1];
	enum enr_err rc;

	rc = adm_check(app_admission(), r->account_id, l, request_cost, records, util_now_ms(), &res);
	if (rc)
		return rc;
	mx_add(mx_bucket_checks,
	       res.verdict == ADM_OK ? "verdict=\"ok\"" :
	       res.verdict == ADM_QUOTA ? "verdict=\"quota_exceeded\"" :
					       "verdict=\"rate_limited\"", 1);

	/* IETF draft-ietf-httpapi-ratelimit-headers: the request bucket and the
	 * two record quotas as policies; RateLimit reports the bucket. */
	{
		struct rl_bucket_limits bl = { l->requests_per_minute, l->burst };

		snprintf(val, sizeof val,
			 "\"requests\";q=%lld;w=%lld, \"records-hour\";q=%lld;w=3600, "
			 "\"records-day\";q=%lld;w=86400",
			 (long long)l->burst, (long long)rl_bucket_window_s(&bl),
			 (long long)l->records_per_hour, (long long)l->records_per_day);
		http_set_header(r, "RateLimit-Policy", val);
	}
	snprintf(val, sizeof val, "\"requests\";r=%lld;t=%lld", (long long)res.bucket_remaining,
		 (long long)res.bucket_reset_s);
	http_set_header(r, "RateLimit", val);
	set_num_header(r, "X-RateLimit-Limit", l->burst);
	set_num_header(r, "X-RateLimit-Remaining", res.bucket_remaining);
	set_num_header(r, "X-RateLimit-Reset", res.bucket_reset_s);
	if (records_fit)
		*records_fit = res.records_fit;
	if (res.verdict == ADM_OK)
		return ENR_OK;

	set_num_header(r, "Retry-After", res.retry_after_s > 0 ? res.retry_after_s : 1);
	mx_label(r->account_name, acc, sizeof acc);
	snprintf(labels, sizeof labels, "account=\"%s\",kind=\"%s\"", acc,
		 res.verdict == ADM_QUOTA ? "quota_exceeded" : "rate_limited");
	mx_add(mx_rejections, labels, 1);
	return res.verdict == ADM_QUOTA ? ENR_E_QUOTA : ENR_E_RATE_LIMITED;
}

static CO_OWN_FRAME void observe(struct http_req *r)
{
	char labels[LIM_METRIC_LABELS_MAX];
	char route[128];
	double secs = (double)(util_mono_us() - r->start_us) / 1e6;

	mx_label(r->route ? r->route : "unmatched", route, sizeof route);
	snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route, r->status);
	mx_add(mx_requests, labels, 1);
	snprintf(labels, sizeof labels, "route=\"%s\"", route);
	mx_observe(mx_latency, labels, secs);
	/* A client that went away got nothing: 499, as nginx logs it too. */
	log_access(r->method, r->path, co_cancelled() ? 499 : r->status, secs * 1000.0,
		   r->account_name);
}

static const char *rate_message(enum enr_err rc)
{
	if (rc == ENR_E_RATE_LIMITED)
		return "too many requests for this account; retry after the time in Retry-After";
	if (rc == ENR_E_QUOTA)
		return "the account's record quota is used up; retry after the time in Retry-After";
	if (rc == ENR_E_UNAVAILABLE)
		return "the store is unavailable";
	return NULL;
}

void route_dispatch(struct http_req *r)
{
	char allow[64];
	const struct route *rt = find_route(r, allow, sizeof allow);
	json_t *details = NULL;
	enum enr_err rc;

	if (rt == NULL) {
		if (r->path_too_long) {
			http_error(r, ENR_E_NOT_FOUND, "no such resource: the path is too long", NULL);
		} else if (allow[0]) {
			http_set_header(r, "Allow", allow);
			http_error(r, ENR_E_METHOD, NULL, NULL);
		} else {
			http_error(r, ENR_E_NOT_FOUND, NULL, NULL);
		}
		goto out;
	}
	r->route = rt->pattern;
	if (rt->endpoint >= 0 && !r->cfg->endpoints[rt->endpoint].enabled) {
		http_error(r, ENR_E_DISABLED, "this endpoint is disabled by configuration", NULL);
		goto out;
	}
	if (rt->scope) {
		rc = authenticate(r, rt);
		if (rc == ENR_OK && (r->scopes & rt->unmetered) == 0)
			rc = route_admit(r, 1, rt->records, NULL);
		if (rc) {
			http_error(r, rc, rate_message(rc), NULL);
			goto out;
		}
	}
	rc = qs_parse(r->query, rt->params, rt->nparams, &r->qs, &details);
	if (rc == ENR_E_INVALID) {
		http_error(r, rc, "the query is not valid; see details", details);
		goto out;
	}
	if (rc) {
		http_error(r, rc, NULL, NULL);
		goto out;
	}
	rc = rt->handler(r);
	if (!r->responded)
		http_error(r, rc ? rc : ENR_E_INTERNAL, NULL, NULL);
out:
	observe(r);
}
