/*
 * pdl.c - the People Data Labs v5 adapter (kind "pdl").
 *
 * Symbol: prov_pdl_ops.  Person lookups go to /v5/person/enrich, company
 * lookups (every wanted field a company field, and a domain or a company
 * name known) to /v5/company/enrich; the key travels in X-Api-Key.  The
 * wire format, the outcome table and the meters are in docs/providers.md
 * ("People Data Labs"); PDL's own pages are "Errors & Status Codes",
 * "Usage Limits" and the enrichment API input parameters.
 *
 * Pure: builds requests and reads answers, never does I/O, never copies
 * upstream text into a reason.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/ascii.h"
#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#include "pdl_int.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

/* x-call-credits-spent and x-totallimit-remaining beyond these are not
 * believed. */
#define CREDITS_SPENT_MAX INT64_C(1000000)
#define CREDITS_LEFT_MAX  INT64_C(1000000000000)

/* The fields each lookup's answer carries (docs/providers.md, the person
 * and company fields). */
#define PERSON_FIELDS                                                                     \
	(FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME) | FLD_BIT(FLD_TITLE) |          \
	 FLD_BIT(FLD_SENIORITY) | FLD_BIT(FLD_DEPARTMENT) | FLD_BIT(FLD_LINKEDIN_URL) |  \
	 FLD_BIT(FLD_LOCATION) | FLD_BIT(FLD_CITY) | FLD_BIT(FLD_STATE) |                \
	 FLD_BIT(FLD_COUNTRY) | FLD_BIT(FLD_ZIP_CODE) | FLD_BIT(FLD_PHONE) |             \
	 FLD_BIT(FLD_BUSINESS_EMAIL) | FLD_BIT(FLD_PERSONAL_EMAIL) |                     \
	 FLD_BIT(FLD_COMPANY_NAME) | FLD_BIT(FLD_INDUSTRY) | FLD_BIT(FLD_COMPANY_SIZE))

/* PDL's minimum input: profile, email or phone, or a full name together
 * with something else about the person (its "Input Parameters" page); of
 * the identifiers we hold, the company. */
static bool person_searchable(const struct prov_query *q)
{
	return prov_query_id(q, ID_EMAIL) || prov_person_profile(q) || prov_query_id(q, ID_PHONE) ||
	       (prov_query_id(q, ID_FIRST_NAME) && prov_query_id(q, ID_LAST_NAME) &&
		prov_query_id(q, ID_COMPANY_NAME));
}

static fld_set pdl_supplies(const struct cfg_provider *p, enum prov_kind kind,
			    const struct prov_query *q)
{
	(void)p;
	if (q == NULL)
		return 0;
	if (kind == PROV_KIND_COMPANY || (kind == PROV_KIND_AUTO && prov_company_only(q)))
		return prov_query_id(q, ID_DOMAIN) || prov_query_id(q, ID_COMPANY_NAME)
			       ? prov_company_fields()
			       : 0;
	return person_searchable(q) ? PERSON_FIELDS : 0;
}

static const struct {
	const char *param;
	enum fld_ident id;
} person_params[] = {
	{ "email", ID_EMAIL },           { "profile", ID_LINKEDIN_URL },
	{ "first_name", ID_FIRST_NAME }, { "last_name", ID_LAST_NAME },
	{ "company", ID_COMPANY_NAME },  { "phone", ID_PHONE },
};

static const char *person_param(const struct prov_query *q, size_t i)
{
	return person_params[i].id == ID_LINKEDIN_URL ? prov_person_profile(q)
						      : prov_query_id(q, person_params[i].id);
}

