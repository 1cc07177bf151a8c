/*
 * surfe.c - the Surfe v2 people enrichment adapter (kind "surfe").
 *
 * Surfe enriches asynchronously (docs/providers.md, "Surfe"): a POST to
 * {base_url}/v2/people/enrich starts a job and answers its enrichmentID;
 * GET {base_url}/v2/people/enrich/<id> answers IN_PROGRESS until the job
 * is COMPLETED, then carries one result per person sent.  enrichd sends
 * one person (externalID "1") per job.  build() makes the start request,
 * build_poll() the poll, and parse() reads either answer: a start answer
 * or an unfinished job is PROV_PENDING with the id to poll.
 *
 * Surfe finds a person by a LinkedIn profile URL, or by first name, last
 * name and a company name or domain (its "Enrich People (start)" page);
 * it takes no e-mail address.  A query without either is ENR_E_INVALID,
 * and so is one that wants no field Surfe returns: both are a miss
 * without a paid call.
 *
 * Bodies are read with jp_load(), duplicate members refused: an answer
 * that can be read two ways is upstream garbage (PROV_TRANSIENT), never a
 * guess.  Reasons are our own words; no upstream text reaches them.
 *
 * Prefix: surfe_ (file-local).  Exported: prov_surfe_ops.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/ascii.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/fields.h"
#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"
#include "lib/util.h"

/* The Makefile passes the release; builds without it (fuzzing) still
 * send a well-formed User-Agent. */
#ifndef ENRICHD_VERSION
#define ENRICHD_VERSION "0.0.0"
#endif

#define SURFE_PATH "/v2/people/enrich"
#define SURFE_EXTERNAL_ID "1"

/* Used when an answer carries no confidenceScore. */
#define SURFE_CONFIDENCE 0.85

/* 429 without Retry-After: Surfe's window is one second (10 requests/s,
 * bursts of 20). */
#define SURFE_RATE_WINDOW_MS 1000

/* The fields a person result can carry (docs/providers.md, person fields;
 * personal_email only from an e-mail entry typed "personal"). */
#define SURFE_FIELDS                                                                     \
	(FLD_BIT(FLD_FIRST_NAME) | FLD_BIT(FLD_LAST_NAME) | FLD_BIT(FLD_TITLE) |          \
	 FLD_BIT(FLD_SENIORITY) | FLD_BIT(FLD_DEPARTMENT) | FLD_BIT(FLD_LINKEDIN_URL) |  \
	 FLD_BIT(FLD_LOCATION) | FLD_BIT(FLD_COUNTRY) | FLD_BIT(FLD_PHONE) |             \
	 FLD_BIT(FLD_BUSINESS_EMAIL) | FLD_BIT(FLD_PERSONAL_EMAIL) |                      \
	 FLD_BIT(FLD_COMPANY_NAME))

/* Enrichment ids are UUIDs; accepting only [A-Za-z0-9_-] keeps whatever an
 * answer says out of the path of the next request. */
