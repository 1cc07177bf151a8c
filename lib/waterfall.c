/*
 * waterfall.c - the provider walk, the merge and the cache in front of it.
 */
#include "waterfall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"
#include "rotation.h"
#include "util.h"

const char *const wf_status_names[WF_STATUS__MAX] = {
	[WF_COMPLETE] = "complete",
	[WF_PARTIAL] = "partial",
	[WF_NOT_FOUND] = "not_found",
	[WF_INCOMPLETE] = "incomplete",
};

const char *const wf_error_names[WF_ERR__MAX] = {
	[WF_ERR_TRANSIENT] = "transient",
	[WF_ERR_TIMEOUT] = "timeout",
	[WF_ERR_REJECTED] = "rejected",
	[WF_ERR_NO_KEY] = "no_usable_key",
	[WF_ERR_DEADLINE] = "deadline",
};

/* Built-in providers need no declaration in the configuration. */
static const struct cfg_provider builtin_local = { .name = "local", .kind = "local",
						   .enabled = true };
static const struct cfg_provider builtin_mock = { .name = "mock", .kind = "mock",
						  .enabled = true };

static struct mx_family *mx_cache, *mx_depth, *mx_upstream, *mx_cache_write_failures;

void wf_init(void)
{
	static const double depth_bounds[] = { 0, 1, 2, 3, 4, 5, 6, 8, 10 };

	mx_cache = mx_counter("enrichd_cache_lookups_total",
			      "Provider answers looked up in the cache, by result.");
	mx_cache_write_failures = mx_counter("enrichd_cache_write_failures_total",
					     "Provider answers that could not be written to the "
					     "cache (asking again will pay again).");
	mx_depth = mx_histogram("enrichd_waterfall_depth",
				"Providers consulted per enrichment (cache included).", depth_bounds,
				sizeof depth_bounds / sizeof depth_bounds[0]);
	mx_upstream = mx_histogram("enrichd_waterfall_upstream_seconds",
				   "Time an enrichment spent waiting for providers.",
				   mx_latency_bounds, mx_latency_nbounds);
}

void wf_result_init(struct wf_result *r)
{
	memset(r, 0, sizeof *r);
}

void wf_result_release(struct wf_result *r)
{
	for (int f = 0; f < FLD__MAX; f++)
		free(r->value[f]);
	memset(r, 0, sizeof *r);
}

struct memo {
	const char *name;
	bool company;
	bool answered;
	struct prov_result res;
};

static const struct cfg_provider *provider_of(const struct cfg *c, const char *name)
{
	const struct cfg_provider *p = cfg_provider_find(c, name);

	if (p)
		return p;
	if (strcmp(name, "local") == 0)
		return &builtin_local;
	if (strcmp(name, "mock") == 0)
		return &builtin_mock;
	return NULL;
}

static bool is_builtin(const struct cfg_provider *p)
{
	return strcmp(p->kind, "local") == 0 || strcmp(p->kind, "mock") == 0;
}

static void add_name(char list[][LIM_NAME_MAX + 1], int *n, const char *name)
{
	for (int i = 0; i < *n; i++) {
		if (strcmp(list[i], name) == 0)
			return;
	}
	if (*n < WF_PROVIDERS_MAX)
		util_strlcpy(list[(*n)++], name, LIM_NAME_MAX + 1);
}

/* Note that provider name gave no answer (once per provider and kind). */
static void add_error(struct wf_result *out, const char *name, enum wf_error_kind kind)
{
	for (int i = 0; i < out->nerrors; i++) {
		if (out->errors[i].kind == kind && strcmp(out->errors[i].provider, name) == 0)
			return;
	}
	if (out->nerrors == WF_PROVIDERS_MAX)
		return;
	util_strlcpy(out->errors[out->nerrors].provider, name, sizeof out->errors[0].provider);
	out->errors[out->nerrors].kind = kind;
	out->nerrors++;
}

/* Ask p (live or cached) and keep the answer in m. */
static enum enr_err fetch(const struct wf_ctx *ctx, const struct cfg_provider *p,
			  const struct rec *rec, fld_set missing, struct memo *m,
			  struct wf_result *out)
{
	struct rot_ctx rc_ctx = { ctx->store, ctx->cfg, ctx->pctx, ctx->endpoint,
				  ctx->deadline_mono_ms };
	struct prov_query q;
	struct rot_report rep;
	unsigned char key[CACHE_KEY_LEN];
	bool leader = false, cacheable = ctx->cfg->cache.enabled && !is_builtin(p);
	enum enr_err rc;