static enum enr_err pdl_build(const struct cfg_provider *p, const struct cfg_key *key,
			      const struct prov_query *q, struct prov_request *out)
{
	enum enr_err rc = ENR_OK;

	if (p == NULL || key == NULL || key->secret == NULL || q == NULL)
		return ENR_E_INTERNAL;
	prov_request_release(out);
	util_strlcpy(out->method, "GET", sizeof out->method);

	if (prov_company_only(q)) {
		/* A website is the more exact match (PDL: "website, ticker or
		 * profile are more likely to yield a match than a name"). */
		if (!prov_query_id(q, ID_DOMAIN) && !prov_query_id(q, ID_COMPANY_NAME)) {
			rc = ENR_E_INVALID;
			goto out;
		}
		rc = prov_request_base(out, p->base_url, "/v5/company/enrich");
		if (rc == ENR_OK && prov_query_id(q, ID_DOMAIN))
			rc = prov_request_query(out, "website", prov_query_id(q, ID_DOMAIN));
		else if (rc == ENR_OK)
			rc = prov_request_query(out, "name", prov_query_id(q, ID_COMPANY_NAME));
		/* Without it PDL writes names and industries in lower case. */
		if (rc == ENR_OK)
			rc = prov_request_query(out, "titlecase", "true");
	} else {
		char lk[16];

		if (!person_searchable(q)) {
			rc = ENR_E_INVALID;
			goto out;
		}
		rc = prov_request_base(out, p->base_url, "/v5/person/enrich");
		for (size_t i = 0; rc == ENR_OK && i < sizeof person_params / sizeof person_params[0];
		     i++) {
			const char *v = person_param(q, i);

			if (v)
				rc = prov_request_query(out, person_params[i].param, v);
		}
		if (rc == ENR_OK && p->min_likelihood >= 1 && p->min_likelihood <= 10) {
			snprintf(lk, sizeof lk, "%d", p->min_likelihood);
			rc = prov_request_query(out, "min_likelihood", lk);
		}
		if (rc == ENR_OK)
			rc = prov_request_query(out, "titlecase", "true");
	}
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "X-Api-Key", key->secret);
out:
	if (rc)
		prov_request_release(out);
	return rc;
}

/* x-ratelimit-remaining: a JSON object of windows ({"minute": 99}), which
 * PDL has also been seen writing Python-style ({'minute': 99, 'day':
 * None}); older answers carry a bare number.  The smallest count over the
 * windows is what is left (any window at 0 refuses the next call). */
static bool parse_remaining(const char *s, int64_t *out)
{
	int64_t best = -1, v;
	const char *p = s;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '{') {
		if (util_parse_i64(p, 0, INT64_MAX, &v) != ENR_OK)
			return false;
		*out = v;
		return true;
	}
	p++;
	for (;;) {
		char quote;
		const char *start;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '}')
			break;
		/* a quoted window name */
		if (*p != '"' && *p != '\'')
			return false;
		quote = *p++;
		while (*p && *p != quote)
			p++;
		if (*p != quote)
			return false;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != ':')
			return false;
		while (*p == ' ' || *p == '\t')
			p++;
		/* its count, or a null of either spelling */
		start = p;
		if (*p == '-')
			p++;
		while (ascii_is_digit(*p))
			p++;
		if (p > start) {
			if (util_parse_i64n(start, (size_t)(p - start), 0, INT64_MAX, &v) != ENR_OK)
				return false;
			if (best < 0 || v < best)
				best = v;
		} else if (strncmp(p, "null", 4) == 0 || strncmp(p, "None", 4) == 0) {
			p += 4;
		} else {
			return false;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p != '}')
			return false;
		break;
	}
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' || best < 0)
		return false;
	*out = best;
	return true;
}

/* Exactly n decimal digits at s. */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!ascii_is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* x-ratelimit-reset in ms since the epoch, 0 when absent or unreadable.
 * docs/providers.md gives epoch seconds; PDL's current "Usage Limits" page
 * shows an ISO 8601 UTC timestamp ("2022-02-23T20:19:55Z").  Both are
 * read. */
static int64_t reset_ms(const struct prov_response *r)
{
	const char *v = prov_header(r, "x-ratelimit-reset");
	size_t n, used = 19;
	int64_t secs;
	struct tm tm;
	int Y, M, D, h, m, sec;
	time_t t;

	if (v == NULL)
		return 0;
	n = strlen(v);
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v++;
		n -= 2;
	}
	if (n == 0)
		return 0;
	if (memchr(v, '-', n) == NULL) {
		/* Up to the year 5000: beyond that it is not a time. */
		if (util_parse_i64n(v, n, 1, INT64_C(95617584000), &secs) != ENR_OK)
			return 0;
		return secs * 1000;
	}
	if (n < 20 || !digits(v, 4, &Y) || v[4] != '-' || !digits(v + 5, 2, &M) || v[7] != '-' ||
	    !digits(v + 8, 2, &D) || v[10] != 'T' || !digits(v + 11, 2, &h) || v[13] != ':' ||
	    !digits(v + 14, 2, &m) || v[16] != ':' || !digits(v + 17, 2, &sec))
		return 0;
	/* An optional fraction, then Z or +00:00. */
	if (v[used] == '.') {
		used++;
		while (used < n && ascii_is_digit(v[used]))
			used++;
	}
	if (!((n - used == 1 && v[used] == 'Z') ||
	      (n - used == 6 && memcmp(v + used, "+00:00", 6) == 0)))
		return 0;
	if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return 0;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm() normalises 31 February into March: refuse that. */
	if (t == (time_t)-1 || tm.tm_mday != D)
		return 0;
	return (int64_t)t * 1000;
}

