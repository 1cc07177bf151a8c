/*
 * test_pdl.c - the People Data Labs adapter (lib/providers/pdl.c).
 *
 * Requests are checked byte for byte; answers are the shapes PDL documents
 * (docs/providers.md, "People Data Labs"), one test per row of the table.
 * Time is passed in: NOW is 2026-11-23T09:23:36.123Z.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/provider.h"

#include "adapter_harness.h"

extern const struct prov_ops prov_pdl_ops;

#define NOW   INT64_C(1795425816123)
#define KEY   "pdl-SECRET-KEY-0123"

static struct cfg_key key = { .id = "pdl-1", .account = "acct", .secret = KEY, .category = "" };
static struct cfg_provider prov = {
	.name = "pdl", .kind = "pdl", .base_url = "https://api.peopledatalabs.com",
	.enabled = true, .timeout_ms = 1500, .min_likelihood = 6, .credits_per_hit = 1,
	.keys = &key, .nkeys = 1,
};

static const char PERSON_HIT[] =
	"{\"status\":200,\"likelihood\":8,\"data\":{"
	"\"id\":\"qEnOZ5Oh0poWnQ1luFBfVw_0000\",\"full_name\":\"Sean Thorne\","
	"\"first_name\":\"Sean\",\"middle_name\":null,\"last_name\":\"Thorne\","
	"\"job_title\":\"Co-Founder And Chief Executive Officer\","
	"\"job_title_role\":\"operations\",\"job_title_levels\":[\"owner\",\"cxo\"],"
	"\"linkedin_url\":\"linkedin.com/in/seanthorne\","
	"\"location_name\":\"San Francisco, California, United States\","
	"\"location_locality\":\"San Francisco\",\"location_region\":\"California\","
	"\"location_country\":\"United States\",\"location_postal_code\":\"94105\","
	"\"mobile_phone\":\"+14155688415\",\"phone_numbers\":[\"+14155688415\",\"+14155550000\"],"
	"\"work_email\":\"sean@peopledatalabs.com\","
	"\"personal_emails\":[\"sthorne@gmail.com\"],"
	"\"job_company_name\":\"People Data Labs\",\"job_company_industry\":\"Computer Software\","
	"\"industry\":\"internet\",\"job_company_size\":\"51-200\","
	"\"job_company_website\":\"peopledatalabs.com\",\"skills\":[\"data\"]}}";

/* The fallbacks: no mobile_phone, no job_company_industry. */
static const char PERSON_FALLBACKS[] =
	"{\"status\":200,\"likelihood\":10,\"data\":{\"first_name\":\"Ann\","
	"\"mobile_phone\":null,\"phone_numbers\":[\"+442071838750\"],"
	"\"job_company_industry\":null,\"industry\":\"Banking\",\"job_title_levels\":[]}}";

static const char COMPANY_HIT[] =
	"{\"status\":200,\"likelihood\":7,\"name\":\"Acme Inc\",\"display_name\":\"Acme\","
	"\"website\":\"acme.com\",\"industry\":\"Computer Software\",\"size\":\"201-500\","
	"\"inferred_revenue\":\"$25M-$50M\",\"tags\":[\"Postgres\",\"Kubernetes\",\"\",7,\"Go\"]}";

static const char NOT_FOUND[] =
	"{\"status\":404,\"error\":{\"type\":\"not_found\","
	"\"message\":\"No records were found matching your request\"}}";
static const char BAD_REQUEST[] =
	"{\"status\":400,\"error\":{\"type\":\"invalid_request_error\","
	"\"message\":\"Request object must contain at least one of: profile, email, phone\"}}";
static const char UNAUTH[] =
	"{\"status\":401,\"error\":{\"type\":\"invalid_auth\",\"message\":\"Invalid API key\"}}";
static const char FORBIDDEN[] =
	"{\"status\":403,\"error\":{\"type\":\"invalid_auth\",\"message\":\"Key revoked\"}}";
static const char PAYMENT[] =
	"{\"status\":402,\"error\":{\"type\":\"payment_required\","
	"\"message\":\"You have hit your account maximum for this endpoint\"}}";
static const char RATE[] =
	"{\"status\":429,\"error\":{\"type\":\"rate_limit_error\","
	"\"message\":\"An error occurred due to requests hitting the API too quick\"}}";

