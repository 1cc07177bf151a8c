/*
 * estimate.c - a batch's cost before it runs (lib/estimate.h).
 */
#include "estimate.h"

#include <stdlib.h>
#include <string.h>

#include "keypool.h"
#include "rotation.h"
#include "util.h"

void est_init(struct est *e, const struct cfg *cfg, enum cfg_endpoint_id endpoint)
{
	memset(e, 0, sizeof *e);
	e->cfg = cfg;
	e->endpoint = endpoint;
	e->eta_s = -1;
}

void est_release(struct est *e)
{
	free(e->seen);
	memset(e, 0, sizeof *e);
}

static const struct prov_ops *ops_of(const struct cfg_provider *p)
{
	return prov_ops_find(p->kind);
}

/* Whether p has a company lookup at all (a query with a domain). */
static bool has_company_lookup(const struct cfg_provider *p)
{
	const struct prov_ops *ops = ops_of(p);
	struct prov_query q;

	memset(&q, 0, sizeof q);
	q.id[ID_DOMAIN] = "example.com";
	q.want = prov_company_fields();
	return ops && ops->supplies && ops->supplies(p, PROV_KIND_COMPANY, &q) != 0;
}

enum enr_err est_row(const struct wf_ctx *ctx, const struct rec *rec, fld_set want,
		     struct est_row *out)
{
	struct rot_ctx rc_ctx = { ctx->store, ctx->cfg, ctx->pctx, ctx->endpoint, 0 };
	struct wf_result res;
	struct pl_plan *pl = calloc(1, sizeof *pl);
	struct pl_lookup *lk;
	int hits = 0;
	enum enr_err rc = ENR_OK;

	if (pl == NULL)
		return ENR_E_NOMEM;
	memset(out, 0, sizeof *out);
	wf_result_init(&res);
	pl_init(pl, ctx->cfg, ctx->pctx ? ctx->pctx->domains : NULL, rec, want, &res);
	while ((lk = pl_next(pl)) != NULL) {
		struct prov_result r;
		struct pl_answer a;
		struct rot_report rep;

		memset(&a, 0, sizeof a);
		prov_result_init(&r);
		a.res = &r;
		if (lk->builtin) {
			rc = rot_call(&rc_ctx, lk->p, &lk->q, &r, &rep);
			a.end = PL_ANSWERED;
		} else if (ctx->cfg->cache.enabled &&
			   cache_get(ctx->store, lk->key, util_now_ms(), &r) == ENR_OK) {
			a.end = PL_ANSWERED;
			a.cached = true;
			hits++;
		} else {
			if (out->n < (int)(sizeof out->lk / sizeof out->lk[0])) {
				out->lk[out->n].p = lk->p;
				out->lk[out->n].kind = lk->kind;
				out->lk[out->n].keyed = true;
				memcpy(out->lk[out->n].key, lk->key, CACHE_KEY_LEN);
				out->n++;
			}
			a.end = PL_DRY;
		}
		if (rc == ENR_OK)
			pl_done(pl, lk, &a);
		prov_result_release(&r);
		if (rc)
			break;
	}
	/* The company a person answer would name cannot be keyed now: one
	 * company lookup per provider that has one, at most. */
	if (rc == ENR_OK && pl_company_unknown(pl)) {
		const struct cfg_list *list = &ctx->cfg->waterfall[CFG_GROUP_COMPANY];

		for (size_t i = 0; i < list->n; i++) {
			const struct cfg_provider *p = pl_provider(ctx->cfg, list->v[i]);

			if (p == NULL || !p->enabled || pl_is_builtin(p) || !has_company_lookup(p) ||
			    out->n == (int)(sizeof out->lk / sizeof out->lk[0]))
				continue;
			out->lk[out->n].p = p;
			out->lk[out->n].kind = PROV_KIND_COMPANY;
			out->lk[out->n].keyed = false;
			out->n++;
		}
	}
	out->cached = out->n == 0 && hits > 0;
	out->local_only = out->n == 0 && hits == 0;
	pl_finish(pl);
	wf_result_release(&res);
	free(pl);
	return rc;
}