	memset(&q, 0, sizeof q);
	for (int i = 0; i < ID__MAX; i++)
		q.id[i] = rec_get(rec, (enum fld_ident)i);
	q.want = missing;

	if (is_builtin(p)) {
		rc = rot_call(&rc_ctx, p, &q, &m->res, &rep);
		if (rc)
			return rc;
		add_name(out->tried, &out->ntried, p->name);
		m->answered = m->res.outcome == PROV_HIT || m->res.outcome == PROV_MISS;
		return ENR_OK;
	}

	if (cacheable) {
		rc = cache_key(p->name, m->company ? "company" : "person", rec, key);
		if (rc)
			return rc;
		if (cache_get(ctx->store, key, util_now_ms(), &m->res) == ENR_OK)
			goto from_cache;
		if (!ctx->no_calls) {
			leader = cache_flight_begin(key, ctx->deadline_mono_ms);
			/* Someone else just asked the same: their answer is in the cache. */
			if (!leader && cache_get(ctx->store, key, util_now_ms(), &m->res) == ENR_OK)
				goto from_cache;
		}
	}
	out->cache_misses++;
	mx_add(mx_cache, "result=\"miss\"", 1);
	if (ctx->no_calls) {
		add_name(out->would_call, &out->nwould_call, p->name);
		return ENR_OK;
	}
	rc = rot_call(&rc_ctx, p, &q, &m->res, &rep);
	out->calls += rep.calls;
	out->upstream_ms += rep.upstream_ms;
	if (rc == ENR_OK) {
		switch (rep.status) {
		case ROT_ANSWERED:
			add_name(out->tried, &out->ntried, p->name);
			m->answered = true;
			out->paid_asked++;
			out->credits += m->res.credits;
			if (cacheable) {
				/* "Never pay twice" rests on this write: a failure is
				 * logged and counted, and the answer still goes out. */
				enum enr_err crc = cache_put(ctx->store, ctx->cfg, key, p->name,
							     &m->res, util_now_ms());

				if (crc) {
					mx_add(mx_cache_write_failures, "", 1);
					log_error("waterfall", "%s answer not cached (%s): asking again "
						  "will call the provider again", p->name,
						  enr_strerror(crc));
				}
			}
			break;
		case ROT_NO_KEY:
			add_name(out->skipped, &out->nskipped, p->name);
			add_error(out, p->name, WF_ERR_NO_KEY);
			out->paid_unavailable++;
			if (rep.comes_back_ms > 0 &&
			    (out->comes_back_ms == 0 || rep.comes_back_ms < out->comes_back_ms))
				out->comes_back_ms = rep.comes_back_ms;
			break;
		case ROT_DEADLINE:
			add_name(out->tried, &out->ntried, p->name);
			add_error(out, p->name, WF_ERR_DEADLINE);
			out->deadline_passed = true;
			break;
		case ROT_NOT_APPLICABLE:
			/* Nothing this provider can search by: no call, nothing to say. */
			break;
		case ROT_REJECTED:
			add_name(out->tried, &out->ntried, p->name);
			add_error(out, p->name, WF_ERR_REJECTED);
			out->paid_failed++;
			break;
		default:
			add_name(out->tried, &out->ntried, p->name);
			add_error(out, p->name, rep.timed_out ? WF_ERR_TIMEOUT : WF_ERR_TRANSIENT);
			out->paid_failed++;
			break;
		}
	}
	if (leader)
		cache_flight_end(key);
	return rc;

from_cache:
	out->cache_hits++;
	mx_add(mx_cache, "result=\"hit\"", 1);
	add_name(out->tried, &out->ntried, p->name);
	out->paid_asked++;
	m->answered = true;
	if (leader)
		cache_flight_end(key);
	return ENR_OK;
}

static void merge(struct wf_result *out, const struct prov_result *res, const char *source,
		  bool mock)
{
	for (int f = 0; f < FLD__MAX; f++) {
		if (!(out->want & FLD_BIT(f)) || (out->found & FLD_BIT(f)) || res->value[f] == NULL)
			continue;
		out->value[f] = strdup(res->value[f]);
		if (out->value[f] == NULL)
			continue;
		out->confidence[f] = res->confidence[f];
		out->source[f] = source;
		out->found |= FLD_BIT(f);
		if (mock)
			out->mock = true;
	}
}