static const struct ah adapter = { &prov_pdl_ops, &prov, NOW };

#define run(q, status, body, hdrs, out) ah_parse(&adapter, NULL, q, status, body, hdrs, out)
#define run_p(p, q, status, body, hdrs, out) ah_parse(&adapter, p, q, status, body, hdrs, out)

#define person_q() ah_query(ID_EMAIL, "sean@peopledatalabs.com", FLD_ALL)
#define company_q() ah_query(ID_DOMAIN, "acme.com", FLD_BIT(FLD_INDUSTRY) | FLD_BIT(FLD_TECHNOLOGIES))

/* The key appears in exactly one place: the X-Api-Key line. */
#define check_key_only_in_auth(r) ah_check_key_only_in(r, KEY, "X-Api-Key: " KEY)

TEST(ops_table)
{
	ah_check_ops(&prov_pdl_ops, "pdl", false);
}

TEST(build_person_by_email)
{
	struct prov_query q = { { NULL }, FLD_BIT(FLD_TITLE) | FLD_BIT(FLD_PHONE) };
	struct prov_request r;

	q.id[ID_EMAIL] = "john.doe+news@acme.com";
	q.id[ID_FIRST_NAME] = "John";
	q.id[ID_LAST_NAME] = "Doe";
	q.id[ID_DOMAIN] = "acme.com"; /* not a person parameter */
	prov_request_init(&r);
	REQUIRE(prov_pdl_ops.build(&prov, &key, &q, &r) == ENR_OK);
	ah_check_get(&r,
		     "https://api.peopledatalabs.com/v5/person/enrich"
		     "?email=john.doe%2Bnews%40acme.com&first_name=John&last_name=Doe"
		     "&min_likelihood=6&titlecase=true",
		     KEY, "X-Api-Key: " KEY);
	prov_request_release(&r);
}

TEST(build_person_by_profile_phone_and_names)
{
	struct prov_query q = { { NULL }, FLD_ALL };
	struct prov_request r;
	struct cfg_provider p = prov;

	p.base_url = "http://127.0.0.1:8080/pdl/"; /* trailing slash */
	p.min_likelihood = 9;
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/jos%c3%a9-garc%c3%ada";
	q.id[ID_PHONE] = "+14155550123";
	q.id[ID_FIRST_NAME] = "José";
	q.id[ID_LAST_NAME] = "García López";
	q.id[ID_COMPANY_NAME] = "AT&T";
	prov_request_init(&r);
	REQUIRE(prov_pdl_ops.build(&p, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url),
		  "http://127.0.0.1:8080/pdl/v5/person/enrich"
		  "?profile=https%3A%2F%2Fwww.linkedin.com%2Fin%2Fjos%25c3%25a9-garc%25c3%25ada"
		  "&first_name=Jos%C3%A9&last_name=Garc%C3%ADa%20L%C3%B3pez&company=AT%26T"
		  "&phone=%2B14155550123&min_likelihood=9&titlecase=true");
	check_key_only_in_auth(&r);
	prov_request_release(&r);
}