static bool id_valid(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n >= sizeof ((struct prov_result *)0)->pending_id)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!(ascii_is_alnum(c) || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* Start url with base_url (without trailing slashes) and path. */
static enum enr_err put_url(const struct cfg_provider *p, const char *path, struct buf *url)
{
	size_t n;
	enum enr_err rc;

	if (p == NULL || !prov_present(p->base_url))
		return ENR_E_INVALID;
	n = strlen(p->base_url);
	while (n > 0 && p->base_url[n - 1] == '/')
		n--;
	if (n == 0)
		return ENR_E_INVALID;
	if ((rc = buf_append(url, p->base_url, n)) != ENR_OK)
		return rc;
	return buf_puts(url, path);
}

/* The headers every Surfe call carries (docs/providers.md: every request
 * has Accept and User-Agent).  A secret that would not fit the
 * header line whole, or that holds control characters, is refused rather
 * than sent cut or split. */
static enum enr_err common_headers(const struct cfg_key *key, struct prov_request *r)
{
	char value[PROV_HEADER_LINE];
	enum enr_err rc;
	int n;

	if (key == NULL || !prov_present(key->secret))
		return ENR_E_INVALID;
	for (const char *c = key->secret; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return ENR_E_INVALID;
	}
	n = snprintf(value, sizeof value, "Bearer %s", key->secret);
	if (n < 0 || (size_t)n + sizeof "Authorization: " > PROV_HEADER_LINE)
		rc = ENR_E_INVALID;
	else if (prov_request_header(r, "Authorization", value) != ENR_OK ||
		 prov_request_header(r, "Accept", "application/json") != ENR_OK ||
		 prov_request_header(r, "User-Agent", "enrichd/" ENRICHD_VERSION) != ENR_OK)
		rc = ENR_E_INTERNAL;
	else
		rc = ENR_OK;
	/* The copy of the key goes with the stack frame, but not readable. */
	explicit_bzero(value, sizeof value);
	return rc;
}

/* Set name to the string v when v is known. */
static enum enr_err put_str(json_t *o, const char *name, const char *v)
{
	json_t *s;
	size_t n;

	if (!prov_present(v))
		return ENR_OK;
	n = strlen(v);
	if (!util_utf8_valid(v, n))
		return ENR_E_INVALID;
	s = json_stringn(v, n);
	if (s == NULL)
		return ENR_E_NOMEM;
	if (json_object_set_new(o, name, s) != 0)
		return ENR_E_NOMEM;
	return ENR_OK;
}

static enum enr_err put_bool(json_t *o, const char *name, bool v)
{
	return json_object_set_new(o, name, json_boolean(v)) != 0 ? ENR_E_NOMEM : ENR_OK;
}

/* Surfe finds a person by a LinkedIn profile URL, or by first name, last
 * name and a company name or domain. */
static bool person_searchable(const struct prov_query *q)
{
	return prov_is_profile_url(q->id[ID_LINKEDIN_URL]) ||
	       (prov_present(q->id[ID_FIRST_NAME]) && prov_present(q->id[ID_LAST_NAME]) &&
		(prov_present(q->id[ID_COMPANY_NAME]) || prov_present(q->id[ID_DOMAIN])));
}

static fld_set surfe_supplies(const struct cfg_provider *p, enum prov_kind kind,
			      const struct prov_query *q)
{
	(void)p;
	/* People only: Surfe's enrichment has no company lookup. */
	if (q == NULL || kind == PROV_KIND_COMPANY || !person_searchable(q))
		return 0;
	return SURFE_FIELDS;
}

/* One person of a start body, with only the identifiers we know. */
static enum enr_err start_person(const struct prov_query *q, const char *id, json_t *person)
{
	const char *linkedin = prov_is_profile_url(q->id[ID_LINKEDIN_URL]) ? q->id[ID_LINKEDIN_URL]
									  : NULL;
	enum enr_err rc;

	if ((rc = put_str(person, "externalID", id)) != ENR_OK ||
	    (rc = put_str(person, "firstName", q->id[ID_FIRST_NAME])) != ENR_OK ||
	    (rc = put_str(person, "lastName", q->id[ID_LAST_NAME])) != ENR_OK ||
	    (rc = put_str(person, "companyName", q->id[ID_COMPANY_NAME])) != ENR_OK ||
	    (rc = put_str(person, "companyDomain", q->id[ID_DOMAIN])) != ENR_OK ||
	    (rc = put_str(person, "linkedinUrl", linkedin)) != ENR_OK)
		return rc;
	return ENR_OK;
}

/* The start body: include flags from the wanted fields (of every person),
 * then the people, each with its externalID. */
static enum enr_err start_body(const struct prov_query *const *qs, const char *const *ids,
			       size_t n, struct buf *out)
{
	json_t *root = NULL, *include = NULL, *people = NULL;
	fld_set want = 0;
	bool email, mobile, li;
	enum enr_err rc = ENR_E_NOMEM;
	char *text = NULL;

	for (size_t i = 0; i < n; i++)
		want |= qs[i]->want;
	email = (want & (FLD_BIT(FLD_PERSONAL_EMAIL) | FLD_BIT(FLD_BUSINESS_EMAIL))) != 0;
	mobile = (want & FLD_BIT(FLD_PHONE)) != 0;
	li = (want & FLD_BIT(FLD_LINKEDIN_URL)) != 0;
	/* Surfe's start page: include "must have at least one field".  Its
	 * credits are counted in e-mail and mobile look-ups, so when only
	 * profile fields (title, seniority, ...) are wanted the LinkedIn URL
	 * is the flag that stands in. */
	if (!email && !mobile && !li)
		li = true;

	root = json_object();
	include = json_object();
	people = json_array();
	if (root == NULL || include == NULL || people == NULL)
		goto out;
	if ((rc = put_bool(include, "email", email)) != ENR_OK ||
	    (rc = put_bool(include, "mobile", mobile)) != ENR_OK ||
	    (rc = put_bool(include, "linkedInUrl", li)) != ENR_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *person = json_object();

		rc = ENR_E_NOMEM;
		if (person == NULL || json_array_append_new(people, person) != 0)
			goto out;
		if ((rc = start_person(qs[i], ids[i], person)) != ENR_OK)
			goto out;
	}
	rc = ENR_E_NOMEM;
	if (json_object_set(root, "include", include) != 0 ||
	    json_object_set(root, "people", people) != 0)
		goto out;
	text = json_dumps(root, JSON_COMPACT);
	if (text == NULL)
		goto out;
	rc = buf_puts(out, text);
out:
	free(text);
	json_decref(people);
	json_decref(include);
	json_decref(root);
	return rc;
}

static enum enr_err start_request(const struct cfg_provider *p, const struct cfg_key *key,
				  const struct prov_query *const *qs, const char *const *ids,
				  size_t n, struct prov_request *out)
{
	struct prov_request r;
	enum enr_err rc;

	prov_request_init(&r);
	util_strlcpy(r.method, "POST", sizeof r.method);
	if ((rc = put_url(p, SURFE_PATH, &r.url)) != ENR_OK ||
	    (rc = common_headers(key, &r)) != ENR_OK ||
	    (rc = prov_request_header(&r, "Content-Type", "application/json")) != ENR_OK ||
	    (rc = start_body(qs, ids, n, &r.body)) != ENR_OK) {
		prov_request_release(&r);
		return rc;
	}
	prov_request_release(out);
	*out = r;
	return ENR_OK;
}

static enum enr_err surfe_build(const struct cfg_provider *p, const struct cfg_key *key,
				const struct prov_query *q, struct prov_request *out)
{
	static const char *const one_id[] = { SURFE_EXTERNAL_ID };

	if (q == NULL || out == NULL)
		return ENR_E_INVALID;
	if (!person_searchable(q))
		return ENR_E_INVALID;
	if ((q->want & SURFE_FIELDS) == 0)
		return ENR_E_INVALID;
	return start_request(p, key, &q, one_id, 1, out);
}

static enum enr_err surfe_build_poll(const struct cfg_provider *p, const struct cfg_key *key,
				     const char *pending_id, struct prov_request *out)
{
	struct prov_request r;
	enum enr_err rc;

	if (out == NULL || pending_id == NULL || !id_valid(pending_id, strlen(pending_id)))
		return ENR_E_INVALID;

	prov_request_init(&r);
	util_strlcpy(r.method, "GET", sizeof r.method);
	if ((rc = put_url(p, SURFE_PATH "/", &r.url)) != ENR_OK ||
	    (rc = buf_puts(&r.url, pending_id)) != ENR_OK ||
	    (rc = common_headers(key, &r)) != ENR_OK) {
		prov_request_release(&r);
		return rc;
	}
	prov_request_release(out);
	*out = r;
	return ENR_OK;
}

/* ---- parse --------------------------------------------------------------- */

static bool str_is(const json_t *v, const char *s)
{
	return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* A confidence from a confidenceScore member: 0..1 as is, 1..100 read as a
 * percentage, anything else the default. */
static double confidence_of(const json_t *v, double dflt)
{
	double d;

	if (!json_is_number(v))
		return dflt;
	d = json_number_value(v);
	if (d >= 0.0 && d <= 1.0)
		return d;
	if (d > 1.0 && d <= 100.0)
		return d / 100.0;
	return dflt;
}

static enum enr_err take(struct prov_result *out, enum fld_id f, const json_t *v, double conf)
{
	if (!json_is_string(v))
		return ENR_OK;
	return prov_result_set(out, f, json_string_value(v), json_string_length(v), conf);
}

/* The first string of an array ("seniorities": ["vp"]). */
static enum enr_err take_first(struct prov_result *out, enum fld_id f, const json_t *arr,
			       double conf)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return ENR_OK;
	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && json_string_length(v) > 0)
			return take(out, f, v, conf);
	}
	return ENR_OK;
}

