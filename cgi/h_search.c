/*
 * h_search.c - POST /search/people and POST /search/companies, and the
 * from_search form of POST /enrich/enqueue (a batch made of a search's
 * results).
 *
 * A search counts the records it asks for (its limit) against the
 * account's record quota once the body is valid, and gives back what the
 * page did not fill: a page of N results counts N records.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "lib/ascii.h"
#include "lib/engine.h"
#include "lib/jobs.h"
#include "lib/json_path.h"
#include "lib/log.h"
#include "lib/search.h"
#include "lib/util.h"
#include "routes.h"

static enum cfg_endpoint_id endpoint_of(enum prov_search_kind k)
{
	return k == PROV_SEARCH_PEOPLE ? CFG_EP_SEARCH_PEOPLE : CFG_EP_SEARCH_COMPANIES;
}

static void set_retry_after(struct http_req *r, int64_t at_ms)
{
	char ra[24];
	int64_t now = util_now_ms(), secs = 60;

	if (at_ms > now)
		secs = (at_ms - now + 999) / 1000;
	snprintf(ra, sizeof ra, "%lld", (long long)(secs > 0 ? secs : 1));
	http_set_header(r, "Retry-After", ra);
}

/* "pdl: transient; surfe: no_usable_key" for an error message. */
static void errors_text(const struct srch_result *res, char *out, size_t outsz)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < res->nerrors && o < outsz; i++) {
		int w = snprintf(out + o, outsz - o, "%s%s: %s", i ? "; " : "",
				 res->errors[i].provider, wf_error_names[res->errors[i].kind]);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static bool answer_failure(struct http_req *r, enum prov_search_kind kind, const struct srch_result *res)
{
	char msg[512], errs[320];

	errors_text(res, errs, sizeof errs);
	switch (res->status) {
	case SRCH_ANSWERED:
		return false;
	case SRCH_NO_PROVIDER:
		snprintf(msg, sizeof msg, "no provider is configured for %s search (search.%s)",
			 kind == PROV_SEARCH_PEOPLE ? "people" : "company", prov_search_kind_names[kind]);
		http_error(r, ENR_E_UNAVAILABLE, msg, NULL);
		break;
	case SRCH_NOT_APPLICABLE:
		http_error(r, ENR_E_INVALID, "the request is not valid; see details",
			   json_pack("[{s:s, s:s}]", "field", "body", "problem",
				     "no configured provider can search by these filters"));
		break;
	case SRCH_CURSOR_GONE:
		http_error(r, ENR_E_INVALID, "the request is not valid; see details",
			   json_pack("[{s:s, s:s}]", "field", "cursor", "problem",
				     "its provider no longer answers this search; start the search "
				     "again"));
		break;
	case SRCH_UNAVAILABLE:
		set_retry_after(r, res->comes_back_ms);
		http_error(r, ENR_E_UNAVAILABLE,
			   "no provider can be asked right now: every key is cooling down, exhausted "
			   "or invalid; retry after the time in Retry-After",
			   NULL);
		break;
	case SRCH_DEADLINE:
		snprintf(msg, sizeof msg, "no provider answered in time (%s)", errs);
		http_error(r, ENR_E_TIMEOUT, msg, NULL);
		break;
	case SRCH_BUDGET:
		set_retry_after(r, res->budget_until_ms);
		/* fits: the largest limit the budget would take now (0: wait
		 * for the reset in Retry-After). */
		http_error(r, ENR_E_BUDGET, "the account's credit budget cannot pay for this page; "
					   "ask for fewer results or retry after the time in "
					   "Retry-After, when it resets",
			   json_pack("[{s:s, s:s, s:i}]", "field", "limit", "problem",
				     "over the credit budget", "fits", res->budget_fits));
		break;
	case SRCH_FAILED:
	default:
		snprintf(msg, sizeof msg, "no provider answered the search (%s)", errs);
		http_error(r, ENR_E_UPSTREAM, msg, NULL);
		break;
	}
	return true;
}

static void make_ctx(struct http_req *r, enum prov_search_kind kind, const unsigned char *key,
		  struct srch_ctx *ctx)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->store = app_store();
	ctx->cfg = r->cfg;
	ctx->endpoint = endpoint_of(kind);
	ctx->deadline_mono_ms = util_deadline_in(r->cfg->endpoints[ctx->endpoint].deadline_ms);
	ctx->account_id = r->account_id;
	ctx->key = key;
}

static void charge(struct http_req *r, int credits)
{
	enum enr_err rc;

	if (credits <= 0)
		return;
	rc = adm_add_credits(app_admission(), r->account_id, credits, util_now_ms());
	/* The page is paid for and goes out; the usage row is short. */
	if (rc)
		log_error("search", "%d credits spent for account %s not counted: %s", credits,
			  r->account_name, enr_strerror(rc));
}

