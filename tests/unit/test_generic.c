/*
 * test_generic.c - the configured HTTP JSON provider (lib/providers/generic.c).
 *
 * The provider is the one docs/providers.md and the simulator describe:
 * GET {base}/generic/person?email=... with a bearer key, answering
 * {"data":{"first_name":...,"last_name":...,"job":{"title":...},"phone":...}}
 * or 404.  Time is passed in: NOW is 2026-11-23T09:23:36.123Z.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/provider.h"

#include "adapter_harness.h"

extern const struct prov_ops prov_generic_ops;

#define NOW INT64_C(1795425816123)
#define KEY "gen-SECRET-KEY-89"

static struct cfg_key key = { .id = "gen-1", .account = "acct", .secret = KEY, .category = "" };

static struct cfg_generic get_tmpl = {
	.method = "GET",
	.url = "{base_url}/generic/person?email={email}",
	.body = "",
	.auth_header = "Authorization",
	.auth_prefix = "Bearer ",
	.fields = {
		[FLD_FIRST_NAME] = "data.first_name",
		[FLD_LAST_NAME] = "data.last_name",
		[FLD_TITLE] = "data.job.title",
		[FLD_PHONE] = "data.phone",
		[FLD_COMPANY_SIZE] = "data.company.employees",
		[FLD_TECHNOLOGIES] = "data.tech[1].name",
	},
};

static struct cfg_provider prov = {
	.name = "acme", .kind = "generic", .base_url = "http://127.0.0.1:8080",
	.enabled = true, .timeout_ms = 1500, .credits_per_hit = 2, .keys = &key, .nkeys = 1,
	.generic = &get_tmpl,
};

static const char HIT[] =
	"{\"data\":{\"first_name\":\"John\",\"last_name\":\"Doe\",\"job\":{\"title\":\"CTO\"},"
	"\"phone\":\"+1 555 0401\",\"company\":{\"employees\":250},"
	"\"tech\":[{\"name\":\"Go\"},{\"name\":\"Rust\"}]}}";

static const struct ah adapter = { &prov_generic_ops, &prov, NOW };
static const struct prov_query john = { .id[ID_EMAIL] = "john.doe@acme.com", .want = FLD_ALL };

#define run_p(p, status, body, hdrs, out) ah_parse(&adapter, p, &john, status, body, hdrs, out)
#define run(status, body, hdrs, out) run_p(NULL, status, body, hdrs, out)

TEST(ops_table)
{
	ah_check_ops(&prov_generic_ops, "generic", false);
}

TEST(build_get)
{
	struct prov_query q = { { NULL }, FLD_BIT(FLD_TITLE) };
	struct prov_request r;

	q.id[ID_EMAIL] = "jo+hn doe@exämple.com";
	prov_request_init(&r);
	REQUIRE(prov_generic_ops.build(&prov, &key, &q, &r) == ENR_OK);
	ah_check_get(&r, "http://127.0.0.1:8080/generic/person?email=jo%2Bhn%20doe%40ex%C3%A4mple.com",
		     KEY, "Authorization: Bearer " KEY);
	prov_request_release(&r);
}

TEST(build_post_with_a_json_body)
{
	struct cfg_generic g = get_tmpl;
	struct cfg_provider p = prov;
	struct prov_query q = { { NULL }, FLD_ALL };
	struct prov_request r;

	g.method = "POST";
	g.url = "{base_url}/v1/match?d={domain}&{unknown}";
	g.body = "{\"person\":{\"name\":\"{first_name} {last_name}\",\"li\":\"{linkedin_url}\"},"
		 "\"src\":\"{base_url}\",\"n\":1}";
	g.auth_header = "X-Token";
	g.auth_prefix = "";
	p.generic = &g;
	p.base_url = "https://api.example.com/";
	q.id[ID_FIRST_NAME] = "Jo\"hn\\";
	q.id[ID_LAST_NAME] = "D\xc3\xb6\te";
	q.id[ID_LINKEDIN_URL] = "https://www.linkedin.com/in/jd";
	q.id[ID_DOMAIN] = "acme.com";
	prov_request_init(&r);
	REQUIRE(prov_generic_ops.build(&p, &key, &q, &r) == ENR_OK);
	CHECK_STR(r.method, "POST");
	CHECK_STR(buf_cstr(&r.url), "https://api.example.com/v1/match?d=acme.com&{unknown}");
	CHECK_STR(buf_cstr(&r.body),
		  "{\"person\":{\"name\":\"Jo\\\"hn\\\\ D\xc3\xb6\\u0009e\","
		  "\"li\":\"https://www.linkedin.com/in/jd\"},"
		  "\"src\":\"https://api.example.com\",\"n\":1}");
	CHECK_INT(r.nheaders, 4);
	CHECK_STR(r.headers[2], "Content-Type: application/json");
	CHECK_STR(r.headers[3], "X-Token: " KEY);
	ah_check_key_only_in(&r, KEY, "X-Token: " KEY);
	prov_request_release(&r);
}

TEST(build_refuses_missing_identifiers)
{
	struct cfg_generic g = get_tmpl;
	struct cfg_provider p = prov;
	struct prov_query q = { { NULL }, FLD_ALL };
	struct prov_request r;

	prov_request_init(&r);
	q.id[ID_DOMAIN] = "acme.com";
	CHECK_INT(prov_generic_ops.build(&prov, &key, &q, &r), ENR_E_INVALID); /* no email */
	q.id[ID_EMAIL] = "";
	CHECK_INT(prov_generic_ops.build(&prov, &key, &q, &r), ENR_E_INVALID);
	CHECK_INT(r.url.len, 0);
	CHECK_INT(r.nheaders, 0);
	/* a template that names no identifier cannot look anyone up */
	g.url = "{base_url}/everyone";
	p.generic = &g;
	CHECK_INT(prov_generic_ops.build(&p, &key, &q, &r), ENR_E_INVALID);
	/* the body template counts too */
	g.method = "POST";
	g.body = "{\"phone\":\"{phone}\"}";
	CHECK_INT(prov_generic_ops.build(&p, &key, &q, &r), ENR_E_INVALID);
	q.id[ID_PHONE] = "+14155550100";
	CHECK_INT(prov_generic_ops.build(&p, &key, &q, &r), ENR_OK);
	CHECK_STR(buf_cstr(&r.body), "{\"phone\":\"+14155550100\"}");
	prov_request_release(&r);
}

