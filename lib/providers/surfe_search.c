/*
 * surfe_search.c - Surfe v2 people search and company search (kind
 * "surfe").
 *
 * Symbol: prov_surfe_search_ops.  POST {base_url}/v2/people/search with
 * {"companies": {domains, names, industries, countries, employeeCount},
 * "people": {jobTitles, seniorities, departments, countries}, "limit",
 * "peoplePerCompany"}, and POST {base_url}/v2/companies/search with
 * {"filters": {...}, "limit"} (docs/providers.md, "Surfe people search",
 * "Surfe company search"; Surfe's "Search people" page).  A next page
 * sends the previous answer's nextPageToken as "pageToken": Surfe then
 * reuses the first page's filters, so only the token and the limit go.
 * No match is a 200 with an empty list; the last page carries no
 * nextPageToken.  Credits: one search credit per ten results or part of
 * ten, per call.  Errors as for enrichment ({"code", "message"}).
 *
 * Head count buckets become Surfe's one employeeCount range, so several
 * sizes must be adjacent buckets; countries go as ISO codes, seniorities
 * and departments in Surfe's capitalised spelling.
 *
 * Pure: builds requests and reads answers, never does I/O, never copies
 * upstream text into a reason.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

/* limit: 1..200 per page. */
#define SURFE_SEARCH_MAX 200
/* peoplePerCompany: the documented range is 1..5 in one version of the
 * documentation and 1..100 in another; 5 is safe with both. */
#define SURFE_PER_COMPANY_MAX 5
/* A 429 without Retry-After: Surfe counts per second. */
#define SURFE_RATE_WINDOW_MS 1000

static bool surfe_supports(const struct cfg_provider *p, enum prov_search_kind k)
{
	(void)p;
	return k == PROV_SEARCH_PEOPLE || k == PROV_SEARCH_COMPANIES;
}

static prov_filter_set surfe_filters(const struct cfg_provider *p, enum prov_search_kind k,
				     bool *per_company)
{
	(void)p;
	*per_company = k == PROV_SEARCH_PEOPLE;
	return prov_search_filters(k);
}

static int surfe_limit_max(const struct cfg_provider *p, enum prov_search_kind k)
{
	(void)p;
	(void)k;
	return SURFE_SEARCH_MAX;
}

/* ceil(n / 10) search credits per call. */
static int64_t surfe_cost(const struct cfg_provider *p, enum prov_search_kind k, int n)
{
	(void)p;
	(void)k;
	return n > 0 ? ((int64_t)n + 9) / 10 : 0;
}

/* Surfe's spelling of enrichd's seniorities (the simulator takes either). */
static const char *seniority_word(const char *v)
{
	static const struct {
		const char *ours, *theirs;
	} map[] = {
		{ "cxo", "C-Level" },    { "vp", "Vice President" }, { "director", "Director" },
		{ "manager", "Manager" }, { "senior", "Senior" },     { "entry", "Entry" },
		{ "owner", "Owner" },    { "partner", "Partner" },   { "training", "Training" },
		{ "unpaid", "Unpaid" },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(map[i].ours, v) == 0)
			return map[i].theirs;
	}
	return v;
}

/* "human_resources" -> "Human Resources". */
static void department_words(const char *v, char *out, size_t outsz)
{
	bool start = true;
	size_t o = 0;

	for (; *v && o + 1 < outsz; v++) {
		char c = *v == '_' ? ' ' : *v;

		out[o++] = start ? ascii_to_upper(c) : c;
		start = c == ' ';
	}
	out[o] = '\0';
}

/* Countries go as ISO codes where one is known. */
static const char *country_code(const char *v)
{
	const char *code = strlen(v) == 2 ? v : prov_country_code(v);

	return code ? code : v;
}