/* Give back records counted for a page that did not fill them. */
static void refund(struct http_req *r, int64_t n)
{
	enum enr_err rc;

	if (n <= 0)
		return;
	rc = adm_refund(app_admission(), r->account_id, &r->limits, n, util_now_ms());
	if (rc)
		log_warn("search", "%lld records of account %s not given back to the quota: %s",
			 (long long)n, r->account_name, enr_strerror(rc));
}

static enum enr_err search(struct http_req *r, enum prov_search_kind kind)
{
	unsigned char key[SRCH_KEY_LEN];
	struct srch_request req;
	struct srch_result res;
	struct srch_ctx ctx;
	json_t *details = NULL, *body;
	int64_t fit = 0;
	enum enr_err rc;

	if (!h_read_json_body(r))
		return ENR_OK;
	srch_request_init(&req);
	srch_result_init(&res);
	srch_cursor_key(r->cfg, key);
	rc = srch_parse(r->body.data, r->body.len, kind, r->cfg, key, util_now_ms() / 1000, &req,
			&details);
	if (rc == ENR_E_INVALID) {
		http_error(r, rc, "the request is not valid; see details", details);
		rc = ENR_OK;
		goto out;
	}
	if (rc)
		goto out;
	/* The page asked for against the record quota, up front. */
	rc = route_admit(r, 0, req.limit, &fit);
	if (rc == ENR_E_QUOTA) {
		char msg[160];

		snprintf(msg, sizeof msg,
			 "the search asks for %d records; %lld fit in the account's quota now",
			 req.limit, (long long)fit);
		http_error(r, rc, msg,
			   json_pack("[{s:s, s:s, s:I}]", "field", "limit", "problem",
				     "over the record quota", "fits", (json_int_t)fit));
		rc = ENR_OK;
		goto out;
	}
	if (rc)
		goto out;
	make_ctx(r, kind, key, &ctx);
	if (!h_engine_enter(r)) {
		refund(r, req.limit);
		goto out;
	}
	rc = srch_run(&ctx, &req, &res);
	eng_leave(app_engine());
	if (rc) {
		refund(r, req.limit);
		goto out;
	}
	charge(r, res.credits);
	srch_count(kind, &res);
	refund(r, req.limit - (int64_t)(res.status == SRCH_ANSWERED ? res.page.n : 0));
	if (answer_failure(r, kind, &res))
		goto out;
	body = srch_response(&res, r->rid, (util_mono_us() - r->start_us) / 1000);
	if (body == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	http_json(r, 200, body);
out:
	explicit_bzero(key, sizeof key);
	srch_result_release(&res);
	srch_request_release(&req);
	return rc;
}

enum enr_err h_search_people(struct http_req *r)
{
	return search(r, PROV_SEARCH_PEOPLE);
}

enum enr_err h_search_companies(struct http_req *r)
{
	return search(r, PROV_SEARCH_COMPANIES);
}

/* ---- POST /enrich/enqueue {"from_search": ...} ------------------------------ */

/* Client bytes in a detail as printable ASCII. */
static void detail(json_t **details, const char *field, const char *problem)
{
	char f[LIM_NAME_MAX + 1], p[320];

	ascii_printable_copy(field, strlen(field), f, sizeof f);
	ascii_printable_copy(problem ? problem : "not valid", strlen(problem ? problem : "not valid"),
			     p, sizeof p);
	if (*details == NULL)
		*details = json_array();
	json_array_append_new(*details, json_pack("{s:s, s:s}", "field", f, "problem", p));
}

/* The rows of the search page (and those after it) a cursor names. */
static enum enr_err rows_of_cursor(struct http_req *r, const json_t *cursor, const json_t *max,
				   json_t *rows, json_t **details)
{
	unsigned char key[SRCH_KEY_LEN];
	enum prov_search_kind kind;
	struct srch_request req;
	struct srch_result res;
	struct srch_ctx ctx;
	json_t *q = NULL, *d = NULL;
	int credits = 0, pages = 0, cap;
	enum enr_err rc = ENR_OK;

	srch_request_init(&req);
	srch_result_init(&res);
	if (!json_is_string(cursor) ||
	    !srch_cursor_kind(json_string_value(cursor), json_string_length(cursor), &kind)) {
		detail(details, "from_search.cursor", "must be a cursor a search answered");
		rc = ENR_E_INVALID;
		goto out;
	}
	/* The search's own rules: its scope and its switch. */
	if (!(r->scopes & SCOPE_SEARCH)) {
		http_error(r, ENR_E_FORBIDDEN, "from_search needs a key with the search scope", NULL);
		goto out;
	}
	if (!r->cfg->endpoints[endpoint_of(kind)].enabled) {
		http_error(r, ENR_E_DISABLED, "this search is disabled by configuration", NULL);
		goto out;
	}
	srch_cursor_key(r->cfg, key);
	q = json_pack("{s:O}", "cursor", cursor);
	if (q == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	rc = srch_parse_json(q, kind, r->cfg, key, util_now_ms() / 1000, &req, &d);
	if (rc == ENR_E_INVALID) {
		detail(details, "from_search.cursor",
		       json_string_value(json_object_get(json_array_get(d, 0), "problem")));
		goto out;
	}
	if (rc)
		goto out;
	/* Without max_records: the page the cursor names, nothing more. */
	cap = max ? (int)json_integer_value(max) : req.limit;
	make_ctx(r, kind, key, &ctx);
	rc = srch_collect(&ctx, &req, cap, max ? LIM_SEARCH_ENQUEUE_PAGES : 1, rows, &res,
			  &credits, &pages);
	charge(r, credits);
	if (rc)
		goto out;
	srch_count(kind, &res);
	log_info("jobs", "from_search: %zu rows from %d %s pages (%d credits), account %s",
		 json_array_size(rows), pages, prov_search_kind_names[kind], credits,
		 r->account_name);
	if (json_array_size(rows) == 0 && answer_failure(r, kind, &res))
		goto out;
	if (json_array_size(rows) == 0) {
		detail(details, "from_search.cursor", "the search found no one on that page");
		rc = ENR_E_INVALID;
	}
out:
	explicit_bzero(key, sizeof key);
	json_decref(q);
	json_decref(d);
	srch_result_release(&res);
	srch_request_release(&req);
	return rc;
}

enum enr_err h_from_search(struct http_req *r, struct job_input *in, json_t **details, bool *used)
{
	json_t *j = NULL, *fs, *v, *rows = NULL, *sub = NULL;
	const char *name;
	char *text = NULL;
	enum enr_err rc = ENR_OK;

	*used = false;
	/* Too deep, not JSON, no from_search: the plain submission rules
	 * answer. */
	if (!jp_depth_ok(r->body.data, r->body.len, LIM_JSON_DEPTH_MAX))
		goto out;
	j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, NULL);
	fs = json_object_get(j, "from_search");
	if (fs == NULL)
		goto out;
	*used = true;
	json_object_foreach(j, name, v) {
		if (strcmp(name, "from_search") && strcmp(name, "enrich") && strcmp(name, "webhook_url")) {
			detail(details, name, "unknown member (a from_search submission takes from_search, "
			       "enrich and webhook_url)");
			rc = ENR_E_INVALID;
		}
	}
	if (!json_is_object(fs)) {
		detail(details, "from_search", "must be an object: {\"cursor\": ...} or {\"rows\": [...]}");
		rc = ENR_E_INVALID;
	}
	if (rc)
		goto out;
	json_object_foreach(fs, name, v) {
		if (strcmp(name, "cursor") && strcmp(name, "rows") && strcmp(name, "max_records")) {
			detail(details, "from_search", "takes cursor (with max_records) or rows");
			rc = ENR_E_INVALID;
		}
	}
	{
		json_t *cursor = json_object_get(fs, "cursor"), *given = json_object_get(fs, "rows"),
		       *max = json_object_get(fs, "max_records");

		if ((cursor == NULL) == (given == NULL)) {
			detail(details, "from_search", "needs exactly one of cursor and rows");
			rc = ENR_E_INVALID;
		}
		int top = r->cfg->search.enqueue_max_records < r->cfg->limits.records_per_job_max
				  ? r->cfg->search.enqueue_max_records
				  : r->cfg->limits.records_per_job_max;

		if (max && (given || !json_is_integer(max) || json_integer_value(max) < 1 ||
			    json_integer_value(max) > top)) {
			char what[128];

			snprintf(what, sizeof what, "must be an integer 1..%d "
				 "(search.enqueue_max_records), with a cursor", top);
			detail(details, "from_search.max_records", what);
			rc = ENR_E_INVALID;
		}
		if (given && (!json_is_array(given) || json_array_size(given) == 0)) {
			detail(details, "from_search.rows", "must be a non-empty array of search results");
			rc = ENR_E_INVALID;
		}
		if (rc)
			goto out;
		rows = json_array();
		if (rows == NULL) {
			rc = ENR_E_NOMEM;
			goto out;
		}
		if (cursor) {
			rc = rows_of_cursor(r, cursor, max, rows, details);
			if (rc || r->responded)
				goto out;
		} else {
			size_t i;

			/* Results as a search answered them: their identifiers; a row
			 * that is not an object is refused as a record is. */
			json_array_foreach(given, i, v) {
				json_t *ids = srch_row_identifiers(v);

				if (json_array_append_new(rows, ids ? ids : json_incref(v))) {
					rc = ENR_E_NOMEM;
					goto out;
				}
			}
		}
	}
	/* From here on the submission is a plain one with these records. */
	sub = json_pack("{s:O}", "records", rows);
	if (sub && (v = json_object_get(j, "enrich")) != NULL)
		json_object_set(sub, "enrich", v);
	if (sub && (v = json_object_get(j, "webhook_url")) != NULL)
		json_object_set(sub, "webhook_url", v);
	text = sub ? json_dumps(sub, JSON_COMPACT) : NULL;
	if (text == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	rc = job_parse_json(text, strlen(text), r->cfg, app_lists(), in, details);
out:
	free(text);
	json_decref(sub);
	json_decref(rows);
	json_decref(j);
	return rc;
}