TEST(build_company)
{
	struct prov_query q = company_q();
	struct prov_request r;

	prov_request_init(&r);
	REQUIRE(prov_pdl_ops.build(&prov, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.peopledatalabs.com/v5/company/enrich?website=acme.com&titlecase=true");
	CHECK_STR(r.headers[2], "X-Api-Key: " KEY);
	check_key_only_in_auth(&r);
	prov_request_release(&r);

	/* a name when no domain is known */
	q.id[ID_DOMAIN] = NULL;
	q.id[ID_COMPANY_NAME] = "Acme Inc.";
	prov_request_init(&r);
	REQUIRE(prov_pdl_ops.build(&prov, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.peopledatalabs.com/v5/company/enrich?name=Acme%20Inc.&titlecase=true");
	prov_request_release(&r);

	/* one person field wanted: the person endpoint */
	q.want |= FLD_BIT(FLD_TITLE);
	q.id[ID_EMAIL] = "a@acme.com";
	prov_request_init(&r);
	REQUIRE(prov_pdl_ops.build(&prov, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.peopledatalabs.com/v5/person/enrich"
				    "?email=a%40acme.com&company=Acme%20Inc.&min_likelihood=6&titlecase=true");
	prov_request_release(&r);
}

TEST(build_refuses_queries_without_a_usable_identifier)
{
	struct prov_query q = { { NULL }, FLD_BIT(FLD_TITLE) };
	struct prov_request r;

	prov_request_init(&r);
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_DOMAIN] = "acme.com";              /* person wanted, only a domain */
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_FIRST_NAME] = "John";
	q.id[ID_COMPANY_NAME] = "Acme";            /* a first name alone is not enough */
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/company/acme"; /* not a person */
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_EMAIL] = "";                       /* empty is absent */
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	CHECK_INT(r.nheaders, 0);
	q.id[ID_LAST_NAME] = "Doe";                /* full name + company: fine */
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_OK);
	CHECK_STR(buf_cstr(&r.url),
		  "https://api.peopledatalabs.com/v5/person/enrich"
		  "?first_name=John&last_name=Doe&company=Acme&min_likelihood=6&titlecase=true");
	prov_request_release(&r);
	/* company fields wanted but nothing to search a company by */
	q = (struct prov_query){ { NULL }, FLD_BIT(FLD_INDUSTRY) };
	prov_request_init(&r);
	CHECK_INT(prov_pdl_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	prov_request_release(&r);
}

TEST(person_hit)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr h[] = { { "x-ratelimit-remaining", "{\"minute\": 99}" },
				    { "x-ratelimit-limit", "{\"minute\": 100}" },
				    { "x-call-credits-spent", "1" },
				    { "x-totallimit-remaining", "412" },
				    { NULL, NULL } };

	prov_result_init(&res);
	run(&q, 200, PERSON_HIT, h, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.until_ms, 0);
	CHECK_INT(res.credits, 1);
	CHECK_INT(res.requests_left, 99);
	CHECK_INT(res.credits_left, 412);
	AH_VALUES(&res, { FLD_FIRST_NAME, "Sean" }, { FLD_LAST_NAME, "Thorne" },
		  { FLD_TITLE, "Co-Founder And Chief Executive Officer" },
		  { FLD_SENIORITY, "owner" }, { FLD_DEPARTMENT, "operations" },
		  { FLD_LINKEDIN_URL, "linkedin.com/in/seanthorne" },
		  { FLD_LOCATION, "San Francisco, California, United States" },
		  { FLD_CITY, "San Francisco" }, { FLD_STATE, "California" },
		  { FLD_COUNTRY, "United States" }, { FLD_ZIP_CODE, "94105" },
		  { FLD_PHONE, "+14155688415" },
		  { FLD_BUSINESS_EMAIL, "sean@peopledatalabs.com" },
		  { FLD_PERSONAL_EMAIL, "sthorne@gmail.com" },
		  { FLD_COMPANY_NAME, "People Data Labs" }, { FLD_INDUSTRY, "Computer Software" },
		  { FLD_COMPANY_SIZE, "51-200" }, { FLD_COMPANY_REVENUE, NULL },
		  { FLD_TECHNOLOGIES, NULL });
	CHECK_INT(fld_count(res.found), 17);
	CHECK_DBL(res.confidence[FLD_TITLE], 0.8, 1e-9);
	CHECK_DBL(res.confidence[FLD_PHONE], 0.8, 1e-9);
	prov_result_release(&res);
}

TEST(person_hit_fallbacks_and_meter_forms)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr py[] = { { "x-ratelimit-remaining",
				       "{'minute': 98, 'day': None, 'month': None}" },
				     { NULL, NULL } };
	const struct ah_hdr windows[] = { { "x-ratelimit-remaining", "{\"minute\": 40, \"day\": 3}" },
				          { "x-totallimit-remaining", "junk" },
				          { "x-call-credits-spent", "-1" },
				          { NULL, NULL } };
	struct cfg_provider p2 = prov;

	prov_result_init(&res);
	run(&q, 200, PERSON_FALLBACKS, py, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_STR(res.value[FLD_PHONE], "+442071838750");
	CHECK_STR(res.value[FLD_INDUSTRY], "Banking");
	CHECK(res.value[FLD_SENIORITY] == NULL);
	CHECK_DBL(res.confidence[FLD_FIRST_NAME], 1.0, 1e-9);
	CHECK_INT(res.requests_left, 98);
	CHECK_INT(res.credits_left, -1);
	/* no x-call-credits-spent: credits_per_hit */
	CHECK_INT(res.credits, 1);

	p2.credits_per_hit = 3;
	run_p(&p2, &q, 200, PERSON_FALLBACKS, windows, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.requests_left, 3);   /* the smallest window */
	CHECK_INT(res.credits_left, -1);   /* unreadable */
	CHECK_INT(res.credits, 3);         /* unreadable spent header: credits_per_hit */
	prov_result_release(&res);
}

TEST(company_hit)
{
	struct prov_query q = company_q();
	struct prov_result res;
	const struct ah_hdr h[] = { { "x-call-credits-spent", "1" }, { NULL, NULL } };

	prov_result_init(&res);
	run(&q, 200, COMPANY_HIT, h, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.credits, 1);
	AH_VALUES(&res, { FLD_COMPANY_NAME, "Acme Inc" }, { FLD_INDUSTRY, "Computer Software" },
		  { FLD_COMPANY_SIZE, "201-500" }, { FLD_COMPANY_REVENUE, "$25M-$50M" },
		  { FLD_TECHNOLOGIES, "Postgres, Kubernetes, Go" });
	CHECK_DBL(res.confidence[FLD_COMPANY_NAME], 0.7, 1e-9);
	CHECK_INT(fld_count(res.found), 5);
	prov_result_release(&res);
}

TEST(not_found_is_a_free_miss)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr h[] = { { "x-call-credits-spent", "0" },
				    { "x-ratelimit-remaining", "{\"minute\": 97}" },
				    { NULL, NULL } };

	prov_result_init(&res);
	run(&q, 404, NOT_FOUND, h, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	CHECK_INT(res.requests_left, 97);
	CHECK_INT(res.found, 0);
	CHECK(strstr(res.reason, "No records") == NULL);
	/* a 404 that is not PDL's (an HTML error page) says nothing */
	run(&q, 404, "<html>Not Found</html>", NULL, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK(res.reason[0] != '\0');
	/* a record with nothing usable is no hit */
	run(&q, 200, "{\"status\":200,\"likelihood\":6,\"data\":{\"first_name\":null,\"x\":1}}",
	    NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 1);
	prov_result_release(&res);
}

TEST(errors_by_status)
{
	static const struct ah_case cases[] = {
		{ 400, BAD_REQUEST, PROV_REQUEST_REJECTED, NULL, "Request object", NULL },
		{ 401, UNAUTH, PROV_KEY_INVALID, NULL, "Invalid API key", NULL },
		{ 403, FORBIDDEN, PROV_KEY_INVALID, NULL, NULL, NULL },
		{ 401, "", PROV_KEY_INVALID, NULL, NULL, NULL },
		{ 500, "{\"status\":500,\"error\":{\"type\":\"error\",\"message\":\"x\"}}",
		  PROV_TRANSIENT, NULL, NULL, NULL },
		{ 503, "<html>busy</html>", PROV_TRANSIENT, "503", NULL, NULL },
		{ 302, "", PROV_TRANSIENT, "302", NULL, NULL },
		{ 405, "{}", PROV_TRANSIENT, NULL, NULL, NULL },
		{ 204, "", PROV_TRANSIENT, NULL, NULL, NULL },
	};
	struct prov_query q = person_q();

	ah_check_cases(&adapter, &q, cases, sizeof cases / sizeof cases[0]);
}

TEST(quota_exhausted)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr later[] = { { "x-totallimit-remaining", "0" },
				        { "x-ratelimit-reset", "1795429416" }, /* NOW + 1 h */
				        { "x-call-credits-spent", "0" },
				        { NULL, NULL } };
	const struct ah_hdr soon[] = { { "x-totallimit-remaining", "0" },
				       { "x-ratelimit-reset", "1795425846" }, /* NOW + 30 s */
				       { "retry-after", "30" },
				       { NULL, NULL } };
	const struct ah_hdr none[] = { { "x-totallimit-remaining", "0" }, { NULL, NULL } };
	const struct ah_until untils[] = {
		{ PAYMENT, later, INT64_C(1795429416000) },
		{ PAYMENT, soon, 0 },
		{ PAYMENT, none, 0 },
	};

	ah_check_until(&adapter, &q, 402, PROV_QUOTA_EXHAUSTED, untils, 3);
	prov_result_init(&res);
	run(&q, 402, PAYMENT, later, &res);
	CHECK_INT(res.credits_left, 0);
	CHECK_INT(res.credits, 0);
	run(&q, 402, PAYMENT, none, &res);
	CHECK_INT(res.credits_left, 0);
	prov_result_release(&res);
}

TEST(rate_limited)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr epoch[] = { { "x-ratelimit-reset", "1795425846" },
				        { "retry-after", "5" },
				        { "x-ratelimit-remaining", "{\"minute\": 0}" },
				        { NULL, NULL } };
	const struct ah_hdr iso[] = { { "x-ratelimit-reset", "2026-11-23T10:23:36Z" },
				      { NULL, NULL } };
	const struct ah_hdr quoted_iso[] = { { "x-ratelimit-reset", "\"2026-11-23T10:23:36.250Z\"" },
					     { NULL, NULL } };
	const struct ah_hdr retry[] = { { "retry-after", "30" }, { NULL, NULL } };
	const struct ah_hdr past[] = { { "x-ratelimit-reset", "1795425800" },
				       { "retry-after", "12" },
				       { NULL, NULL } };
	const struct ah_hdr bad[] = { { "x-ratelimit-reset", "2026-02-31T10:00:00Z" },
				      { NULL, NULL } };
	const struct ah_until untils[] = {
		{ RATE, epoch, INT64_C(1795425846000) }, { RATE, iso, INT64_C(1795429416000) },
		{ RATE, quoted_iso, INT64_C(1795429416000) }, { RATE, retry, NOW + 30000 },
		{ RATE, past, NOW + 12000 }, { RATE, bad, 0 }, { RATE, NULL, 0 },
	};

	ah_check_until(&adapter, &q, 429, PROV_RATE_LIMITED, untils, 7);
	prov_result_init(&res);
	run(&q, 429, RATE, epoch, &res);
	CHECK_INT(res.requests_left, 0);
	run(&q, 429, RATE, NULL, &res);
	CHECK_INT(res.requests_left, -1);
	prov_result_release(&res);
}

