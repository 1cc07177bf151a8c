/*
 * h_enrich.c - POST /enrich: one record, real time.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "lib/engine.h"
#include "lib/enrich.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/plan.h"
#include "lib/util.h"
#include "lib/waterfall.h"
#include "routes.h"

static struct mx_family *mx_enrich, *mx_fallback, *mx_total, *mx_busy;

void h_enrich_init(void)
{
	mx_enrich = mx_counter("enrichd_enrich_requests_total",
			       "POST /enrich answers by status (complete, partial, not_found, incomplete, unavailable).");
	mx_fallback = mx_counter("enrichd_enrich_fallback_total",
				 "Answers completed by the configured fallback, by kind.");
	mx_total = mx_histogram("enrichd_enrich_duration_seconds",
				"Total time of an enrichment, providers included.", mx_latency_bounds,
				mx_latency_nbounds);
	mx_busy = mx_counter("enrichd_busy_total",
			     "Requests refused with 503 because max_in_flight requests were "
			     "waiting on providers.");
}

bool http_is_json(const struct http_req *r)
{
	return http_content_type_is(r, "application/json");
}

/* Read the body of a JSON request; answers 413/415/400 itself (returns
 * false) when it cannot. */
bool h_read_json_body(struct http_req *r)
{
	enum enr_err rc;

	if (!http_is_json(r)) {
		http_error(r, ENR_E_MEDIA_TYPE, "the body must be application/json", NULL);
		return false;
	}
	if (!http_charset_ok(r)) {
		http_error(r, ENR_E_MEDIA_TYPE, "the body must be UTF-8 (charset=utf-8)", NULL);
		return false;
	}
	rc = http_read_body(r, (size_t)r->cfg->limits.body_max_bytes);
	if (rc == ENR_E_TOO_LARGE) {
		http_error(r, rc, NULL, NULL);
		return false;
	}
	if (rc) {
		http_error(r, ENR_E_INVALID, "the request body could not be read",
			   json_pack("[{s:s, s:s}]", "field", "body", "problem", "incomplete body"));
		return false;
	}
	return true;
}

bool h_engine_enter(struct http_req *r)
{
	if (eng_enter(app_engine()))
		return true;
	mx_add(mx_busy, "", 1);
	http_set_header(r, "Retry-After", "1");
	http_error(r, ENR_E_UNAVAILABLE,
		   "too many requests are waiting on providers (max_in_flight); retry after the "
		   "time in Retry-After", NULL);
	return false;
}

static void count(const char *status)
{
	char labels[48];

	snprintf(labels, sizeof labels, "status=\"%s\"", status);
	mx_add(mx_enrich, labels, 1);
}

enum enr_err h_enrich(struct http_req *r)
{
	struct en_request req;
	struct wf_result res;
	struct wf_ctx ctx;
	json_t *details = NULL;
	enum enr_err rc;
	int64_t now_ms;

	if (!h_read_json_body(r))
		return ENR_OK;
	en_request_init(&req);
	wf_result_init(&res);
	rc = en_parse(r->body.data, r->body.len, r->cfg, app_lists(), &req, &details);
	if (rc == ENR_E_INVALID) {
		http_error(r, rc, "the request is not valid; see details", details);
		goto out;
	}
	if (rc)
		goto out;
	{
		const char *why = NULL;

		/* A lookup no configured provider could resolve costs a paid
		 * attempt and answers nothing: refused before any call. */
		if (!pl_identifiable(r->cfg, app_lists(), &req.rec, req.want, &why)) {
			http_error(r, ENR_E_INVALID, "no configured provider can look this up",
				   json_pack("[{s:s, s:s}]", "field", "body", "problem", why));
			goto out;
		}
	}

	memset(&ctx, 0, sizeof ctx);
	ctx.store = app_store();
	ctx.cfg = r->cfg;
	ctx.pctx = app_prov_ctx();
	ctx.endpoint = CFG_EP_ENRICH;
	ctx.deadline_mono_ms = util_deadline_in(r->cfg->endpoints[CFG_EP_ENRICH].deadline_ms);
	ctx.account_id = r->account_id;
	if (!h_engine_enter(r)) {
		count("busy");
		goto out;
	}
	rc = wf_run(&ctx, &req.rec, req.want, &res);
	eng_leave(app_engine());
	if (rc)
		goto out;

	/* The account's credit budget refused the first paid lookup: nothing
	 * was bought, the client waits for the budget's reset. */
	if (res.budget_exceeded && res.paid_asked == 0) {
		char ra[24];
		int64_t secs;

		now_ms = util_now_ms();
		secs = res.budget_until_ms > now_ms ? (res.budget_until_ms - now_ms + 999) / 1000 : 60;
		snprintf(ra, sizeof ra, "%lld", (long long)(secs > 0 ? secs : 1));
		http_set_header(r, "Retry-After", ra);
		count("budget_exceeded");
		http_error(r, ENR_E_BUDGET,
			   "the account's credit budget is spent; retry after the time in "
			   "Retry-After, when it resets", NULL);
		goto out;
	}

	/* No real provider could answer: the configured fallback decides. */
	if (res.paid_asked == 0 && (res.paid_unavailable > 0 || res.paid_failed > 0) &&
	    r->cfg->endpoints[CFG_EP_ENRICH].fallback == CFG_FALLBACK_MOCK) {
		rc = wf_fallback_mock(&ctx, &req.rec, &res);
		if (rc)
			goto out;
		mx_add(mx_fallback, "kind=\"mock\"", 1);
	} else if (wf_none_available(&res)) {
		char ra[24];
		int64_t secs = 60;

		now_ms = util_now_ms();
		if (res.comes_back_ms > now_ms)
			secs = (res.comes_back_ms - now_ms + 999) / 1000;
		snprintf(ra, sizeof ra, "%lld", (long long)(secs > 0 ? secs : 1));
		http_set_header(r, "Retry-After", ra);
		count("unavailable");
		http_error(r, ENR_E_UNAVAILABLE,
			   "no provider can be asked right now: every key is cooling down, "
			   "exhausted or invalid; retry after the time in Retry-After",
			   NULL);
		goto out;
	}
	if (res.credits > 0) {
		enum enr_err crc = adm_add_credits(app_admission(), r->account_id, res.credits,
						   util_now_ms());

		/* The answer is paid for and goes out; the usage row is short. */
		if (crc)
			log_error("enrich", "%d credits spent for account %s not counted: %s",
				  res.credits, r->account_name, enr_strerror(crc));
	}
	/* Written straight into the answer's buffer: no tree of JSON values. */
	buf_reset(&r->out);
	rc = en_response(&res, r->rid, (util_mono_us() - r->start_us) / 1000, &r->out);
	if (rc == ENR_OK)
		rc = buf_putc(&r->out, '\n');
	if (rc)
		goto out;
	count(wf_status_names[res.status]);
	mx_observe(mx_total, "", (double)(util_mono_us() - r->start_us) / 1e6);
	http_send(r, 200, "application/json", r->out.data, r->out.len);
out:
	wf_result_release(&res);
	en_request_release(&req);
	return rc;
}
