/*
 * search_run.c - the search planner (lib/search.h, srch_run and
 * srch_collect): which provider is asked for a page, from the cache or
 * through the key pool, what it may cost, and what the answer says.
 *
 * A search page is paid per result at most providers (docs/providers.md,
 * "Bulk and search calls"), so the planner asks one provider at a time for
 * no more than the client's limit, follows a provider's token only when
 * the client sends the cursor of the next page, keeps every page it buys
 * in the cache, and goes to the next provider of the list only when one
 * could not answer (no usable key, failures, a refused request).
 */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "cache.h"
#include "co.h"
#include "log.h"
#include "metrics.h"
#include "rotation.h"
#include "util.h"

const char *const srch_status_names[SRCH__MAX] = {
	[SRCH_ANSWERED] = "answered",
	[SRCH_NO_PROVIDER] = "no_provider",
	[SRCH_NOT_APPLICABLE] = "not_applicable",
	[SRCH_CURSOR_GONE] = "cursor_provider_gone",
	[SRCH_UNAVAILABLE] = "unavailable",
	[SRCH_FAILED] = "upstream_failed",
	[SRCH_DEADLINE] = "upstream_timeout",
	[SRCH_BUDGET] = "budget_exceeded",
};

static struct mx_family *mx_searches, *mx_pages, *mx_results, *mx_credits;

void srch_init(void)
{
	mx_searches = mx_counter("enrichd_search_requests_total",
				 "Searches answered, by kind and outcome (complete, incomplete, or why "
				 "there was no page).");
	mx_pages = mx_counter("enrichd_search_provider_pages_total",
			      "Search pages asked of a provider, by kind, provider and outcome "
			      "(answered, cached, no_usable_key, transient, timeout, rejected, "
			      "deadline, budget_exceeded).");
	mx_results = mx_counter("enrichd_search_results_total",
				"Search results returned to clients, by kind and provider.");
	mx_credits = mx_counter("enrichd_search_credits_total",
				"Credits spent on search pages, by kind and provider.");
}

static void count_page(enum prov_search_kind k, const char *provider, const char *outcome)
{
	char labels[LIM_METRIC_LABELS_MAX], pv[LIM_NAME_MAX * 2 + 1];

	mx_label(provider, pv, sizeof pv);
	snprintf(labels, sizeof labels, "kind=\"%s\",provider=\"%s\",outcome=\"%s\"",
		 prov_search_kind_names[k], pv, outcome);
	mx_add(mx_pages, labels, 1);
}

void srch_count(enum prov_search_kind kind, const struct srch_result *r)
{
	char labels[LIM_METRIC_LABELS_MAX], pv[LIM_NAME_MAX * 2 + 1];
	const char *status = r->status != SRCH_ANSWERED ? srch_status_names[r->status]
			     : r->nerrors > 0 || r->nskipped > 0 ? "incomplete"
								   : "complete";

	snprintf(labels, sizeof labels, "kind=\"%s\",status=\"%s\"", prov_search_kind_names[kind],
		 status);
	mx_add(mx_searches, labels, 1);
	if (r->status != SRCH_ANSWERED)
		return;
	mx_label(r->source, pv, sizeof pv);
	snprintf(labels, sizeof labels, "kind=\"%s\",provider=\"%s\"", prov_search_kind_names[kind],
		 pv);
	mx_add(mx_results, labels, (double)r->page.n);
	if (r->credits > 0)
		mx_add(mx_credits, labels, (double)r->credits);
}

void srch_result_init(struct srch_result *r)
{
	memset(r, 0, sizeof *r);
	prov_page_init(&r->page);
}

void srch_result_release(struct srch_result *r)
{
	prov_page_release(&r->page);
	free(r->next_cursor);
	free(r->page_cursor);
	srch_result_init(r);
}

/* ---- the client's credit budget -------------------------------------------
 *
 * The most a page can cost (its limit times the provider's credits per
 * record) is held on the client account's budgets (lib/budget.h) before
 * the call and settled with what the provider charged after it, so
 * concurrent searches never spend more than the budget holds; the key's
 * own budget is held by the key pool (rot_call_op, worst_credits).  A hold
 * outlives the search's deadline by this much, then counts for nothing. */
#define HOLD_SLACK_MS 30000

static int64_t hold_expiry(const struct srch_ctx *ctx)
{
	int64_t left = ctx->deadline_mono_ms > 0 ? co_deadline_left(ctx->deadline_mono_ms) : 60000;

	return util_now_ms() + (left > 0 ? left : 0) + HOLD_SLACK_MS;
}

