/*
 * test_generic_search.c - the search a generic provider's configuration
 * describes (lib/providers/generic_search.c; docs/providers.md, "Generic
 * search"): placeholders in the URL and the body, the answer read through
 * the configured paths and classified by the configured statuses.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/provider.h"

#include "adapter_harness.h"

#define NOW INT64_C(1795425816123)
#define KEY "gen-SECRET-KEY-0123"

static struct cfg_key key = { .id = "g-1", .account = "acct", .secret = KEY, .category = "" };

static int rej[] = { 400, 422 };
static struct cfg_generic_search people = {
	.method = "POST",
	.url = "{base_url}/people/search",
	.body = "{\"filters\":{\"domains\":{domains},\"titles\":{titles},\"countries\":{countries}},"
		"\"limit\":{limit},\"cursor\":{cursor}}",
	.max_limit = 50,
	.results = "results",
	.next_cursor = "paging.next",
	.total = "total",
	.credits_per_result = 2,
	.domain = "company.domain",
	.request_rejected = { rej, 2 },
};
static struct cfg_generic_search companies = {
	.method = "GET",
	.url = "{base_url}/companies/search?domain={domains}&industry={industries}&limit={limit}&cursor={cursor}",
	.body = "",
	.max_limit = 100,
	.results = "data.items",
	.next_cursor = "",
	.total = "",
	.credits_per_result = 1,
	.domain = "domain",
};
static struct cfg_generic lookup = { .auth_header = "X-Key", .auth_prefix = "Token " };
static struct cfg_provider prov = {
	.name = "gen", .kind = "generic", .base_url = "https://gen.example/api/",
	.enabled = true, .timeout_ms = 1500, .credits_per_hit = 1, .keys = &key, .nkeys = 1,
	.search = { &people, &companies },
};
static struct cfg_provider bare = {
	.name = "bare", .kind = "generic", .base_url = "https://gen.example",
	.enabled = true, .timeout_ms = 1500, .keys = &key, .nkeys = 1,
	.search = { &people, NULL },
};

static const struct prov_search_ops *sops = &prov_generic_search_ops;

static void setup(void)
{
	people.fields[FLD_FIRST_NAME] = "first_name";
	people.fields[FLD_TITLE] = "job.title";
	people.fields[FLD_COUNTRY] = "location.country";
	people.fields[FLD_BUSINESS_EMAIL] = "email";
	companies.fields[FLD_COMPANY_NAME] = "name";
	companies.fields[FLD_COMPANY_SIZE] = "size";
	prov.generic = &lookup;
}

TEST(ops_table)
{
	bool per_company = true;

	CHECK(prov_ops_find("generic")->search == sops);
	CHECK(sops->supports(&prov, PROV_SEARCH_PEOPLE) && sops->supports(&prov, PROV_SEARCH_COMPANIES));
	CHECK(!sops->supports(&bare, PROV_SEARCH_COMPANIES));
	/* Only the filters its templates name. */
	CHECK_INT(sops->filters(&prov, PROV_SEARCH_PEOPLE, &per_company),
		  PF_BIT(PF_DOMAINS) | PF_BIT(PF_TITLES) | PF_BIT(PF_COUNTRIES));
	CHECK(!per_company);
	CHECK_INT(sops->filters(&prov, PROV_SEARCH_COMPANIES, &per_company),
		  PF_BIT(PF_DOMAINS) | PF_BIT(PF_INDUSTRIES));
	CHECK_INT(sops->limit_max(&prov, PROV_SEARCH_PEOPLE), 50);
	CHECK_INT(sops->cost(&prov, PROV_SEARCH_PEOPLE, 7), 14);
}

