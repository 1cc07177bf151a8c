/*
 * h_ops.c - operational endpoints: /health, /metrics, /admin/usage.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "lib/log.h"
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

/* GET /admin/usage[?account=NAME][&days=N]: per account and UTC day, newest
 * first, N days back including today (default 7, at most 366).  The route's
 * parameter table has already checked both. */
enum enr_err h_admin_usage(struct http_req *r)
{
	const char *name = qs_get(&r->qs, "account"), *days_s = qs_get(&r->qs, "days");
	char from[11];
	int64_t days = 7, account_id = -1;
	json_t *rows, *top;
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
	top = json_pack("{s:s, s:o}", "from", from, "usage", rows);
	if (top == NULL)
		return ENR_E_NOMEM;
	http_json(r, 200, top);
	return ENR_OK;
}
