/*
 * waterfall.c - the driver of the planner (lib/plan.h): it runs one or
 * many enrichments together, one round at a time.  Each round takes the
 * next lookup of every plan and makes them: built-in providers in
 * process; the cache; identical lookups once (within the round, across
 * threads through the in-process flight table, across processes through a
 * claim in the store for company lookups); the client's credit budget;
 * then single calls through lib/rotation, or person lookups of a bulk
 * provider through the bulk collector (lib/bulk.h), one call for many
 * rows.  Synchronous today; the engine's event loop will drive the same
 * planner with continuations.
 */
#include "waterfall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "bulk.h"
#include "cache.h"
#include "co.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
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
	[WF_ERR_BUDGET] = "budget_exceeded",
};

/* A claim on a company lookup lasts this long at most (the claimer's call
 * normally ends it much sooner; a claimer that died frees it then). */
#define CLAIM_MAX_MS 60000
/* A client budget hold outlives the call by this much (no deadline: a
 * minute), then it counts for nothing. */
#define HOLD_SLACK_MS 30000

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
	bulk_init();
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

/* ---- one round ------------------------------------------------------------ */

enum slot_state {
	S_NEW,         /* to be looked at */
	S_ENDED,       /* ans is final */
	S_FOLLOW,      /* takes the answer of slot `leader` of this round */
	S_CALL,        /* this slot calls (single) */
	S_BULK,        /* this slot's item is in the collector */
	S_WAIT_FLIGHT, /* another thread of this process makes it */
	S_WAIT_CLAIM,  /* another process makes it */
};

struct slot {
	struct pl_plan *pl;
	struct pl_lookup *lk;
	struct wf_job *job;
	enum slot_state state;
	int leader;
	bool flight;           /* holds the in-process flight of lk->key */
	bool claim;            /* holds the store claim of lk->key */
	int hold;              /* index of its budget hold in the round, or HOLD_* */
	struct prov_result res;
	struct rot_report rep;
	struct bulk_item *item;  /* S_BULK: in the collector */
	struct pl_answer ans;
};

/* slot.hold when it is not an index into round.holds. */
enum { HOLD_UNSET = -1,     /* not reserved yet */
       HOLD_NONE = -2 };    /* reserved: no budget applies, nothing held */

struct round {
	const struct wf_ctx *ctx;
	struct slot *s;
	size_t n;
	size_t njobs;              /* the most slots a round has */
	struct bud_hold *holds;    /* room for njobs, allocated at the first hold */
	int64_t *hold_spent;
	size_t nholds;
};

static bool cacheable(const struct wf_ctx *ctx, const struct pl_lookup *lk)
{
	return ctx->cfg->cache.enabled && !lk->builtin;
}

static void end(struct slot *sl, enum pl_end e)
{
	sl->ans.end = e;
	sl->ans.res = &sl->res;
	sl->state = S_ENDED;
}

/* How a call through the key pool ended, for the plan. */
static void end_report(struct slot *sl, const struct rot_report *rep)
{
	switch (rep->status) {
	case ROT_ANSWERED:
		end(sl, PL_ANSWERED);
		break;
	case ROT_NO_KEY:
		end(sl, PL_NO_KEY);
		sl->ans.comes_back_ms = rep->comes_back_ms;
		break;
	case ROT_DEADLINE:
		end(sl, PL_DEADLINE);
		break;
	case ROT_NOT_APPLICABLE:
		end(sl, PL_NOT_APPLICABLE);
		break;
	case ROT_REJECTED:
		end(sl, PL_REJECTED);
		break;
	default:
		end(sl, rep->timed_out ? PL_TIMEOUT : PL_FAILED);
		break;
	}
}

static void add_report(struct wf_result *out, const struct rot_report *rep, bool shared)
{
	out->calls += rep->calls;
	if (shared && rep->calls == 0)
		out->shared_calls++;
	out->upstream_ms += rep->upstream_ms;
}

/* A copy of an answer for another plan that asked the same (values only;
 * it costs nothing again). */