TEST(garbage_and_wrong_shapes_are_transient)
{
	static const char *const bodies[] = {
		"<html><body>502 upstream hiccup</body></html",
		"{\"status\":200,\"likelihood\":8,\"data\":{\"first_name\":\"Sean\"",  /* truncated */
		"{\"status\":200,\"likelihood\":8,\"data\":[\"Sean\"]}",               /* data not an object */
		"{\"status\":200,\"data\":{\"first_name\":\"Sean\"}}",                 /* no likelihood */
		"{\"status\":200,\"likelihood\":11,\"data\":{\"first_name\":\"Sean\"}}",
		"{\"status\":200,\"likelihood\":\"8\",\"data\":{\"first_name\":\"Sean\"}}",
		"{\"status\":404,\"likelihood\":8,\"data\":{\"first_name\":\"Sean\"}}",
		"{\"likelihood\":8,\"likelihood\":9,\"data\":{\"first_name\":\"Sean\"}}", /* duplicate */
		"[1,2,3]",
		"\"hello\"",
		"",
	};
	static const char *const leaks[] = { "Sean", "html", NULL };
	struct prov_query q = person_q();

	ah_check_transient(&adapter, &q, 200, bodies, sizeof bodies / sizeof bodies[0], leaks);
}

TEST(no_answer_is_transient)
{
	struct prov_query q = person_q();

	ah_check_no_answer(&adapter, &q, 200, PERSON_HIT);
}

int main(void)
{
	RUN(ops_table);
	RUN(build_person_by_email);
	RUN(build_person_by_profile_phone_and_names);
	RUN(build_company);
	RUN(build_refuses_queries_without_a_usable_identifier);
	RUN(person_hit);
	RUN(person_hit_fallbacks_and_meter_forms);
	RUN(company_hit);
	RUN(not_found_is_a_free_miss);
	RUN(errors_by_status);
	RUN(quota_exhausted);
	RUN(rate_limited);
	RUN(garbage_and_wrong_shapes_are_transient);
	RUN(no_answer_is_transient);
	return harness_done();
}
