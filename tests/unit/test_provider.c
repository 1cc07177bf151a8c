/*
 * test_provider.c - the helpers shared by provider adapters (lib/provider.c)
 * and the JSON path lookups (lib/json_path.c).
 *
 * Time is passed in: NOW is 2026-11-23T09:23:36.123Z.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json_path.h"
#include "lib/limits.h"
#include "lib/provider.h"

#include "harness.h"

#define NOW INT64_C(1795425816123)
#define D1994 INT64_C(784111777000) /* Sun, 06 Nov 1994 08:49:37 GMT */

static struct prov_header one_header[1];

/* A response whose only header is name: value. */
static struct prov_response with_header(const char *name, const char *value)
{
	struct prov_response r = { 200, false, "", 0, one_header, 1 };

	one_header[0].name = (char *)name;
	one_header[0].value = (char *)value;
	return r;
}

TEST(outcome_names)
{
	CHECK_STR(prov_outcome_names[PROV_HIT], "hit");
	CHECK_STR(prov_outcome_names[PROV_MISS], "miss");
	CHECK_STR(prov_outcome_names[PROV_RATE_LIMITED], "rate_limited");
	CHECK_STR(prov_outcome_names[PROV_QUOTA_EXHAUSTED], "quota_exhausted");
	CHECK_STR(prov_outcome_names[PROV_KEY_INVALID], "key_invalid");
	CHECK_STR(prov_outcome_names[PROV_REQUEST_REJECTED], "request_rejected");
	CHECK_STR(prov_outcome_names[PROV_PENDING], "pending");
	CHECK_STR(prov_outcome_names[PROV_TRANSIENT], "transient");
}

