/*
 * lusha.c - the Lusha v2 adapter (kind "lusha").
 *
 * Symbol: prov_lusha_ops.  Person lookups go to /v2/person, company
 * lookups (every wanted field a company field, and a domain or a company
 * name known) to /v2/company; the key travels in the api_key header.  A
 * key of category "phone" or "email" asks for the matching reveal option.
 * The wire format, the outcome table and the meters are in
 * docs/providers.md ("Lusha"); Lusha's own pages are "Error Codes" and
 * "Rate Limiting" of its v2 API reference.
 *
 * Pure: builds requests and reads answers, never does I/O, never copies
 * upstream text into a reason.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/ascii.h"
#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

#define CONFIDENCE 0.9

/* "Reset in N seconds" beyond a day is not believed. */
#define RESET_IN_MAX_S INT64_C(86400)

static bool set_text(struct prov_result *out, enum fld_id f, const json_t *v)
{
	return prov_set_json_text(out, f, v, CONFIDENCE);
}

static enum enr_err lusha_build(const struct cfg_provider *p, const struct cfg_key *key,
				const struct prov_query *q, struct prov_request *out)
{
	enum enr_err rc = ENR_OK;

	if (p == NULL || key == NULL || key->secret == NULL || q == NULL)
		return ENR_E_INTERNAL;
	prov_request_release(out);
	util_strlcpy(out->method, "GET", sizeof out->method);

	if (prov_company_only(q)) {
		rc = prov_request_base(out, p->base_url, "/v2/company");
		if (rc == ENR_OK && prov_query_id(q, ID_DOMAIN))
			rc = prov_request_query(out, "domain", prov_query_id(q, ID_DOMAIN));
		else if (rc == ENR_OK)
			rc = prov_request_query(out, "company", prov_query_id(q, ID_COMPANY_NAME));
	} else {
		static const struct {
			const char *param;
			enum fld_ident id;
		} params[] = {
			{ "email", ID_EMAIL },          { "linkedinUrl", ID_LINKEDIN_URL },
			{ "firstName", ID_FIRST_NAME }, { "lastName", ID_LAST_NAME },
			{ "companyName", ID_COMPANY_NAME }, { "companyDomain", ID_DOMAIN },
		};
		const char *cat = key->category ? key->category : "";

		/* Lusha v2 finds a person by e-mail, by LinkedIn URL, or by a
		 * full name with a company name or domain (a 412 says "send a
		 * full name ... valid first & last name"). */
		if (!prov_query_id(q, ID_EMAIL) && !prov_person_profile(q) &&
		    !(prov_query_id(q, ID_FIRST_NAME) && prov_query_id(q, ID_LAST_NAME) &&
		      (prov_query_id(q, ID_COMPANY_NAME) || prov_query_id(q, ID_DOMAIN)))) {
			rc = ENR_E_INVALID;
			goto out;
		}
		rc = prov_request_base(out, p->base_url, "/v2/person");
		for (size_t i = 0; rc == ENR_OK && i < sizeof params / sizeof params[0]; i++) {
			const char *v = params[i].id == ID_LINKEDIN_URL ? prov_person_profile(q)
								       : prov_query_id(q, params[i].id);

			if (v)
				rc = prov_request_query(out, params[i].param, v);
		}
		/* Plans without the reveal options answer 403 (request_rejected,
		 * the key stays usable for plain lookups). */
		if (rc == ENR_OK && strcmp(cat, "phone") == 0)
			rc = prov_request_query(out, "revealPhones", "true");
		if (rc == ENR_OK && strcmp(cat, "email") == 0)
			rc = prov_request_query(out, "revealEmails", "true");
	}
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "api_key", key->secret);
out:
	if (rc)
		prov_request_release(out);
	return rc;
}

/* What is left is the smallest count over the windows that report one
 * (a window at 0 refuses the next call whatever the others say). */
