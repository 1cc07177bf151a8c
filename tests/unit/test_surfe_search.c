/*
 * test_surfe_search.c - Surfe v2 people search and company search
 * (lib/providers/surfe_search.c): the request shapes of docs/providers.md
 * ("Surfe people search", "Surfe company search") and their answers.
 * NOW is 2026-11-23T09:23:36.123Z.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/provider.h"

#include "adapter_harness.h"

#define NOW INT64_C(1795425816123)
#define KEY "surfe-SECRET-KEY-0123"

static struct cfg_key key = { .id = "surfe-1", .account = "acct", .secret = KEY, .category = "" };
static struct cfg_provider prov = {
	.name = "surfe", .kind = "surfe", .base_url = "https://api.surfe.com",
	.enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .poll_interval_ms = 250,
	.keys = &key, .nkeys = 1,
};

static const struct prov_search_ops *sops = &prov_surfe_search_ops;

static const char PEOPLE[] =
	"{\"people\":[{\"firstName\":\"Ada\",\"lastName\":\"Adams\",\"jobTitle\":\"Head of Sales\","
	"\"seniorities\":[\"Director\"],\"departments\":[\"Sales\",\"Marketing\"],"
	"\"companyName\":\"Acme Inc\",\"companyDomain\":\"acme.com\",\"country\":\"gb\","
	"\"location\":\"London, England, United Kingdom\","
	"\"linkedInUrl\":\"https://www.linkedin.com/in/ada-adams\"},"
	"{\"firstName\":\"Ben\",\"lastName\":\"Baker\",\"country\":\"Atlantis\"}],"
	"\"total\":31,\"nextPageToken\":\"eyJrIjoicGVvcGxlIn0\"}";

static const char COMPANIES[] =
	"{\"companies\":[{\"name\":\"Acme Inc\",\"domain\":\"acme.com\",\"industry\":\"Software\","
	"\"employeeCount\":250,\"revenue\":\"$25M-$50M\",\"hqCountry\":\"us\","
	"\"hqAddress\":\"Austin, Texas, United States\"}],\"total\":1}";

TEST(ops_table)
{
	bool per_company = false;

	CHECK(prov_ops_find("surfe")->search == sops);
	CHECK(sops->supports(&prov, PROV_SEARCH_PEOPLE) && sops->supports(&prov, PROV_SEARCH_COMPANIES));
	CHECK_INT(sops->filters(&prov, PROV_SEARCH_PEOPLE, &per_company),
		  prov_search_filters(PROV_SEARCH_PEOPLE));
	CHECK(per_company);
	CHECK_INT(sops->limit_max(&prov, PROV_SEARCH_PEOPLE), 200);
	/* ceil(results / 10) search credits a call. */
	CHECK_INT(sops->cost(&prov, PROV_SEARCH_PEOPLE, 1), 1);
	CHECK_INT(sops->cost(&prov, PROV_SEARCH_PEOPLE, 10), 1);
	CHECK_INT(sops->cost(&prov, PROV_SEARCH_PEOPLE, 11), 2);
	CHECK_INT(sops->cost(&prov, PROV_SEARCH_PEOPLE, 200), 20);
}

TEST(build_people_search)
{
	static const char *const domains[] = { "acme.com" };
	static const char *const titles[] = { "head of sales" };
	static const char *const levels[] = { "cxo", "vp" };
	static const char *const deps[] = { "human_resources", "sales" };
	static const char *const here[] = { "gb" };
	static const char *const hq[] = { "us" };
	static const char *const sizes[] = { "51-200", "201-500", "11-50" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 1, 25);
	struct prov_request r;

	s.f[PF_TITLES] = (struct prov_filter_values){ titles, 1 };
	s.f[PF_SENIORITIES] = (struct prov_filter_values){ levels, 2 };
	s.f[PF_DEPARTMENTS] = (struct prov_filter_values){ deps, 2 };
	s.f[PF_COUNTRIES] = (struct prov_filter_values){ here, 1 };
	s.f[PF_COMPANY_COUNTRIES] = (struct prov_filter_values){ hq, 1 };
	s.f[PF_SIZES] = (struct prov_filter_values){ sizes, 3 };
	prov_request_init(&r);
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK_STR(r.method, "POST");
	CHECK_STR(buf_cstr(&r.url), "https://api.surfe.com/v2/people/search");
	ah_check_key_only_in(&r, KEY, "Authorization: Bearer " KEY);
	/* The three adjacent buckets make one range. */
	ah_check_body(&r, "{\"limit\":25,"
			  "\"companies\":{\"domains\":[\"acme.com\"],\"countries\":[\"us\"],"
			  "\"employeeCount\":{\"from\":11,\"to\":500}},"
			  "\"people\":{\"jobTitles\":[\"head of sales\"],"
			  "\"seniorities\":[\"C-Level\",\"Vice President\"],"
			  "\"departments\":[\"Human Resources\",\"Sales\"],\"countries\":[\"gb\"]}}");
	/* A next page: the token and the page size only. */
	s.cursor = "eyJrIjoicGVvcGxlIn0";
	s.limit = 10;
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	ah_check_body(&r, "{\"limit\":10,\"pageToken\":\"eyJrIjoicGVvcGxlIn0\"}");
	prov_request_release(&r);
}

