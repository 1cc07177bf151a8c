/*
 * test_surfe.c - the Surfe v2 adapter (lib/providers/surfe.c).
 *
 * Request building is checked member by member (URL, headers, the JSON
 * body read back with jansson); parsing is fed the answers of
 * docs/providers.md, the error statuses and broken bodies, always with
 * the same fixed clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/config.h"
#include "lib/fields.h"
#include "lib/provider.h"

#include "adapter_harness.h"

extern const struct prov_ops prov_surfe_ops;

/* 2026-03-10T12:34:56.789Z and the UTC midnight after it. */
#define NOW_MS        INT64_C(1773146096789)
#define MIDNIGHT_MS   INT64_C(1773187200000)

#define SECRET "sk-surfe-TEST-9f3a"

static struct cfg_key key = { .id = "surfe-1", .account = "acme", .secret = SECRET, .category = "" };

static struct cfg_provider prov = {
	.name = "surfe", .kind = "surfe", .base_url = "https://api.surfe.com", .enabled = true,
	.timeout_ms = 1500, .credits_per_hit = 2, .poll_interval_ms = 500,
};

static const struct prov_ops *ops = &prov_surfe_ops;

static struct prov_query query(const char *linkedin, const char *first, const char *last,
			       const char *company, const char *domain, fld_set want)
{
	struct prov_query q;

	memset(&q, 0, sizeof q);
	q.id[ID_LINKEDIN_URL] = linkedin;
	q.id[ID_FIRST_NAME] = first;
	q.id[ID_LAST_NAME] = last;
	q.id[ID_COMPANY_NAME] = company;
	q.id[ID_DOMAIN] = domain;
	q.want = want;
	return q;
}

/* The header line named name ("Name: value"), or NULL. */
static const char *header(const struct prov_request *r, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < r->nheaders; i++) {
		if (strncmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
			return r->headers[i];
	}
	return NULL;
}

#define check_key_only_in_auth(r) ah_check_key_only_in(r, SECRET, "Authorization: Bearer " SECRET)

static json_t *body_json(const struct prov_request *r)
{
	return json_loadb(r->body.data ? r->body.data : "", r->body.len, JSON_REJECT_DUPLICATES,
			  NULL);
}

static const char *str_at(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

TEST(build_start_all_identifiers)
{
	struct prov_query q = query("https://www.linkedin.com/in/david-chevalier", "David",
				    "Chevalier", "Surfe", "surfe.com", FLD_ALL);
	struct prov_request r;
	json_t *b, *inc, *people, *p;

	q.id[ID_EMAIL] = "david@surfe.com";
	q.id[ID_PHONE] = "+33612345678";
	prov_request_init(&r);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_OK);
	CHECK_STR(r.method, "POST");
	CHECK_STR(buf_cstr(&r.url), "https://api.surfe.com/v2/people/enrich");
	CHECK_STR(header(&r, "Authorization"), "Authorization: Bearer " SECRET);
	CHECK_STR(header(&r, "Content-Type"), "Content-Type: application/json");
	CHECK_STR(header(&r, "Accept"), "Accept: application/json");
	CHECK(header(&r, "User-Agent") != NULL &&
	      strncmp(header(&r, "User-Agent"), "User-Agent: enrichd/", 20) == 0);
	CHECK_INT(r.nheaders, 4);
	check_key_only_in_auth(&r);
	CHECK_STR(buf_cstr(&r.body),
		  "{\"include\":{\"email\":true,\"mobile\":true,\"linkedInUrl\":true},"
		  "\"people\":[{\"externalID\":\"1\",\"firstName\":\"David\","
		  "\"lastName\":\"Chevalier\",\"companyName\":\"Surfe\","
		  "\"companyDomain\":\"surfe.com\","
		  "\"linkedinUrl\":\"https://www.linkedin.com/in/david-chevalier\"}]}");

	b = body_json(&r);
	REQUIRE(b != NULL);
	inc = json_object_get(b, "include");
	CHECK(json_is_true(json_object_get(inc, "email")));
	CHECK(json_is_true(json_object_get(inc, "mobile")));
	CHECK(json_is_true(json_object_get(inc, "linkedInUrl")));
	people = json_object_get(b, "people");
	CHECK(json_is_array(people) && json_array_size(people) == 1);
	p = json_array_get(people, 0);
	CHECK_STR(str_at(p, "externalID"), "1");
	CHECK_STR(str_at(p, "firstName"), "David");
	CHECK_STR(str_at(p, "lastName"), "Chevalier");
	CHECK_STR(str_at(p, "companyName"), "Surfe");
	CHECK_STR(str_at(p, "companyDomain"), "surfe.com");
	CHECK_STR(str_at(p, "linkedinUrl"), "https://www.linkedin.com/in/david-chevalier");
	/* Surfe takes neither an e-mail address nor a phone number. */
	CHECK(json_object_get(p, "email") == NULL);
	CHECK(json_object_get(p, "phone") == NULL);
	CHECK_INT(json_object_size(p), 6);
	json_decref(b);
	prov_request_release(&r);
}