static void read_meters(const struct prov_response *r, struct prov_result *out)
{
	static const char *const names[] = { "x-minute-requests-left", "x-hourly-requests-left",
					     "x-daily-requests-left" };
	int64_t v;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (prov_header_int(r, names[i], INT64_MAX, &v) && (out->requests_left < 0 || v < out->requests_left))
			out->requests_left = v;
	}
}

/* A scalar as it is, or a two-number array [low, high] as "low-high"
 * (ranges such as revenue and head count come either way). */
static bool set_range(struct prov_result *out, enum fld_id f, const json_t *v)
{
	char a[32], b[32], both[72];
	const char *ta, *tb;
	size_t na, nb;
	int n;

	if (!json_is_array(v))
		return set_text(out, f, v);
	if (json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
	    !json_is_number(json_array_get(v, 1)))
		return true;
	ta = jp_text(json_array_get(v, 0), a, sizeof a, &na);
	tb = jp_text(json_array_get(v, 1), b, sizeof b, &nb);
	if (ta == NULL || tb == NULL)
		return true;
	n = snprintf(both, sizeof both, "%s-%s", ta, tb);
	if (n < 0 || (size_t)n >= sizeof both)
		return true;
	return prov_result_set(out, f, both, (size_t)n, CONFIDENCE) == ENR_OK;
}

/* technologies[]: objects with a name (or plain strings), joined with
 * ", " and stopped before the value cap. */
static bool set_technologies(struct prov_result *out, const json_t *arr)
{
	struct buf b;
	size_t i;
	json_t *el;
	bool ok = true;

	if (!json_is_array(arr))
		return true;
	buf_init(&b, LIM_PROV_VALUE_MAX);
	json_array_foreach(arr, i, el) {
		const json_t *name = json_is_object(el) ? json_object_get(el, "name") : el;
		const char *s = json_string_value(name);
		size_t n = s ? json_string_length(name) : 0;

		if (n == 0)
			continue;
		if ((b.len && buf_puts(&b, ", ")) || buf_append(&b, s, n))
			break;
	}
	if (b.len)
		ok = prov_result_set(out, FLD_TECHNOLOGIES, b.data, b.len, CONFIDENCE) == ENR_OK;
	buf_release(&b);
	return ok;
}

static bool str_ieq(const json_t *v, const char *s)
{
	const char *t = json_string_value(v);

	return t && strcasecmp(t, s) == 0;
}

/* phoneNumbers[]: a mobile number first, else the first number. */
static bool set_phone(struct prov_result *out, const json_t *arr)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return true;
	json_array_foreach(arr, i, el) {
		if (json_is_object(el) && str_ieq(json_object_get(el, "phoneType"), "mobile") &&
		    !set_text(out, FLD_PHONE, json_object_get(el, "number")))
			return false;
	}
	json_array_foreach(arr, i, el) {
		if (json_is_object(el) && !set_text(out, FLD_PHONE, json_object_get(el, "number")))
			return false;
	}
	return true;
}

/* emailAddresses[]: emailType "work" is the business address, "personal"
 * the personal one; the first of each wins. */
static bool set_emails(struct prov_result *out, const json_t *arr)
{
	size_t i;
	json_t *el;

	if (!json_is_array(arr))
		return true;
	json_array_foreach(arr, i, el) {
		const json_t *type, *addr;

		if (!json_is_object(el))
			continue;
		type = json_object_get(el, "emailType");
		addr = json_object_get(el, "email");
		if (str_ieq(type, "work") && !set_text(out, FLD_BUSINESS_EMAIL, addr))
			return false;
		if (str_ieq(type, "personal") && !set_text(out, FLD_PERSONAL_EMAIL, addr))
			return false;
	}
	return true;
}