/* ---- one provider ----------------------------------------------------------- */

/* A search page as a call through the key pool (lib/rotation.h). */
struct page_call {
	const struct prov_search_ops *ops;
	const struct prov_search *s;
	struct prov_page *page;
};

static enum enr_err pc_build(void *arg, const struct cfg_provider *p, const struct cfg_key *key,
			     struct prov_request *out)
{
	const struct page_call *c = arg;

	return c->ops->build(p, key, c->s, out);
}

static void pc_parse(void *arg, const struct cfg_provider *p, const struct prov_response *resp,
		     int64_t now_ms, struct prov_result *out)
{
	const struct page_call *c = arg;

	c->ops->parse(p, c->s, resp, now_ms, out, c->page);
}

static bool tried(const struct srch_result *r, const char *name)
{
	for (int i = 0; i < r->ntried; i++) {
		if (strcmp(r->tried[i], name) == 0)
			return true;
	}
	return false;
}

static void add_error(struct srch_result *out, const char *provider, enum wf_error_kind kind)
{
	if (out->nerrors >= WF_PROVIDERS_MAX)
		return;
	for (int i = 0; i < out->nerrors; i++) {
		if (strcmp(out->errors[i].provider, provider) == 0)
			return;
	}
	out->errors[out->nerrors].provider = provider;
	out->errors[out->nerrors].kind = kind;
	out->nerrors++;
}

/* Whether p can send every filter of req (and its cap per company). */
static bool applicable(const struct prov_search_ops *ops, const struct cfg_provider *p,
		       const struct srch_request *req)
{
	bool per_company = false;
	prov_filter_set can = ops->filters(p, req->kind, &per_company);

	if (req->per_company > 0 && !per_company)
		return false;
	for (int f = 0; f < PF__MAX; f++) {
		if (req->f.n[f] > 0 && !(can & PF_BIT(f)))
			return false;
	}
	return true;
}

/* What one provider gave: ANSWERED (out->page holds it), or why not. */
enum one { ONE_ANSWERED, ONE_NEXT, ONE_NOT_APPLICABLE, ONE_STOP };