TEST(build_people_per_company_and_open_top_size)
{
	static const char *const names[] = { "acme inc", "initech" };
	static const char *const big[] = { "10001+", "5001-10000" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_NAMES, names, 2, 20);
	struct prov_request r;

	s.per_company = 3;
	prov_request_init(&r);
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	ah_check_body(&r, "{\"limit\":20,\"companies\":{\"names\":[\"acme inc\",\"initech\"]},"
			  "\"peoplePerCompany\":3}");
	/* Companies: the filters member; the top bucket has no end. */
	s = ah_search(PROV_SEARCH_COMPANIES, PF_SIZES, big, 2, 5);
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.surfe.com/v2/companies/search");
	ah_check_body(&r, "{\"limit\":5,\"filters\":{\"employeeCount\":{\"from\":5001}}}");
	prov_request_release(&r);
}

TEST(build_refuses_what_surfe_cannot_say)
{
	static const char *const gap[] = { "1-10", "51-200" };
	static const char *const titles[] = { "sales" };
	static const char *const domains[] = { "acme.com" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_SIZES, gap, 2, 10);
	struct prov_request r;

	prov_request_init(&r);
	/* Two ranges with a gap: Surfe takes one. */
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	/* A cap per company with another filter is ignored by Surfe: refused. */
	s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 1, 10);
	s.f[PF_TITLES] = (struct prov_filter_values){ titles, 1 };
	s.per_company = 2;
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s.f[PF_TITLES].n = 0;
	s.per_company = 6;
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	/* No filter; a page Surfe does not serve; titles on companies. */
	s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 0, 10);
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 1, 201);
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s = ah_search(PROV_SEARCH_COMPANIES, PF_TITLES, titles, 1, 10);
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	prov_request_release(&r);
}