/* The status rule of waterfall.h: a failure is never a miss. */
static void set_status(struct wf_result *out)
{
	bool failed = out->paid_failed > 0 || out->paid_unavailable > 0 || out->deadline_passed;

	if (out->found == out->want)
		out->status = WF_COMPLETE;
	else if (out->found != 0)
		out->status = WF_PARTIAL;
	else
		out->status = failed ? WF_INCOMPLETE : WF_NOT_FOUND;
}

static void finish(struct wf_result *out)
{
	set_status(out);
	out->cached = out->calls == 0 && out->cache_hits > 0;
	mx_observe(mx_depth, "", out->depth);
	mx_observe(mx_upstream, "", out->upstream_ms / 1000.0);
}

enum enr_err wf_run(const struct wf_ctx *ctx, const struct rec *rec, fld_set want,
		    struct wf_result *out)
{
	struct memo memo[WF_PROVIDERS_MAX * 2];
	int nmemo = 0;
	enum enr_err rc = ENR_OK;

	out->want = want;
	for (int g = 0; g < CFG_GROUP__MAX && rc == ENR_OK; g++) {
		fld_set gwant = want & fld_group_set((enum cfg_group)g);
		const struct cfg_list *list = &ctx->cfg->waterfall[g];

		for (size_t i = 0; gwant && i < list->n && rc == ENR_OK; i++) {
			fld_set missing = gwant & ~out->found;
			const struct cfg_provider *p;
			struct memo *m = NULL;
			bool company;

			if (missing == 0)
				break;
			if (util_deadline_passed(ctx->deadline_mono_ms)) {
				/* The provider that would have been asked next could not be. */
				out->deadline_passed = true;
				add_error(out, list->v[i], WF_ERR_DEADLINE);
				goto done;
			}
			p = provider_of(ctx->cfg, list->v[i]);
			if (p == NULL || !p->enabled)
				continue;
			/* Ask for everything still missing, not only this group's: a
			 * provider is asked once and may fill other groups too. */
			missing = want & ~out->found;
			company = (missing & ~fld_group_set(CFG_GROUP_COMPANY)) == 0;
			for (int k = 0; k < nmemo; k++) {
				if (strcmp(memo[k].name, p->name) == 0 && memo[k].company == company)
					m = &memo[k];
			}
			if (m == NULL) {
				if (nmemo == (int)(sizeof memo / sizeof memo[0]))
					continue;
				m = &memo[nmemo++];
				m->name = p->name;
				m->company = company;
				m->answered = false;
				prov_result_init(&m->res);
				out->depth++;
				rc = fetch(ctx, p, rec, missing, m, out);
			}
			if (rc == ENR_OK && m->answered)
				merge(out, &m->res, p->name, strcmp(p->kind, "mock") == 0);
		}
	}
done:
	for (int k = 0; k < nmemo; k++)
		prov_result_release(&memo[k].res);
	finish(out);
	return rc;
}

enum enr_err wf_fallback_mock(const struct wf_ctx *ctx, const struct rec *rec,
			      struct wf_result *out)
{
	struct rot_ctx rc_ctx = { ctx->store, ctx->cfg, ctx->pctx, ctx->endpoint, 0 };
	struct prov_query q;
	struct prov_result res;
	struct rot_report rep;
	enum enr_err rc;

	memset(&q, 0, sizeof q);
	for (int i = 0; i < ID__MAX; i++)
		q.id[i] = rec_get(rec, (enum fld_ident)i);
	q.want = out->want & ~out->found;
	if (q.want == 0)
		return ENR_OK;
	prov_result_init(&res);
	rc = rot_call(&rc_ctx, &builtin_mock, &q, &res, &rep);
	if (rc == ENR_OK && res.outcome == PROV_HIT) {
		add_name(out->tried, &out->ntried, "mock");
		merge(out, &res, builtin_mock.name, true);
	}
	prov_result_release(&res);
	set_status(out);
	return rc;
}

bool wf_none_available(const struct wf_result *r)
{
	return r->paid_unavailable > 0 && r->paid_asked == 0 && r->paid_failed == 0 &&
	       !r->deadline_passed;
}

void wf_errors_text(const struct wf_result *r, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz == 0)
		return;
	out[0] = '\0';
	for (int i = 0; i < r->nerrors && o < outsz; i++) {
		int n = snprintf(out + o, outsz - o, "%s%s: %s", i ? "; " : "", r->errors[i].provider,
				 wf_error_names[r->errors[i].kind]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
}