/* mobilePhones[].mobilePhone, the first one, with its own confidenceScore. */
static enum enr_err take_phone(struct prov_result *out, const json_t *arr, double conf)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return ENR_OK;
	json_array_foreach(arr, i, v) {
		json_t *num = json_object_get(v, "mobilePhone");

		if (json_is_string(num) && json_string_length(num) > 0)
			return take(out, FLD_PHONE, num,
				    confidence_of(json_object_get(v, "confidenceScore"), conf));
	}
	return ENR_OK;
}

/* emails[].email: the first one is the business address (docs/providers.md).
 * An entry typed "personal" (Surfe can be asked for personal addresses) is
 * the personal address instead, never a business one. */
static enum enr_err take_emails(struct prov_result *out, const json_t *arr, double conf)
{
	size_t i;
	json_t *v;
	enum enr_err rc;

	if (!json_is_array(arr))
		return ENR_OK;
	json_array_foreach(arr, i, v) {
		const json_t *addr = json_object_get(v, "email");
		const json_t *type = json_object_get(v, "type");
		enum fld_id f = str_is(type, "personal") ? FLD_PERSONAL_EMAIL : FLD_BUSINESS_EMAIL;

		rc = take(out, f, addr, conf);
		if (rc != ENR_OK)
			return rc;
	}
	return ENR_OK;
}

