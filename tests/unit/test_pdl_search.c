/*
 * test_pdl_search.c - People Data Labs Person Search and Company Search
 * (lib/providers/pdl_search.c).
 *
 * Requests are checked field by field against docs/providers.md ("PDL
 * person search", "PDL company search"); answers are the shapes it
 * documents.  NOW is 2026-11-23T09:23:36.123Z.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/provider.h"

#include "adapter_harness.h"

#define NOW INT64_C(1795425816123)
#define KEY "pdl-SECRET-KEY-0123"

static struct cfg_key key = { .id = "pdl-1", .account = "acct", .secret = KEY, .category = "" };
static struct cfg_provider prov = {
	.name = "pdl", .kind = "pdl", .base_url = "https://api.peopledatalabs.com/",
	.enabled = true, .timeout_ms = 1500, .min_likelihood = 6, .credits_per_hit = 1,
	.keys = &key, .nkeys = 1,
};

static const struct prov_search_ops *ops = &prov_pdl_search_ops;

static const char PEOPLE_PAGE[] =
	"{\"status\":200,\"total\":42,\"scroll_token\":\"2$cf34cb10651637c8\",\"data\":["
	"{\"id\":\"a1\",\"first_name\":\"Ada\",\"last_name\":\"Adams\",\"job_title\":\"Head of Sales\","
	"\"job_title_levels\":[\"director\"],\"job_title_role\":\"sales\","
	"\"linkedin_url\":\"linkedin.com/in/ada-adams\",\"location_name\":\"Berlin, Germany\","
	"\"location_locality\":\"Berlin\",\"location_country\":\"Germany\","
	"\"work_email\":\"ada.adams@acme.com\",\"mobile_phone\":null,"
	"\"phone_numbers\":[\"+49 30 1234\"],\"job_company_name\":\"Acme Inc\","
	"\"job_company_website\":\"www.acme.com\",\"job_company_size\":\"51-200\"},"
	"{\"id\":\"b2\",\"first_name\":\"Ben\",\"last_name\":\"Baker\",\"job_title\":\"VP Sales\","
	"\"job_company_website\":\"acme.com\",\"job_title_levels\":[]}]}";

static const char COMPANY_PAGE[] =
	"{\"status\":200,\"total\":1,\"data\":[{\"id\":\"c1\",\"name\":\"Acme Inc\","
	"\"website\":\"acme.com\",\"industry\":\"Computer Software\",\"size\":\"201-500\","
	"\"employee_count\":250,\"inferred_revenue\":\"$25M-$50M\",\"tags\":[\"Go\",\"\",\"Postgres\"],"
	"\"location\":{\"name\":\"Austin, Texas, United States\",\"locality\":\"Austin\","
	"\"region\":\"Texas\",\"country\":\"United States\"}}]}";

static const char NOT_FOUND[] =
	"{\"status\":404,\"error\":{\"type\":\"not_found\","
	"\"message\":\"No records were found matching your request\"}}";
static const char RATE[] =
	"{\"status\":429,\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Slow down SECRETWORD\"}}";

TEST(ops_table)
{
	bool per_company = true;

	CHECK(prov_ops_find("pdl")->search == ops);
	CHECK(ops->supports(&prov, PROV_SEARCH_PEOPLE) && ops->supports(&prov, PROV_SEARCH_COMPANIES));
	CHECK_INT(ops->filters(&prov, PROV_SEARCH_PEOPLE, &per_company),
		  prov_search_filters(PROV_SEARCH_PEOPLE));
	CHECK(!per_company);
	CHECK_INT(ops->filters(&prov, PROV_SEARCH_COMPANIES, &per_company),
		  prov_search_filters(PROV_SEARCH_COMPANIES));
	CHECK_INT(ops->limit_max(&prov, PROV_SEARCH_PEOPLE), 100);
	/* One credit per record. */
	CHECK_INT(ops->cost(&prov, PROV_SEARCH_PEOPLE, 25), 25);
}