static enum enr_err ask_one(const struct srch_ctx *ctx, const struct srch_request *req,
			    const struct cfg_provider *p, struct srch_result *out, enum one *verdict)
{
	const struct prov_ops *ops = prov_ops_find(p->kind);
	const struct prov_search_ops *sops = ops ? ops->search : NULL;
	struct prov_search s;
	struct page_call pc;
	struct rot_op op = { pc_build, NULL, pc_parse, &pc, 0, 0 };
	struct rot_ctx rctx = { ctx->store, ctx->cfg, NULL, ctx->endpoint, ctx->deadline_mono_ms };
	struct prov_result res;
	struct rot_report rep;
	struct bud_hold hold;
	struct bud_verdict bv = { .ok = true };
	unsigned char key[SRCH_KEY_LEN];
	bool cache_on = ctx->cfg->cache.enabled && ctx->cfg->cache.search_ttl_s > 0;
	int64_t now = util_now_ms(), worst;
	enum enr_err rc;
	int limit;

	*verdict = ONE_NEXT;
	if (sops == NULL || !sops->supports(p, req->kind) || !applicable(sops, p, req)) {
		*verdict = ONE_NOT_APPLICABLE;
		return ENR_OK;
	}
	limit = sops->limit_max(p, req->kind);
	if (limit > req->limit)
		limit = req->limit;
	memset(&s, 0, sizeof s);
	s.kind = req->kind;
	for (int f = 0; f < PF__MAX; f++) {
		s.f[f].v = (const char *const *)req->f.v[f];
		s.f[f].n = req->f.n[f];
	}
	s.limit = limit;
	s.per_company = req->per_company;
	s.cursor = req->prov_cursor;
	if (out->ntried < WF_PROVIDERS_MAX && !tried(out, p->name))
		util_strlcpy(out->tried[out->ntried++], p->name, sizeof out->tried[0]);
	srch_page_key(req, p->name, limit, req->prov_cursor, key);

	/* A page bought before answers again for free. */
	if (cache_on) {
		char *body = NULL;
		bool hit = false;
		int64_t expires = 0;
		int credits = 0;

		rc = st_cache_get(ctx->store, key, now, &hit, &body, &expires);
		if (rc == ENR_OK) {
			rc = srch_page_load(body, &out->page, &credits);
			free(body);
			if (rc == ENR_OK) {
				/* The call this page cost when it was bought is saved. */
				cache_saved(p->name, false, credits);
				out->cached = true;
				util_strlcpy(out->source, p->name, sizeof out->source);
				count_page(req->kind, p->name, "cached");
				*verdict = ONE_ANSWERED;
				return ENR_OK;
			}
			if (rc != ENR_E_INVALID)
				return rc;
			/* An unreadable entry is as good as none: it is rewritten. */
		} else if (rc != ENR_E_NOT_FOUND) {
			return rc;
		}
	}

	/* The most this page can cost, held on the client's budget first. */
	worst = sops->cost(p, req->kind, limit);
	memset(&hold, 0, sizeof hold);
	if (ctx->account_id > 0 && worst > 0) {
		rc = bud_reserve_account(ctx->store, ctx->cfg, ctx->account_id, worst, util_now_ms(),
					 hold_expiry(ctx), &hold, &bv);
		if (rc)
			return rc;
	}
	if (!bv.ok) {
		out->status = SRCH_BUDGET;
		out->budget_until_ms = bv.until_ms;
		/* Results per credit: how large a page would still fit. */
		out->budget_fits = worst > 0 ? (int)(bv.fits * limit / worst) : 0;
		count_page(req->kind, p->name, "budget_exceeded");
		*verdict = ONE_STOP;
		return ENR_OK;
	}
	pc.ops = sops;
	pc.s = &s;
	pc.page = &out->page;
	op.worst_credits = worst;
	op.unit_credits = sops->cost(p, req->kind, 1);
	prov_result_init(&res);
	rc = rot_call_op(&rctx, p, &op, &res, &rep);
	bud_settle(ctx->store, &hold, rc == ENR_OK && rep.status == ROT_ANSWERED ? res.credits : 0);
	out->calls += rep.calls;
	if (rc) {
		prov_result_release(&res);
		return rc;
	}
	switch (rep.status) {
	case ROT_ANSWERED:
		out->credits += res.credits > 0 ? res.credits : 0;
		util_strlcpy(out->source, p->name, sizeof out->source);
		count_page(req->kind, p->name, "answered");
		if (cache_on) {
			char *body = srch_page_dump(&out->page, res.credits);
			enum enr_err crc = body ? st_cache_put(ctx->store, key, p->name,
							       out->page.n > 0, body,
							       now + ctx->cfg->cache.search_ttl_s * 1000)
						: ENR_E_NOMEM;

			/* The page is paid for and goes out; the next ask pays again. */
			if (crc)
				log_warn("search", "%s page not cached: %s", p->name, enr_strerror(crc));
			free(body);
		}
		*verdict = ONE_ANSWERED;
		break;
	case ROT_NO_KEY:
		if (out->nskipped < WF_PROVIDERS_MAX)
			util_strlcpy(out->skipped[out->nskipped++], p->name, sizeof out->skipped[0]);
		add_error(out, p->name, WF_ERR_NO_KEY);
		if (rep.comes_back_ms > 0 &&
		    (out->comes_back_ms == 0 || rep.comes_back_ms < out->comes_back_ms))
			out->comes_back_ms = rep.comes_back_ms;
		count_page(req->kind, p->name, "no_usable_key");
		break;
	case ROT_REJECTED:
		add_error(out, p->name, WF_ERR_REJECTED);
		count_page(req->kind, p->name, "rejected");
		break;
	case ROT_FAILED:
		add_error(out, p->name, rep.timed_out ? WF_ERR_TIMEOUT : WF_ERR_TRANSIENT);
		count_page(req->kind, p->name, rep.timed_out ? "timeout" : "transient");
		break;
	case ROT_DEADLINE:
		add_error(out, p->name, WF_ERR_DEADLINE);
		count_page(req->kind, p->name, "deadline");
		*verdict = ONE_STOP;
		break;
	case ROT_NOT_APPLICABLE:
	default:
		*verdict = ONE_NOT_APPLICABLE;
		break;
	}
	if (*verdict != ONE_ANSWERED)
		prov_page_release(&out->page);
	prov_result_release(&res);
	return ENR_OK;
}

/* The status of a search no provider answered. */
static enum srch_status no_page(const struct srch_result *out, int asked, bool stopped)
{
	bool failed = false, timeout = false;