static enum enr_err copy_answer(const struct prov_result *from, struct prov_result *to)
{
	prov_result_reset(to);
	to->outcome = from->outcome;
	to->bought_credits = from->credits ? from->credits : from->bought_credits;
	util_strlcpy(to->company_domain, from->company_domain, sizeof to->company_domain);
	for (int f = 0; f < FLD__MAX; f++) {
		if (from->value[f]) {
			enum enr_err rc = prov_result_set(to, (enum fld_id)f, from->value[f],
							  strlen(from->value[f]), from->confidence[f]);

			if (rc)
				return rc;
		}
	}
	return ENR_OK;
}

static void from_cache(const struct wf_ctx *ctx, struct slot *sl, bool coalesced)
{
	end(sl, PL_ANSWERED);
	sl->ans.cached = true;
	sl->ans.coalesced = coalesced;
	/* A dry run saves nothing: it would not have called anyway. */
	if (!ctx->no_calls)
		cache_saved(sl->lk->p->name, coalesced, sl->res.bought_credits);
}

static void write_cache(const struct wf_ctx *ctx, struct slot *sl)
{
	enum enr_err rc;

	if (!cacheable(ctx, sl->lk) || sl->ans.end != PL_ANSWERED || sl->ans.cached)
		return;
	/* "Never pay twice" rests on this write: a failure is logged and
	 * counted, and the answer still goes out. */
	rc = cache_put(ctx->store, ctx->cfg, sl->lk->key, sl->lk->p->name, &sl->res, util_now_ms());
	if (rc) {
		mx_add(mx_cache_write_failures, "", 1);
		log_error("waterfall", "%s answer not cached (%s): asking again will call the "
			  "provider again", sl->lk->p->name, enr_strerror(rc));
	}
}

static struct rot_ctx rot_ctx_of(const struct wf_ctx *ctx)
{
	struct rot_ctx rc = { ctx->store, ctx->cfg, ctx->pctx, ctx->endpoint,
			      ctx->deadline_mono_ms };

	return rc;
}

/* Whether sl's lookup goes to the bulk collector: a person lookup of a
 * provider whose kind has a bulk endpoint, with bulk on for batches (the
 * worker, enrich-batch) or micro-batching on for /enrich. */
static bool bulk_path(const struct wf_ctx *ctx, const struct pl_lookup *lk, int *size, int *linger)
{
	const struct prov_ops *ops = prov_ops_find(lk->p->kind);
	const struct cfg_provider *p = lk->p;

	if (lk->builtin || lk->kind != PROV_KIND_PERSON || ops == NULL || ops->bulk_max <= 0 ||
	    !p->bulk.enabled)
		return false;
	*size = p->bulk.batch_size < ops->bulk_max ? p->bulk.batch_size : ops->bulk_max;
	if (ctx->endpoint == CFG_EP_ENRICH) {
		*linger = p->bulk.realtime_linger_ms;
		return *linger > 0;
	}
	*linger = p->bulk.linger_ms;
	return true;
}