static struct est_provider *provider_entry(struct est *e, const struct cfg_provider *p)
{
	for (int i = 0; i < e->nprov; i++) {
		if (e->prov[i].p == p || strcmp(e->prov[i].p->name, p->name) == 0)
			return &e->prov[i];
	}
	if (e->nprov == WF_PROVIDERS_MAX)
		return NULL;
	memset(&e->prov[e->nprov], 0, sizeof e->prov[0]);
	e->prov[e->nprov].p = p;
	return &e->prov[e->nprov++];
}

static size_t slot_of(const unsigned char key[CACHE_KEY_LEN], size_t cap)
{
	uint64_t h = 0;

	memcpy(&h, key, sizeof h);
	return (size_t)(h % cap);
}

static bool is_empty(const unsigned char *k)
{
	for (int i = 0; i < CACHE_KEY_LEN; i++) {
		if (k[i])
			return false;
	}
	return true;
}

/* Insert key; false when it was there already. */
static enum enr_err seen_add(struct est *e, const unsigned char key[CACHE_KEY_LEN], bool *fresh)
{
	size_t i;

	if (e->nseen * 2 >= e->aseen) {
		size_t n = e->aseen ? e->aseen * 2 : 1024;
		unsigned char (*t)[CACHE_KEY_LEN] = calloc(n, CACHE_KEY_LEN);

		if (t == NULL)
			return ENR_E_NOMEM;
		for (size_t k = 0; k < e->aseen; k++) {
			if (is_empty(e->seen[k]))
				continue;
			for (i = slot_of(e->seen[k], n); !is_empty(t[i]); i = (i + 1) % n)
				;
			memcpy(t[i], e->seen[k], CACHE_KEY_LEN);
		}
		free(e->seen);
		e->seen = t;
		e->aseen = n;
	}
	for (i = slot_of(key, e->aseen); !is_empty(e->seen[i]); i = (i + 1) % e->aseen) {
		if (memcmp(e->seen[i], key, CACHE_KEY_LEN) == 0) {
			*fresh = false;
			return ENR_OK;
		}
	}
	memcpy(e->seen[i], key, CACHE_KEY_LEN);
	e->nseen++;
	*fresh = true;
	return ENR_OK;
}

enum enr_err est_add(struct est *e, const struct est_row *r)
{
	struct est_provider *asked[WF_PROVIDERS_MAX];
	int nasked = 0;

	e->rows++;
	e->cached += r->cached;
	e->local_only += r->local_only;
	e->needing_calls += r->n > 0;
	for (int i = 0; i < r->n; i++) {
		struct est_provider *ep = provider_entry(e, r->lk[i].p);
		bool fresh = true, dup = false;
		enum enr_err rc;

		if (ep == NULL)
			continue;
		if (r->lk[i].keyed && (rc = seen_add(e, r->lk[i].key, &fresh)) != ENR_OK)
			return rc;
		for (int k = 0; k < nasked; k++)
			dup |= asked[k] == ep;
		if (!dup && nasked < WF_PROVIDERS_MAX) {
			asked[nasked++] = ep;
			ep->rows++;
		}
		if (!fresh)
			continue;
		if (r->lk[i].kind == PROV_KIND_COMPANY)
			ep->company++;
		else
			ep->person++;
	}
	return ENR_OK;
}

/* Calls a minute p's usable keys may make, by their pacing: the keys'
 * paces, each upstream account's at most its own; 0 when a usable key is
 * unpaced (nothing but the provider bounds it). */