	if (out->status == SRCH_BUDGET)
		return SRCH_BUDGET;
	if (asked == 0)
		return SRCH_NOT_APPLICABLE;
	for (int i = 0; i < out->nerrors; i++) {
		switch (out->errors[i].kind) {
		case WF_ERR_NO_KEY:
			break;
		case WF_ERR_TIMEOUT:
		case WF_ERR_DEADLINE:
			timeout = true;
			break;
		default:
			failed = true;
			break;
		}
	}
	if (stopped || (timeout && !failed))
		return SRCH_DEADLINE;
	if (failed || timeout)
		return SRCH_FAILED;
	return SRCH_UNAVAILABLE;
}

enum enr_err srch_run(const struct srch_ctx *ctx, const struct srch_request *req,
		      struct srch_result *out)
{
	const struct cfg_list *list = req->kind == PROV_SEARCH_PEOPLE ? &ctx->cfg->search.people
								     : &ctx->cfg->search.companies;
	int asked = 0;
	bool stopped = false, answered = false;
	enum enr_err rc = ENR_OK;

	srch_result_release(out);
	out->limit = req->limit;
	if (req->has_cursor) {
		bool in_list = false;

		for (size_t i = 0; i < list->n; i++)
			in_list = in_list || strcmp(list->v[i], req->provider) == 0;
		/* Taken out of the list: no more calls to it, its cursors included. */
		if (!in_list) {
			out->status = SRCH_CURSOR_GONE;
			return ENR_OK;
		}
	}
	if (list->n == 0) {
		out->status = SRCH_NO_PROVIDER;
		return ENR_OK;
	}
	for (size_t i = 0; i < list->n && !answered && !stopped; i++) {
		const struct cfg_provider *p = cfg_provider_find(ctx->cfg, list->v[i]);
		enum one v;

		/* A cursor's next page comes from the provider of its first. */
		if (req->has_cursor && strcmp(list->v[i], req->provider) != 0)
			continue;
		if (p == NULL || !p->enabled)
			continue;
		rc = ask_one(ctx, req, p, out, &v);
		if (rc)
			return rc;
		if (v != ONE_NOT_APPLICABLE)
			asked++;
		answered = v == ONE_ANSWERED;
		stopped = v == ONE_STOP;
	}
	if (!answered) {
		out->status = no_page(out, asked, stopped && out->status != SRCH_BUDGET);
		return ENR_OK;
	}
	out->status = SRCH_ANSWERED;
	if (out->page.next_cursor) {
		rc = srch_cursor_make(ctx->key, req, out->source, out->page.next_cursor, req->limit,
				      req->offset + (int64_t)out->page.n, util_now_ms() / 1000,
				      &out->next_cursor);
		if (rc)
			return rc;
	}
	return srch_cursor_make(ctx->key, req, out->source, req->prov_cursor, req->limit, req->offset,
				util_now_ms() / 1000, &out->page_cursor);
}

enum enr_err srch_collect(const struct srch_ctx *ctx, struct srch_request *req, int max_records,
			  int max_pages, json_t *rows, struct srch_result *out, int *credits,
			  int *pages)
{
	enum enr_err rc = ENR_OK;

	*credits = 0;
	*pages = 0;
	while (*pages < max_pages && json_array_size(rows) < (size_t)max_records) {
		size_t left;

		rc = srch_run(ctx, req, out);
		if (rc || out->status != SRCH_ANSWERED)
			break;
		(*pages)++;
		*credits += out->credits;
		for (size_t i = 0; i < out->page.n && json_array_size(rows) < (size_t)max_records; i++) {
			json_t *rec = srch_record_json(&out->page.rec[i], out->source);
			json_t *ids = rec ? srch_row_identifiers(rec) : NULL;

			json_decref(rec);
			if (ids == NULL || json_array_append_new(rows, ids)) {
				rc = ENR_E_NOMEM;
				goto out;
			}
		}
		if (out->page.next_cursor == NULL)
			break;
		/* The next page, of the same provider, no bigger than what is
		 * still wanted. */
		free(req->prov_cursor);
		req->prov_cursor = strdup(out->page.next_cursor);
		if (req->prov_cursor == NULL) {
			rc = ENR_E_NOMEM;
			break;
		}
		req->has_cursor = true;
		util_strlcpy(req->provider, out->source, sizeof req->provider);
		req->offset += (int64_t)out->page.n;
		left = (size_t)max_records - json_array_size(rows);
		if (left < (size_t)req->limit)
			req->limit = (int)left;
	}
out:
	return rc;
}