/* a..g: deadline, built-ins, the cache, dry runs, duplicates, in-flight. */
static CO_OWN_FRAME enum enr_err prepare(struct round *r)
{
	const struct wf_ctx *ctx = r->ctx;

	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i];
		struct pl_lookup *lk = sl->lk;
		struct wf_result *out = sl->job->out;

		if (co_deadline_passed(ctx->deadline_mono_ms)) {
			/* The provider that would have been asked next could not be. */
			end(sl, PL_DEADLINE);
			continue;
		}
		if (lk->builtin) {
			struct rot_ctx rc_ctx = rot_ctx_of(ctx);
			enum enr_err rc = rot_call(&rc_ctx, lk->p, &lk->q, &sl->res, &sl->rep);

			if (rc)
				return rc;
			end(sl, PL_ANSWERED);
			continue;
		}
		if (cacheable(ctx, lk)) {
			if (cache_get(ctx->store, lk->key, util_now_ms(), &sl->res) == ENR_OK) {
				mx_add(mx_cache, "result=\"hit\"", 1);
				from_cache(ctx, sl, false);
				continue;
			}
		}
		out->cache_misses++;
		mx_add(mx_cache, "result=\"miss\"", 1);
		if (ctx->no_calls) {
			end(sl, PL_DRY);
			continue;
		}
		/* The same lookup twice in this round (rows of one company): the
		 * first makes it. */
		for (size_t k = 0; k < i; k++) {
			if (r->s[k].state != S_ENDED && r->s[k].state != S_FOLLOW &&
			    memcmp(r->s[k].lk->key, lk->key, CACHE_KEY_LEN) == 0 &&
			    strcmp(r->s[k].lk->p->name, lk->p->name) == 0) {
				sl->state = S_FOLLOW;
				sl->leader = (int)k;
				break;
			}
		}
		if (sl->state == S_FOLLOW)
			continue;
		if (cacheable(ctx, lk)) {
			if (!cache_flight_try(lk->key)) {
				sl->state = S_WAIT_FLIGHT;
				continue;
			}
			sl->flight = true;
			/* Another process may be asking for the same company. */
			if (lk->kind == PROV_KIND_COMPANY) {
				int64_t now = util_now_ms(), span = CLAIM_MAX_MS;
				bool mine = true;

				if (ctx->deadline_mono_ms > 0) {
					span = ctx->deadline_mono_ms - util_mono_ms();
					if (span < lk->p->timeout_ms + 1000)
						span = lk->p->timeout_ms + 1000;
					if (span > CLAIM_MAX_MS)
						span = CLAIM_MAX_MS;
				}
				cache_claim(ctx->store, lk->key, now, now + span, &mine);
				if (!mine) {
					sl->state = S_WAIT_CLAIM;
					continue;
				}
				sl->claim = true;
			}
			/* Whoever made it last may have finished between our first
			 * look and the claim: its answer is there now. */
			if (cache_get(ctx->store, lk->key, util_now_ms(), &sl->res) == ENR_OK) {
				if (sl->claim)
					cache_claim_release(ctx->store, lk->key);
				cache_flight_end(lk->key);
				sl->claim = sl->flight = false;
				from_cache(ctx, sl, true);
				continue;
			}
		}
		sl->state = S_CALL;
	}
	return ENR_OK;
}

static int64_t hold_expiry(const struct wf_ctx *ctx)
{
	int64_t left = ctx->deadline_mono_ms > 0 ? ctx->deadline_mono_ms - util_mono_ms() : 60000;

	return util_now_ms() + (left > 0 ? left : 0) + HOLD_SLACK_MS;
}

/* Room for a hold per slot: most rounds hold nothing (no budget applies),
 * so a waiting request does not carry one. */
static bool holds_room(struct round *r)
{
	r->holds = calloc(r->njobs, sizeof *r->holds);
	r->hold_spent = calloc(r->njobs, sizeof *r->hold_spent);
	if (r->holds && r->hold_spent)
		return true;
	free(r->holds);
	free(r->hold_spent);
	r->holds = NULL;
	r->hold_spent = NULL;
	return false;
}

/* h: the client's credit budget, reserved per account and provider for the
 * slots about to call.  What does not fit ends PL_BUDGET. */
static CO_OWN_FRAME enum enr_err reserve(struct round *r)
{
	const struct wf_ctx *ctx = r->ctx;

	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i];
		int64_t account = sl->job->account_id, cph = sl->lk->p->credits_per_hit, count = 0;
		struct bud_hold h;
		struct bud_verdict v;
		enum enr_err rc;
		size_t taken = 0;
		int idx;

		if (sl->state != S_CALL || sl->hold != HOLD_UNSET || account <= 0 || cph <= 0)
			continue;
		for (size_t k = i; k < r->n; k++) {
			if (r->s[k].state == S_CALL && r->s[k].hold == HOLD_UNSET &&
			    r->s[k].job->account_id == account && r->s[k].lk->p == sl->lk->p)
				count++;
		}
		rc = bud_reserve_account(ctx->store, ctx->cfg, account, count * cph, util_now_ms(),
					 hold_expiry(ctx), &h, &v);
		if (rc)
			return rc;
		if (!v.ok && v.fits >= cph) {
			/* Part of the group fits: hold that much, the rest waits. */
			int64_t fit = v.fits / cph;

			rc = bud_reserve_account(ctx->store, ctx->cfg, account, fit * cph,
						 util_now_ms(), hold_expiry(ctx), &h, &v);
			if (rc)
				return rc;
			if (v.ok)
				count = fit;
		}
		idx = HOLD_NONE;
		if (v.ok && h.held) {
			if (r->holds == NULL && !holds_room(r)) {
				bud_settle(ctx->store, &h, 0);
				return ENR_E_NOMEM;
			}
			idx = (int)r->nholds++;
			r->holds[idx] = h;
			r->hold_spent[idx] = 0;
		}
		for (size_t k = i; k < r->n; k++) {
			struct slot *o = &r->s[k];

			if (o->state != S_CALL || o->hold != HOLD_UNSET ||
			    o->job->account_id != account || o->lk->p != sl->lk->p)
				continue;
			if (v.ok && (int64_t)taken < count) {
				o->hold = idx;
				taken++;
				continue;
			}
			end(o, PL_BUDGET);
			o->ans.until_ms = v.until_ms;
			if (o->claim) {
				cache_claim_release(ctx->store, o->lk->key);
				o->claim = false;
			}
			if (o->flight) {
				cache_flight_end(o->lk->key);
				o->flight = false;
			}
		}
	}
	return ENR_OK;
}

