/*
 * test_lusha.c - the Lusha adapter (lib/providers/lusha.c).
 *
 * Requests are checked byte for byte; answers are the shapes Lusha
 * documents (docs/providers.md, "Lusha"), one test per row of the table.
 * Time is passed in: NOW is 2026-11-23T09:23:36.123Z.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/provider.h"

#include "adapter_harness.h"

extern const struct prov_ops prov_lusha_ops;

#define NOW       INT64_C(1795425816123)
#define NEXT_MIN  INT64_C(1795425840000) /* 09:24:00Z */
#define NEXT_HOUR INT64_C(1795428000000) /* 10:00:00Z */
#define MIDNIGHT  INT64_C(1795478400000) /* 2026-11-24T00:00:00Z */
#define KEY       "lusha-SECRET-KEY-4567"

static struct cfg_key key = { .id = "lusha-1", .account = "acct", .secret = KEY, .category = "" };
static struct cfg_key phone_key = { .id = "lusha-2", .account = "acct", .secret = KEY, .category = "phone" };
static struct cfg_key email_key = { .id = "lusha-3", .account = "acct", .secret = KEY, .category = "email" };
static struct cfg_provider prov = {
	.name = "lusha", .kind = "lusha", .base_url = "https://api.lusha.com",
	.enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1,
};

static const char PERSON_HIT[] =
	"{\"contact\":{\"data\":{\"id\":\"2841926522\",\"firstName\":\"John\",\"lastName\":\"Doe\","
	"\"fullName\":\"John Doe\",\"emailAddresses\":["
	"{\"email\":\"jdoe@gmail.com\",\"emailType\":\"personal\",\"emailConfidence\":\"A\"},"
	"{\"email\":\"john.doe@acme.com\",\"emailType\":\"work\",\"emailConfidence\":\"A+\"},"
	"{\"email\":\"j.doe@acme.com\",\"emailType\":\"work\",\"emailConfidence\":\"B\"}],"
	"\"phoneNumbers\":["
	"{\"number\":\"+1 512-555-0100\",\"phoneType\":\"direct\",\"doNotCall\":false},"
	"{\"number\":\"+1 512-555-0199\",\"phoneType\":\"mobile\",\"doNotCall\":false}],"
	"\"jobTitle\":{\"title\":\"VP Engineering\",\"seniority\":\"Vice President\","
	"\"departments\":[\"Engineering & Technical\",\"IT\"]},"
	"\"location\":{\"country\":\"United States\",\"countryIso2\":\"US\",\"state\":\"Texas\","
	"\"city\":\"Austin\",\"postalCode\":\"78701\",\"rawLocation\":\"Austin, Texas, United States\"},"
	"\"company\":{\"name\":\"Acme Inc\",\"domain\":\"acme.com\",\"mainIndustry\":\"Software\","
	"\"employees\":\"201-500\"},"
	"\"socialLinks\":{\"linkedin\":\"https://www.linkedin.com/in/john-doe\"}},"
	"\"error\":null,\"isCreditCharged\":true}}";

static const char PERSON_EMPTY[] =
	"{\"contact\":{\"data\":null,\"error\":{\"code\":\"EMPTY_DATA\","
	"\"message\":\"Could not find requested data\"},\"isCreditCharged\":false}}";

static const char COMPANY_HIT[] =
	"{\"data\":{\"id\":\"33112\",\"name\":\"Acme Inc\",\"domain\":\"acme.com\","
	"\"mainIndustry\":\"Software\",\"employees\":[201,500],"
	"\"revenueRange\":[25000000,50000000],"
	"\"technologies\":[{\"name\":\"Salesforce\"},{\"name\":\"React\"},{\"x\":1},\"Go\"]}}";

static const char ERR_400[] =
	"{\"statusCode\":400,\"message\":\"Validation failed\",\"errors\":[\"email must be an email\"]}";
static const char ERR_401[] = "{\"statusCode\":401,\"message\":\"Unauthorized\"}";
static const char ERR_402[] = "{\"statusCode\":402,\"message\":\"Insufficient credits\"}";
static const char ERR_403[] =
	"{\"statusCode\":403,\"message\":\"Forbidden\",\"errors\":[\"Your pricing version "
	"does not support requesting individual datapoints [revealEmails, revealPhones]\"]}";
static const char ERR_404[] = "{\"statusCode\":404,\"message\":\"Contact not found\"}";

static const struct ah adapter = { &prov_lusha_ops, &prov, NOW };

#define run(q, status, body, hdrs, out) ah_parse(&adapter, NULL, q, status, body, hdrs, out)

#define person_q() ah_query(ID_EMAIL, "john.doe@acme.com", FLD_ALL)
#define company_q() ah_query(ID_DOMAIN, "acme.com", FLD_BIT(FLD_COMPANY_SIZE) | FLD_BIT(FLD_COMPANY_REVENUE))