static void read_meters(const struct prov_response *r, struct prov_result *out)
{
	const char *rem = prov_header(r, "x-ratelimit-remaining");
	int64_t v;

	if (rem && parse_remaining(rem, &v))
		out->requests_left = v;
	if (prov_header_int(r, "x-totallimit-remaining", CREDITS_LEFT_MAX, &v))
		out->credits_left = v;
	if (prov_header_int(r, "x-call-credits-spent", CREDITS_SPENT_MAX, &v))
		out->credits = (int)v;
}

/* Strings of an array joined with ", ", stopping before the value cap. */
static bool set_joined(struct prov_result *out, enum fld_id f, const json_t *arr, double conf)
{
	struct buf b;
	size_t i;
	json_t *el;
	bool ok = true;

	if (!json_is_array(arr))
		return true;
	buf_init(&b, LIM_PROV_VALUE_MAX);
	json_array_foreach(arr, i, el) {
		const char *s = json_string_value(el);
		size_t n = s ? json_string_length(el) : 0;

		if (n == 0)
			continue;
		if ((b.len && buf_puts(&b, ", ")) || buf_append(&b, s, n))
			break;
	}
	if (b.len)
		ok = prov_result_set(out, f, b.data, b.len, conf) == ENR_OK;
	buf_release(&b);
	return ok;
}

/* The likelihood of a hit (PDL: "an integer between 1 and 10"). */
static bool likelihood(const json_t *doc, double *conf)
{
	const json_t *lk = json_object_get(doc, "likelihood");
	json_int_t v;

	if (!json_is_integer(lk))
		return false;
	v = json_integer_value(lk);
	if (v < 1 || v > 10)
		return false;
	*conf = (double)v / 10.0;
	return true;
}

const struct pdl_path pdl_person_paths[] = {
	{ FLD_FIRST_NAME, "first_name" },
	{ FLD_LAST_NAME, "last_name" },
	{ FLD_TITLE, "job_title" },
	{ FLD_SENIORITY, "job_title_levels[0]" },
	{ FLD_DEPARTMENT, "job_title_role" },
	{ FLD_LINKEDIN_URL, "linkedin_url" },
	{ FLD_LOCATION, "location_name" },
	{ FLD_CITY, "location_locality" },
	{ FLD_STATE, "location_region" },
	{ FLD_COUNTRY, "location_country" },
	{ FLD_ZIP_CODE, "location_postal_code" },
	{ FLD_PHONE, "mobile_phone" },
	{ FLD_PHONE, "phone_numbers[0]" },
	{ FLD_BUSINESS_EMAIL, "work_email" },
	{ FLD_PERSONAL_EMAIL, "personal_emails[0]" },
	{ FLD_COMPANY_NAME, "job_company_name" },
	{ FLD_INDUSTRY, "job_company_industry" },
	{ FLD_INDUSTRY, "industry" },
	{ FLD_COMPANY_SIZE, "job_company_size" },
};
const size_t pdl_person_npaths = sizeof pdl_person_paths / sizeof pdl_person_paths[0];

static bool map_person(const json_t *data, double conf, struct prov_result *out)
{
	for (size_t i = 0; i < pdl_person_npaths; i++) {
		if (!prov_set_json_text(out, pdl_person_paths[i].f, jp_get(data, pdl_person_paths[i].path),
					conf))
			return false;
	}
	prov_result_company_domain(out, json_object_get(data, "job_company_website"));
	return true;
}