static bool map_person(const json_t *data, struct prov_result *out)
{
	static const struct {
		enum fld_id f;
		const char *path;
	} map[] = {
		{ FLD_FIRST_NAME, "firstName" },
		{ FLD_LAST_NAME, "lastName" },
		{ FLD_TITLE, "jobTitle.title" },
		{ FLD_SENIORITY, "jobTitle.seniority" },
		{ FLD_DEPARTMENT, "jobTitle.departments[0]" },
		{ FLD_LINKEDIN_URL, "socialLinks.linkedin" },
		{ FLD_CITY, "location.city" },
		{ FLD_STATE, "location.state" },
		{ FLD_COUNTRY, "location.country" },
		{ FLD_ZIP_CODE, "location.postalCode" },
		{ FLD_LOCATION, "location.rawLocation" },
		{ FLD_COMPANY_NAME, "company.name" },
		{ FLD_INDUSTRY, "company.mainIndustry" },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (!set_text(out, map[i].f, jp_get(data, map[i].path)))
			return false;
	}
	return set_range(out, FLD_COMPANY_SIZE, jp_get(data, "company.employees")) &&
	       set_phone(out, json_object_get(data, "phoneNumbers")) &&
	       set_emails(out, json_object_get(data, "emailAddresses"));
}

static bool map_company(const json_t *data, struct prov_result *out)
{
	return set_text(out, FLD_COMPANY_NAME, json_object_get(data, "name")) &&
	       set_text(out, FLD_INDUSTRY, json_object_get(data, "mainIndustry")) &&
	       set_range(out, FLD_COMPANY_SIZE, json_object_get(data, "employees")) &&
	       set_range(out, FLD_COMPANY_REVENUE, json_object_get(data, "revenueRange")) &&
	       set_technologies(out, json_object_get(data, "technologies"));
}

/* Person 200: {"contact":{"data":{...}|null,"error":null|{...},
 * "isCreditCharged":bool}}.  Company 200: {"data":{...}|null} or
 * {"errors":...}. */
static void parse_200(const struct prov_answer *a, struct prov_result *out)
{
	const struct cfg_provider *p = a->p;
	json_t *doc = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);
	const json_t *contact, *data, *err;
	bool company = prov_company_only(a->q), mapped;

	if (!json_is_object(doc)) {
		prov_result_reason(out, "lusha: 200 with a body that is not a JSON object");
		goto out;
	}
	if (company) {
		data = json_object_get(doc, "data");
		if (json_is_null(data) || (data == NULL && json_object_get(doc, "errors"))) {
			out->outcome = PROV_MISS;
			prov_result_reason(out, "lusha: company not found");
			goto out;
		}
		if (!json_is_object(data)) {
			prov_result_reason(out, "lusha: company 200 without a data object");
			goto out;
		}
		mapped = map_company(data, out);
		if (mapped)
			out->credits = p->credits_per_hit;
	} else {
		contact = json_object_get(doc, "contact");
		if (!json_is_object(contact)) {
			prov_result_reason(out, "lusha: person 200 without a contact object");
			goto out;
		}
		/* Lusha charges some lookups that find nothing; it says so. */
		if (json_is_true(json_object_get(contact, "isCreditCharged")))
			out->credits = p->credits_per_hit;
		err = json_object_get(contact, "error");
		data = json_object_get(contact, "data");
		if (json_is_object(err) || json_is_null(data)) {
			out->outcome = PROV_MISS;
			prov_result_reason(out, "lusha: person not found");
			goto out;
		}
		if (!json_is_object(data)) {
			out->credits = 0;
			prov_result_reason(out, "lusha: person 200 without a data object");
			goto out;
		}
		mapped = map_person(data, out);
	}
	if (!mapped) {
		prov_result_reason(out, "lusha: out of memory");
		goto out;
	}
	if (out->found == 0) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "lusha: %s record without a usable field",
				   company ? "company" : "person");
	} else {
		out->outcome = PROV_HIT;
		prov_result_reason(out, "lusha: %s hit", company ? "company" : "person");
	}
out:
	if (out->outcome != PROV_HIT && out->outcome != PROV_MISS)
		prov_result_clear_values(out);
	json_decref(doc);
}