TEST(build_post_body_with_json_values)
{
	static const char *const domains[] = { "acme.com", "b\"q.com" };
	static const char *const countries[] = { "gb", "united states" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, domains, 2, 20);
	struct prov_request r;

	s.f[PF_COUNTRIES] = (struct prov_filter_values){ countries, 2 };
	prov_request_init(&r);
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK_STR(r.method, "POST");
	CHECK_STR(buf_cstr(&r.url), "https://gen.example/api/people/search");
	/* Lists become arrays ([] when not given), countries ISO codes, the
	 * first page's cursor null; the key as the lookups send it. */
	ah_check_body(&r, "{\"filters\":{\"domains\":[\"acme.com\",\"b\\\"q.com\"],\"titles\":[],"
			  "\"countries\":[\"gb\",\"us\"]},\"limit\":20,\"cursor\":null}");
	ah_check_key_only_in(&r, KEY, "X-Key: Token " KEY);
	s.cursor = "next-2";
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	ah_check_body(&r, "{\"filters\":{\"domains\":[\"acme.com\",\"b\\\"q.com\"],\"titles\":[],"
			  "\"countries\":[\"gb\",\"us\"]},\"limit\":20,\"cursor\":\"next-2\"}");
	/* Without lookups described: Authorization: Bearer. */
	REQUIRE(sops->build(&bare, &key, &s, &r) == ENR_OK);
	ah_check_key_only_in(&r, KEY, "Authorization: Bearer " KEY);
	prov_request_release(&r);
}

TEST(build_get_url_with_encoded_lists)
{
	static const char *const domains[] = { "a.com", "b.com" };
	static const char *const ind[] = { "computer software" };
	struct prov_search s = ah_search(PROV_SEARCH_COMPANIES, PF_DOMAINS, domains, 2, 5);
	struct prov_request r;

	s.f[PF_INDUSTRIES] = (struct prov_filter_values){ ind, 1 };
	prov_request_init(&r);
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK_STR(r.method, "GET");
	CHECK_STR(buf_cstr(&r.url), "https://gen.example/api/companies/search?domain=a.com,b.com"
				    "&industry=computer%20software&limit=5&cursor=");
	CHECK_INT(r.body.len, 0);
	s.cursor = "x/y z";
	REQUIRE(sops->build(&prov, &key, &s, &r) == ENR_OK);
	CHECK(strstr(buf_cstr(&r.url), "&cursor=x%2Fy%20z") != NULL);
	prov_request_release(&r);
}