TEST(build_start_only_known_members_and_flags)
{
	struct prov_query q = query(NULL, "Ana", "Ruiz", NULL, "globex.com", FLD_BIT(FLD_PHONE));
	struct prov_request r;
	json_t *b, *inc, *p;

	prov_request_init(&r);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_OK);
	b = body_json(&r);
	REQUIRE(b != NULL);
	inc = json_object_get(b, "include");
	CHECK(json_is_false(json_object_get(inc, "email")));
	CHECK(json_is_true(json_object_get(inc, "mobile")));
	CHECK(json_is_false(json_object_get(inc, "linkedInUrl")));
	p = json_array_get(json_object_get(b, "people"), 0);
	CHECK_STR(str_at(p, "firstName"), "Ana");
	CHECK_STR(str_at(p, "lastName"), "Ruiz");
	CHECK_STR(str_at(p, "companyDomain"), "globex.com");
	CHECK(json_object_get(p, "companyName") == NULL);
	CHECK(json_object_get(p, "linkedinUrl") == NULL);
	CHECK_INT(json_object_size(p), 4);
	json_decref(b);

	/* e-mail wanted (either kind), LinkedIn URL wanted */
	q = query(NULL, "Ana", "Ruiz", "Globex", NULL,
		  FLD_BIT(FLD_PERSONAL_EMAIL) | FLD_BIT(FLD_LINKEDIN_URL));
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_OK);
	b = body_json(&r);
	REQUIRE(b != NULL);
	inc = json_object_get(b, "include");
	CHECK(json_is_true(json_object_get(inc, "email")));
	CHECK(json_is_false(json_object_get(inc, "mobile")));
	CHECK(json_is_true(json_object_get(inc, "linkedInUrl")));
	json_decref(b);
	prov_request_release(&r);
}

TEST(build_start_profile_fields_only_includes_something)
{
	struct prov_query q = query("https://www.linkedin.com/in/ana-ruiz", NULL, NULL, NULL, NULL,
				    FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_SENIORITY));
	struct prov_request r;
	json_t *b, *inc;

	prov_request_init(&r);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_OK);
	b = body_json(&r);
	REQUIRE(b != NULL);
	inc = json_object_get(b, "include");
	/* Surfe refuses an include without a field. */
	CHECK(json_is_false(json_object_get(inc, "email")));
	CHECK(json_is_false(json_object_get(inc, "mobile")));
	CHECK(json_is_true(json_object_get(inc, "linkedInUrl")));
	json_decref(b);
	prov_request_release(&r);
}

TEST(build_base_url_trailing_slash)
{
	struct cfg_provider p2 = prov;
	struct prov_query q = query("https://www.linkedin.com/in/ana-ruiz", NULL, NULL, NULL, NULL,
				    FLD_ALL);
	struct prov_request r;

	p2.base_url = "http://127.0.0.1:8099/surfe/";
	prov_request_init(&r);
	CHECK_INT(ops->build(&p2, &key, &q, &r), ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "http://127.0.0.1:8099/surfe/v2/people/enrich");
	prov_request_release(&r);
}