static int64_t pace_of(const struct cfg_provider *p, struct store *s, int64_t now_ms, int *usable)
{
	struct kp_key keys[64];
	int nkeys = 0;
	int64_t total = 0;
	bool unpaced = false;

	*usable = 0;
	if (s == NULL || st_ukeys_of(s, p->name, keys, 64, &nkeys) != ENR_OK)
		nkeys = 0;
	for (size_t i = 0; i < p->nkeys; i++) {
		const struct cfg_key *k = &p->keys[i];
		int64_t acc_sum = 0;
		bool first = true, acc_unpaced = false;

		for (int j = 0; j < nkeys; j++) {
			if (strcmp(keys[j].id, k->id) == 0 && !kp_usable(&keys[j], now_ms))
				goto next;
		}
		(*usable)++;
		/* Each upstream account once, at its first usable key. */
		for (size_t m = 0; m < i; m++) {
			bool out = false;

			for (int j = 0; j < nkeys; j++)
				out |= strcmp(keys[j].id, p->keys[m].id) == 0 && !kp_usable(&keys[j], now_ms);
			if (!out && strcmp(p->keys[m].account, k->account) == 0)
				first = false;
		}
		if (!first)
			goto next;
		for (size_t m = i; m < p->nkeys; m++) {
			bool out = false;

			if (strcmp(p->keys[m].account, k->account) != 0)
				continue;
			for (int j = 0; j < nkeys; j++)
				out |= strcmp(keys[j].id, p->keys[m].id) == 0 && !kp_usable(&keys[j], now_ms);
			if (out)
				continue;
			if (p->keys[m].requests_per_minute <= 0)
				acc_unpaced = true;
			acc_sum += p->keys[m].requests_per_minute;
		}
		if (p->account_requests_per_minute > 0 &&
		    (acc_unpaced || acc_sum > p->account_requests_per_minute)) {
			acc_sum = p->account_requests_per_minute;
			acc_unpaced = false;
		}
		if (acc_unpaced)
			unpaced = true;
		total += acc_sum;
next:;
	}
	return unpaced ? 0 : total;
}

void est_finish(struct est *e, struct store *s, int64_t now_ms)
{
	e->calls = e->credits = 0;
	e->eta_s = -1;
	for (int i = 0; i < e->nprov; i++) {
		struct est_provider *ep = &e->prov[i];
		const struct cfg_provider *p = ep->p;
		const struct prov_ops *ops = ops_of(p);
		bool bulk = e->endpoint != CFG_EP_ENRICH && p->bulk.enabled && ops && ops->bulk_max > 0;
		int64_t size = bulk ? (p->bulk.batch_size < ops->bulk_max ? p->bulk.batch_size
									  : ops->bulk_max)
				    : 1;

		ep->calls = (ep->person + size - 1) / size + ep->company;
		ep->credits = (ep->person + ep->company) * p->credits_per_hit;
		ep->per_minute = pace_of(p, s, now_ms, &ep->usable_keys);
		ep->eta_s = ep->per_minute > 0 ? (ep->calls * 60 + ep->per_minute - 1) / ep->per_minute
					       : -1;
		e->calls += ep->calls;
		e->credits += ep->credits;
		if (ep->calls > 0 && ep->eta_s >= 0 && ep->eta_s > e->eta_s)
			e->eta_s = ep->eta_s;
	}
}

static json_t *eta_json(int64_t s)
{
	return s >= 0 ? json_integer(s) : json_null();
}

json_t *est_json(const struct est *e)
{
	json_t *prov = json_object(), *j;

	if (prov == NULL)
		return NULL;
	for (int i = 0; i < e->nprov; i++) {
		const struct est_provider *ep = &e->prov[i];
		const struct prov_ops *ops = ops_of(ep->p);
		bool bulk = e->endpoint != CFG_EP_ENRICH && ep->p->bulk.enabled && ops &&
			    ops->bulk_max > 0;

		if (ep->person + ep->company == 0)
			continue;
		json_object_set_new(
			prov, ep->p->name,
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:i, s:I, s:I, s:o, s:i}", "rows",
				  (json_int_t)ep->rows, "lookups_max",
				  (json_int_t)(ep->person + ep->company), "person_lookups_max",
				  (json_int_t)ep->person, "company_lookups_max",
				  (json_int_t)ep->company, "calls_max", (json_int_t)ep->calls, "bulk",
				  bulk, "credits_per_hit", ep->p->credits_per_hit, "credits_max",
				  (json_int_t)ep->credits, "requests_per_minute",
				  (json_int_t)ep->per_minute, "eta_seconds", eta_json(ep->eta_s),
				  "usable_keys", ep->usable_keys));
	}
	j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "valid", (json_int_t)e->rows,
		      "cached", (json_int_t)e->cached, "local_only", (json_int_t)e->local_only,
		      "needing_calls", (json_int_t)e->needing_calls, "upstream_calls_max",
		      (json_int_t)e->calls, "credits_max", (json_int_t)e->credits, "eta_seconds",
		      eta_json(e->eta_s), "providers", prov);
	return j;
}