/* i: the calls.  Bulk items go to the collector first (other rows and
 * threads fill their batches), then single calls are made one by one. */
static enum enr_err perform(struct round *r)
{
	const struct wf_ctx *ctx = r->ctx;
	struct rot_ctx rc_ctx = rot_ctx_of(ctx);
	enum enr_err failed = ENR_OK;

	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i];
		struct bulk_item *it;
		int size, linger;

		if (sl->state != S_CALL || !bulk_path(ctx, sl->lk, &size, &linger))
			continue;
		if ((it = malloc(sizeof *it)) == NULL)
			continue; /* made as a single call below */
		bulk_item_init(it);
		it->p = sl->lk->p;
		it->q = sl->lk->q;
		memcpy(it->key, sl->lk->key, CACHE_KEY_LEN);
		it->cacheable = cacheable(ctx, sl->lk);
		it->deadline_mono_ms = ctx->deadline_mono_ms;
		if (bulk_submit(&rc_ctx, it, size, linger) == ENR_OK) {
			sl->item = it;
			sl->state = S_BULK;
		} else {
			bulk_item_release(it); /* made as a single call below */
			free(it);
		}
	}
	for (size_t i = 0; i < r->n && failed == ENR_OK; i++) {
		struct slot *sl = &r->s[i];

		if (sl->state != S_CALL)
			continue;
		failed = rot_call(&rc_ctx, sl->lk->p, &sl->lk->q, &sl->res, &sl->rep);
		if (failed)
			break;
		add_report(sl->job->out, &sl->rep, false);
		end_report(sl, &sl->rep);
		write_cache(ctx, sl);
	}
	/* Waited for after a failure too: the collector writes into the item. */
	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i];
		struct bulk_item *it = sl->item;

		if (sl->state != S_BULK)
			continue;
		bulk_wait(it);
		sl->item = NULL;
		if (failed == ENR_OK) {
			prov_result_release(&sl->res);
			sl->res = it->res;
			prov_result_init(&it->res);
			sl->rep = it->rep;
			if (it->cache_failed) {
				mx_add(mx_cache_write_failures, "", 1);
				log_error("waterfall", "%s answer not cached: asking again will call "
					  "the provider again", sl->lk->p->name);
			}
			add_report(sl->job->out, &sl->rep, true);
			end_report(sl, &sl->rep);
		}
		bulk_item_release(it);
		free(it);
	}
	return failed;
}

/* Ends the in-process flights the round still holds. */
static void end_flights(struct round *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->s[i].flight)
			cache_flight_end(r->s[i].lk->key);
		r->s[i].flight = false;
	}
}

/* j: what the calls hold is given back: in-flight marks, claims, budget
 * holds (with what the answers cost).  A slot waiting on another process's
 * claim keeps its in-process flight: the callers here who asked for the
 * same lookup wait for its answer, not make the call beside it. */