TEST(build_refuses_filters_the_templates_lack)
{
	static const char *const sizes[] = { "11-50" };
	static const char *const d[] = { "a.com" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_SIZES, sizes, 1, 10);
	struct prov_request r;

	prov_request_init(&r);
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 51); /* over max_limit */
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	s.limit = 5;
	s.per_company = 1;
	CHECK_INT(sops->build(&prov, &key, &s, &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	prov_request_release(&r);
}

TEST(pages)
{
	static const char *const d[] = { "acme.com" };
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	struct prov_search c = ah_search(PROV_SEARCH_COMPANIES, PF_DOMAINS, d, 1, 10);
	struct prov_result call;
	struct prov_page pg;

	prov_result_init(&call);
	prov_page_init(&pg);
	ah_search_parse(sops, &prov, &s, NOW, 200,
			"{\"results\":[{\"first_name\":\"Ada\",\"job\":{\"title\":\"CTO\"},"
			"\"company\":{\"domain\":\"Acme.com\"},\"location\":{\"country\":\"Germany\"},"
			"\"email\":\"ada@acme.com\"},{\"first_name\":\"Ben\"},{}],"
			"\"total\":3,\"paging\":{\"next\":\"p2\"}}",
			NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_HIT);
	/* credits_per_result for every record the answer carried. */
	CHECK_INT(call.credits, 6);
	/* The empty record is left out. */
	REQUIRE(pg.n == 2);
	CHECK_STR(pg.rec[0].value[FLD_TITLE], "CTO");
	CHECK_STR(pg.rec[0].domain, "acme.com");
	CHECK_STR(pg.next_cursor, "p2");
	CHECK_INT(pg.total, 3);
	/* The last page: null, "" or no cursor. */
	ah_search_parse(sops, &prov, &s, NOW, 200,
			"{\"results\":[{\"first_name\":\"Ada\"}],\"paging\":{\"next\":null}}", NULL,
			&call, &pg);
	CHECK(pg.next_cursor == NULL);
	ah_search_parse(sops, &prov, &s, NOW, 200, "{\"results\":[],\"paging\":{\"next\":\"\"}}",
			NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_MISS);
	CHECK(pg.next_cursor == NULL);
	/* A nested results path; no cursor path: one page. */
	ah_search_parse(sops, &prov, &c, NOW, 200,
			"{\"data\":{\"items\":[{\"name\":\"Acme\",\"size\":\"11-50\",\"domain\":\"acme.com\"}]},"
			"\"next\":\"ignored\"}",
			NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_HIT);
	REQUIRE(pg.n == 1);
	CHECK_STR(pg.rec[0].value[FLD_COMPANY_SIZE], "11-50");
	CHECK(pg.next_cursor == NULL);
	prov_page_release(&pg);
	prov_result_release(&call);
}

TEST(statuses_and_shapes)
{
	static const char *const d[] = { "acme.com" };
	static const char *const leaks[] = { "WORDSFROMUPSTREAM", NULL };
	static const char ERR[] = "{\"error\":\"WORDSFROMUPSTREAM\"}";
	static const struct ah_hdr retry[] = { { "retry-after", "9" }, { NULL, NULL } };
	static const struct {
		long status;
		enum prov_outcome o;
	} rows[] = {
		{ 400, PROV_REQUEST_REJECTED }, { 422, PROV_REQUEST_REJECTED }, /* configured */
		{ 401, PROV_KEY_INVALID },      { 403, PROV_KEY_INVALID },
		{ 402, PROV_QUOTA_EXHAUSTED },  { 429, PROV_RATE_LIMITED },
		{ 404, PROV_TRANSIENT },        /* no miss list: not "nothing found" */
		{ 500, PROV_TRANSIENT },        { 200, PROV_TRANSIENT }, /* 200 without the array */
	};
	struct prov_search s = ah_search(PROV_SEARCH_PEOPLE, PF_DOMAINS, d, 1, 10);
	struct prov_result call;
	struct prov_page pg;
	static int miss[] = { 404 };

	prov_result_init(&call);
	prov_page_init(&pg);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		ah_search_parse(sops, &prov, &s, NOW, rows[i].status, ERR, NULL, &call, &pg);
		ah_check_search_failure(&call, &pg, rows[i].o, leaks);
	}
	ah_search_parse(sops, &prov, &s, NOW, 429, ERR, retry, &call, &pg);
	CHECK_INT(call.until_ms, NOW + 9000);
	/* A configured miss is an empty page. */
	people.miss = (struct cfg_int_list){ miss, 1 };
	ah_search_parse(sops, &prov, &s, NOW, 404, ERR, NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_MISS);
	people.miss = (struct cfg_int_list){ NULL, 0 };
	/* Records that are not objects, too many records, a cursor that is not a string. */
	ah_search_parse(sops, &prov, &s, NOW, 200, "{\"results\":[1]}", NULL, &call, &pg);
	CHECK_INT(call.outcome, PROV_TRANSIENT);
	ah_search_parse(sops, &prov, &s, NOW, 200, "{\"results\":[],\"paging\":{\"next\":3}}", NULL,
			&call, &pg);
	CHECK_INT(call.outcome, PROV_TRANSIENT);
	{
		char big[4096];
		size_t n = (size_t)snprintf(big, sizeof big, "{\"results\":[");

		for (int i = 0; i < 51; i++)
			n += (size_t)snprintf(big + n, sizeof big - n, "%s{\"first_name\":\"A\"}", i ? "," : "");
		snprintf(big + n, sizeof big - n, "]}");
		ah_search_parse(sops, &prov, &s, NOW, 200, big, NULL, &call, &pg);
		CHECK_INT(call.outcome, PROV_TRANSIENT);
		CHECK_INT(pg.n, 0);
	}
	prov_page_release(&pg);
	prov_result_release(&call);
}

int main(void)
{
	setup();
	RUN(ops_table);
	RUN(build_post_body_with_json_values);
	RUN(build_get_url_with_encoded_lists);
	RUN(build_refuses_filters_the_templates_lack);
	RUN(pages);
	RUN(statuses_and_shapes);
	return harness_done();
}
