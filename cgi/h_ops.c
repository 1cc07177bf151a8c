/*
 * h_ops.c - operational endpoints: /health, /health/ready, /metrics,
 * /admin/usage.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "lib/cache.h"
#include "lib/log.h"
#include "lib/keypool.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "routes.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

enum enr_err h_health(struct http_req *r)
{
	/* Reads (a round trip) and writes (the probe's verdict) both. */
	bool store_ok = st_ping(app_store()) == ENR_OK && app_store_writable();
	json_t *j = json_pack("{s:s, s:s, s:s}", "status", store_ok ? "ok" : "degraded",
			      "version", ENRICHD_VERSION, "store", store_ok ? "ok" : "unavailable");

	if (j == NULL)
		return ENR_E_NOMEM;
	if (!store_ok)
		http_set_header(r, "Retry-After", "5");
	http_json(r, store_ok ? 200 : 503, j);
	return ENR_OK;
}

/* Providers the waterfall asks (built-in ones need no key). */
static bool provider_in_use(const struct cfg *c, const struct cfg_provider *p)
{
	if (!p->enabled || p->nkeys == 0)
		return false;
	for (int g = 0; g < CFG_GROUP__MAX; g++) {
		for (size_t i = 0; i < c->waterfall[g].n; i++) {
			if (strcmp(c->waterfall[g].v[i], p->name) == 0)
				return true;
		}
	}
	return false;
}

struct ready_ctx {
	json_t *providers;   /* name -> {"keys", "usable"} for providers in use */
	int64_t now_ms;
};

static int ready_key(void *arg, const struct kp_key *k)
{
	struct ready_ctx *c = arg;
	json_t *p = json_object_get(c->providers, k->provider);

	if (p == NULL)
		return 0;
	json_object_set_new(p, "keys",
			    json_integer(json_integer_value(json_object_get(p, "keys")) + 1));
	if (kp_usable(k, c->now_ms))
		json_object_set_new(p, "usable",
				    json_integer(json_integer_value(json_object_get(p, "usable")) + 1));
	return 0;
}

/* GET /health/ready: the store answers and takes writes, the configuration
 * is loaded, and every provider the waterfall asks has a usable key.  Counts
 * only: no key ids, no accounts.  503 with Retry-After when not ready. */
enum enr_err h_health_ready(struct http_req *r)
{
	struct ready_ctx c = { json_object(), util_now_ms() };
	bool store_ok = st_ping(app_store()) == ENR_OK && app_store_writable();
	bool keys_ok = true;
	const char *name;
	json_t *p, *j;

	if (c.providers == NULL)
		return ENR_E_NOMEM;
	for (size_t i = 0; i < r->cfg->nproviders; i++) {
		if (provider_in_use(r->cfg, &r->cfg->providers[i]))
			json_object_set_new(c.providers, r->cfg->providers[i].name,
					    json_pack("{s:i, s:i}", "keys", 0, "usable", 0));
	}
	if (store_ok && st_ukey_each(app_store(), ready_key, &c) != ENR_OK)
		store_ok = false;
	json_object_foreach(c.providers, name, p) {
		if (json_integer_value(json_object_get(p, "usable")) == 0)
			keys_ok = false;
	}
	j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "status", store_ok && keys_ok ? "ready" : "not_ready",
		      "version", ENRICHD_VERSION, "store", store_ok ? "ok" : "unavailable", "config",
		      "loaded", "providers", c.providers);
	if (j == NULL)
		return ENR_E_NOMEM;
	if (!(store_ok && keys_ok))
		http_set_header(r, "Retry-After", "5");
	http_json(r, store_ok && keys_ok ? 200 : 503, j);
	return ENR_OK;
}

enum enr_err h_metrics(struct http_req *r)
{
	struct buf b;
	enum enr_err rc;

	buf_init(&b, 0);
	rc = mx_render(&b);
	if (rc == ENR_OK)
		http_send(r, 200, "text/plain; version=0.0.4", buf_cstr(&b), b.len);
	buf_release(&b);
	return rc;
}

static int usage_row(void *arg, const struct st_usage *u)
{
	json_array_append_new((json_t *)arg,
			      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "account", u->account,
					"day", u->day, "requests", (json_int_t)u->requests,
					"records", (json_int_t)u->records, "credits",
					(json_int_t)u->credits, "rejections",
					(json_int_t)u->rejections));
	return 0;
}

static int savings_row(void *arg, const struct st_savings *v)
{
	json_array_append_new((json_t *)arg,
			      json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "provider", v->provider,
					"day", v->day, "calls_avoided_by_cache",
					(json_int_t)v->cache_calls, "credits_avoided_by_cache",
					(json_int_t)v->cache_credits, "calls_avoided_by_coalescing",
					(json_int_t)v->flight_calls, "credits_avoided_by_coalescing",
					(json_int_t)v->flight_credits));
	return 0;
}

/* GET /admin/usage[?account=NAME][&days=N]: per account and UTC day, newest
 * first, N days back including today (default 7, at most 366); and per
 * provider and day what the cache and coalescing saved (for the whole
 * deployment, whatever the account).  The route's parameter table has
 * already checked both. */
enum enr_err h_admin_usage(struct http_req *r)
{
	const char *name = qs_get(&r->qs, "account"), *days_s = qs_get(&r->qs, "days");
	char from[11];
	int64_t days = 7, account_id = -1;
	json_t *rows, *top, *saved;
	enum enr_err rc;

	if (days_s && util_parse_i64(days_s, 1, 366, &days) != ENR_OK)
		return ENR_E_INTERNAL; /* the table let through what it should not */
	if (name) {
		struct st_account a;

		rc = st_account_by_name(app_store(), name, &a);
		if (rc == ENR_E_NOT_FOUND) {
			http_error(r, ENR_E_NOT_FOUND, "no such account", NULL);
			return ENR_OK;
		}
		if (rc)
			return rc;
		account_id = a.id;
	}
	/* Counts this process holds in memory go to the store first: without
	 * them the answer would be short, so a failure is the answer. */
	rc = adm_flush(app_admission(), util_now_ms());
	if (rc)
		return rc;
	st_day(util_now_ms() / 1000 - (days - 1) * 86400, from);
	rows = json_array();
	if (rows == NULL)
		return ENR_E_NOMEM;
	rc = st_usage_each(app_store(), account_id, from, usage_row, rows);
	if (rc) {
		json_decref(rows);
		return rc;
	}
	cache_savings_flush(app_store(), util_now_ms());
	saved = json_array();
	if (saved == NULL) {
		json_decref(rows);
		return ENR_E_NOMEM;
	}
	rc = st_savings_each(app_store(), from, savings_row, saved);
	if (rc) {
		json_decref(rows);
		json_decref(saved);
		return rc;
	}
	top = json_pack("{s:s, s:o, s:o}", "from", from, "usage", rows, "savings", saved);
	if (top == NULL)
		return ENR_E_NOMEM;
	http_json(r, 200, top);
	return ENR_OK;
}