TEST(query_encoding)
{
	struct prov_request r;

	prov_request_init(&r);
	CHECK_STR(r.method, "GET");
	REQUIRE(buf_puts(&r.url, "https://api.example.com/v5/x") == ENR_OK);
	CHECK_INT(prov_request_query(&r, "email", "a+b@x.com"), ENR_OK);
	CHECK_INT(prov_request_query(&r, "name", "Jos\xc3\xa9 Mar\xc3\xad" "a O'Neil"), ENR_OK);
	CHECK_INT(prov_request_query(&r, "q", "a&b=c/d?e#f%g~h-i_j.k"), ENR_OK);
	CHECK_STR(buf_cstr(&r.url),
		  "https://api.example.com/v5/x?email=a%2Bb%40x.com"
		  "&name=Jos%C3%A9%20Mar%C3%ADa%20O%27Neil"
		  "&q=a%26b%3Dc%2Fd%3Fe%23f%25g~h-i_j.k");
	CHECK_INT(prov_request_query(&r, "", "x"), ENR_E_INVALID);
	CHECK_INT(prov_request_query(&r, "x", NULL), ENR_E_INVALID);
	prov_request_release(&r);

	/* a URL that already ends in '?' or carries a query */
	prov_request_init(&r);
	REQUIRE(buf_puts(&r.url, "https://h/p?") == ENR_OK);
	CHECK_INT(prov_request_query(&r, "a", "1"), ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://h/p?a=1");
	prov_request_release(&r);
	prov_request_init(&r);
	REQUIRE(buf_puts(&r.url, "https://h/p?fixed=1") == ENR_OK);
	CHECK_INT(prov_request_query(&r, "b", ""), ENR_OK);
	CHECK_STR(buf_cstr(&r.url), "https://h/p?fixed=1&b=");
	prov_request_release(&r);
}

TEST(query_over_the_url_cap_leaves_the_url_whole)
{
	struct prov_request r;
	char *big = malloc(LIM_PROV_URL_MAX);

	REQUIRE(big != NULL);
	memset(big, 'x', LIM_PROV_URL_MAX - 1);
	big[LIM_PROV_URL_MAX - 1] = '\0';
	prov_request_init(&r);
	REQUIRE(buf_puts(&r.url, "https://h/p") == ENR_OK);
	CHECK_INT(prov_request_query(&r, "a", "1"), ENR_OK);
	CHECK_INT(prov_request_query(&r, "big", big), ENR_E_TOO_LARGE);
	CHECK_STR(buf_cstr(&r.url), "https://h/p?a=1");
	prov_request_release(&r);
	free(big);
}

TEST(request_headers)
{
	struct prov_request r;
	char longv[600];

	prov_request_init(&r);
	CHECK_INT(prov_request_header(&r, "X-Api-Key", "secret"), ENR_OK);
	CHECK_STR(r.headers[0], "X-Api-Key: secret");
	CHECK_INT(prov_request_header(&r, "X-Evil", "a\r\nHost: evil"), ENR_E_INVALID);
	CHECK_INT(prov_request_header(&r, "Bad\nName", "v"), ENR_E_INVALID);
	CHECK_INT(prov_request_header(&r, "A:B", "v"), ENR_E_INVALID);
	CHECK_INT(prov_request_header(&r, "", "v"), ENR_E_INVALID);
	CHECK_INT(r.nheaders, 1);
	memset(longv, 'v', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	CHECK_INT(prov_request_header(&r, "Long", longv), ENR_OK);
	CHECK_INT(strlen(r.headers[1]), PROV_HEADER_LINE - 1);
	CHECK(strncmp(r.headers[1], "Long: vvv", 9) == 0);
	while (r.nheaders < PROV_MAX_HEADERS)
		REQUIRE(prov_request_header(&r, "X", "y") == ENR_OK);
	CHECK_INT(prov_request_header(&r, "One-Too-Many", "z"), ENR_E_RANGE);
	prov_request_release(&r);
	CHECK_INT(r.nheaders, 0);
	CHECK(r.headers[0] == NULL); /* cleared, then freed */
	CHECK_STR(r.method, "GET");
}

TEST(header_lookup_ignores_case)
{
	struct prov_header h[2] = { { "retry-after", "5" }, { "x-minute-requests-left", "7" } };
	struct prov_response r = { 429, false, "", 0, h, 2 };

	CHECK_STR(prov_header(&r, "Retry-After"), "5");
	CHECK_STR(prov_header(&r, "X-MINUTE-REQUESTS-LEFT"), "7");
	CHECK(prov_header(&r, "x-hourly-requests-left") == NULL);
	CHECK(prov_header(NULL, "x") == NULL);
}

TEST(result_set_trims_caps_and_keeps_the_first)
{
	struct prov_result r;
	char *big = malloc(LIM_PROV_VALUE_MAX + 2);

	REQUIRE(big != NULL);
	prov_result_init(&r);
	CHECK_INT(r.outcome, PROV_TRANSIENT);
	CHECK_INT(r.requests_left, -1);
	CHECK_INT(r.credits_left, -1);
	CHECK_INT(r.found, 0);

	CHECK_INT(prov_result_set(&r, FLD_TITLE, "  CTO \t\n", 8, 0.8), ENR_OK);
	CHECK_STR(r.value[FLD_TITLE], "CTO");
	CHECK_DBL(r.confidence[FLD_TITLE], 0.8, 1e-9);
	CHECK(r.found == FLD_BIT(FLD_TITLE));
	/* first value wins */
	CHECK_INT(prov_result_set(&r, FLD_TITLE, "CEO", 3, 0.9), ENR_OK);
	CHECK_STR(r.value[FLD_TITLE], "CTO");
	CHECK_DBL(r.confidence[FLD_TITLE], 0.8, 1e-9);
	/* only n bytes are taken */
	CHECK_INT(prov_result_set(&r, FLD_CITY, "ParisXYZ", 5, 0.5), ENR_OK);
	CHECK_STR(r.value[FLD_CITY], "Paris");
	/* empty, blank, NULL, bad UTF-8, embedded NUL: ignored */
	CHECK_INT(prov_result_set(&r, FLD_STATE, "", 0, 0.5), ENR_OK);
	CHECK_INT(prov_result_set(&r, FLD_STATE, "   ", 3, 0.5), ENR_OK);
	CHECK_INT(prov_result_set(&r, FLD_STATE, NULL, 3, 0.5), ENR_OK);
	CHECK_INT(prov_result_set(&r, FLD_STATE, "a\xff", 2, 0.5), ENR_OK);
	CHECK_INT(prov_result_set(&r, FLD_STATE, "a\0b", 3, 0.5), ENR_OK);
	CHECK(r.value[FLD_STATE] == NULL);
	CHECK((r.found & FLD_BIT(FLD_STATE)) == 0);
	/* after an ignored value a good one still lands */
	CHECK_INT(prov_result_set(&r, FLD_STATE, "CA", 2, 0.5), ENR_OK);
	CHECK_STR(r.value[FLD_STATE], "CA");
	/* the cap: exactly LIM_PROV_VALUE_MAX is kept, one more is not */
	memset(big, 'a', LIM_PROV_VALUE_MAX + 1);
	big[LIM_PROV_VALUE_MAX + 1] = '\0';
	CHECK_INT(prov_result_set(&r, FLD_TECHNOLOGIES, big, LIM_PROV_VALUE_MAX + 1, 0.5), ENR_OK);
	CHECK(r.value[FLD_TECHNOLOGIES] == NULL);
	CHECK_INT(prov_result_set(&r, FLD_TECHNOLOGIES, big, LIM_PROV_VALUE_MAX, 0.5), ENR_OK);
	REQUIRE(r.value[FLD_TECHNOLOGIES] != NULL);
	CHECK_INT(strlen(r.value[FLD_TECHNOLOGIES]), LIM_PROV_VALUE_MAX);
	/* blanks around a capped value do not count */
	big[0] = ' ';
	big[LIM_PROV_VALUE_MAX + 1] = ' ';
	CHECK_INT(prov_result_set(&r, FLD_DEPARTMENT, big, LIM_PROV_VALUE_MAX + 2, 0.5), ENR_OK);
	CHECK(r.value[FLD_DEPARTMENT] != NULL);
	/* confidence is clamped to 0..1 */
	CHECK_INT(prov_result_set(&r, FLD_ZIP_CODE, "75001", 5, 7.0), ENR_OK);
	CHECK_DBL(r.confidence[FLD_ZIP_CODE], 1.0, 1e-9);
	CHECK_INT(prov_result_set(&r, FLD_COUNTRY, "France", 6, -1.0), ENR_OK);
	CHECK_DBL(r.confidence[FLD_COUNTRY], 0.0, 1e-9);
	/* a field out of range is ignored */
	CHECK_INT(prov_result_set(&r, (enum fld_id)FLD__MAX, "x", 1, 0.5), ENR_OK);

	prov_result_reason(&r, "pdl: %s (%d)", "rate limited", 429);
	CHECK_STR(r.reason, "pdl: rate limited (429)");
	r.outcome = PROV_HIT;
	r.credits = 3;
	prov_result_reset(&r);
	CHECK(r.value[FLD_TITLE] == NULL);
	CHECK_INT(r.found, 0);
	CHECK_INT(r.credits, 0);
	CHECK_INT(r.outcome, PROV_TRANSIENT);
	CHECK_STR(r.reason, "");
	CHECK_INT(prov_result_set(&r, FLD_TITLE, "CEO", 3, 0.9), ENR_OK);
	CHECK_STR(r.value[FLD_TITLE], "CEO");
	prov_result_release(&r);
	CHECK(r.value[FLD_TITLE] == NULL);
	free(big);
}

TEST(retry_after_delta_seconds)
{
	struct prov_response r;

	r = with_header("retry-after", "120");
	CHECK_INT(prov_retry_after_ms(&r, NOW), NOW + 120000);
	r = with_header("retry-after", "0");
	CHECK_INT(prov_retry_after_ms(&r, NOW), NOW);
	r = with_header("Retry-After", " 7 ");
	CHECK_INT(prov_retry_after_ms(&r, NOW), NOW + 7000);
	r = with_header("retry-after", "-1");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "1.5");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "+5");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "5s");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "99999999999999999999999");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("x-other", "5");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
}