TEST(build_refuses_what_surfe_cannot_search)
{
	struct prov_request r;
	struct prov_query q;
	struct cfg_key bad = key;
	struct cfg_provider nobase = prov;

	prov_request_init(&r);
	/* an e-mail address alone */
	q = query(NULL, NULL, NULL, NULL, NULL, FLD_ALL);
	q.id[ID_EMAIL] = "ana@globex.com";
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);
	/* names without a company */
	q = query(NULL, "Ana", "Ruiz", NULL, NULL, FLD_ALL);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);
	/* one name with a company */
	q = query(NULL, "Ana", NULL, "Globex", "globex.com", FLD_ALL);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);
	q = query(NULL, NULL, "Ruiz", "Globex", NULL, FLD_ALL);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);
	/* empty strings are absent */
	q = query("", "Ana", "", "Globex", NULL, FLD_ALL);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);
	/* a company page is not a person */
	q = query("https://www.linkedin.com/company/globex", NULL, NULL, NULL, NULL, FLD_ALL);
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);
	/* only fields Surfe never returns */
	q = query("https://www.linkedin.com/in/ana-ruiz", NULL, NULL, NULL, NULL,
		  FLD_BIT(FLD_TECHNOLOGIES) | FLD_BIT(FLD_COMPANY_REVENUE) | FLD_BIT(FLD_ZIP_CODE));
	CHECK_INT(ops->build(&prov, &key, &q, &r), ENR_E_INVALID);

	/* keys that cannot be sent whole */
	q = query("https://www.linkedin.com/in/ana-ruiz", NULL, NULL, NULL, NULL, FLD_ALL);
	CHECK_INT(ops->build(&prov, NULL, &q, &r), ENR_E_INVALID);
	bad.secret = "";
	CHECK_INT(ops->build(&prov, &bad, &q, &r), ENR_E_INVALID);
	bad.secret = "abc\r\nX-Evil: 1";
	CHECK_INT(ops->build(&prov, &bad, &q, &r), ENR_E_INVALID);
	{
		char longkey[600];

		memset(longkey, 'k', sizeof longkey - 1);
		longkey[sizeof longkey - 1] = '\0';
		bad.secret = longkey;
		CHECK_INT(ops->build(&prov, &bad, &q, &r), ENR_E_INVALID);
	}
	nobase.base_url = "";
	CHECK_INT(ops->build(&nobase, &key, &q, &r), ENR_E_INVALID);

	/* nothing was written on any failure */
	CHECK_INT(r.url.len, 0);
	CHECK_INT(r.body.len, 0);
	CHECK_INT(r.nheaders, 0);
	prov_request_release(&r);
}