/* "... Reset in N seconds" (Lusha's documented hourly message). */
static int64_t reset_in_ms(const char *msg, int64_t now_ms)
{
	const char *at = strcasestr(msg, "reset in ");
	const char *p, *start;
	int64_t secs;

	if (at == NULL)
		return 0;
	p = start = at + 9;
	while (ascii_is_digit(*p))
		p++;
	if (p == start || strncasecmp(p, " second", 7) != 0 ||
	    util_parse_i64n(start, (size_t)(p - start), 0, RESET_IN_MAX_S, &secs) != ENR_OK)
		return 0;
	return now_ms + secs * 1000;
}

/* 429: Retry-After when present; else the reset the message states; else
 * the end of the window the message names ("Minute", "Hourly", "Daily"
 * rate limit exceeded); else the window whose requests-left header is 0,
 * the longest first.  0 when nothing says. */
static int64_t until_429(const struct prov_response *resp, int64_t now_ms)
{
	int64_t until = prov_retry_after_ms(resp, now_ms), v;
	json_t *doc;
	const char *msg;

	if (until)
		return until;
	doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	msg = json_string_value(json_object_get(doc, "message"));
	if (msg) {
		until = reset_in_ms(msg, now_ms);
		if (until == 0 && (strcasestr(msg, "daily") || strcasestr(msg, " day")))
			until = prov_next_utc_midnight_ms(now_ms);
		if (until == 0 && strcasestr(msg, "hour"))
			until = prov_next_hour_ms(now_ms);
		if (until == 0 && strcasestr(msg, "minute"))
			until = prov_next_minute_ms(now_ms);
	}
	json_decref(doc);
	if (until)
		return until;
	if (prov_header_int(resp, "x-daily-requests-left", INT64_MAX, &v) && v == 0)
		return prov_next_utc_midnight_ms(now_ms);
	if (prov_header_int(resp, "x-hourly-requests-left", INT64_MAX, &v) && v == 0)
		return prov_next_hour_ms(now_ms);
	if (prov_header_int(resp, "x-minute-requests-left", INT64_MAX, &v) && v == 0)
		return prov_next_minute_ms(now_ms);
	return 0;
}

static void rate_until(const struct prov_answer *a, struct prov_result *out)
{
	out->until_ms = until_429(a->resp, a->now_ms);
}

/* Lusha's "Error Codes" of its v2 API reference. */
static const struct prov_status_rule statuses[] = {
	{ 200, 200, PROV_TRANSIENT, NULL, parse_200 },
	/* A miss only when the body is Lusha's JSON error: a proxy's 404
	 * says nothing about the record. */
	{ 404, 404, PROV_TRANSIENT, NULL, prov_not_found_404 },
	{ 400, 400, PROV_REQUEST_REJECTED, "request rejected", NULL },
	{ 401, 401, PROV_KEY_INVALID, "key refused", NULL },
	/* The credits come back with the billing cycle, which the answer
	 * does not name: until stays unknown. */
	{ 402, 402, PROV_QUOTA_EXHAUSTED, "credits exhausted", NULL },
	/* request_rejected, not key_invalid: the plan lacks an option the
	 * request asked for (revealPhones, revealEmails); the key is fine and
	 * the next request without it goes through. */
	{ 403, 403, PROV_REQUEST_REJECTED, "request not allowed on this plan", NULL },
	{ 429, 429, PROV_RATE_LIMITED, "rate limited", rate_until },
	/* 451 "Unavailable For Legal Reasons" is an answer: Lusha will not
	 * give this contact out (its GDPR rules), whichever key asks.  A miss,
	 * not a failure to retry. */
	{ 451, 451, PROV_MISS, "contact withheld for legal reasons", NULL },
};

static const struct prov_status_table table = {
	"lusha", statuses, sizeof statuses / sizeof statuses[0], read_meters,
};

static void lusha_parse(const struct cfg_provider *p, const struct prov_query *q,
			const struct prov_response *resp, int64_t now_ms, struct prov_result *out)
{
	prov_parse_by_status(&table, p, q, resp, now_ms, out);
}

const struct prov_ops prov_lusha_ops = {
	.kind = "lusha",
	.needs_key = true,
	.build = lusha_build,
	.build_poll = NULL,
	.parse = lusha_parse,
	.answer = NULL,
};