static enum enr_err map_person(struct prov_result *out, const json_t *person)
{
	double conf = confidence_of(json_object_get(person, "confidenceScore"), SURFE_CONFIDENCE);
	enum enr_err rc;

	if ((rc = take(out, FLD_FIRST_NAME, json_object_get(person, "firstName"), conf)) ||
	    (rc = take(out, FLD_LAST_NAME, json_object_get(person, "lastName"), conf)) ||
	    (rc = take(out, FLD_TITLE, json_object_get(person, "jobTitle"), conf)) ||
	    (rc = take_first(out, FLD_SENIORITY, json_object_get(person, "seniorities"), conf)) ||
	    (rc = take_first(out, FLD_DEPARTMENT, json_object_get(person, "departments"), conf)) ||
	    (rc = take(out, FLD_LINKEDIN_URL, json_object_get(person, "linkedInUrl"), conf)) ||
	    (rc = take(out, FLD_LOCATION, json_object_get(person, "location"), conf)) ||
	    (rc = take(out, FLD_COUNTRY, json_object_get(person, "country"), conf)) ||
	    (rc = take_phone(out, json_object_get(person, "mobilePhones"), conf)) ||
	    (rc = take_emails(out, json_object_get(person, "emails"), conf)) ||
	    (rc = take(out, FLD_COMPANY_NAME, json_object_get(person, "companyName"), conf)))
		return rc;
	prov_result_company_domain(out, json_object_get(person, "companyDomain"));
	return ENR_OK;
}

/* Our person in a completed job: the one with our externalID, else the
 * only one there is. */
static const json_t *our_person(const json_t *people)
{
	const json_t *only = NULL;
	size_t i, objects = 0;
	json_t *v;

	json_array_foreach(people, i, v) {
		if (!json_is_object(v))
			continue;
		if (str_is(json_object_get(v, "externalID"), SURFE_EXTERNAL_ID))
			return v;
		only = v;
		objects++;
	}
	return objects == 1 ? only : NULL;
}

static void transient(struct prov_result *out, const char *why)
{
	prov_result_reset(out);
	out->outcome = PROV_TRANSIENT;
	prov_result_reason(out, "surfe: %s", why);
}

/* A pending answer: remember the id when the body names one. */
static void pending(struct prov_result *out, const json_t *root, bool id_required,
		    const char *what)
{
	const json_t *id = json_object_get(root, "enrichmentID");

	if (id == NULL && !id_required) {
		out->outcome = PROV_PENDING;
		prov_result_reason(out, "surfe: %s", what);
		return;
	}
	if (!json_is_string(id) || !id_valid(json_string_value(id), json_string_length(id))) {
		transient(out, "answer without a usable enrichmentID");
		return;
	}
	util_strlcpy(out->pending_id, json_string_value(id), sizeof out->pending_id);
	out->outcome = PROV_PENDING;
	prov_result_reason(out, "surfe: %s", what);
}

