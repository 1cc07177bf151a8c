/*
 * pdl_search.c - People Data Labs Person Search and Company Search (kind
 * "pdl").
 *
 * Symbol: prov_pdl_search_ops.  POST {base_url}/v5/person/search (or
 * /v5/company/search) with a JSON body: an Elasticsearch "query" built
 * from the filters (a bool whose must holds one clause per filter: terms
 * for the exact ones, a match per title joined by a should), "size" (the
 * page: at most 100), "titlecase" and, for a next page, the previous
 * answer's "scroll_token" sent with the same query (docs/providers.md,
 * "PDL person search" and "PDL company search"; PDL's "Input Parameters -
 * Person Search API").  A 200 carries "data" (this page), "total" and,
 * unless it is the last page, "scroll_token"; a 404 means nothing matches
 * (an answer, not charged).  Credits: one per record returned
 * (x-call-credits-spent).  Errors and meters as for enrichment.
 *
 * Pure: builds requests and reads answers, never does I/O, never copies
 * upstream text into a reason.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "pdl_int.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

/* PDL's size: 1..100 records per page. */
#define PDL_SEARCH_MAX 100

/* Query fields of each filter (docs/providers.md, "Search filters and
 * results in enrichd's terms"); NULL: the kind has no such field. */
static const char *const person_fields[PF__MAX] = {
	[PF_DOMAINS] = "job_company_website",
	[PF_NAMES] = "job_company_name",
	[PF_TITLES] = "job_title",
	[PF_SENIORITIES] = "job_title_levels",
	[PF_DEPARTMENTS] = "job_title_role",
	[PF_COUNTRIES] = "location_country",
	[PF_INDUSTRIES] = "job_company_industry",
	[PF_SIZES] = "job_company_size",
	[PF_COMPANY_COUNTRIES] = "job_company_location_country",
};
static const char *const company_fields[PF__MAX] = {
	[PF_DOMAINS] = "website",
	[PF_NAMES] = "name",
	[PF_INDUSTRIES] = "industry",
	[PF_SIZES] = "size",
	[PF_COUNTRIES] = "location.country",
};

static bool pdl_supports(const struct cfg_provider *p, enum prov_search_kind k)
{
	(void)p;
	return k == PROV_SEARCH_PEOPLE || k == PROV_SEARCH_COMPANIES;
}

static prov_filter_set pdl_filters(const struct cfg_provider *p, enum prov_search_kind k,
				   bool *per_company)
{
	const char *const *fields = k == PROV_SEARCH_PEOPLE ? person_fields : company_fields;
	prov_filter_set s = 0;

	(void)p;
	for (int f = 0; f < PF__MAX; f++) {
		if (fields[f])
			s |= PF_BIT(f);
	}
	/* PDL has no cap of people per company. */
	*per_company = false;
	return s;
}

static int pdl_limit_max(const struct cfg_provider *p, enum prov_search_kind k)
{
	(void)p;
	(void)k;
	return PDL_SEARCH_MAX;
}

static int64_t pdl_cost(const struct cfg_provider *p, enum prov_search_kind k, int n)
{
	(void)k;
	return (int64_t)n * (p && p->credits_per_hit > 0 ? p->credits_per_hit : 1);
}

/* PDL stores countries as lower-case English names ("united states"). */
static const char *country_value(const char *v)
{
	const char *name = prov_country_name(v);

	return name ? name : v;
}

/* One filter as a clause of the query's must: {"terms": {field: [...]}},
 * or for titles (PDL matches words of a title) one match per value, any of
 * which may hold. */
static json_t *clause(enum prov_filter f, const char *field, const struct prov_filter_values *fv)
{
	json_t *vals, *should;

	if (f == PF_TITLES) {
		if (fv->n == 1)
			return json_pack("{s:{s:s}}", "match", field, fv->v[0]);
		should = json_array();
		for (size_t i = 0; should && i < fv->n; i++) {
			if (json_array_append_new(should,
						  json_pack("{s:{s:s}}", "match", field, fv->v[i]))) {
				json_decref(should);
				return NULL;
			}
		}
		return should ? json_pack("{s:{s:o, s:i}}", "bool", "should", should,
					  "minimum_should_match", 1)
			      : NULL;
	}
	vals = json_array();
	for (size_t i = 0; vals && i < fv->n; i++) {
		const char *v = f == PF_COUNTRIES || f == PF_COMPANY_COUNTRIES ? country_value(fv->v[i])
									      : fv->v[i];
		char low[LIM_SEARCH_VALUE_MAX * 2 + 1];

		/* Names come back from prov_country_name capitalised; PDL's
		 * terms compare the stored lower case. */
		util_strlcpy(low, v, sizeof low);
		for (char *c = low; *c; c++) {
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		}
		if (json_array_append_new(vals, json_string(low))) {
			json_decref(vals);
			return NULL;
		}
	}
	return vals ? json_pack("{s:{s:o}}", "terms", field, vals) : NULL;
}