TEST(hit_and_miss)
{
	struct prov_result res;

	prov_result_init(&res);
	run(200, HIT, NULL, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.credits, 2);
	CHECK_INT(res.requests_left, -1);
	AH_VALUES(&res, { FLD_FIRST_NAME, "John" }, { FLD_LAST_NAME, "Doe" },
		  { FLD_TITLE, "CTO" }, { FLD_PHONE, "+1 555 0401" }, { FLD_COMPANY_SIZE, "250" },
		  { FLD_TECHNOLOGIES, "Rust" });
	CHECK_INT(fld_count(res.found), 6);
	CHECK_DBL(res.confidence[FLD_TITLE], 0.8, 1e-9);
	/* another 2xx with JSON but nothing mapped: a miss */
	run(201, "{\"data\":{\"job\":{}},\"other\":1}", NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.credits, 0);
	run(200, "[]", NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	/* the default miss status */
	run(404, "{\"error\":\"not found\"}", NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_STR(res.reason, "generic: miss (404)");
	prov_result_release(&res);
}

TEST(default_statuses)
{
	static const struct ah_hdr retry[] = { { "Retry-After", "45" }, { NULL, NULL } };
	static const struct ah_hdr date[] = { { "retry-after", "Mon, 23 Nov 2026 10:00:00 GMT" },
					      { NULL, NULL } };
	static const struct ah_case cases[] = {
		{ 401, "{\"error\":\"unauthorized\"}", PROV_KEY_INVALID, NULL, "unauthorized", NULL },
		{ 403, "", PROV_KEY_INVALID, NULL, NULL, NULL },
		{ 400, "", PROV_REQUEST_REJECTED, NULL, NULL, NULL },
		{ 500, "oops", PROV_TRANSIENT, NULL, NULL, NULL },
		{ 302, "", PROV_TRANSIENT, "302", NULL, NULL },
	};
	static const struct ah_until quota[] = { { "", date, INT64_C(1795428000000) } };
	static const struct ah_until rate[] = {
		{ "{\"error\":\"rate limited\"}", retry, NOW + 45000 },
		{ "", NULL, 0 },
	};

	ah_check_cases(&adapter, &john, cases, sizeof cases / sizeof cases[0]);
	ah_check_until(&adapter, &john, 402, PROV_QUOTA_EXHAUSTED, quota, 1);
	ah_check_until(&adapter, &john, 429, PROV_RATE_LIMITED, rate, 2);
}

TEST(configured_statuses_win)
{
	int miss[] = { 200, 410 }, key_inv[] = { 401 }, rate[] = { 420, 503 };
	struct cfg_generic g = get_tmpl;
	struct cfg_provider p = prov;
	struct prov_result res;
	const struct ah_hdr retry[] = { { "retry-after", "3" }, { NULL, NULL } };

	g.miss = (struct cfg_int_list){ miss, 2 };
	g.key_invalid = (struct cfg_int_list){ key_inv, 1 };
	g.rate_limited = (struct cfg_int_list){ rate, 2 };
	p.generic = &g;
	prov_result_init(&res);
	run_p(&p, 200, HIT, NULL, &res); /* this provider says 200 means "no record" */
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_INT(res.found, 0);
	run_p(&p, 410, "", NULL, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	run_p(&p, 404, "", NULL, &res); /* miss was configured without 404 */
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	run_p(&p, 403, "", NULL, &res); /* key_invalid was configured without 403 */
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	run_p(&p, 420, "", retry, &res);
	CHECK_INT(res.outcome, PROV_RATE_LIMITED);
	CHECK_INT(res.until_ms, NOW + 3000);
	run_p(&p, 503, "", NULL, &res);
	CHECK_INT(res.outcome, PROV_RATE_LIMITED);
	run_p(&p, 429, "", NULL, &res);  /* rate_limited was configured without 429 */
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	run_p(&p, 402, "", NULL, &res);  /* quota left out: the default */
	CHECK_INT(res.outcome, PROV_QUOTA_EXHAUSTED);
	run_p(&p, 201, HIT, NULL, &res);
	CHECK_INT(res.outcome, PROV_HIT);
	prov_result_release(&res);
}

TEST(garbage_and_no_answer_are_transient)
{
	static const char *const bodies[] = {
		"<html><body>John</body></html>",
		"{\"data\":{\"first_name\":\"John\"",
		"{\"data\":1,\"data\":2}",
		"\"John\"",
		"",
	};
	static const char *const leaks[] = { "John", NULL };

	ah_check_transient(&adapter, &john, 200, bodies, sizeof bodies / sizeof bodies[0], leaks);
	ah_check_no_answer(&adapter, &john, 200, HIT);
}

int main(void)
{
	RUN(ops_table);
	RUN(build_get);
	RUN(build_post_with_a_json_body);
	RUN(build_refuses_missing_identifiers);
	RUN(hit_and_miss);
	RUN(default_statuses);
	RUN(configured_statuses_win);
	RUN(garbage_and_no_answer_are_transient);
	return harness_done();
}