static bool map_company(const json_t *doc, double conf, struct prov_result *out)
{
	return prov_set_json_text(out, FLD_COMPANY_NAME, json_object_get(doc, "name"), conf) &&
	       prov_set_json_text(out, FLD_INDUSTRY, json_object_get(doc, "industry"), conf) &&
	       prov_set_json_text(out, FLD_COMPANY_SIZE, json_object_get(doc, "size"), conf) &&
	       prov_set_json_text(out, FLD_COMPANY_REVENUE, json_object_get(doc, "inferred_revenue"), conf) &&
	       set_joined(out, FLD_TECHNOLOGIES, json_object_get(doc, "tags"), conf);
}

/* A 200 answer, or one item of a bulk answer: {"status":200,
 * "likelihood":8,"data":{...}} for a person, the company's members at the
 * top level for a company.  credits_known: the call's meters already set
 * out->credits. */
static void parse_doc(const struct cfg_provider *p, bool company, const json_t *doc,
		      bool credits_known, struct prov_result *out)
{
	const json_t *st, *data;
	double conf;

	if (!json_is_object(doc)) {
		prov_result_reason(out, "pdl: 200 with a body that is not a JSON object");
		goto out;
	}
	st = json_object_get(doc, "status");
	if (st && !(json_is_integer(st) && json_integer_value(st) == 200)) {
		prov_result_reason(out, "pdl: 200 whose body status disagrees");
		goto out;
	}
	if (!likelihood(doc, &conf)) {
		prov_result_reason(out, "pdl: 200 without a likelihood of 1..10");
		goto out;
	}
	if (company) {
		if (!map_company(doc, conf, out)) {
			prov_result_reason(out, "pdl: out of memory");
			goto out;
		}
	} else {
		data = json_object_get(doc, "data");
		if (!json_is_object(data)) {
			prov_result_reason(out, "pdl: 200 without a data object");
			goto out;
		}
		if (!map_person(data, conf, out)) {
			prov_result_reason(out, "pdl: out of memory");
			goto out;
		}
	}
	if (!credits_known)
		out->credits = p->credits_per_hit;
	if (out->found == 0) {
		/* A record with nothing we can use answers nothing. */
		out->outcome = PROV_MISS;
		prov_result_reason(out, "pdl: %s record without a usable field",
				   company ? "company" : "person");
	} else {
		out->outcome = PROV_HIT;
		prov_result_reason(out, "pdl: %s hit, likelihood %.0f",
				   company ? "company" : "person", conf * 10.0);
	}
out:
	/* Whatever was mapped before the body proved bad is dropped. */
	if (out->outcome != PROV_HIT && out->outcome != PROV_MISS) {
		prov_result_clear_values(out);
		out->company_domain[0] = '\0';
	}
}

static void parse_200(const struct prov_answer *a, struct prov_result *out)
{
	json_t *doc = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);
	int64_t spent;

	/* x-call-credits-spent, when it is there, says what the call cost. */
	parse_doc(a->p, prov_company_only(a->q), doc,
		  prov_header_int(a->resp, "x-call-credits-spent", CREDITS_SPENT_MAX, &spent), out);
	json_decref(doc);
}

/* 402: the credits are gone.  x-ratelimit-reset names when they come
 * back only when it lies beyond the current minute window. */
static void quota_until(const struct prov_answer *a, struct prov_result *out)
{
	int64_t reset = reset_ms(a->resp);

	out->until_ms = reset > a->now_ms + 60000 ? reset : 0;
}

/* 429: x-ratelimit-reset, else Retry-After. */
static void rate_until(const struct prov_answer *a, struct prov_result *out)
{
	int64_t reset = reset_ms(a->resp);

	out->until_ms = reset > a->now_ms ? reset : prov_retry_after_ms(a->resp, a->now_ms);
}

/* PDL's "Errors & Status Codes": 200 a record, 404 none, any other 4xx a
 * problem with the request or the key, 5xx PDL's own trouble. */