static void completed(const struct cfg_provider *p, struct prov_result *out, const json_t *root)
{
	const json_t *people = json_object_get(root, "people");
	const json_t *person;

	if (!json_is_array(people)) {
		transient(out, "completed job without a people list");
		return;
	}
	person = our_person(people);
	if (person == NULL) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "surfe: completed without our person");
		return;
	}
	if (str_is(json_object_get(person, "status"), "NOT_FOUND")) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "surfe: person not found");
		return;
	}
	if (map_person(out, person) != ENR_OK) {
		transient(out, "out of memory");
		return;
	}
	if (out->found == 0) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "surfe: completed with no field");
		return;
	}
	out->outcome = PROV_HIT;
	out->credits = p != NULL ? p->credits_per_hit : 0;
	prov_result_reason(out, "surfe: found %u fields", fld_count(out->found));
}

/* A 2xx body: a start answer (no status) or a job. */
static void success(const struct cfg_provider *p, struct prov_result *out, const json_t *root)
{
	const json_t *status;
	const char *s;

	if (root == NULL) {
		transient(out, "answer is not valid JSON");
		return;
	}
	if (!json_is_object(root)) {
		transient(out, "answer is not the documented JSON object");
		return;
	}
	status = json_object_get(root, "status");
	if (status == NULL) {
		pending(out, root, true, "enrichment started");
		return;
	}
	if (!json_is_string(status)) {
		transient(out, "job status is not a string");
		return;
	}
	s = json_string_value(status);
	if (strcmp(s, "IN_PROGRESS") == 0 || strcmp(s, "PENDING") == 0)
		pending(out, root, false, "enrichment in progress");
	else if (strcmp(s, "COMPLETED") == 0)
		completed(p, out, root);
	else if (strcmp(s, "FAILED") == 0)
		transient(out, "enrichment failed upstream");
	else
		transient(out, "unknown job status");
}

/* True when the error message names the daily quota (402 "Daily quota
 * exceeded") rather than the credit balance. */
static bool mentions_daily(const json_t *root)
{
	const json_t *m = json_object_get(root, "message");
	const char *s;
	size_t n;

	if (!json_is_string(m))
		return false;
	s = json_string_value(m);
	n = json_string_length(m);
	for (size_t i = 0; i + 5 <= n; i++) {
		if (util_strn_ieq(s + i, 5, "daily"))
			return true;
	}
	return false;
}

static void answer_2xx(const struct prov_answer *a, struct prov_result *out)
{
	json_t *root = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);

	success(a->p, out, root);
	json_decref(root);
}

/* 402: the credit balance is spent, or (the message says "daily") the
 * daily quota is, which comes back at the next UTC midnight. */
static void quota_402(const struct prov_answer *a, struct prov_result *out)
{
	json_t *root = jp_load(a->resp->body, a->resp->body_len, LIM_PROV_BODY_MAX);

	if (mentions_daily(root)) {
		out->until_ms = prov_next_utc_midnight_ms(a->now_ms);
		prov_result_reason(out, "surfe: daily quota exhausted (402)");
	}
	json_decref(root);
}

/* 429: Retry-After, or at least the one-second window Surfe counts in. */
static void rate_429(const struct prov_answer *a, struct prov_result *out)
{
	out->until_ms = prov_retry_after_ms(a->resp, a->now_ms);
	if (out->until_ms <= a->now_ms)
		out->until_ms = a->now_ms + SURFE_RATE_WINDOW_MS;
}

/* Surfe's v2 error answers: {"code":"...","message":"..."}. */
static const struct prov_status_rule statuses[] = {
	{ 401, 401, PROV_KEY_INVALID, "key invalid", NULL },
	{ 402, 402, PROV_QUOTA_EXHAUSTED, "credits exhausted", quota_402 },
	{ 403, 403, PROV_REQUEST_REJECTED, "not allowed on this plan", NULL },
	{ 429, 429, PROV_RATE_LIMITED, "rate limited", rate_429 },
	/* A request Surfe will never accept, or (404) a job it no longer
	 * knows: another key would fare no better.  A 404 here is not a
	 * miss: the people found or not come in a 200. */
	{ 400, 400, PROV_REQUEST_REJECTED, "request refused", NULL },
	{ 404, 404, PROV_REQUEST_REJECTED, "request refused", NULL },
	/* 200 and 202: an enrichment started, in progress or done. */
	{ 200, 299, PROV_TRANSIENT, NULL, answer_2xx },
};

static const struct prov_status_table table = {
	"surfe", statuses, sizeof statuses / sizeof statuses[0], NULL,
};

