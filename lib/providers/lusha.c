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

/* The fields a person answer carries (docs/providers.md, "Lusha"). */
#define PERSON_FIELDS                                                                     \
	(FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME) | FLD_BIT(FLD_TITLE) |          \
	 FLD_BIT(FLD_SENIORITY) | FLD_BIT(FLD_DEPARTMENT) | FLD_BIT(FLD_LINKEDIN_URL) |  \
	 FLD_BIT(FLD_CITY) | FLD_BIT(FLD_STATE) | FLD_BIT(FLD_COUNTRY) |                 \
	 FLD_BIT(FLD_ZIP_CODE) | FLD_BIT(FLD_LOCATION) | FLD_BIT(FLD_COMPANY_NAME) |     \
	 FLD_BIT(FLD_INDUSTRY) | FLD_BIT(FLD_COMPANY_SIZE) | FLD_BIT(FLD_PHONE) |        \
	 FLD_BIT(FLD_BUSINESS_EMAIL) | FLD_BIT(FLD_PERSONAL_EMAIL))

/* Lusha v2 finds a person by e-mail, by LinkedIn URL, or by a full name
 * with a company name or domain (a 412 says "send a full name ... valid
 * first & last name"). */
static bool person_searchable(const struct prov_query *q)
{
	return prov_query_id(q, ID_EMAIL) || prov_person_profile(q) ||
	       (prov_query_id(q, ID_FIRST_NAME) && prov_query_id(q, ID_LAST_NAME) &&
		(prov_query_id(q, ID_COMPANY_NAME) || prov_query_id(q, ID_DOMAIN)));
}