static enum enr_err pdl_build(const struct cfg_provider *p, const struct cfg_key *key,
			      const struct prov_search *s, struct prov_request *out)
{
	const char *const *fields;
	json_t *must = NULL, *body = NULL;
	char *text = NULL;
	enum enr_err rc = ENR_OK;

	if (p == NULL || key == NULL || key->secret == NULL || s == NULL ||
	    (unsigned)s->kind >= PROV_SEARCH__MAX)
		return ENR_E_INTERNAL;
	fields = s->kind == PROV_SEARCH_PEOPLE ? person_fields : company_fields;
	prov_request_release(out);
	if (s->limit < 1 || s->limit > PDL_SEARCH_MAX || s->per_company > 0) {
		rc = ENR_E_INVALID;
		goto out;
	}
	must = json_array();
	if (must == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	for (int f = 0; f < PF__MAX; f++) {
		if (s->f[f].n == 0)
			continue;
		if (fields[f] == NULL) {
			rc = ENR_E_INVALID;
			goto out;
		}
		if (json_array_append_new(must, clause((enum prov_filter)f, fields[f], &s->f[f]))) {
			rc = ENR_E_NOMEM;
			goto out;
		}
	}
	if (json_array_size(must) == 0) {
		rc = ENR_E_INVALID;
		goto out;
	}
	body = json_pack("{s:{s:{s:O}}, s:i, s:b}", "query", "bool", "must", must, "size", s->limit,
			 "titlecase", 1);
	if (body && s->cursor && json_object_set_new(body, "scroll_token", json_string(s->cursor)))
		rc = ENR_E_NOMEM;
	text = body && rc == ENR_OK ? json_dumps(body, JSON_COMPACT) : NULL;
	if (text == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	util_strlcpy(out->method, "POST", sizeof out->method);
	rc = prov_request_base(out, p->base_url, s->kind == PROV_SEARCH_PEOPLE ? "/v5/person/search"
									  : "/v5/company/search");
	if (rc == ENR_OK)
		rc = buf_puts(&out->body, text);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Content-Type", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "X-Api-Key", key->secret);
out:
	free(text);
	json_decref(body);
	json_decref(must);
	if (rc)
		prov_request_release(out);
	return rc;
}

/* A person record: the fields of an enrichment's data (pdl_person_paths),
 * first value found wins. */
static bool map_person(const json_t *d, struct prov_record *r)
{
	for (size_t i = 0; i < pdl_person_npaths; i++) {
		if (!prov_record_set_json(r, pdl_person_paths[i].f, jp_get(d, pdl_person_paths[i].path)))
			return false;
	}
	prov_record_domain(r, json_object_get(d, "job_company_website"));
	return true;
}

/* A company record: a company enrichment's fields plus the headquarters. */
static bool map_company(const json_t *c, struct prov_record *r)
{
	static const struct {
		enum fld_id f;
		const char *path;
	} map[] = {
		{ FLD_COMPANY_NAME, "name" },
		{ FLD_INDUSTRY, "industry" },
		{ FLD_COMPANY_SIZE, "size" },
		{ FLD_COMPANY_REVENUE, "inferred_revenue" },
		{ FLD_LOCATION, "location.name" },
		{ FLD_CITY, "location.locality" },
		{ FLD_STATE, "location.region" },
		{ FLD_COUNTRY, "location.country" },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (!prov_record_set_json(r, map[i].f, jp_get(c, map[i].path)))
			return false;
	}
	prov_record_domain(r, json_object_get(c, "website"));
	/* tags, an array of strings, joined as technologies */
	return prov_record_set_json(r, FLD_TECHNOLOGIES, json_object_get(c, "tags"));
}

/* 200: {"status":200,"data":[...],"scroll_token":"...","total":N}. */
static bool map_any(const json_t *el, struct prov_record *r, const void *kind)
{
	return *(const enum prov_search_kind *)kind == PROV_SEARCH_PEOPLE ? map_person(el, r)
									   : map_company(el, r);
}

static void parse_page(const struct cfg_provider *p, const struct prov_search *s,
		       const struct prov_response *resp, struct prov_result *call,
		       struct prov_page *page)
{
	json_t *doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	const json_t *st, *data;
	int64_t spent;
	bool oom = false;

	call->outcome = PROV_TRANSIENT;
	if (!json_is_object(doc)) {
		prov_result_reason(call, "pdl: search 200 with a body that is not a JSON object");
		goto out;
	}
	st = json_object_get(doc, "status");
	if (st && !(json_is_integer(st) && json_integer_value(st) == 200)) {
		prov_result_reason(call, "pdl: search 200 whose body status disagrees");
		goto out;
	}
	data = json_object_get(doc, "data");
	if (!json_is_array(data) || json_array_size(data) > (size_t)PDL_SEARCH_MAX) {
		prov_result_reason(call, "pdl: search 200 without a data array of at most %d",
				   PDL_SEARCH_MAX);
		goto out;
	}
	if (!prov_page_fill(call, page, data, map_any, &s->kind, "pdl"))
		goto out;
	prov_page_total(page, json_object_get(doc, "total"));
	if (!prov_page_cursor(page, json_object_get(doc, "scroll_token"), &oom)) {
		prov_result_reason(call, oom ? "pdl: out of memory" : "pdl: search with a bad scroll_token");
		goto out;
	}
	/* x-call-credits-spent says what the page cost; without it, one
	 * credit per record returned. */
	if (!prov_header_int(resp, "x-call-credits-spent", INT64_C(1000000), &spent))
		call->credits = (int)pdl_cost(p, s->kind, (int)json_array_size(data));
	call->outcome = json_array_size(data) > 0 ? PROV_HIT : PROV_MISS;
	prov_result_reason(call, "pdl: search page of %zu", page->n);
out:
	if (call->outcome == PROV_TRANSIENT) {
		prov_page_release(page);
		call->credits = 0;
	}
	json_decref(doc);
}

/* As for enrichment (pdl.c): 404 nothing matches, 400 a query PDL will not
 * run, 401/403 the key, 402 credits, 429 the window.  200 is read below. */
static const struct prov_status_rule statuses[] = {
	{ 200, 200, PROV_HIT, NULL, NULL },
	{ 404, 404, PROV_TRANSIENT, NULL, prov_not_found_404 },
	{ 400, 400, PROV_REQUEST_REJECTED, "search rejected", NULL },
	{ 401, 401, PROV_KEY_INVALID, "key refused", NULL },
	{ 403, 403, PROV_KEY_INVALID, "key refused", NULL },
	{ 402, 402, PROV_QUOTA_EXHAUSTED, "credits exhausted", pdl_quota_until },
	{ 429, 429, PROV_RATE_LIMITED, "rate limited", pdl_rate_until },
};

static const struct prov_status_table table = {
	"pdl", statuses, sizeof statuses / sizeof statuses[0], pdl_read_meters,
};

static void pdl_parse(const struct cfg_provider *p, const struct prov_search *s,
		      const struct prov_response *resp, int64_t now_ms, struct prov_result *call,
		      struct prov_page *page)
{
	prov_page_release(page);
	prov_parse_by_status(&table, p, NULL, resp, now_ms, call);
	if (call->outcome == PROV_HIT && s != NULL)
		parse_page(p, s, resp, call, page);
	else if (call->outcome == PROV_HIT)
		call->outcome = PROV_TRANSIENT;
	if (call->outcome == PROV_MISS)
		call->credits = 0; /* a search that matches nothing is not charged */
}

const struct prov_search_ops prov_pdl_search_ops = {
	.supports = pdl_supports,
	.filters = pdl_filters,
	.limit_max = pdl_limit_max,
	.cost = pdl_cost,
	.build = pdl_build,
	.parse = pdl_parse,
};