#define check_key_only_in_auth(r) ah_check_key_only_in(r, KEY, "api_key: " KEY)

TEST(ops_table)
{
	ah_check_ops(&prov_lusha_ops, "lusha", false);
}

TEST(build_person)
{
	struct prov_query q = { { NULL }, FLD_BIT(FLD_PHONE) };
	struct prov_request r;

	q.id[ID_EMAIL] = "o'brien+crm@acme.com";
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/sean-o-brien";
	q.id[ID_FIRST_NAME] = "Seán";
	q.id[ID_LAST_NAME] = "O'Brien";
	q.id[ID_COMPANY_NAME] = "Acme & Sons";
	q.id[ID_DOMAIN] = "acme.com";
	q.id[ID_PHONE] = "+353 1 555 0100"; /* not a Lusha parameter */
	prov_request_init(&r);
	REQUIRE(prov_lusha_ops.build(&prov, &key, &q, &r) == ENR_OK);
	ah_check_get(&r,
		     "https://api.lusha.com/v2/person?email=o%27brien%2Bcrm%40acme.com"
		     "&linkedinUrl=https%3A%2F%2Fwww.linkedin.com%2Fin%2Fsean-o-brien"
		     "&firstName=Se%C3%A1n&lastName=O%27Brien&companyName=Acme%20%26%20Sons"
		     "&companyDomain=acme.com",
		     KEY, "api_key: " KEY);
	prov_request_release(&r);
}