static json_t *words(enum prov_filter f, const struct prov_filter_values *fv)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < fv->n; i++) {
		char dep[LIM_SEARCH_VALUE_MAX + 1];
		const char *v = fv->v[i];

		if (f == PF_SENIORITIES) {
			v = seniority_word(v);
		} else if (f == PF_DEPARTMENTS) {
			department_words(v, dep, sizeof dep);
			v = dep;
		} else if (f == PF_COUNTRIES || f == PF_COMPANY_COUNTRIES) {
			v = country_code(v);
		}
		if (json_array_append_new(a, json_string(v))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The sizes as one {from, to} range: the buckets must follow each other
 * (Surfe takes one range).  NULL with *bad set when they do not. */
static json_t *employee_range(const struct prov_filter_values *fv, bool *bad)
{
	int64_t lo[8], hi[8];
	size_t n = 0;

	*bad = true;
	for (size_t i = 0; i < fv->n; i++) {
		int64_t l, h;
		size_t j;

		if (n == sizeof lo / sizeof lo[0] || !prov_size_range(fv->v[i], &l, &h))
			return NULL;
		/* In order of the range, for the adjacency check. */
		for (j = n; j > 0 && lo[j - 1] > l; j--) {
			lo[j] = lo[j - 1];
			hi[j] = hi[j - 1];
		}
		lo[j] = l;
		hi[j] = h;
		n++;
	}
	for (size_t i = 1; i < n; i++) {
		if (hi[i - 1] < 0 || lo[i] != hi[i - 1] + 1)
			return NULL;
	}
	if (n == 0)
		return NULL;
	*bad = false;
	return hi[n - 1] < 0 ? json_pack("{s:I}", "from", (json_int_t)lo[0])
			     : json_pack("{s:I, s:I}", "from", (json_int_t)lo[0], "to",
					 (json_int_t)hi[n - 1]);
}

/* Set member name of obj to the words of filter f when it has any. */
static enum enr_err put_words(json_t *obj, const char *name, enum prov_filter f,
			      const struct prov_search *s)
{
	json_t *a;

	if (s->f[f].n == 0)
		return ENR_OK;
	a = words(f, &s->f[f]);
	if (a == NULL || json_object_set_new(obj, name, a))
		return ENR_E_NOMEM;
	return ENR_OK;
}

/* The filters of a first page.  ENR_E_INVALID when they cannot be said. */
static enum enr_err first_page(const struct prov_search *s, json_t *body)
{
	json_t *co = json_object(), *pe = json_object();
	enum enr_err rc = co && pe ? ENR_OK : ENR_E_NOMEM;
	bool people = s->kind == PROV_SEARCH_PEOPLE;

	if (rc == ENR_OK)
		rc = put_words(co, "domains", PF_DOMAINS, s);
	if (rc == ENR_OK)
		rc = put_words(co, "names", PF_NAMES, s);
	if (rc == ENR_OK)
		rc = put_words(co, "industries", PF_INDUSTRIES, s);
	/* companies.countries is where the company is: for a people search
	 * that is company_countries, for a company search countries. */
	if (rc == ENR_OK)
		rc = put_words(co, "countries", people ? PF_COMPANY_COUNTRIES : PF_COUNTRIES, s);
	if (rc == ENR_OK && s->f[PF_SIZES].n > 0) {
		bool bad;
		json_t *r = employee_range(&s->f[PF_SIZES], &bad);

		if (r == NULL)
			rc = bad ? ENR_E_INVALID : ENR_E_NOMEM;
		else if (json_object_set_new(co, "employeeCount", r))
			rc = ENR_E_NOMEM;
	}
	if (people) {
		if (rc == ENR_OK)
			rc = put_words(pe, "jobTitles", PF_TITLES, s);
		if (rc == ENR_OK)
			rc = put_words(pe, "seniorities", PF_SENIORITIES, s);
		if (rc == ENR_OK)
			rc = put_words(pe, "departments", PF_DEPARTMENTS, s);
		if (rc == ENR_OK)
			rc = put_words(pe, "countries", PF_COUNTRIES, s);
	} else if (rc == ENR_OK) {
		for (int f = 0; f < PF__MAX; f++) {
			if (s->f[f].n > 0 && !(prov_search_filters(s->kind) & PF_BIT(f)))
				rc = ENR_E_INVALID;
		}
	}
	if (rc == ENR_OK && json_object_size(co) == 0 && json_object_size(pe) == 0)
		rc = ENR_E_INVALID; /* Surfe needs at least one filter */
	if (rc == ENR_OK && people) {
		if (json_object_size(co) && json_object_set(body, "companies", co))
			rc = ENR_E_NOMEM;
		if (rc == ENR_OK && json_object_size(pe) && json_object_set(body, "people", pe))
			rc = ENR_E_NOMEM;
		/* Honoured only by a search on company domains or names alone. */
		if (rc == ENR_OK && s->per_company > 0) {
			for (int f = 0; f < PF__MAX; f++) {
				if (s->f[f].n > 0 && f != PF_DOMAINS && f != PF_NAMES)
					rc = ENR_E_INVALID;
			}
			if (rc == ENR_OK && json_object_set_new(body, "peoplePerCompany",
								json_integer(s->per_company)))
				rc = ENR_E_NOMEM;
		}
	} else if (rc == ENR_OK && json_object_set(body, "filters", co)) {
		rc = ENR_E_NOMEM;
	}
	json_decref(co);
	json_decref(pe);
	return rc;
}

static enum enr_err surfe_build(const struct cfg_provider *p, const struct cfg_key *key,
				const struct prov_search *s, struct prov_request *out)
{
	json_t *body = NULL;
	char *text = NULL, auth[PROV_HEADER_LINE];
	enum enr_err rc;

	if (p == NULL || key == NULL || key->secret == NULL || s == NULL ||
	    (unsigned)s->kind >= PROV_SEARCH__MAX)
		return ENR_E_INTERNAL;
	prov_request_release(out);
	if (s->limit < 1 || s->limit > SURFE_SEARCH_MAX || s->per_company < 0 ||
	    s->per_company > SURFE_PER_COMPANY_MAX || (s->per_company && s->kind != PROV_SEARCH_PEOPLE))
		return ENR_E_INVALID;
	body = json_pack("{s:i}", "limit", s->limit);
	if (body == NULL)
		return ENR_E_NOMEM;
	if (s->cursor)
		rc = json_object_set_new(body, "pageToken", json_string(s->cursor)) ? ENR_E_NOMEM
										   : ENR_OK;
	else
		rc = first_page(s, body);
	if (rc == ENR_OK && (text = json_dumps(body, JSON_COMPACT)) == NULL)
		rc = ENR_E_NOMEM;
	if (rc)
		goto out;
	util_strlcpy(out->method, "POST", sizeof out->method);
	rc = prov_request_base(out, p->base_url, s->kind == PROV_SEARCH_PEOPLE ? "/v2/people/search"
									  : "/v2/companies/search");
	if (rc == ENR_OK)
		rc = buf_puts(&out->body, text);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Content-Type", "application/json");
	if (rc == ENR_OK) {
		snprintf(auth, sizeof auth, "Bearer %s", key->secret);
		rc = prov_request_header(out, "Authorization", auth);
		explicit_bzero(auth, sizeof auth);
	}
out:
	free(text);
	json_decref(body);
	if (rc)
		prov_request_release(out);
	return rc;
}

/* A country as enrichd writes it: the English name of a two-letter code. */
static bool set_country(struct prov_record *r, const json_t *v)
{
	const char *name;
	char code[3];

	if (json_is_string(v) && json_string_length(v) == 2) {
		code[0] = ascii_to_lower(json_string_value(v)[0]);
		code[1] = ascii_to_lower(json_string_value(v)[1]);
		code[2] = '\0';
		if ((name = prov_country_name(code)) != NULL)
			return prov_record_set(r, FLD_COUNTRY, name, strlen(name)) == ENR_OK;
	}
	return prov_record_set_json(r, FLD_COUNTRY, v);
}

/* A person of a search answer (docs/providers.md): no e-mail or phone. */
static bool map_person(const json_t *o, struct prov_record *r)
{
	static const struct {
		enum fld_id f;
		const char *path;
	} map[] = {
		{ FLD_FIRST_NAME, "firstName" },   { FLD_LAST_NAME, "lastName" },
		{ FLD_TITLE, "jobTitle" },         { FLD_SENIORITY, "seniorities[0]" },
		{ FLD_DEPARTMENT, "departments[0]" }, { FLD_COMPANY_NAME, "companyName" },
		{ FLD_LOCATION, "location" },      { FLD_LINKEDIN_URL, "linkedInUrl" },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (!prov_record_set_json(r, map[i].f, jp_get(o, map[i].path)))
			return false;
	}
	prov_record_domain(r, json_object_get(o, "companyDomain"));
	return set_country(r, json_object_get(o, "country"));
}

static bool map_company(const json_t *o, struct prov_record *r)
{
	const json_t *n = json_object_get(o, "employeeCount");
	const char *bucket;

	if (!prov_record_set_json(r, FLD_COMPANY_NAME, json_object_get(o, "name")) ||
	    !prov_record_set_json(r, FLD_INDUSTRY, json_object_get(o, "industry")) ||
	    !prov_record_set_json(r, FLD_COMPANY_REVENUE, json_object_get(o, "revenue")) ||
	    !prov_record_set_json(r, FLD_LOCATION, json_object_get(o, "hqAddress")) ||
	    !set_country(r, json_object_get(o, "hqCountry")))
		return false;
	/* A head count becomes the bucket it falls in. */
	if (json_is_integer(n) && (bucket = prov_size_bucket(json_integer_value(n))) != NULL &&
	    prov_record_set(r, FLD_COMPANY_SIZE, bucket, strlen(bucket)) != ENR_OK)
		return false;
	prov_record_domain(r, json_object_get(o, "domain"));
	return true;
}

static bool map_any(const json_t *el, struct prov_record *r, const void *kind)
{
	return *(const enum prov_search_kind *)kind == PROV_SEARCH_PEOPLE ? map_person(el, r)
									   : map_company(el, r);
}

static void parse_page(const struct prov_search *s, const struct prov_response *resp,
		       struct prov_result *call, struct prov_page *page)
{
	json_t *doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	const char *member = s->kind == PROV_SEARCH_PEOPLE ? "people" : "companies";
	const json_t *list;
	bool oom = false;

	call->outcome = PROV_TRANSIENT;
	if (!json_is_object(doc)) {
		prov_result_reason(call, "surfe: search answer is not a JSON object");
		goto out;
	}
	list = json_object_get(doc, member);
	if (!json_is_array(list) || json_array_size(list) > (size_t)SURFE_SEARCH_MAX) {
		prov_result_reason(call, "surfe: search answer without a %s list of at most %d",
				   member, SURFE_SEARCH_MAX);
		goto out;
	}
	if (!prov_page_fill(call, page, list, map_any, &s->kind, "surfe"))
		goto out;
	prov_page_total(page, json_object_get(doc, "total"));
	if (!prov_page_cursor(page, json_object_get(doc, "nextPageToken"), &oom)) {
		prov_result_reason(call, oom ? "surfe: out of memory" : "surfe: search with a bad nextPageToken");
		goto out;
	}
	call->credits = (int)surfe_cost(NULL, s->kind, (int)json_array_size(list));
	call->outcome = json_array_size(list) > 0 ? PROV_HIT : PROV_MISS;
	prov_result_reason(call, "surfe: search page of %zu", page->n);
out:
	if (call->outcome == PROV_TRANSIENT) {
		prov_page_release(page);
		call->credits = 0;
	}
	json_decref(doc);
}

/* 402 is credits or the search quota; a message that says "daily" comes
 * back at the next UTC midnight. */
static void quota_402(const struct prov_answer *a, struct prov_result *out)
{
	json_t *root = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);
	const json_t *m = json_object_get(root, "message");
	const char *t = json_string_value(m);
	size_t n = t ? json_string_length(m) : 0;

	for (size_t i = 0; i + 5 <= n; i++) {
		if (util_strn_ieq(t + i, 5, "daily")) {
			out->until_ms = prov_next_utc_midnight_ms(a->now_ms);
			prov_result_reason(out, "surfe: daily quota exhausted (402)");
			break;
		}
	}
	json_decref(root);
}

static void rate_429(const struct prov_answer *a, struct prov_result *out)
{
	out->until_ms = prov_retry_after_ms(a->resp, a->now_ms);
	if (out->until_ms <= a->now_ms)
		out->until_ms = a->now_ms + SURFE_RATE_WINDOW_MS;
}

static const struct prov_status_rule statuses[] = {
	{ 200, 200, PROV_HIT, NULL, NULL },
	{ 400, 400, PROV_REQUEST_REJECTED, "search refused", NULL },
	{ 401, 401, PROV_KEY_INVALID, "key invalid", NULL },
	{ 402, 402, PROV_QUOTA_EXHAUSTED, "credits exhausted", quota_402 },
	{ 403, 403, PROV_REQUEST_REJECTED, "not allowed on this plan", NULL },
	{ 429, 429, PROV_RATE_LIMITED, "rate limited", rate_429 },
};

static const struct prov_status_table table = {
	"surfe", statuses, sizeof statuses / sizeof statuses[0], NULL,
};

static void surfe_parse(const struct cfg_provider *p, const struct prov_search *s,
			const struct prov_response *resp, int64_t now_ms, struct prov_result *call,
			struct prov_page *page)
{
	prov_page_release(page);
	prov_parse_by_status(&table, p, NULL, resp, now_ms, call);
	if (call->outcome == PROV_HIT && s != NULL)
		parse_page(s, resp, call, page);
	else if (call->outcome == PROV_HIT)
		call->outcome = PROV_TRANSIENT;
}

const struct prov_search_ops prov_surfe_search_ops = {
	.supports = surfe_supports,
	.filters = surfe_filters,
	.limit_max = surfe_limit_max,
	.cost = surfe_cost,
	.build = surfe_build,
	.parse = surfe_parse,
};