TEST(build_poll)
{
	struct prov_request r;
	char longid[200];

	prov_request_init(&r);
	CHECK_INT(ops->build_poll(&prov, &key, "00000000-5157-4000-8000-00000000002a", &r),
		  ENR_OK);
	CHECK_STR(r.method, "GET");
	CHECK_STR(buf_cstr(&r.url),
		  "https://api.surfe.com/v2/people/enrich/00000000-5157-4000-8000-00000000002a");
	CHECK_STR(header(&r, "Authorization"), "Authorization: Bearer " SECRET);
	CHECK(header(&r, "Content-Type") == NULL);
	CHECK_STR(header(&r, "Accept"), "Accept: application/json");
	CHECK_INT(r.nheaders, 3);
	check_key_only_in_auth(&r);
	CHECK_INT(r.body.len, 0);
	prov_request_release(&r);

	prov_request_init(&r);
	CHECK_INT(ops->build_poll(&prov, &key, "../../v1/account", &r), ENR_E_INVALID);
	CHECK_INT(ops->build_poll(&prov, &key, "abc?x=1", &r), ENR_E_INVALID);
	CHECK_INT(ops->build_poll(&prov, &key, "a b", &r), ENR_E_INVALID);
	CHECK_INT(ops->build_poll(&prov, &key, "a%2Fb", &r), ENR_E_INVALID);
	CHECK_INT(ops->build_poll(&prov, &key, "", &r), ENR_E_INVALID);
	CHECK_INT(ops->build_poll(&prov, &key, NULL, &r), ENR_E_INVALID);
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	CHECK_INT(ops->build_poll(&prov, &key, longid, &r), ENR_E_INVALID);
	CHECK_INT(ops->build_poll(&prov, NULL, "abc", &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	CHECK_INT(r.nheaders, 0);
	prov_request_release(&r);
}

/* ---- parse ---------------------------------------------------------------- */

static const struct ah adapter = { &prov_surfe_ops, &prov, NOW_MS };

/* The query every answer below is parsed for. */
static struct prov_query ana(void)
{
	return query("https://www.linkedin.com/in/ana-ruiz", NULL, NULL, NULL, NULL, FLD_ALL);
}

/* Parse status + body (+ one optional header) into res. */
static void parse_h(long status, const char *body, const char *hname, const char *hvalue,
		    struct prov_result *res)
{
	struct prov_query q = ana();
	const struct ah_hdr h[] = { { hname, hvalue }, { NULL, NULL } };

	ah_parse(&adapter, NULL, &q, status, body, h, res);
}

#define parse(status, body, res) parse_h(status, body, NULL, NULL, res)

static const char completed_found[] =
	"{\"enrichmentID\":\"00000000-5157-4000-8000-000000000001\",\"status\":\"COMPLETED\","
	"\"percentCompleted\":100,\"people\":[{\"externalID\":\"1\",\"status\":\"COMPLETED\","
	"\"firstName\":\"Ana\",\"lastName\":\"Ruiz\",\"jobTitle\":\"VP of Sales\","
	"\"seniorities\":[\"vp\"],\"departments\":[\"sales\"],"
	"\"linkedInUrl\":\"https://www.linkedin.com/in/ana-ruiz\","
	"\"location\":\"Austin, Texas, United States\",\"country\":\"United States\","
	"\"mobilePhones\":[{\"mobilePhone\":\"+1 512 555 0303\",\"confidenceScore\":0.9}],"
	"\"emails\":[{\"email\":\"ana.ruiz@globex.com\",\"validationStatus\":\"VALID\"}],"
	"\"companyName\":\"Globex\",\"companyDomain\":\"globex.com\"}]}";

TEST(parse_start_is_pending)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(202, "{\"enrichmentID\":\"00000000-5157-4000-8000-00000000002a\","
		   "\"message\":\"Your enrichment has started\"}", &res);
	CHECK_INT(res.outcome, PROV_PENDING);
	CHECK_STR(res.pending_id, "00000000-5157-4000-8000-00000000002a");
	CHECK_INT(res.found, 0);
	CHECK_INT(res.credits, 0);
	CHECK(strstr(res.reason, "Your enrichment") == NULL);

	parse(200, "{\"enrichmentID\":\"abc_DEF-1\",\"enrichmentCallbackURL\":\"https://x\"}",
	      &res);
	CHECK_INT(res.outcome, PROV_PENDING);
	CHECK_STR(res.pending_id, "abc_DEF-1");

	/* an id we would not put in a path, or none at all */
	parse(202, "{\"enrichmentID\":\"../../admin\"}", &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_STR(res.pending_id, "");
	parse(202, "{\"enrichmentID\":42}", &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	parse(202, "{\"message\":\"started\"}", &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	parse(202, "{\"enrichmentID\":\"\"}", &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	prov_result_release(&res);
}

TEST(parse_in_progress_is_pending)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(200, "{\"enrichmentID\":\"job-7\",\"status\":\"IN_PROGRESS\","
		   "\"percentCompleted\":50,\"people\":[]}", &res);
	CHECK_INT(res.outcome, PROV_PENDING);
	CHECK_STR(res.pending_id, "job-7");
	CHECK_INT(res.found, 0);

	parse(200, "{\"enrichmentID\":\"job-7\",\"status\":\"PENDING\"}", &res);
	CHECK_INT(res.outcome, PROV_PENDING);
	CHECK_STR(res.pending_id, "job-7");

	/* without an id the caller keeps polling the one it has */
	parse(200, "{\"status\":\"IN_PROGRESS\"}", &res);
	CHECK_INT(res.outcome, PROV_PENDING);
	CHECK_STR(res.pending_id, "");
	prov_result_release(&res);
}

TEST(parse_completed_found)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(200, completed_found, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.credits, 2);
	CHECK_INT(res.until_ms, 0);
	AH_VALUES(&res, { FLD_FIRST_NAME, "Ana" }, { FLD_LAST_NAME, "Ruiz" },
		  { FLD_TITLE, "VP of Sales" }, { FLD_SENIORITY, "vp" },
		  { FLD_DEPARTMENT, "sales" },
		  { FLD_LINKEDIN_URL, "https://www.linkedin.com/in/ana-ruiz" },
		  { FLD_LOCATION, "Austin, Texas, United States" },
		  { FLD_COUNTRY, "United States" }, { FLD_PHONE, "+1 512 555 0303" },
		  { FLD_BUSINESS_EMAIL, "ana.ruiz@globex.com" }, { FLD_COMPANY_NAME, "Globex" },
		  { FLD_PERSONAL_EMAIL, NULL }, { FLD_CITY, NULL });
	CHECK_INT(fld_count(res.found), 11);
	CHECK_DBL(res.confidence[FLD_FIRST_NAME], 0.85, 1e-9);
	CHECK_DBL(res.confidence[FLD_BUSINESS_EMAIL], 0.85, 1e-9);
	CHECK_DBL(res.confidence[FLD_PHONE], 0.9, 1e-9);
	CHECK_INT(res.requests_left, -1);
	CHECK_INT(res.credits_left, -1);
	prov_result_release(&res);
}

TEST(parse_completed_confidence_and_email_kinds)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(200, "{\"status\":\"COMPLETED\",\"people\":[{\"externalID\":\"1\","
		   "\"status\":\"COMPLETED\",\"confidenceScore\":0.7,\"firstName\":\"Ana\","
		   "\"seniorities\":[\"\",\"director\"],"
		   "\"mobilePhones\":[{\"confidenceScore\":0.2},{\"mobilePhone\":\"+15125550303\","
		   "\"confidenceScore\":95}],"
		   "\"emails\":[{\"email\":\"ana@gmail.com\",\"type\":\"personal\"},"
		   "{\"email\":\"ana@globex.com\",\"type\":\"professional\"},"
		   "{\"email\":\"other@globex.com\"}]}]}", &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_DBL(res.confidence[FLD_FIRST_NAME], 0.7, 1e-9);
	CHECK_STR(res.value[FLD_SENIORITY], "director");
	CHECK_STR(res.value[FLD_PHONE], "+15125550303");
	CHECK_DBL(res.confidence[FLD_PHONE], 0.95, 1e-9);
	CHECK_STR(res.value[FLD_PERSONAL_EMAIL], "ana@gmail.com");
	CHECK_STR(res.value[FLD_BUSINESS_EMAIL], "ana@globex.com");
	prov_result_release(&res);
}

TEST(parse_completed_picks_our_person)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(200, "{\"status\":\"COMPLETED\",\"people\":[7,"
		   "{\"externalID\":\"2\",\"status\":\"COMPLETED\",\"firstName\":\"Bob\"},"
		   "{\"externalID\":\"1\",\"status\":\"COMPLETED\",\"firstName\":\"Ana\"}]}", &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_STR(res.value[FLD_FIRST_NAME], "Ana");

	/* a single person without our id is still ours */
	parse(200, "{\"status\":\"COMPLETED\",\"people\":[{\"status\":\"COMPLETED\","
		   "\"firstName\":\"Ana\"}]}", &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_STR(res.value[FLD_FIRST_NAME], "Ana");

	/* two strangers: not ours */
	parse(200, "{\"status\":\"COMPLETED\",\"people\":["
		   "{\"externalID\":\"2\",\"firstName\":\"Bob\"},"
		   "{\"externalID\":\"3\",\"firstName\":\"Cy\"}]}", &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.found, 0);
	prov_result_release(&res);
}

TEST(parse_completed_miss)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(200, "{\"enrichmentID\":\"j\",\"status\":\"COMPLETED\",\"percentCompleted\":100,"
		   "\"people\":[{\"externalID\":\"1\",\"status\":\"NOT_FOUND\"}]}", &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	CHECK_INT(res.found, 0);

	/* NOT_FOUND wins over stray fields */
	parse(200, "{\"status\":\"COMPLETED\",\"people\":[{\"externalID\":\"1\","
		   "\"status\":\"NOT_FOUND\",\"firstName\":\"Ana\"}]}", &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.found, 0);

	/* completed, but nothing in the person */
	parse(200, "{\"status\":\"COMPLETED\",\"people\":[{\"externalID\":\"1\","
		   "\"status\":\"COMPLETED\",\"companyDomain\":\"globex.com\",\"firstName\":\"  \","
		   "\"emails\":[],\"mobilePhones\":[{}],\"seniorities\":[]}]}", &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	CHECK_INT(res.found, 0);

	/* completed with no people at all */
	parse(200, "{\"status\":\"COMPLETED\",\"people\":[]}", &res);
	CHECK_INT(res.outcome, PROV_MISS);
	prov_result_release(&res);
}

TEST(parse_errors)
{
	static const struct ah_case cases[] = {
		{ 401, "{\"code\":\"UNAUTHORIZED\",\"message\":\"Invalid API key\"}",
		  PROV_KEY_INVALID, NULL, NULL, NULL },
		{ 403, "{\"code\":\"FORBIDDEN\",\"message\":\"Not on your plan\"}",
		  PROV_REQUEST_REJECTED, NULL, NULL, NULL },
		{ 400, "{\"code\":\"BAD_REQUEST\",\"message\":\"people must not be empty\"}",
		  PROV_REQUEST_REJECTED, NULL, NULL, NULL },
		/* a job Surfe no longer knows: not a miss */
		{ 404, "{\"code\":\"NOT_FOUND\",\"message\":\"Enrichment not found\"}",
		  PROV_REQUEST_REJECTED, NULL, NULL, NULL },
		{ 500, "{\"code\":\"INTERNAL_ERROR\"}", PROV_TRANSIENT, NULL, NULL, NULL },
		{ 503, "", PROV_TRANSIENT, NULL, NULL, NULL },
		{ 302, "", PROV_TRANSIENT, NULL, NULL, NULL },
		{ 418, "{}", PROV_TRANSIENT, NULL, NULL, NULL },
	};
	/* 402: the daily quota comes back at midnight, credits do not say */
	static const struct ah_until quota[] = {
		{ "{\"code\":\"PAYMENT_REQUIRED\",\"message\":\"Daily quota exceeded\"}", NULL,
		  MIDNIGHT_MS },
		{ "{\"code\":\"PAYMENT_REQUIRED\",\"message\":\"Insufficient credits\"}", NULL, 0 },
		{ "not json", NULL, 0 },
	};
	struct prov_query q = ana();

	ah_check_cases(&adapter, &q, cases, sizeof cases / sizeof cases[0]);
	ah_check_until(&adapter, &q, 402, PROV_QUOTA_EXHAUSTED, quota, 3);
}

TEST(parse_rate_limited)
{
	static const struct ah_hdr r7[] = { { "retry-after", "7" }, { NULL, NULL } };
	/* 2026-03-10T12:35:30Z */
	static const struct ah_hdr date[] = { { "retry-after", "Tue, 10 Mar 2026 12:35:30 GMT" },
					      { NULL, NULL } };
	static const struct ah_hdr soon[] = { { "retry-after", "soon" }, { NULL, NULL } };
	static const struct ah_hdr past[] = { { "retry-after", "Tue, 10 Mar 2026 12:00:00 GMT" },
					      { NULL, NULL } };
	static const struct ah_until untils[] = {
		{ "{\"code\":\"TOO_MANY_REQUESTS\"}", r7, NOW_MS + 7000 },
		{ "{\"code\":\"TOO_MANY_REQUESTS\",\"message\":\"slow down\"}", NULL, NOW_MS + 1000 },
		{ "", date, INT64_C(1773146130000) },
		/* unreadable or already past: the one-second window */
		{ "", soon, NOW_MS + 1000 },
		{ "", past, NOW_MS + 1000 },
	};
	struct prov_query q = ana();

	ah_check_until(&adapter, &q, 429, PROV_RATE_LIMITED, untils, 5);
}

TEST(parse_garbage_is_transient)
{
	static const char *const bodies[] = {
		"",
		"<html>502 Bad Gateway</html>",
		"{\"enrichmentID\":\"abc\",",                     /* truncated */
		"{\"status\":\"COMPLETED\",\"people\":[{\"externalID\":\"1\",\"firstName\":\"A",
		"{\"enrichmentID\":\"a\",\"enrichmentID\":\"b\"}", /* duplicate keys */
		"{\"status\":\"COMPLETED\",\"status\":\"IN_PROGRESS\",\"people\":[]}",
		"[{\"enrichmentID\":\"abc\"}]",
		"\"abc\"",
		"{\"status\":\"COMPLETED\"}",                     /* no people list */
		"{\"status\":\"COMPLETED\",\"people\":{}}",
		"{\"status\":\"FAILED\",\"people\":[]}",
		"{\"status\":\"EXPLODED\"}",
		"{\"status\":3}",
		"{\"enrichmentID\":\"abc\"} trailing",
	};
	struct prov_query q = ana();

	ah_check_transient(&adapter, &q, 200, bodies, sizeof bodies / sizeof bodies[0], NULL);
}

TEST(parse_no_answer_is_transient)
{
	struct prov_query q = ana();

	/* a timeout wins even over a status that arrived */
	ah_check_no_answer(&adapter, &q, 200, completed_found);
}

TEST(parse_resets_the_result)
{
	struct prov_result res;

	prov_result_init(&res);
	parse(200, completed_found, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	parse(429, "", &res);
	CHECK_INT(res.outcome, PROV_RATE_LIMITED);
	CHECK_INT(res.found, 0);
	CHECK(res.value[FLD_FIRST_NAME] == NULL);
	CHECK_INT(res.credits, 0);
	parse(202, "{\"enrichmentID\":\"j1\"}", &res);
	CHECK_INT(res.until_ms, 0);
	CHECK_STR(res.pending_id, "j1");
	parse(200, completed_found, &res);
	CHECK_STR(res.pending_id, "");
	prov_result_release(&res);
}

TEST(reasons_carry_no_upstream_text)
{
	struct prov_result res;
	static const long statuses[] = { 200, 202, 400, 401, 402, 403, 404, 429, 500 };

	prov_result_init(&res);
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		parse(statuses[i], "{\"code\":\"LEAK\",\"message\":\"daily LEAK-TEXT\","
				   "\"status\":\"LEAK\"}", &res);
		CHECK(strstr(res.reason, "LEAK") == NULL);
		CHECK(strncmp(res.reason, "surfe: ", 7) == 0);
	}
	prov_result_release(&res);
}

TEST(ops_table)
{
	ah_check_ops(ops, "surfe", true);
}

int main(void)
{
	RUN(build_start_all_identifiers);
	RUN(build_start_only_known_members_and_flags);
	RUN(build_start_profile_fields_only_includes_something);
	RUN(build_base_url_trailing_slash);
	RUN(build_refuses_what_surfe_cannot_search);
	RUN(build_poll);
	RUN(parse_start_is_pending);
	RUN(parse_in_progress_is_pending);
	RUN(parse_completed_found);
	RUN(parse_completed_confidence_and_email_kinds);
	RUN(parse_completed_picks_our_person);
	RUN(parse_completed_miss);
	RUN(parse_errors);
	RUN(parse_rate_limited);
	RUN(parse_garbage_is_transient);
	RUN(parse_no_answer_is_transient);
	RUN(parse_resets_the_result);
	RUN(reasons_carry_no_upstream_text);
	RUN(ops_table);
	return harness_done();
}