TEST(retry_after_http_date)
{
	struct prov_response r;

	/* IMF-fixdate, in the future of now */
	r = with_header("retry-after", "Mon, 23 Nov 2026 09:30:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), INT64_C(1795426200) * 1000);
	r = with_header("retry-after", "Fri, 01 Jan 2027 00:00:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), INT64_C(1798761600) * 1000);
	/* RFC 9110's examples of the three forms, read an hour before them */
	r = with_header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT");
	CHECK_INT(prov_retry_after_ms(&r, D1994 - 3600000), D1994);
	r = with_header("retry-after", "Sunday, 06-Nov-94 08:49:37 GMT");
	CHECK_INT(prov_retry_after_ms(&r, D1994 - 3600000), D1994);
	r = with_header("retry-after", "Sun Nov  6 08:49:37 1994");
	CHECK_INT(prov_retry_after_ms(&r, D1994 - 3600000), D1994);
	/* a date in the past means now */
	r = with_header("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), NOW);
	/* rfc850 two-digit years: "94" read in 2026 is 1994 (2094 is more
	 * than 50 years ahead), so it is in the past; "00" read at the end
	 * of 1999 is 2000 */
	r = with_header("retry-after", "Sunday, 06-Nov-94 08:49:37 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), NOW);
	r = with_header("retry-after", "Saturday, 01-Jan-00 00:00:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, INT64_C(946684800000) - 60000), INT64_C(946684800000));
	/* more than a year ahead is not believed */
	r = with_header("retry-after", "Sat, 06 Nov 2049 08:49:37 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	/* malformed dates */
	r = with_header("retry-after", "Mon, 31 Feb 2026 09:30:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "Mon, 23 Nov 2026 09:30:00 UTC");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "Mon, 23 Nov 2026 24:30:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "Mon, 23 Nov 2026 09:30:00 GMT trailing");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "Mon 23 Nov 2026 09:30:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "2026-11-23T09:30:00Z");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
	r = with_header("retry-after", "Mon, 23 Nov 3026 09:30:00 GMT");
	CHECK_INT(prov_retry_after_ms(&r, NOW), 0);
}

TEST(next_minute_hour_midnight)
{
	/* 09:23:36.123 */
	CHECK_INT(prov_next_minute_ms(NOW), INT64_C(1795425840) * 1000);
	CHECK_INT(prov_next_hour_ms(NOW), INT64_C(1795428000) * 1000);
	CHECK_INT(prov_next_utc_midnight_ms(NOW), INT64_C(1795478400) * 1000);
	/* exactly on a boundary: the next one */
	CHECK_INT(prov_next_minute_ms(INT64_C(1795425840000)), INT64_C(1795425900000));
	CHECK_INT(prov_next_hour_ms(INT64_C(1795428000000)), INT64_C(1795431600000));
	CHECK_INT(prov_next_utc_midnight_ms(INT64_C(1795478400000)), INT64_C(1795564800000));
	/* one millisecond before */
	CHECK_INT(prov_next_minute_ms(INT64_C(1795425839999)), INT64_C(1795425840000));
	CHECK_INT(prov_next_hour_ms(INT64_C(1795427999999)), INT64_C(1795428000000));
	CHECK_INT(prov_next_utc_midnight_ms(INT64_C(1795478399999)), INT64_C(1795478400000));
	/* year end: 2026-12-31T23:59:59.500Z */
	CHECK_INT(prov_next_utc_midnight_ms(INT64_C(1798761599500)), INT64_C(1798761600000));
	CHECK_INT(prov_next_minute_ms(0), 60000);
}

TEST(json_paths)
{
	json_error_t e;
	json_t *doc = json_loads("{\"data\":{\"job\":{\"title\":\"CTO\"},\"n\":42,\"r\":1.5,"
				 "\"ok\":true,\"no\":false,\"nil\":null,"
				 "\"emails\":[{\"address\":\"a@b.c\"},{\"address\":\"d@e.f\"}]},"
				 "\"a.b\":1,\"x\":[[1,2],[3]]}",
				 0, &e);
	char scratch[32];
	size_t n = 0;
	const char *t;

	REQUIRE(doc != NULL);
	CHECK_STR(json_string_value(jp_get(doc, "data.job.title")), "CTO");
	CHECK_STR(json_string_value(jp_get(doc, "data.emails[1].address")), "d@e.f");
	CHECK_INT(json_integer_value(jp_get(doc, "x[0][1]")), 2);
	CHECK_INT(json_integer_value(jp_get(doc, "x[1][0]")), 3);
	CHECK(jp_get(doc, "x[1][1]") == NULL);
	CHECK(jp_get(doc, "data.emails[2].address") == NULL);
	CHECK(jp_get(doc, "data.job[0]") == NULL);     /* index on an object */
	CHECK(jp_get(doc, "x.y") == NULL);             /* name on an array */
	CHECK(jp_get(doc, "data.missing.deeper") == NULL);
	CHECK(jp_get(doc, "a.b") == NULL);             /* dots always separate */
	CHECK(jp_get(NULL, "data") == NULL);

	CHECK(jp_valid("data.job.title"));
	CHECK(jp_valid("[0].a"));
	CHECK(jp_valid("a[0][12].b"));
	CHECK(!jp_valid(""));
	CHECK(!jp_valid(".a"));
	CHECK(!jp_valid("a."));
	CHECK(!jp_valid("a..b"));
	CHECK(!jp_valid("a[]"));
	CHECK(!jp_valid("a[-1]"));
	CHECK(!jp_valid("a[1"));
	CHECK(!jp_valid("a]"));
	CHECK(!jp_valid("a[0]b"));
	CHECK(!jp_valid("a[1000001]"));
	CHECK(!jp_valid(NULL));

	t = jp_text(jp_get(doc, "data.job.title"), scratch, sizeof scratch, &n);
	CHECK_STR(t, "CTO");
	CHECK_INT(n, 3);
	t = jp_text(jp_get(doc, "data.n"), scratch, sizeof scratch, &n);
	CHECK_STR(t, "42");
	t = jp_text(jp_get(doc, "data.r"), scratch, sizeof scratch, &n);
	CHECK_STR(t, "1.5");
	t = jp_text(jp_get(doc, "data.ok"), scratch, sizeof scratch, &n);
	CHECK_STR(t, "true");
	t = jp_text(jp_get(doc, "data.no"), scratch, sizeof scratch, &n);
	CHECK_STR(t, "false");
	CHECK(jp_text(jp_get(doc, "data.nil"), scratch, sizeof scratch, &n) == NULL);
	CHECK(jp_text(jp_get(doc, "data.job"), scratch, sizeof scratch, &n) == NULL);
	CHECK(jp_text(jp_get(doc, "x"), scratch, sizeof scratch, &n) == NULL);
	CHECK(jp_text(jp_get(doc, "data.n"), scratch, 2, &n) == NULL);
	json_decref(doc);
}

TEST(json_load_is_strict)
{
	json_t *v;

	v = jp_load("{\"a\":1}", 7, 100);
	CHECK(json_is_object(v));
	json_decref(v);
	CHECK(jp_load("{\"a\":1,\"a\":2}", 13, 100) == NULL);  /* duplicate member */
	CHECK(jp_load("{\"a\":\"\\u0000\"}", 14, 100) == NULL); /* NUL in a string */
	CHECK(jp_load("{\"a\":1} x", 9, 100) == NULL);          /* trailing bytes */
	CHECK(jp_load("{\"a\":1}", 7, 6) == NULL);              /* over the cap */
	CHECK(jp_load("{\"a\":", 5, 100) == NULL);              /* truncated */
	CHECK(jp_load("", 0, 100) == NULL);
	CHECK(jp_load(NULL, 3, 100) == NULL);
}

/* n arrays nested in each other ("[[...]]"), malloc'd. */
static char *nested(size_t n, char open, char close)
{
	char *s = malloc(2 * n + 1);

	if (s == NULL)
		return NULL;
	memset(s, open, n);
	memset(s + n, close, n);
	s[2 * n] = '\0';
	return s;
}

static bool depth_ok(const char *s, unsigned max)
{
	return jp_depth_ok(s, strlen(s), max);
}

TEST(json_nesting_is_bounded)
{
	char *ok = nested(LIM_JSON_DEPTH_MAX, '[', ']');
	char *deep = nested(LIM_JSON_DEPTH_MAX + 1, '{', '}');
	char *huge = nested(100000, '[', ']');
	json_t *v;

	REQUIRE(ok && deep && huge);
	CHECK(jp_depth_ok(ok, strlen(ok), LIM_JSON_DEPTH_MAX));
	CHECK(!jp_depth_ok(deep, strlen(deep), LIM_JSON_DEPTH_MAX));
	CHECK(!jp_depth_ok(huge, strlen(huge), LIM_JSON_DEPTH_MAX));
	/* Brackets inside strings, escaped quotes included, do not count. */
	CHECK(depth_ok("[\"[[[[\", \"\\\"[[[\"]", 2));
	CHECK(!depth_ok("[[\"\\\\\"[]]", 2));   /* "\\" ends the string */
	CHECK(depth_ok("{\"a\":{\"b\":[1]}}", 3));
	CHECK(!depth_ok("{\"a\":{\"b\":[1]}}", 2));
	CHECK(jp_depth_ok("", 0, 1) && jp_depth_ok("1", 1, 0));
	/* Closing brackets in excess do not buy depth back. */
	CHECK(!depth_ok("]]]][[[", 2));
	v = jp_load(ok, strlen(ok), LIM_PROV_BODY_MAX);
	CHECK(json_is_array(v));
	json_decref(v);
	CHECK(jp_load(huge, strlen(huge), LIM_PROV_BODY_MAX) == NULL);
	free(ok);
	free(deep);
	free(huge);
}

/* ---- the status table -------------------------------------------------- */

static int then_calls;
static enum prov_outcome then_saw;

static void then_note(const struct prov_answer *a, struct prov_result *out)
{
	then_calls++;
	then_saw = out->outcome;
	CHECK_STR(a->name, "tbl");
	CHECK_INT(a->now_ms, NOW);
	out->until_ms = a->now_ms + 5;
}

static void meters_note(const struct prov_response *resp, struct prov_result *out)
{
	(void)resp;
	out->requests_left = 42;
}

static const struct prov_status_rule rows[] = {
	{ 404, 404, PROV_MISS, "gone", NULL },
	{ 400, 499, PROV_REQUEST_REJECTED, "refused", NULL },   /* after 404: 404 wins */
	{ 429, 429, PROV_RATE_LIMITED, "never reached", NULL }, /* 400..499 came first */
	{ 200, 299, PROV_HIT, NULL, then_note },
};
static const struct prov_status_table tbl = { "tbl", rows, 4, meters_note };
static const struct cfg_provider tbl_p = { .name = "tbl" };

static void by_status(long status, bool timed_out, struct prov_result *res)
{
	struct prov_response r = { status, timed_out, "", 0, NULL, 0 };

	prov_parse_by_status(&tbl, &tbl_p, NULL, &r, NOW, res);
}

TEST(status_table_first_row_wins)
{
	struct prov_result res;

	prov_result_init(&res);
	by_status(404, false, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	CHECK_STR(res.reason, "tbl: gone (404)");
	CHECK_INT(res.requests_left, 42);
	by_status(429, false, &res);
	CHECK_INT(res.outcome, PROV_REQUEST_REJECTED);
	CHECK_STR(res.reason, "tbl: refused (429)");
	then_calls = 0;
	by_status(204, false, &res);
	CHECK_INT(then_calls, 1);
	CHECK_INT(then_saw, PROV_HIT); /* the row's outcome is set before the handler */
	CHECK_INT(res.outcome, PROV_HIT);
	CHECK_INT(res.until_ms, NOW + 5);
	/* a status no row covers */
	by_status(503, false, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_STR(res.reason, "tbl: server error (503)");
	CHECK_INT(res.until_ms, 0); /* reset between answers */
	by_status(302, false, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_STR(res.reason, "tbl: unexpected status (302)");
	prov_result_release(&res);
}

TEST(status_table_no_answer)
{
	struct prov_result res;

	prov_result_init(&res);
	by_status(200, true, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_STR(res.reason, "tbl: timed out");
	CHECK_INT(res.requests_left, 42); /* the meters of a late answer are kept */
	by_status(0, false, &res);
	CHECK_STR(res.reason, "tbl: no response");
	prov_parse_by_status(&tbl, &tbl_p, NULL, NULL, NOW, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_STR(res.reason, "tbl: no response");
	CHECK_INT(res.requests_left, -1);
	prov_result_release(&res);
}

TEST(not_found_404_needs_the_providers_json)
{
	struct prov_response r = { 404, false, "{\"error\":\"x\"}", 13, NULL, 0 };
	struct prov_answer a = { "tbl", &tbl_p, NULL, &r, NOW };
	struct prov_result res;

	prov_result_init(&res);
	prov_not_found_404(&a, &res);
	CHECK_INT(res.outcome, PROV_MISS);
	r.body = "<html>404</html>";
	r.body_len = strlen(r.body);
	prov_not_found_404(&a, &res);
	CHECK_INT(res.outcome, PROV_TRANSIENT);
	CHECK_STR(res.reason, "tbl: 404 without a JSON body");
	prov_result_release(&res);
}

int main(void)
{
	RUN(outcome_names);
	RUN(query_encoding);
	RUN(query_over_the_url_cap_leaves_the_url_whole);
	RUN(request_headers);
	RUN(header_lookup_ignores_case);
	RUN(result_set_trims_caps_and_keeps_the_first);
	RUN(retry_after_delta_seconds);
	RUN(retry_after_http_date);
	RUN(next_minute_hour_midnight);
	RUN(json_paths);
	RUN(json_load_is_strict);
	RUN(json_nesting_is_bounded);
	RUN(status_table_first_row_wins);
	RUN(status_table_no_answer);
	RUN(not_found_404_needs_the_providers_json);
	return harness_done();
}