static const struct prov_status_rule statuses[] = {
	{ 200, 200, PROV_TRANSIENT, NULL, parse_200 },
	/* A miss only when the body is PDL's JSON error: a proxy's 404 says
	 * nothing about the record. */
	{ 404, 404, PROV_TRANSIENT, NULL, prov_not_found_404 },
	{ 400, 400, PROV_REQUEST_REJECTED, "request rejected", NULL },
	{ 401, 401, PROV_KEY_INVALID, "key refused", NULL },
	/* 403 is the key too (revoked, or not allowed this endpoint). */
	{ 403, 403, PROV_KEY_INVALID, "key refused", NULL },
	{ 402, 402, PROV_QUOTA_EXHAUSTED, "credits exhausted", quota_until },
	{ 429, 429, PROV_RATE_LIMITED, "rate limited", rate_until },
};

static const struct prov_status_table table = {
	"pdl", statuses, sizeof statuses / sizeof statuses[0], read_meters,
};

static void pdl_parse(const struct cfg_provider *p, const struct prov_query *q,
		      const struct prov_response *resp, int64_t now_ms, struct prov_result *out)
{
	prov_parse_by_status(&table, p, q, resp, now_ms, out);
}

/* ---- bulk person enrichment (docs/providers.md, "PDL person bulk
 * enrichment") ------------------------------------------------------------ */

#define PDL_BULK_MAX 100

static enum enr_err put_param(json_t *params, const char *name, const char *v)
{
	json_t *s;

	if (!util_utf8_valid(v, strlen(v)))
		return ENR_E_INVALID;
	s = json_string(v);
	if (s == NULL || json_object_set_new(params, name, s) != 0)
		return ENR_E_NOMEM;
	return ENR_OK;
}

