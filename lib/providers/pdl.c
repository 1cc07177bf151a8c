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

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

/* x-call-credits-spent and x-totallimit-remaining beyond these are not
 * believed. */
#define CREDITS_SPENT_MAX INT64_C(1000000)
#define CREDITS_LEFT_MAX  INT64_C(1000000000000)

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
		rc = prov_request_base(out, p->base_url, "/v5/company/enrich");
		if (rc == ENR_OK && prov_query_id(q, ID_DOMAIN))
			rc = prov_request_query(out, "website", prov_query_id(q, ID_DOMAIN));
		else if (rc == ENR_OK)
			rc = prov_request_query(out, "name", prov_query_id(q, ID_COMPANY_NAME));
	} else {
		static const struct {
			const char *param;
			enum fld_ident id;
		} params[] = {
			{ "email", ID_EMAIL },           { "profile", ID_LINKEDIN_URL },
			{ "first_name", ID_FIRST_NAME }, { "last_name", ID_LAST_NAME },
			{ "company", ID_COMPANY_NAME },  { "phone", ID_PHONE },
		};
		char lk[16];

		/* PDL's minimum input: profile, email or phone, or a full name
		 * together with something else about the person (its "Input
		 * Parameters" page); of the identifiers we hold, the company. */
		if (!prov_query_id(q, ID_EMAIL) && !prov_person_profile(q) && !prov_query_id(q, ID_PHONE) &&
		    !(prov_query_id(q, ID_FIRST_NAME) && prov_query_id(q, ID_LAST_NAME) &&
		      prov_query_id(q, ID_COMPANY_NAME))) {
			rc = ENR_E_INVALID;
			goto out;
		}
		rc = prov_request_base(out, p->base_url, "/v5/person/enrich");
		for (size_t i = 0; rc == ENR_OK && i < sizeof params / sizeof params[0]; i++) {
			const char *v = params[i].id == ID_LINKEDIN_URL ? prov_person_profile(q)
								       : prov_query_id(q, params[i].id);

			if (v)
				rc = prov_request_query(out, params[i].param, v);
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

static bool map_person(const json_t *data, double conf, struct prov_result *out)
{
	/* Listed in preference order: the first value found for a field wins. */
	static const struct {
		enum fld_id f;
		const char *path;
	} map[] = {
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

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (!prov_set_json_text(out, map[i].f, jp_get(data, map[i].path), conf))
			return false;
	}
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

/* 200: {"status":200,"likelihood":8,"data":{...}} for a person, the
 * company's members at the top level for a company. */
static void parse_200(const struct prov_answer *a, struct prov_result *out)
{
	json_t *doc = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);
	const json_t *st, *data;
	bool company = prov_company_only(a->q);
	int64_t spent;
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
	/* x-call-credits-spent, when it is there, says what the call cost. */
	if (!prov_header_int(a->resp, "x-call-credits-spent", CREDITS_SPENT_MAX, &spent))
		out->credits = a->p->credits_per_hit;
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
	if (out->outcome != PROV_HIT && out->outcome != PROV_MISS)
		prov_result_clear_values(out);
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

const struct prov_ops prov_pdl_ops = {
	.kind = "pdl",
	.needs_key = true,
	.build = pdl_build,
	.build_poll = NULL,
	.parse = pdl_parse,
	.answer = NULL,
};