static void surfe_parse(const struct cfg_provider *p, const struct prov_query *q,
			const struct prov_response *resp, int64_t now_ms, struct prov_result *out)
{
	prov_parse_by_status(&table, p, q, resp, now_ms, out);
}

/* ---- many people in one enrichment (docs/providers.md, "Surfe: many
 * people in one enrichment") ---------------------------------------------- */

#define SURFE_BULK_MAX 10000

static enum enr_err surfe_build_bulk(const struct cfg_provider *p, const struct cfg_key *key,
				     const struct prov_query *const *qs, const char *const *ids,
				     size_t n, struct prov_request *out)
{
	if (qs == NULL || ids == NULL || out == NULL || n == 0 || n > SURFE_BULK_MAX)
		return ENR_E_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (!person_searchable(qs[i]) || !id_valid(ids[i], strlen(ids[i])))
			return ENR_E_INVALID;
	}
	return start_request(p, key, qs, ids, n, out);
}

/* One person of a completed job: COMPLETED with fields is a hit,
 * NOT_FOUND a miss, anything else that row's own failure. */
static void bulk_person(const struct cfg_provider *p, const json_t *person, struct prov_result *out)
{
	const json_t *st = json_object_get(person, "status");

	prov_result_reset(out);
	out->outcome = PROV_TRANSIENT;
	if (str_is(st, "NOT_FOUND")) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "surfe: person not found");
		return;
	}
	if (!str_is(st, "COMPLETED")) {
		prov_result_reason(out, "surfe: person failed upstream");
		return;
	}
	if (map_person(out, person) != ENR_OK) {
		transient(out, "out of memory");
		return;
	}
	if (out->found == 0) {
		out->outcome = PROV_MISS;
		prov_result_reason(out, "surfe: completed with no field");
		return;
	}
	out->outcome = PROV_HIT;
	out->credits = p != NULL ? p->credits_per_hit : 0;
	prov_result_reason(out, "surfe: found %u fields", fld_count(out->found));
}

static void surfe_parse_bulk(const struct cfg_provider *p, const struct prov_query *const *qs,
			     const char *const *ids, size_t n, const struct prov_response *resp,
			     int64_t now_ms, struct prov_result *call, struct prov_result *items)
{
	json_t *root = NULL;
	const json_t *people, *v;
	size_t j;

	for (size_t i = 0; i < n; i++) {
		prov_result_reset(&items[i]);
		items[i].outcome = PROV_TRANSIENT;
		prov_result_reason(&items[i], "surfe: person missing from the completed enrichment");
	}
	if (resp && !resp->timed_out && resp->status >= 200 && resp->status <= 299)
		root = jp_load(resp->body, resp->body_len, LIM_PROV_BODY_MAX);
	if (!str_is(json_object_get(root, "status"), "COMPLETED")) {
		/* A start answer, a job in progress, or the call's own error. */
		json_decref(root);
		surfe_parse(p, n ? qs[0] : NULL, resp, now_ms, call);
		if (call->outcome == PROV_HIT || call->outcome == PROV_MISS)
			transient(call, "unexpected answer to a bulk enrichment");
		return;
	}
	prov_result_reset(call);
	people = json_object_get(root, "people");
	if (!json_is_array(people)) {
		transient(call, "completed job without a people list");
		json_decref(root);
		return;
	}
	call->outcome = PROV_HIT;
	prov_result_reason(call, "surfe: enrichment completed with %zu people",
			   json_array_size(people));
	json_array_foreach(people, j, v) {
		const json_t *id = json_object_get(v, "externalID");

		if (!json_is_object(v) || !json_is_string(id))
			continue;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(ids[i], json_string_value(id)) == 0) {
				bulk_person(p, v, &items[i]);
				call->credits += items[i].credits;
				break;
			}
		}
	}
	json_decref(root);
}

const struct prov_ops prov_surfe_ops = {
	.kind = "surfe",
	.needs_key = true,
	.supplies = surfe_supplies,
	.build = surfe_build,
	.build_poll = surfe_build_poll,
	.parse = surfe_parse,
	.answer = NULL,
	.bulk_max = SURFE_BULK_MAX,
	.build_bulk = surfe_build_bulk,
	.parse_bulk = surfe_parse_bulk,
	.search = &prov_surfe_search_ops,
};