static CO_OWN_FRAME void release(struct round *r)
{
	const struct wf_ctx *ctx = r->ctx;

	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i];

		if (sl->hold >= 0 && sl->ans.end == PL_ANSWERED && !sl->ans.cached)
			r->hold_spent[sl->hold] += sl->res.credits;
		if (sl->claim)
			cache_claim_release(ctx->store, sl->lk->key);
		sl->claim = false;
		if (sl->flight && sl->state != S_WAIT_CLAIM) {
			cache_flight_end(sl->lk->key);
			sl->flight = false;
		}
	}
	for (size_t h = 0; h < r->nholds; h++)
		bud_settle(ctx->store, &r->holds[h], r->hold_spent[h]);
	r->nholds = 0;
}

/* A lookup another caller was making: wait for it and read the cache; when
 * the answer is not there (it failed, or took too long), make it here. */
static CO_OWN_FRAME enum enr_err resolve_deferred(struct round *r)
{
	const struct wf_ctx *ctx = r->ctx;
	struct rot_ctx rc_ctx = rot_ctx_of(ctx);

	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i];
		struct bud_hold h;
		struct bud_verdict v = { .ok = true };
		int64_t account = sl->job->account_id, cph = sl->lk->p->credits_per_hit;
		enum enr_err rc;

		if (sl->state == S_WAIT_FLIGHT) {
			cache_flight_wait(sl->lk->key, ctx->deadline_mono_ms);
			if (cache_get(ctx->store, sl->lk->key, util_now_ms(), &sl->res) == ENR_OK) {
				from_cache(ctx, sl, true);
				continue;
			}
		} else if (sl->state == S_WAIT_CLAIM) {
			if (cache_claim_wait(ctx->store, sl->lk->key, ctx->deadline_mono_ms,
					     &sl->res) == ENR_OK) {
				from_cache(ctx, sl, true);
				if (sl->flight)
					cache_flight_end(sl->lk->key);
				sl->flight = false;
				continue;
			}
		} else {
			continue;
		}
		if (co_deadline_passed(ctx->deadline_mono_ms)) {
			end(sl, PL_DEADLINE);
		} else {
			memset(&h, 0, sizeof h);
			if (account > 0 && cph > 0) {
				rc = bud_reserve_account(ctx->store, ctx->cfg, account, cph, util_now_ms(),
							 hold_expiry(ctx), &h, &v);
				if (rc)
					return rc;
			}
			if (!v.ok) {
				end(sl, PL_BUDGET);
				sl->ans.until_ms = v.until_ms;
			} else {
				rc = rot_call(&rc_ctx, sl->lk->p, &sl->lk->q, &sl->res, &sl->rep);
				if (rc) {
					bud_settle(ctx->store, &h, 0);
					return rc;
				}
				add_report(sl->job->out, &sl->rep, false);
				end_report(sl, &sl->rep);
				write_cache(ctx, sl);
				bud_settle(ctx->store, &h,
					   sl->ans.end == PL_ANSWERED ? sl->res.credits : 0);
			}
		}
		if (sl->flight)
			cache_flight_end(sl->lk->key);
		sl->flight = false;
	}
	return ENR_OK;
}

/* Followers take their leader's answer (a copy that cost nothing). */
static CO_OWN_FRAME enum enr_err follow(struct round *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct slot *sl = &r->s[i], *ld;

		if (sl->state != S_FOLLOW)
			continue;
		ld = &r->s[sl->leader];
		sl->ans = ld->ans;
		sl->ans.res = &sl->res;
		sl->state = S_ENDED;
		if (ld->ans.end == PL_ANSWERED) {
			enum enr_err rc = copy_answer(&ld->res, &sl->res);

			if (rc)
				return rc;
			sl->ans.cached = true;
			sl->ans.coalesced = true;
			cache_saved(sl->lk->p->name, true, sl->res.bought_credits);
		}
	}
	return ENR_OK;
}

static enum enr_err run_round(struct round *r)
{
	enum enr_err rc = prepare(r);

	if (rc == ENR_OK)
		rc = reserve(r);
	if (rc == ENR_OK)
		rc = perform(r);
	release(r);
	if (rc == ENR_OK)
		rc = resolve_deferred(r);
	end_flights(r); /* what a failure left held */
	if (rc == ENR_OK)
		rc = follow(r);
	return rc;
}