TEST(build_reveal_options_follow_the_key_category)
{
	struct prov_query q = person_q();
	struct prov_request r;

	prov_request_init(&r);
	REQUIRE(prov_lusha_ops.build(&prov, &phone_key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url),
		  "https://api.lusha.com/v2/person?email=john.doe%40acme.com&revealPhones=true");
	check_key_only_in_auth(&r);
	prov_request_release(&r);
	prov_request_init(&r);
	REQUIRE(prov_lusha_ops.build(&prov, &email_key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url),
		  "https://api.lusha.com/v2/person?email=john.doe%40acme.com&revealEmails=true");
	prov_request_release(&r);
	prov_request_init(&r);
	REQUIRE(prov_lusha_ops.build(&prov, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.lusha.com/v2/person?email=john.doe%40acme.com");
	prov_request_release(&r);
}

TEST(build_company)
{
	struct prov_query q = company_q();
	struct prov_request r;
	struct cfg_provider p = prov;

	p.base_url = "http://127.0.0.1:9/lusha/";
	prov_request_init(&r);
	REQUIRE(prov_lusha_ops.build(&p, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "http://127.0.0.1:9/lusha/v2/company?domain=acme.com");
	check_key_only_in_auth(&r);
	prov_request_release(&r);
	q.id[ID_DOMAIN] = NULL;
	q.id[ID_COMPANY_NAME] = "Müller GmbH";
	prov_request_init(&r);
	REQUIRE(prov_lusha_ops.build(&prov, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.lusha.com/v2/company?company=M%C3%BCller%20GmbH");
	prov_request_release(&r);
}

TEST(build_refuses_queries_without_a_usable_identifier)
{
	struct prov_query q = { { NULL }, FLD_BIT(FLD_TITLE) };
	struct prov_request r;

	prov_request_init(&r);
	CHECK_INT(prov_lusha_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_PHONE] = "+14155550100";
	CHECK_INT(prov_lusha_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_FIRST_NAME] = "John";
	q.id[ID_DOMAIN] = "acme.com";
	CHECK_INT(prov_lusha_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/company/acme";
	CHECK_INT(prov_lusha_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	q.id[ID_LAST_NAME] = "Doe";
	REQUIRE(prov_lusha_ops.build(&prov, &key, &q, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url),
		  "https://api.lusha.com/v2/person?firstName=John&lastName=Doe&companyDomain=acme.com");
	prov_request_release(&r);
}

TEST(person_hit)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr h[] = { { "x-rate-limit-minute", "50" },
				    { "x-minute-requests-left", "49" },
				    { "x-rate-limit-hourly", "150" },
				    { "x-hourly-requests-left", "149" },
				    { "x-rate-limit-daily", "1500" },
				    { "x-daily-requests-left", "1499" },
				    { NULL, NULL } };

	prov_result_init(&res);
	run(&q, 200, PERSON_HIT, h, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.credits, 1);
	CHECK_INT(res.requests_left, 49);
	CHECK_INT(res.credits_left, -1);
	CHECK_INT(res.until_ms, 0);
	AH_VALUES(&res, { FLD_FIRST_NAME, "John" }, { FLD_LAST_NAME, "Doe" },
		  { FLD_TITLE, "VP Engineering" }, { FLD_SENIORITY, "Vice President" },
		  { FLD_DEPARTMENT, "Engineering & Technical" },
		  { FLD_LINKEDIN_URL, "https://www.linkedin.com/in/john-doe" },
		  { FLD_CITY, "Austin" }, { FLD_STATE, "Texas" },
		  { FLD_COUNTRY, "United States" }, { FLD_ZIP_CODE, "78701" },
		  { FLD_LOCATION, "Austin, Texas, United States" });
	CHECK_STR(res.value[FLD_PHONE], "+1 512-555-0199"); /* the mobile, though listed second */
	AH_VALUES(&res, { FLD_BUSINESS_EMAIL, "john.doe@acme.com" },
		  { FLD_PERSONAL_EMAIL, "jdoe@gmail.com" }, { FLD_COMPANY_NAME, "Acme Inc" },
		  { FLD_INDUSTRY, "Software" }, { FLD_COMPANY_SIZE, "201-500" });
	CHECK_INT(fld_count(res.found), 17);
	CHECK_DBL(res.confidence[FLD_PHONE], 0.9, 1e-9);
	prov_result_release(&res);
}

TEST(person_without_mobile_takes_the_first_number)
{
	struct prov_query q = person_q();
	struct prov_result res;

	prov_result_init(&res);
	run(&q, 200,
	    "{\"contact\":{\"data\":{\"phoneNumbers\":[{\"number\":\"+1 555 0001\",\"phoneType\":"
	    "\"direct\"},{\"number\":\"+1 555 0002\",\"phoneType\":\"landline\"}]},\"error\":null,"
	    "\"isCreditCharged\":true}}",
	    NULL, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_STR(res.value[FLD_PHONE], "+1 555 0001");
	CHECK_INT(fld_count(res.found), 1);
	prov_result_release(&res);
}

TEST(both_miss_styles)
{
	struct prov_query q = person_q();
	struct prov_result res;
	const struct ah_hdr h[] = { { "x-minute-requests-left", "48" }, { NULL, NULL } };

	prov_result_init(&res);
	run(&q, 200, PERSON_EMPTY, h, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	CHECK_INT(res.requests_left, 48);
	CHECK_INT(res.found, 0);
	CHECK(strstr(res.reason, "Could not") == NULL);
	/* a miss Lusha says it charged for */
	run(&q, 200,
	    "{\"contact\":{\"data\":null,\"error\":{\"code\":\"EMPTY_DATA\",\"message\":\"x\"},"
	    "\"isCreditCharged\":true}}",
	    NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 1);
	run(&q, 404, ERR_404, h, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	CHECK_INT(res.requests_left, 48);
	/* a 404 that is not Lusha's */
	run(&q, 404, "<html>404 Not Found</html>", NULL, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	prov_result_release(&res);
}

TEST(company)
{
	struct prov_query q = company_q();
	struct prov_result res;

	prov_result_init(&res);
	run(&q, 200, COMPANY_HIT, NULL, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.credits, 1);
	AH_VALUES(&res, { FLD_COMPANY_NAME, "Acme Inc" }, { FLD_INDUSTRY, "Software" },
		  { FLD_COMPANY_SIZE, "201-500" }, { FLD_COMPANY_REVENUE, "25000000-50000000" },
		  { FLD_TECHNOLOGIES, "Salesforce, React, Go" });
	CHECK_INT(fld_count(res.found), 5);
	run(&q, 200, "{\"data\":{\"name\":\"Acme\",\"employees\":\"51-200\","
		     "\"revenueRange\":\"$10M-$50M\"}}", NULL, &res);
	CHECK_STR(res.value[FLD_COMPANY_SIZE], "51-200");
	CHECK_STR(res.value[FLD_COMPANY_REVENUE], "$10M-$50M");
	run(&q, 200, "{\"data\":null}", NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	run(&q, 200, "{\"errors\":{\"code\":\"NOT_FOUND\"}}", NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	run(&q, 200, "{\"company\":{\"name\":\"Acme\"}}", NULL, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	run(&q, 200, "{\"data\":[\"Acme\"]}", NULL, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_INT(res.found, 0);
	prov_result_release(&res);
}

static const char ERR_451[] = "{\"statusCode\":451,\"message\":\"We are unable to process "
			       "this contact request due to our GDPR regulations\"}";

TEST(errors_by_status)
{
	static const struct ah_case cases[] = {
		{ 400, ERR_400, PROV_REQUEST_REJECTED, NULL, "Validation", NULL },
		{ 401, ERR_401, PROV_KEY_INVALID, NULL, NULL, NULL },
		{ 402, ERR_402, PROV_QUOTA_EXHAUSTED, NULL, NULL, NULL },
		/* 403: the plan lacks an option; the key itself is fine */
		{ 403, ERR_403, PROV_REQUEST_REJECTED, NULL, "revealEmails", NULL },
		{ 500, "{\"statusCode\":500,\"message\":\"Server error\"}", PROV_TRANSIENT, NULL, NULL,
		  NULL },
		{ 502, "<html>bad gateway</html>", PROV_TRANSIENT, "502", NULL, NULL },
		{ 412, "{\"statusCode\":412,\"message\":\"x\"}", PROV_TRANSIENT, "412", NULL, NULL },
		/* 451: Lusha withholds this contact (GDPR); an answer, whichever key */
		{ 451, ERR_451, PROV_MISS, NULL, "GDPR", NULL },
	};
	struct prov_query q = person_q();
	struct prov_result res;

	ah_check_cases(&adapter, &q, cases, sizeof cases / sizeof cases[0]);
	prov_result_init(&res);
	run(&q, 402, ERR_402, NULL, &res);
	CHECK_INT(res.until_ms, 0);
	run(&q, 451, ERR_451, NULL, &res);
	CHECK_INT(res.credits, 0);
	CHECK_INT(res.found, 0);
	prov_result_release(&res);
}

TEST(rate_limited_windows)
{
	const struct ah_hdr retry[] = { { "retry-after", "17" }, { NULL, NULL } };
	const struct ah_hdr hour0[] = { { "x-minute-requests-left", "3" },
				        { "x-hourly-requests-left", "0" },
				        { "x-daily-requests-left", "100" },
				        { NULL, NULL } };
	const struct ah_hdr day0[] = { { "x-minute-requests-left", "0" },
				       { "x-daily-requests-left", "0" },
				       { NULL, NULL } };
	const struct ah_hdr min0[] = { { "x-minute-requests-left", "0" }, { NULL, NULL } };
	const struct ah_until untils[] = {
		{ "{\"statusCode\":429,\"message\":\"Minute rate limit exceeded\"}", NULL, NEXT_MIN },
		{ "{\"statusCode\":429,\"message\":\"Hourly rate limit exceeded\"}", NULL, NEXT_HOUR },
		{ "{\"statusCode\":429,\"message\":\"Daily rate limit exceeded\"}", NULL, MIDNIGHT },
		/* Lusha's documented long forms */
		{ "{\"statusCode\":429,\"message\":\"Daily API quota limit exceeded. "
		  "Limit 1500 calls per day\"}", NULL, MIDNIGHT },
		{ "{\"statusCode\":429,\"message\":\"Hourly API rate limit exceeded. "
		  "Limit: 150 calls per hour. Reset in 120 seconds\"}", NULL, NOW + 120000 },
		/* Retry-After comes first */
		{ "{\"statusCode\":429,\"message\":\"Daily rate limit exceeded\"}", retry, NOW + 17000 },
		/* no window in the message: the header at 0 names it, the longest first */
		{ "{\"statusCode\":429,\"message\":\"Rate limit exceeded\"}", hour0, NEXT_HOUR },
		{ "{\"statusCode\":429,\"message\":\"Too many\"}", day0, MIDNIGHT },
		{ "<html>slow down</html>", min0, NEXT_MIN },
		/* nothing says */
		{ "{\"statusCode\":429,\"message\":\"Rate limit exceeded\"}", NULL, 0 },
		{ "", NULL, 0 },
	};
	struct prov_query q = person_q();

	ah_check_until(&adapter, &q, 429, PROV_RATE_LIMITED, untils,
		       sizeof untils / sizeof untils[0]);
}

TEST(garbage_and_wrong_shapes_are_transient)
{
	static const char *const bodies[] = {
		"<html><body>502 upstream hiccup</body></html",
		"{\"contact\":{\"data\":{\"firstName\":\"John\"",              /* truncated */
		"{\"data\":{\"firstName\":\"John\"}}",                           /* no contact */
		"{\"contact\":{\"data\":[\"John\"],\"error\":null}}",           /* data not an object */
		"{\"contact\":\"John\"}",
		"{\"contact\":{\"error\":null}}",                                 /* no data member */
		"{\"contact\":{\"data\":{\"firstName\":\"John\"},\"contact\":1},\"contact\":2}",
		"[]",
		"",
	};
	static const char *const leaks[] = { "John", NULL };
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
	RUN(build_person);
	RUN(build_reveal_options_follow_the_key_category);
	RUN(build_company);
	RUN(build_refuses_queries_without_a_usable_identifier);
	RUN(person_hit);
	RUN(person_without_mobile_takes_the_first_number);
	RUN(both_miss_styles);
	RUN(company);
	RUN(errors_by_status);
	RUN(rate_limited_windows);
	RUN(garbage_and_wrong_shapes_are_transient);
	RUN(no_answer_is_transient);
	return harness_done();
}