static enum enr_err bulk_body(const struct cfg_provider *p, const struct prov_query *const *qs,
			      const char *const *ids, size_t n, struct buf *out)
{
	json_t *root = json_object(), *reqs = json_array();
	enum enr_err rc = ENR_E_NOMEM;
	char *text = NULL;

	if (root == NULL || reqs == NULL)
		goto out;
	if (json_object_set_new(root, "titlecase", json_true()) != 0)
		goto out;
	if (p->min_likelihood >= 1 && p->min_likelihood <= 10 &&
	    json_object_set_new(root, "min_likelihood", json_integer(p->min_likelihood)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_object(), *params = json_object(), *meta = json_object();

		if (item == NULL || params == NULL || meta == NULL ||
		    json_object_set_new(item, "params", params) != 0 ||
		    json_object_set_new(item, "metadata", meta) != 0 ||
		    json_array_append_new(reqs, item) != 0) {
			json_decref(item);
			json_decref(params);
			json_decref(meta);
			rc = ENR_E_NOMEM;
			goto out;
		}
		if (!person_searchable(qs[i])) {
			rc = ENR_E_INVALID;
			goto out;
		}
		for (size_t k = 0; k < sizeof person_params / sizeof person_params[0]; k++) {
			const char *v = person_param(qs[i], k);

			if (v && (rc = put_param(params, person_params[k].param, v)) != ENR_OK)
				goto out;
		}
		if ((rc = put_param(meta, "id", ids[i])) != ENR_OK)
			goto out;
	}
	rc = ENR_E_NOMEM;
	if (json_object_set(root, "requests", reqs) != 0)
		goto out;
	text = json_dumps(root, JSON_COMPACT);
	if (text == NULL)
		goto out;
	rc = buf_puts(out, text) == ENR_OK ? ENR_OK : ENR_E_TOO_LARGE;
out:
	free(text);
	json_decref(reqs);
	json_decref(root);
	return rc;
}

static enum enr_err pdl_build_bulk(const struct cfg_provider *p, const struct cfg_key *key,
				   const struct prov_query *const *qs, const char *const *ids,
				   size_t n, struct prov_request *out)
{
	enum enr_err rc;

	if (p == NULL || key == NULL || key->secret == NULL || qs == NULL || ids == NULL)
		return ENR_E_INTERNAL;
	if (n == 0 || n > PDL_BULK_MAX)
		return ENR_E_INVALID;
	prov_request_release(out);
	util_strlcpy(out->method, "POST", sizeof out->method);
	rc = prov_request_base(out, p->base_url, "/v5/person/bulk");
	if (rc == ENR_OK)
		rc = bulk_body(p, qs, ids, n, &out->body);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Content-Type", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "X-Api-Key", key->secret);
	if (rc)
		prov_request_release(out);
	return rc;
}

/* One item of the answer array: what the single endpoint answers for the
 * same parameters.  A per-item 402 (the account ran out in the middle of
 * the call) is the key's quota, the row goes to another key. */
static void parse_item(const struct cfg_provider *p, const json_t *doc, struct prov_result *out)
{
	const json_t *st = json_object_get(doc, "status");
	json_int_t status = json_is_integer(st) ? json_integer_value(st) : 0;

	prov_result_reset(out);
	out->outcome = PROV_TRANSIENT;
	switch (status) {
	case 200:
		parse_doc(p, false, doc, false, out);
		return;
	case 404:
		out->outcome = PROV_MISS;
		prov_result_reason(out, "pdl: bulk item not found");
		return;
	case 400:
		out->outcome = PROV_REQUEST_REJECTED;
		prov_result_reason(out, "pdl: bulk item rejected (400)");
		return;
	case 402:
		out->outcome = PROV_QUOTA_EXHAUSTED;
		prov_result_reason(out, "pdl: credits ran out during the bulk call (402)");
		return;
	default:
		prov_result_reason(out, "pdl: bulk item failed (status %lld)", (long long)status);
		return;
	}
}

static void pdl_parse_bulk(const struct cfg_provider *p, const struct prov_query *const *qs,
			   const char *const *ids, size_t n, const struct prov_response *resp,
			   int64_t now_ms, struct prov_result *call, struct prov_result *items)
{
	json_t *doc = NULL;
	const json_t *el;
	size_t j;
	bool credits_known = false;

	(void)qs;
	for (size_t i = 0; i < n; i++) {
		prov_result_reset(&items[i]);
		items[i].outcome = PROV_TRANSIENT;
		prov_result_reason(&items[i], "pdl: item missing from the bulk answer");
	}
	if (resp == NULL || resp->status != 200) {
		pdl_parse(p, NULL, resp, now_ms, call);
		if (call->outcome == PROV_MISS || call->outcome == PROV_HIT) {
			/* A 404 for the call names no item: upstream confusion. */
			prov_result_reset(call);
			call->outcome = PROV_TRANSIENT;
			prov_result_reason(call, "pdl: bulk call answered %ld", resp ? resp->status : 0L);
		}
		return;
	}
	prov_result_reset(call);
	call->outcome = PROV_TRANSIENT;
	read_meters(resp, call);
	{
		int64_t spent;

		credits_known = prov_header_int(resp, "x-call-credits-spent", CREDITS_SPENT_MAX, &spent);
	}
	doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	if (!json_is_array(doc)) {
		prov_result_reason(call, "pdl: bulk 200 whose body is not a JSON array");
		json_decref(doc);
		return;
	}
	call->outcome = PROV_HIT;
	prov_result_reason(call, "pdl: bulk answer with %zu items", json_array_size(doc));
	json_array_foreach(doc, j, el) {
		const char *id = json_string_value(jp_get(el, "metadata.id"));
		size_t at = n;

		if (!json_is_object(el))
			continue;
		/* By the id we sent; by position only when the id is absent. */
		if (id) {
			for (size_t i = 0; i < n; i++) {
				if (strcmp(ids[i], id) == 0) {
					at = i;
					break;
				}
			}
		} else if (j < n) {
			at = j;
		}
		if (at < n)
			parse_item(p, el, &items[at]);
	}
	if (!credits_known) {
		call->credits = 0;
		for (size_t i = 0; i < n; i++)
			call->credits += items[i].credits;
	}
	json_decref(doc);
}

const struct prov_ops prov_pdl_ops = {
	.kind = "pdl",
	.needs_key = true,
	.supplies = pdl_supplies,
	.build = pdl_build,
	.build_poll = NULL,
	.parse = pdl_parse,
	.answer = NULL,
	.bulk_max = PDL_BULK_MAX,
	.build_bulk = pdl_build_bulk,
	.parse_bulk = pdl_parse_bulk,
	.search = &prov_pdl_search_ops,
};

/* Shared with the search adapter (pdl_int.h). */
void pdl_read_meters(const struct prov_response *r, struct prov_result *out)
{
	read_meters(r, out);
}

void pdl_quota_until(const struct prov_answer *a, struct prov_result *out)
{
	quota_until(a, out);
}

void pdl_rate_until(const struct prov_answer *a, struct prov_result *out)
{
	rate_until(a, out);
}