enum enr_err wf_run_many(const struct wf_ctx *ctx, struct wf_job *jobs, size_t n)
{
	struct pl_plan *plans = NULL;
	struct round r;
	enum enr_err rc = ENR_OK;

	memset(&r, 0, sizeof r);
	r.ctx = ctx;
	r.njobs = n ? n : 1;
	plans = calloc(r.njobs, sizeof *plans);
	r.s = calloc(r.njobs, sizeof *r.s);
	if (plans == NULL || r.s == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		pl_init(&plans[i], ctx->cfg, ctx->pctx ? ctx->pctx->domains : NULL, jobs[i].rec,
			jobs[i].want, jobs[i].out);
	for (;;) {
		r.n = 0;
		for (size_t i = 0; i < n; i++) {
			struct pl_lookup *lk = pl_next(&plans[i]);
			struct slot *sl;

			if (lk == NULL)
				continue;
			sl = &r.s[r.n++];
			memset(sl, 0, sizeof *sl);
			sl->pl = &plans[i];
			sl->lk = lk;
			sl->job = &jobs[i];
			sl->leader = -1;
			sl->hold = HOLD_UNSET;
			prov_result_init(&sl->res);
		}
		if (r.n == 0)
			break;
		rc = run_round(&r);
		for (size_t i = 0; i < r.n; i++) {
			struct slot *sl = &r.s[i];

			if (rc == ENR_OK && sl->state == S_ENDED)
				pl_done(sl->pl, sl->lk, &sl->ans);
			prov_result_release(&sl->res);
		}
		if (rc)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		pl_finish(&plans[i]);
		mx_observe(mx_depth, "", jobs[i].out->depth);
		mx_observe(mx_upstream, "", jobs[i].out->upstream_ms / 1000.0);
	}
out:
	free(plans);
	free(r.s);
	free(r.holds);
	free(r.hold_spent);
	return rc;
}

enum enr_err wf_run(const struct wf_ctx *ctx, const struct rec *rec, fld_set want,
		    struct wf_result *out)
{
	struct wf_job job = { rec, want, ctx->account_id, out };

	return wf_run_many(ctx, &job, 1);
}

enum enr_err wf_fallback_mock(const struct wf_ctx *ctx, const struct rec *rec,
			      struct wf_result *out)
{
	struct rot_ctx rc_ctx = rot_ctx_of(ctx);
	const struct cfg_provider *mock = pl_provider(ctx->cfg, "mock");
	struct prov_query q;
	struct prov_result res;
	struct rot_report rep;
	struct pl_plan pl;
	enum enr_err rc;

	memset(&q, 0, sizeof q);
	for (int i = 0; i < ID__MAX; i++)
		q.id[i] = rec_get(rec, (enum fld_ident)i);
	q.want = out->want & ~out->found;
	if (q.want == 0)
		return ENR_OK;
	prov_result_init(&res);
	rc = rot_call(&rc_ctx, mock, &q, &res, &rep);
	if (rc == ENR_OK && res.outcome == PROV_HIT) {
		struct pl_lookup lk;
		struct pl_answer a = { .end = PL_ANSWERED, .res = &res };
		fld_set want = out->want;

		/* The plan's merge and bookkeeping, on a plan of its own. */
		memset(&lk, 0, sizeof lk);
		lk.p = mock;
		lk.builtin = true;
		lk.kind = PROV_KIND_PERSON;
		memset(&pl, 0, sizeof pl);
		pl.out = out;
		pl.active = -1;
		pl.rec = rec;
		pl.cfg = ctx->cfg;
		out->want = want;
		pl_done(&pl, &lk, &a);
		out->depth--;
	}
	prov_result_release(&res);
	{
		struct pl_plan fin;

		memset(&fin, 0, sizeof fin);
		fin.out = out;
		pl_finish(&fin);
	}
	return rc;
}

bool wf_none_available(const struct wf_result *r)
{
	return r->paid_unavailable > 0 && r->paid_asked == 0 && r->paid_failed == 0 &&
	       !r->deadline_passed && !r->budget_exceeded;
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