TEST(people_page)
{
	static const char *const d[] = { "acme.com" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 11);
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	ah_search_parse(sops, &prov, &s, NOW, 200, PEOPLE, NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_HIT);
	CHECK_INT(call.credits, 1); /* two results: one credit */
	REQUIRE(pg.n == 2);
	CHECK_INT(pg.total, 31);
	CHECK_STR(pg.next_cursor, "eyJrIjoicGVvcGxlIn0");
	CHECK_STR(pg.rec[0].value[FLD_TITLE], "Head of Sales");
	CHECK_STR(pg.rec[0].value[FLD_SENIORITY], "Director");
	CHECK_STR(pg.rec[0].value[FLD_DEPARTMENT], "Sales");
	CHECK_STR(pg.rec[0].value[FLD_COUNTRY], "United Kingdom");
	CHECK_STR(pg.rec[0].value[FLD_LINKEDIN_URL], "https://www.linkedin.com/in/ada-adams");
	CHECK_STR(pg.rec[0].domain, "acme.com");
	/* A search answer carries no e-mail or phone. */
	CHECK(pg.rec[0].value[FLD_BUSINESS_EMAIL] == NULL && pg.rec[0].value[FLD_PHONE] == NULL);
	/* A country that is not a code stays as it came. */
	CHECK_STR(pg.rec[1].value[FLD_COUNTRY], "Atlantis");
	/* No match: 200 with an empty list, the end. */
	ah_search_parse(sops, &prov, &s, NOW, 200, "{\"people\":[],\"total\":0}", NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_MISS);
	CHECK_INT(call.credits, 0);
	CHECK(pg.next_cursor == NULL);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(company_page)
{
	static const char *const i[] = { "software" };
	struct prov_search s = ah_search(PROV_SEARCH_COMPANIES, PF_INDUSTRIES, i, 1, 10);
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	ah_search_parse(sops, &prov, &s, NOW, 200, COMPANIES, NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_HIT);
	REQUIRE(pg.n == 1);
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_NAME], "Acme Inc");
	/* A head count becomes its bucket; the headquarters a country name. */
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_SIZE], "201-500");
	CHECK_STR(pg.rec[0].value[FLD_COUNTRY], "United States");
	CHECK_STR(pg.rec[0].value[FLD_LOCATION], "Austin, Texas, United States");
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_REVENUE], "$25M-$50M");
	CHECK_STR(pg.rec[0].domain, "acme.com");
	CHECK(pg.next_cursor == NULL);
	/* The people member on a company search is not the documented shape. */
	ah_search_parse(sops, &prov, &s, NOW, 200, PEOPLE, NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_TRANSIENT);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(errors_are_the_calls)
{
	static const char *const d[] = { "acme.com" };
	static const char *const leaks[] = { "TOPSECRETWORDS", NULL };
	static const char ERR[] = "{\"code\":\"X\",\"message\":\"TOPSECRETWORDS\"}";
	static const struct ah_hdr retry[] = { { "retry-after", "3" }, { NULL, NULL } };
	static const struct {
		long status;
		enum prov_outcome o;
	} rows[] = {
		{ 400, PROV_REQUEST_REJECTED }, { 401, PROV_KEY_INVALID }, { 402, PROV_QUOTA_EXHAUSTED },
		{ 403, PROV_REQUEST_REJECTED }, { 429, PROV_RATE_LIMITED }, { 500, PROV_TRANSIENT },
		{ 404, PROV_TRANSIENT },
	};
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		ah_search_parse(sops, &prov, &s, NOW, rows[i].status, ERR, NULL, &call, &pg);
		ah_check_search_failure(&call, &pg, rows[i].o, leaks);
	}
	/* 429: Retry-After, else Surfe's one-second window. */
	ah_search_parse(sops, &prov, &s, NOW, 429, ERR, retry, &call, &pg);
	CHECK_INT(call.until_ms, NOW + 3000);
	ah_search_parse(sops, &prov, &s, NOW, 429, ERR, NULL, &call, &pg);
	CHECK_INT(call.until_ms, NOW + 1000);
	/* 402 that names the daily quota: back at the next UTC midnight. */
	ah_search_parse(sops, &prov, &s, NOW, 402,
			"{\"code\":\"PAYMENT_REQUIRED\",\"message\":\"Daily quota exceeded\"}", NULL,
			&call, &pg);
	CHECK_INT(call.outcome, PROV_QUOTA_EXHAUSTED);
	CHECK_INT(call.until_ms, prov_next_utc_midnight_ms(NOW));
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(wrong_shapes_are_transient)
{
	static const char *const d[] = { "acme.com" };
	static const char *const bodies[] = {
		"", "<html>", "[]", "{}", "{\"people\":{}}", "{\"people\":[\"x\"]}",
		"{\"people\":[],\"nextPageToken\":7}", "{\"people\":[],\"nextPageToken\":\"a\\u0001b\"}",
	};
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		ah_search_parse(sops, &prov, &s, NOW, 200, bodies[i], NULL, &call, &pg);
		if (call.outcome != PROV_TRANSIENT)
			HARNESS_FAIL("body %zu: %s", i, prov_outcome_names[call.outcome]);
		CHECK_INT(pg.n, 0);
		CHECK_INT(call.credits, 0);
	}
	prov_page_release(&pg);
	prov_result_release(&call);
}

int main(void)
{
	RUN(ops_table);
	RUN(build_people_search);
	RUN(build_people_per_company_and_open_top_size);
	RUN(build_refuses_what_surfe_cannot_say);
	RUN(people_page);
	RUN(company_page);
	RUN(errors_are_the_calls);
	RUN(wrong_shapes_are_transient);
	return harness_done();
}