static fld_set lusha_supplies(const struct cfg_provider *p, enum prov_kind kind,
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

static enum enr_err lusha_build(const struct cfg_provider *p, const struct cfg_key *key,
				const struct prov_query *q, struct prov_request *out)
{
	enum enr_err rc = ENR_OK;

	if (p == NULL || key == NULL || key->secret == NULL || q == NULL)
		return ENR_E_INTERNAL;
	prov_request_release(out);
	util_strlcpy(out->method, "GET", sizeof out->method);

	if (prov_company_only(q)) {
		if (!prov_query_id(q, ID_DOMAIN) && !prov_query_id(q, ID_COMPANY_NAME)) {
			rc = ENR_E_INVALID;
			goto out;
		}
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

		if (!person_searchable(q)) {
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
	prov_result_company_domain(out, jp_get(data, "company.domain"));
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

/* A person's contact object: {"data":{...}|null,"error":null|{...},
 * "isCreditCharged":bool}, as the single endpoint answers it and as each
 * entry of a bulk answer is.  company (may be NULL) is the employer a
 * bulk answer lists in its companies map; data.company wins.  In a bulk
 * answer an error other than EMPTY_DATA is that contact's failure, and
 * INSUFFICIENT_CREDITS the key's quota; the single endpoint's table has
 * every error a miss. */
static void parse_contact(const struct cfg_provider *p, const json_t *contact,
			  const json_t *company, bool bulk, struct prov_result *out)
{
	const json_t *data, *err;
	const char *code;

	if (!json_is_object(contact)) {
		prov_result_reason(out, "lusha: person 200 without a contact object");
		goto out;
	}
	/* Lusha charges some lookups that find nothing; it says so. */
	if (json_is_true(json_object_get(contact, "isCreditCharged")))
		out->credits = p->credits_per_hit;
	err = json_object_get(contact, "error");
	data = json_object_get(contact, "data");
	code = bulk ? json_string_value(json_object_get(err, "code")) : NULL;
	if (code && strcmp(code, "INSUFFICIENT_CREDITS") == 0) {
		/* Credits ran out in the middle of a bulk call: the key's. */
		out->credits = 0;
		out->outcome = PROV_QUOTA_EXHAUSTED;
		prov_result_reason(out, "lusha: credits ran out during the bulk call");
		goto out;
	}
	if (code && strcmp(code, "EMPTY_DATA") != 0) {
		out->credits = 0;
		prov_result_reason(out, "lusha: the contact failed upstream");
		goto out;
	}
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
	if (!map_person(data, out) ||
	    (json_is_object(company) && json_object_get(data, "company") == NULL &&
	     !(set_text(out, FLD_COMPANY_NAME, json_object_get(company, "name")) &&
	       set_text(out, FLD_INDUSTRY, json_object_get(company, "mainIndustry")) &&
	       set_range(out, FLD_COMPANY_SIZE, json_object_get(company, "employees"))))) {
		prov_result_reason(out, "lusha: out of memory");
		goto out;
	}
	if (json_is_object(company))
		prov_result_company_domain(out, json_object_get(company, "domain"));
	if (out->found == 0) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "lusha: person record without a usable field");
	} else {
		out->outcome = PROV_HIT;
		prov_result_reason(out, "lusha: person hit");
	}
out:
	if (out->outcome != PROV_HIT && out->outcome != PROV_MISS) {
		prov_result_clear_values(out);
		out->company_domain[0] = '\0';
	}
}

/* Person 200: {"contact":{...}} (parse_contact).  Company 200:
 * {"data":{...}|null} or {"errors":...}. */
static void parse_200(const struct prov_answer *a, struct prov_result *out)
{
	const struct cfg_provider *p = a->p;
	json_t *doc = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);
	const json_t *data;

	if (!json_is_object(doc)) {
		prov_result_reason(out, "lusha: 200 with a body that is not a JSON object");
		goto out;
	}
	if (!prov_company_only(a->q)) {
		parse_contact(p, json_object_get(doc, "contact"), NULL, false, out);
		goto out;
	}
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
	if (!map_company(data, out)) {
		prov_result_reason(out, "lusha: out of memory");
		goto out;
	}
	out->credits = p->credits_per_hit;
	if (out->found == 0) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "lusha: company record without a usable field");
	} else {
		out->outcome = PROV_HIT;
		prov_result_reason(out, "lusha: company hit");
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

/* ---- bulk person enrichment (docs/providers.md, "Lusha bulk person
 * enrichment") ------------------------------------------------------------ */

#define LUSHA_BULK_MAX 100

static enum enr_err put_str(json_t *o, const char *name, const char *v)
{
	json_t *s;

	if (v == NULL)
		return ENR_OK;
	if (!util_utf8_valid(v, strlen(v)))
		return ENR_E_INVALID;
	s = json_string(v);
	if (s == NULL || json_object_set_new(o, name, s) != 0)
		return ENR_E_NOMEM;
	return ENR_OK;
}

/* One contact: contactId, e-mail, LinkedIn URL, full name with the
 * current company. */
static enum enr_err bulk_contact(const struct prov_query *q, const char *id, json_t *c)
{
	const char *first = prov_query_id(q, ID_FIRST_NAME), *last = prov_query_id(q, ID_LAST_NAME);
	const char *cname = prov_query_id(q, ID_COMPANY_NAME), *dom = prov_query_id(q, ID_DOMAIN);
	enum enr_err rc;

	if (!person_searchable(q))
		return ENR_E_INVALID;
	if ((rc = put_str(c, "contactId", id)) != ENR_OK ||
	    (rc = put_str(c, "email", prov_query_id(q, ID_EMAIL))) != ENR_OK ||
	    (rc = put_str(c, "linkedinUrl", prov_person_profile(q))) != ENR_OK)
		return rc;
	if (first && last) {
		char full[2 * LIM_REC_FIELD_MAX + 2];
		json_t *comps, *comp;

		snprintf(full, sizeof full, "%s %s", first, last);
		if ((rc = put_str(c, "fullName", full)) != ENR_OK)
			return rc;
		if (cname || dom) {
			comps = json_array();
			comp = json_object();
			if (comps == NULL || comp == NULL || json_array_append_new(comps, comp) != 0 ||
			    json_object_set_new(c, "companies", comps) != 0) {
				json_decref(comp);
				json_decref(comps);
				return ENR_E_NOMEM;
			}
			if ((rc = put_str(comp, "name", cname)) != ENR_OK ||
			    (rc = put_str(comp, "domain", dom)) != ENR_OK)
				return rc;
			if (json_object_set_new(comp, "isCurrent", json_true()) != 0)
				return ENR_E_NOMEM;
		}
	}
	return ENR_OK;
}

static enum enr_err lusha_build_bulk(const struct cfg_provider *p, const struct cfg_key *key,
				     const struct prov_query *const *qs, const char *const *ids,
				     size_t n, struct prov_request *out)
{
	json_t *root = NULL, *contacts = NULL, *meta = NULL;
	const char *cat;
	char *text = NULL;
	enum enr_err rc = ENR_E_NOMEM;

	if (p == NULL || key == NULL || key->secret == NULL || qs == NULL || ids == NULL)
		return ENR_E_INTERNAL;
	if (n == 0 || n > LUSHA_BULK_MAX)
		return ENR_E_INVALID;
	cat = key->category ? key->category : "";
	prov_request_release(out);
	util_strlcpy(out->method, "POST", sizeof out->method);
	root = json_object();
	contacts = json_array();
	meta = json_object();
	if (root == NULL || contacts == NULL || meta == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_object();

		if (c == NULL || json_array_append_new(contacts, c) != 0) {
			rc = ENR_E_NOMEM;
			goto out;
		}
		if ((rc = bulk_contact(qs[i], ids[i], c)) != ENR_OK)
			goto out;
	}
	rc = ENR_E_NOMEM;
	/* As on the single endpoint: a plan without these answers 403. */
	if (strcmp(cat, "phone") == 0 && json_object_set_new(meta, "revealPhones", json_true()))
		goto out;
	if (strcmp(cat, "email") == 0 && json_object_set_new(meta, "revealEmails", json_true()))
		goto out;
	if (json_object_set(root, "contacts", contacts) != 0 ||
	    (json_object_size(meta) > 0 && json_object_set(root, "metadata", meta) != 0))
		goto out;
	text = json_dumps(root, JSON_COMPACT);
	if (text == NULL)
		goto out;
	rc = prov_request_base(out, p->base_url, "/v2/person");
	if (rc == ENR_OK && buf_puts(&out->body, text) != ENR_OK)
		rc = ENR_E_TOO_LARGE;
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Accept", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "Content-Type", "application/json");
	if (rc == ENR_OK)
		rc = prov_request_header(out, "User-Agent", "enrichd/" ENRICHD_VERSION);
	if (rc == ENR_OK)
		rc = prov_request_header(out, "api_key", key->secret);
out:
	free(text);
	json_decref(meta);
	json_decref(contacts);
	json_decref(root);
	if (rc)
		prov_request_release(out);
	return rc;
}

/* 200: {"contacts": {"<contactId>": {contact}}, "companies": {"<id>":
 * {...}}}; each contact's employer from data.company, else from the
 * companies map by data.companyId. */
static void lusha_parse_bulk(const struct cfg_provider *p, const struct prov_query *const *qs,
			     const char *const *ids, size_t n, const struct prov_response *resp,
			     int64_t now_ms, struct prov_result *call, struct prov_result *items)
{
	json_t *doc;
	const json_t *contacts, *companies;

	(void)qs;
	for (size_t i = 0; i < n; i++) {
		prov_result_reset(&items[i]);
		items[i].outcome = PROV_TRANSIENT;
		prov_result_reason(&items[i], "lusha: contact missing from the bulk answer");
	}
	if (resp == NULL || resp->status != 200) {
		static const struct prov_query person; /* no wanted field: a person lookup */

		lusha_parse(p, &person, resp, now_ms, call);
		if (call->outcome == PROV_MISS || call->outcome == PROV_HIT) {
			prov_result_reset(call);
			call->outcome = PROV_TRANSIENT;
			prov_result_reason(call, "lusha: bulk call answered %ld", resp ? resp->status : 0L);
		}
		return;
	}
	prov_result_reset(call);
	call->outcome = PROV_TRANSIENT;
	read_meters(resp, call);
	doc = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	contacts = json_object_get(doc, "contacts");
	companies = json_object_get(doc, "companies");
	if (!json_is_object(contacts)) {
		prov_result_reason(call, "lusha: bulk 200 without a contacts object");
		json_decref(doc);
		return;
	}
	call->outcome = PROV_HIT;
	prov_result_reason(call, "lusha: bulk answer with %zu contacts", json_object_size(contacts));
	for (size_t i = 0; i < n; i++) {
		const json_t *c = json_object_get(contacts, ids[i]), *cid, *comp = NULL;
		char idbuf[32];

		if (c == NULL)
			continue;
		cid = jp_get(c, "data.companyId");
		if (json_is_object(companies) && (json_is_integer(cid) || json_is_string(cid))) {
			if (json_is_integer(cid))
				snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(cid));
			else
				util_strlcpy(idbuf, json_string_value(cid), sizeof idbuf);
			comp = json_object_get(companies, idbuf);
		}
		prov_result_reset(&items[i]);
		items[i].outcome = PROV_TRANSIENT;
		parse_contact(p, c, comp, true, &items[i]);
		call->credits += items[i].credits;
	}
	json_decref(doc);
}

const struct prov_ops prov_lusha_ops = {
	.kind = "lusha",
	.needs_key = true,
	.supplies = lusha_supplies,
	.build = lusha_build,
	.build_poll = NULL,
	.parse = lusha_parse,
	.answer = NULL,
	.bulk_max = LUSHA_BULK_MAX,
	.build_bulk = lusha_build_bulk,
	.parse_bulk = lusha_parse_bulk,
};