TEST(build_people_search)
{
	static const char *const domains[] = { "acme.com", "initech.com" };
	static const char *const titles[] = { "marketing", "sales" };
	static const char *const levels[] = { "director", "vp" };
	static const char *const countries[] = { "de", "us" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 2, 25);
	struct prov_request r;

	s.f[PF_TITLES] = (struct prov_filter_values){ titles, 2 };
	s.f[PF_SENIORITIES] = (struct prov_filter_values){ levels, 2 };
	s.f[PF_COUNTRIES] = (struct prov_filter_values){ countries, 2 };
	prov_request_init(&r);
	REQUIRE(ops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK_STR(r.method, "POST");
	CHECK_STR(buf_cstr(&r.url), "https://api.peopledatalabs.com/v5/person/search");
	CHECK_INT(r.nheaders, 4);
	CHECK_STR(r.headers[0], "Accept: application/json");
	CHECK_STR(r.headers[2], "Content-Type: application/json");
	ah_check_key_only_in(&r, KEY, "X-Api-Key: " KEY);
	/* One clause per filter, in the filters' order; countries by name as
	 * PDL stores them; several titles any of which may match. */
	ah_check_body(&r, "{\"query\":{\"bool\":{\"must\":["
			  "{\"terms\":{\"job_company_website\":[\"acme.com\",\"initech.com\"]}},"
			  "{\"bool\":{\"should\":[{\"match\":{\"job_title\":\"marketing\"}},"
			  "{\"match\":{\"job_title\":\"sales\"}}],\"minimum_should_match\":1}},"
			  "{\"terms\":{\"job_title_levels\":[\"director\",\"vp\"]}},"
			  "{\"terms\":{\"location_country\":[\"germany\",\"united states\"]}}]}},"
			  "\"size\":25,\"titlecase\":true}");
	/* The next page: the same query with the token. */
	s.cursor = "25$cf34cb10651637c8";
	s.f[PF_TITLES].n = 1;
	REQUIRE(ops->build(&prov, &key, &s, &r) == ENR_OK);
	ah_check_body(&r, "{\"query\":{\"bool\":{\"must\":["
			  "{\"terms\":{\"job_company_website\":[\"acme.com\",\"initech.com\"]}},"
			  "{\"match\":{\"job_title\":\"marketing\"}},"
			  "{\"terms\":{\"job_title_levels\":[\"director\",\"vp\"]}},"
			  "{\"terms\":{\"location_country\":[\"germany\",\"united states\"]}}]}},"
			  "\"size\":25,\"titlecase\":true,\"scroll_token\":\"25$cf34cb10651637c8\"}");
	prov_request_release(&r);
}

TEST(build_company_search)
{
	static const char *const sizes[] = { "11-50", "51-200" };
	static const char *const hq[] = { "gb" };
	struct prov_search s = ah_search(PROV_SEARCH_COMPANIES, PF_SIZES, sizes, 2, 1);
	struct prov_request r;

	s.f[PF_COUNTRIES] = (struct prov_filter_values){ hq, 1 };
	prov_request_init(&r);
	REQUIRE(ops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://api.peopledatalabs.com/v5/company/search");
	ah_check_body(&r, "{\"query\":{\"bool\":{\"must\":["
			  "{\"terms\":{\"location.country\":[\"united kingdom\"]}},"
			  "{\"terms\":{\"size\":[\"11-50\",\"51-200\"]}}]}},\"size\":1,\"titlecase\":true}");
	prov_request_release(&r);
}

TEST(build_refuses_what_pdl_cannot_run)
{
	static const char *const titles[] = { "sales" };
	static const char *const domains[] = { "acme.com" };
	struct prov_search s = ah_search(PROV_SEARCH_COMPANIES, PF_TITLES, titles, 1, 10);
	struct prov_request r;

	prov_request_init(&r);
	/* A company has no title. */
	CHECK_INT(ops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	/* No filter, a page PDL does not serve, a cap per company. */
	s = ah_search(PROV_SEARCH_PEOPLE, PF_TITLES, titles, 0, 10);
	CHECK_INT(ops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 1, 101);
	CHECK_INT(ops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s.limit = 0;
	CHECK_INT(ops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s.limit = 5;
	s.per_company = 2;
	CHECK_INT(ops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	prov_request_release(&r);
}

TEST(people_page)
{
	static const char *const d[] = { "acme.com" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 2);
	static const struct ah_hdr hdrs[] = { { "x-call-credits-spent", "2" },
					      { "x-ratelimit-remaining", "{\"minute\": 8}" },
					      { NULL, NULL } };
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	ah_search_parse(ops, &prov, &s, NOW, 200, PEOPLE_PAGE, hdrs, &call, &pg);
	CHECK_INT(call.outcome, PROV_HIT);
	CHECK_INT(call.credits, 2);
	CHECK_INT(call.requests_left, 8);
	REQUIRE(pg.n == 2);
	CHECK_INT(pg.total, 42);
	CHECK_STR(pg.next_cursor, "2$cf34cb10651637c8");
	CHECK_STR(pg.rec[0].value[FLD_FIRST_NAME], "Ada");
	CHECK_STR(pg.rec[0].value[FLD_TITLE], "Head of Sales");
	CHECK_STR(pg.rec[0].value[FLD_SENIORITY], "director");
	CHECK_STR(pg.rec[0].value[FLD_DEPARTMENT], "sales");
	CHECK_STR(pg.rec[0].value[FLD_PHONE], "+49 30 1234");
	CHECK_STR(pg.rec[0].value[FLD_BUSINESS_EMAIL], "ada.adams@acme.com");
	CHECK_STR(pg.rec[0].value[FLD_COUNTRY], "Germany");
	CHECK_STR(pg.rec[0].domain, "acme.com");
	CHECK_STR(pg.rec[1].value[FLD_LAST_NAME], "Baker");
	CHECK(pg.rec[1].value[FLD_SENIORITY] == NULL);
	/* Without x-call-credits-spent: one per record. */
	ah_search_parse(ops, &prov, &s, NOW, 200, PEOPLE_PAGE, NULL, &call, &pg);
	CHECK_INT(call.credits, 2);
	/* The last page carries no token. */
	ah_search_parse(ops, &prov, &s, NOW, 200,
			"{\"status\":200,\"total\":1,\"data\":[{\"first_name\":\"Ada\"}]}", NULL, &call,
			&pg);
	CHECK_INT(call.outcome, PROV_HIT);
	CHECK(pg.next_cursor == NULL);
	CHECK_INT(pg.n, 1);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(company_page)
{
	static const char *const i[] = { "computer software" };
	struct prov_search s = ah_search(PROV_SEARCH_COMPANIES, PF_INDUSTRIES, i, 1, 10);
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	ah_search_parse(ops, &prov, &s, NOW, 200, COMPANY_PAGE, NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_HIT);
	REQUIRE(pg.n == 1);
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_NAME], "Acme Inc");
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_SIZE], "201-500");
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_REVENUE], "$25M-$50M");
	CHECK_STR(pg.rec[0].value[FLD_TECHNOLOGIES], "Go, Postgres");
	CHECK_STR(pg.rec[0].value[FLD_CITY], "Austin");
	CHECK_STR(pg.rec[0].value[FLD_COUNTRY], "United States");
	CHECK_STR(pg.rec[0].domain, "acme.com");
	CHECK(pg.next_cursor == NULL);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(not_found_is_an_empty_page_for_free)
{
	static const char *const d[] = { "missing.com" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	static const struct ah_hdr hdrs[] = { { "x-call-credits-spent", "0" }, { NULL, NULL } };
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	ah_search_parse(ops, &prov, &s, NOW, 404, NOT_FOUND, hdrs, &call, &pg);
	CHECK_INT(call.outcome, PROV_MISS);
	CHECK_INT(call.credits, 0);
	CHECK_INT(pg.n, 0);
	CHECK(pg.next_cursor == NULL);
	/* A 404 that is not PDL's (a proxy) says nothing about the search. */
	ah_search_parse(ops, &prov, &s, NOW, 404, "<html>not here</html>", NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_TRANSIENT);
	/* A 200 with no records is an empty page too. */
	ah_search_parse(ops, &prov, &s, NOW, 200, "{\"status\":200,\"data\":[],\"total\":0}", NULL,
			&call, &pg);
	CHECK_INT(call.outcome, PROV_MISS);
	CHECK_INT(call.credits, 0);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(errors_are_the_calls)
{
	static const char *const d[] = { "acme.com" };
	static const char *const leaks[] = { "SECRETWORD", "Slow down", NULL };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	static const struct ah_hdr reset[] = { { "x-ratelimit-reset", "1795425876" }, { NULL, NULL } };
	static const struct ah_hdr retry[] = { { "retry-after", "7" }, { NULL, NULL } };
	static const struct {
		long status;
		enum prov_outcome o;
	} rows[] = {
		{ 400, PROV_REQUEST_REJECTED }, { 401, PROV_KEY_INVALID }, { 403, PROV_KEY_INVALID },
		{ 402, PROV_QUOTA_EXHAUSTED },  { 429, PROV_RATE_LIMITED }, { 500, PROV_TRANSIENT },
		{ 503, PROV_TRANSIENT },        { 302, PROV_TRANSIENT },
	};
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		ah_search_parse(ops, &prov, &s, NOW, rows[i].status, RATE, NULL, &call, &pg);
		ah_check_search_failure(&call, &pg, rows[i].o, leaks);
	}
	ah_search_parse(ops, &prov, &s, NOW, 429, RATE, reset, &call, &pg);
	CHECK_INT(call.until_ms, INT64_C(1795425876000));
	ah_search_parse(ops, &prov, &s, NOW, 429, RATE, retry, &call, &pg);
	CHECK_INT(call.until_ms, NOW + 7000);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(wrong_shapes_are_transient)
{
	static const char *const d[] = { "acme.com" };
	static const char *const bodies[] = {
		"", "not json", "[]", "{\"status\":200}", "{\"status\":500,\"data\":[]}",
		"{\"status\":200,\"data\":{}}", "{\"status\":200,\"data\":[1]}",
		"{\"status\":200,\"data\":[],\"scroll_token\":5}",
		"{\"status\":200,\"data\":[],\"scroll_token\":\"bad\\ntoken\"}",
		"{\"status\":200,\"data\":[{\"first_name\":\"A\"}],\"data\":[]}",
	};
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	struct prov_result call;
	struct prov_page pg;
	struct prov_response r = { 200, true, PEOPLE_PAGE, sizeof PEOPLE_PAGE - 1, NULL, 0 };

	prov_result_init(&call);
	prov_page_init(&pg);
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		ah_search_parse(ops, &prov, &s, NOW, 200, bodies[i], NULL, &call, &pg);
		if (call.outcome != PROV_TRANSIENT)
			HARNESS_FAIL("body %zu: %s", i, prov_outcome_names[call.outcome]);
		CHECK_INT(pg.n, 0);
		CHECK_INT(call.credits, 0);
	}
	/* A page that arrived after the timeout is no page. */
	ops->parse(&prov, &s, &r, NOW, &call, &pg);
	CHECK_INT(call.outcome, PROV_TRANSIENT);
	CHECK_INT(pg.n, 0);
	r = (struct prov_response){ 0, false, "", 0, NULL, 0 };
	ops->parse(&prov, &s, &r, NOW, &call, &pg);
	CHECK_INT(call.outcome, PROV_TRANSIENT);
	prov_page_release(&pg);
	prov_result_release(&call);
}

int main(void)
{
	RUN(ops_table);
	RUN(build_people_search);
	RUN(build_company_search);
	RUN(build_refuses_what_pdl_cannot_run);
	RUN(people_page);
	RUN(company_page);
	RUN(not_found_is_an_empty_page_for_free);
	RUN(errors_are_the_calls);
	RUN(wrong_shapes_are_transient);
	return harness_done();
}
