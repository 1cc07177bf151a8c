/*
 * test_search.c - search requests, filters, cursors and cached pages
 * (lib/search.c).
 *
 * Normalisation makes equal searches equal; every refusal names its
 * field; a cursor survives a round trip and nothing altered in it is
 * believed.  Time is passed in.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/search.h"
#include "lib/util.h"

#include "harness.h"

#define NOW_S INT64_C(1795425816)

static struct cfg cfg;
static unsigned char key[SRCH_KEY_LEN];

static void setup(void)
{
	memset(&cfg, 0, sizeof cfg);
	cfg.search.limit_max = 100;
	cfg.search.limit_default = 25;
	cfg.search.cursor_ttl_s = 3600;
	cfg.search.cursor_secret = "test-cursor-secret";
	srch_cursor_key(&cfg, key);
}

static enum enr_err parse(const char *body, enum prov_search_kind k, struct srch_request *out,
			  json_t **details)
{
	srch_request_release(out);
	json_decref(*details);
	*details = NULL;
	return srch_parse(body, strlen(body), k, &cfg, key, NOW_S, out, details);
}

/* The details hold a problem of field whose text holds word. */
static bool has_problem(const json_t *details, const char *field, const char *word)
{
	size_t i;
	json_t *d;

	json_array_foreach(details, i, d) {
		const char *f = json_string_value(json_object_get(d, "field"));
		const char *p = json_string_value(json_object_get(d, "problem"));

		if (f && p && strcmp(f, field) == 0 && (word == NULL || strstr(p, word)))
			return true;
	}
	return false;
}

TEST(values_are_normalised)
{
	static const struct {
		enum prov_filter f;
		const char *in, *out;
	} ok[] = {
		{ PF_DOMAINS, "  https://www.Acme.COM/about ", "acme.com" },
		{ PF_DOMAINS, "sub.Example.co.uk", "sub.example.co.uk" },
		{ PF_NAMES, "  Acme   Corp ", "acme corp" },
		{ PF_TITLES, "Head of\tSales", "head of sales" },
		{ PF_SENIORITIES, "VP", "vp" },
		{ PF_SENIORITIES, "C-Level", "cxo" },
		{ PF_SENIORITIES, "Vice President", "vp" },
		{ PF_DEPARTMENTS, "Human Resources", "human_resources" },
		{ PF_DEPARTMENTS, "customer-service", "customer_service" },
		{ PF_SIZES, "51-200", "51-200" },
		{ PF_SIZES, "10001+", "10001+" },
		{ PF_COUNTRIES, "US", "us" },
		{ PF_COUNTRIES, "united kingdom", "gb" },
		{ PF_COUNTRIES, "UK", "gb" },
		{ PF_COUNTRIES, "Germany", "de" },
		{ PF_COMPANY_COUNTRIES, "Colombia", "co" },
		{ PF_INDUSTRIES, "Computer  Software", "computer software" },
	};
	static const struct {
		enum prov_filter f;
		const char *in, *why;
	} bad[] = {
		{ PF_DOMAINS, "not a domain", "domain" },
		{ PF_DOMAINS, "   ", "empty" },
		{ PF_SENIORITIES, "boss", "seniority" },
		{ PF_DEPARTMENTS, "r&d", "department" },
		{ PF_SIZES, "12-40", "size" },
		{ PF_COUNTRIES, "atlantis", "country" },
		{ PF_COUNTRIES, "zz", "country" },
		{ PF_TITLES, "a\x01b", "control" },
		{ PF_TITLES, "\xff\xfe", "UTF-8" },
	};
	char out[512], big[400];
	const char *why;

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		why = NULL;
		if (!srch_norm_value(ok[i].f, ok[i].in, strlen(ok[i].in), out, sizeof out, &why))
			HARNESS_FAIL("%s \"%s\" refused: %s", prov_filter_names[ok[i].f], ok[i].in, why);
		else
			CHECK_STR(out, ok[i].out);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		if (srch_norm_value(bad[i].f, bad[i].in, strlen(bad[i].in), out, sizeof out, &why))
			HARNESS_FAIL("%s \"%s\" accepted as \"%s\"", prov_filter_names[bad[i].f],
				     bad[i].in, out);
		else if (why == NULL || strstr(why, bad[i].why) == NULL)
			HARNESS_FAIL("%s \"%s\": why \"%s\", want \"%s\"", prov_filter_names[bad[i].f],
				     bad[i].in, why ? why : "(none)", bad[i].why);
	}
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK(!srch_norm_value(PF_TITLES, big, strlen(big), out, sizeof out, &why));
	/* Exactly the cap is fine. */
	big[LIM_SEARCH_VALUE_MAX] = '\0';
	CHECK(srch_norm_value(PF_TITLES, big, strlen(big), out, sizeof out, &why));
}

TEST(equal_searches_are_equal)
{
	struct srch_request a, b;
	json_t *d = NULL;
	unsigned char ka[SRCH_KEY_LEN], kb[SRCH_KEY_LEN];

	srch_request_init(&a);
	srch_request_init(&b);
	REQUIRE(parse("{\"titles\": [\"Sales\", \"marketing\", \"SALES\"],"
		      " \"domains\": [\"www.B.com\", \"a.com\", \"b.com\"], \"limit\": 10}",
		      PROV_SEARCH_PEOPLE, &a, &d) == ENR_OK);
	REQUIRE(parse("{\"domains\": [\"a.com\", \"B.COM\"], \"limit\": 10,"
		      " \"titles\": [\" marketing \", \"sales\"], \"countries\": null, \"names\": []}",
		      PROV_SEARCH_PEOPLE, &b, &d) == ENR_OK);
	CHECK_STR(a.canon, "{\"domains\":[\"a.com\",\"b.com\"],\"titles\":[\"marketing\",\"sales\"]}");
	CHECK_STR(a.canon, b.canon);
	CHECK_INT(a.f.n[PF_DOMAINS], 2);
	CHECK_STR(a.f.v[PF_DOMAINS][0], "a.com");
	CHECK_INT(a.limit, 10);
	CHECK(!a.has_cursor);
	srch_page_key(&a, "pdl", 10, NULL, ka);
	srch_page_key(&b, "pdl", 10, NULL, kb);
	CHECK(memcmp(ka, kb, sizeof ka) == 0);
	/* Another provider, page size or page is another entry. */
	srch_page_key(&b, "surfe", 10, NULL, kb);
	CHECK(memcmp(ka, kb, sizeof ka) != 0);
	srch_page_key(&b, "pdl", 11, NULL, kb);
	CHECK(memcmp(ka, kb, sizeof ka) != 0);
	srch_page_key(&b, "pdl", 10, "10$abc", kb);
	CHECK(memcmp(ka, kb, sizeof ka) != 0);
	/* No limit: the default. */
	REQUIRE(parse("{\"industries\": [\"retail\"]}", PROV_SEARCH_COMPANIES, &b, &d) == ENR_OK);
	CHECK_INT(b.limit, 25);
	srch_request_release(&a);
	srch_request_release(&b);
	json_decref(d);
}

TEST(refusals_name_their_field)
{
	static const struct {
		const char *body;
		enum prov_search_kind kind;
		const char *field, *word;
	} cases[] = {
		{ "{}", PROV_SEARCH_PEOPLE, "body", "at least one filter" },
		{ "{\"titles\": [], \"limit\": 5}", PROV_SEARCH_PEOPLE, "body", "at least one filter" },
		{ "{\"titles\": [\"x\"], \"colour\": \"red\"}", PROV_SEARCH_PEOPLE, "colour", "unknown" },
		{ "{\"titles\": [\"x\"]}", PROV_SEARCH_COMPANIES, "titles", "unknown" },
		{ "{\"titles\": \"sales\"}", PROV_SEARCH_PEOPLE, "titles", "array" },
		{ "{\"titles\": [7]}", PROV_SEARCH_PEOPLE, "titles[0]", "string" },
		{ "{\"seniorities\": [\"vp\", \"boss\"]}", PROV_SEARCH_PEOPLE, "seniorities[1]", "seniority" },
		{ "{\"titles\": [\"x\"], \"limit\": 0}", PROV_SEARCH_PEOPLE, "limit", "1..100" },
		{ "{\"titles\": [\"x\"], \"limit\": 101}", PROV_SEARCH_PEOPLE, "limit", "1..100" },
		{ "{\"titles\": [\"x\"], \"limit\": \"5\"}", PROV_SEARCH_PEOPLE, "limit", "integer" },
		{ "{\"titles\": [\"x\"], \"limit\": 2.5}", PROV_SEARCH_PEOPLE, "limit", "integer" },
		{ "{\"cursor\": \"abc\"}", PROV_SEARCH_PEOPLE, "cursor", "not a cursor" },
		{ "{\"cursor\": 5}", PROV_SEARCH_PEOPLE, "cursor", "string" },
		{ "{\"titles\": [\"x\"], \"people_per_company\": 3}", PROV_SEARCH_PEOPLE,
		  "people_per_company", "domains or names" },
		{ "{\"domains\": [\"a.com\"], \"people_per_company\": 9}", PROV_SEARCH_PEOPLE,
		  "people_per_company", "1..5" },
		{ "{\"domains\": [\"a.com\"], \"people_per_company\": 2}", PROV_SEARCH_COMPANIES,
		  "people_per_company", "unknown" },
		{ "[1]", PROV_SEARCH_PEOPLE, "body", "object" },
		{ "{\"titles\": [\"x\"], \"titles\": [\"y\"]}", PROV_SEARCH_PEOPLE, "body", "duplicate" },
		{ "", PROV_SEARCH_PEOPLE, "body", "required" },
		{ "{\"titles\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
		  "\"m\",\"n\",\"o\",\"p\",\"q\",\"r\",\"s\",\"t\",\"u\",\"v\",\"w\",\"x\",\"y\",\"z\"]}",
		  PROV_SEARCH_PEOPLE, "titles", "more than 25" },
	};
	struct srch_request r;
	json_t *d = NULL;

	srch_request_init(&r);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum enr_err rc = parse(cases[i].body, cases[i].kind, &r, &d);

		if (rc != ENR_E_INVALID)
			HARNESS_FAIL("case %zu: %s, want invalid", i, enr_code(rc));
		else if (!has_problem(d, cases[i].field, cases[i].word)) {
			char *t = json_dumps(d, 0);

			HARNESS_FAIL("case %zu: details %s lack %s: %s", i, t ? t : "?", cases[i].field,
				     cases[i].word);
			free(t);
		}
	}
	/* Every problem at once, not just the first. */
	CHECK_INT(parse("{\"titles\": 1, \"limit\": -1, \"x\": 2}", PROV_SEARCH_PEOPLE, &r, &d),
		  ENR_E_INVALID);
	CHECK(has_problem(d, "titles", NULL) && has_problem(d, "limit", NULL) &&
	      has_problem(d, "x", NULL));
	/* Too deep to look at. */
	{
		char deep[200];
		size_t n = 0;

		n += (size_t)snprintf(deep, sizeof deep, "{\"titles\":");
		for (int i = 0; i < 40; i++)
			deep[n++] = '[';
		deep[n] = '\0';
		CHECK_INT(parse(deep, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
		CHECK(has_problem(d, "body", "nested"));
	}
	srch_request_release(&r);
	json_decref(d);
}

/* A cursor of page 2 of a people search. */
static char *make_cursor(const char *body, const char *provider, const char *token, int limit,
			 int64_t offset, int64_t at_s)
{
	struct srch_request r;
	json_t *d = NULL;
	char *c = NULL;

	srch_request_init(&r);
	if (parse(body, PROV_SEARCH_PEOPLE, &r, &d) == ENR_OK &&
	    srch_cursor_make(key, &r, provider, token, limit, offset, at_s, &c) != ENR_OK)
		c = NULL;
	srch_request_release(&r);
	json_decref(d);
	return c;
}

TEST(cursor_round_trip)
{
	char *c = make_cursor("{\"domains\": [\"acme.com\"], \"titles\": [\"sales\"]}", "pdl",
			      "10$cf34cb10651637c8", 10, 10, NOW_S - 5);
	struct srch_request r;
	json_t *d = NULL;
	char body[LIM_SEARCH_CURSOR_MAX + 64];
	enum prov_search_kind k;

	REQUIRE(c != NULL);
	CHECK(srch_cursor_kind(c, strlen(c), &k));
	CHECK_INT(k, PROV_SEARCH_PEOPLE);
	srch_request_init(&r);
	snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
	REQUIRE(parse(body, PROV_SEARCH_PEOPLE, &r, &d) == ENR_OK);
	CHECK(r.has_cursor);
	CHECK_STR(r.provider, "pdl");
	CHECK_STR(r.prov_cursor, "10$cf34cb10651637c8");
	CHECK_INT(r.offset, 10);
	CHECK_INT(r.limit, 10); /* the cursor's page size */
	CHECK_STR(r.canon, "{\"domains\":[\"acme.com\"],\"titles\":[\"sales\"]}");
	/* The client may change the page size, and resend the same filters. */
	snprintf(body, sizeof body,
		 "{\"cursor\": \"%s\", \"limit\": 3, \"titles\": [\"Sales\"], \"domains\": [\"ACME.com\"]}",
		 c);
	REQUIRE(parse(body, PROV_SEARCH_PEOPLE, &r, &d) == ENR_OK);
	CHECK_INT(r.limit, 3);
	/* But not other filters. */
	snprintf(body, sizeof body, "{\"cursor\": \"%s\", \"titles\": [\"marketing\"]}", c);
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
	CHECK(has_problem(d, "cursor", "other filters"));
	/* Nor on the other endpoint. */
	snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
	CHECK_INT(parse(body, PROV_SEARCH_COMPANIES, &r, &d), ENR_E_INVALID);
	CHECK(has_problem(d, "cursor", "people search"));
	free(c);
	/* A first-page cursor names no provider token. */
	c = make_cursor("{\"domains\": [\"acme.com\"], \"people_per_company\": 2}", "surfe", NULL, 25,
			0, NOW_S);
	REQUIRE(c != NULL);
	snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
	REQUIRE(parse(body, PROV_SEARCH_PEOPLE, &r, &d) == ENR_OK);
	CHECK(r.prov_cursor == NULL);
	CHECK_INT(r.per_company, 2);
	CHECK_STR(r.provider, "surfe");
	free(c);
	srch_request_release(&r);
	json_decref(d);
}

TEST(altered_cursors_are_refused)
{
	char *c = make_cursor("{\"domains\": [\"acme.com\"]}", "pdl", "10$cf34cb10651637c8", 10, 10,
			      NOW_S);
	struct srch_request r;
	json_t *d = NULL;
	char body[LIM_SEARCH_CURSOR_MAX + 64], *dot;
	unsigned char other[SRCH_KEY_LEN];
	size_t n;

	REQUIRE(c != NULL);
	srch_request_init(&r);
	n = strlen(c);
	dot = strchr(c, '.');
	REQUIRE(dot != NULL);
	/* One character changed anywhere: in the payload, in the MAC. */
	for (size_t at = 0; at < n; at += 7) {
		char save = c[at];

		if (c + at == dot)
			continue;
		c[at] = save == 'A' ? 'B' : 'A';
		snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
		if (parse(body, PROV_SEARCH_PEOPLE, &r, &d) != ENR_E_INVALID ||
		    !has_problem(d, "cursor", NULL))
			HARNESS_FAIL("cursor altered at %zu was accepted", at);
		c[at] = save;
	}
	/* Cut short, or its MAC dropped. */
	snprintf(body, sizeof body, "{\"cursor\": \"%.*s\"}", (int)(n - 3), c);
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
	snprintf(body, sizeof body, "{\"cursor\": \"%.*s\"}", (int)(dot - c), c);
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
	/* Another key (another deployment, a changed secret). */
	memcpy(other, key, sizeof other);
	cfg.search.cursor_secret = "another secret";
	srch_cursor_key(&cfg, key);
	CHECK(memcmp(other, key, sizeof key) != 0);
	snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
	CHECK(has_problem(d, "cursor", "altered"));
	memcpy(key, other, sizeof key);
	/* The original still works. */
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_OK);
	free(c);
	/* Expired, and from too far in the future. */
	c = make_cursor("{\"domains\": [\"acme.com\"]}", "pdl", NULL, 10, 0, NOW_S - 3601);
	REQUIRE(c != NULL);
	snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
	CHECK(has_problem(d, "cursor", "expired"));
	free(c);
	c = make_cursor("{\"domains\": [\"acme.com\"]}", "pdl", NULL, 10, 0, NOW_S + 3600);
	REQUIRE(c != NULL);
	snprintf(body, sizeof body, "{\"cursor\": \"%s\"}", c);
	CHECK_INT(parse(body, PROV_SEARCH_PEOPLE, &r, &d), ENR_E_INVALID);
	free(c);
	srch_request_release(&r);
	json_decref(d);
	cfg.search.cursor_secret = "test-cursor-secret";
}

TEST(cursor_key_follows_the_configuration)
{
	struct cfg_key key_a = { .id = "a-1", .account = "acct", .secret = "SECRET-A", .category = "" };
	struct cfg_key key_b = { .id = "b-1", .account = "acct", .secret = "SECRET-B", .category = "" };
	struct cfg_key k1[] = { key_b, key_a };
	struct cfg_key k2[] = { key_a, key_b };
	struct cfg_provider p1 = { .name = "p", .keys = k1, .nkeys = 2 };
	struct cfg_provider p2 = { .name = "p", .keys = k2, .nkeys = 2 };
	struct cfg a, b;
	unsigned char ka[SRCH_KEY_LEN], kb[SRCH_KEY_LEN];

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.search.cursor_secret = b.search.cursor_secret = "";
	a.providers = &p1;
	b.providers = &p2;
	a.nproviders = b.nproviders = 1;
	/* Derived from the keys, whatever their order in the file. */
	srch_cursor_key(&a, ka);
	srch_cursor_key(&b, kb);
	CHECK(memcmp(ka, kb, sizeof ka) == 0);
	k2[1].secret = "SECRET-C";
	srch_cursor_key(&b, kb);
	CHECK(memcmp(ka, kb, sizeof ka) != 0);
	/* A configured secret decides alone. */
	a.search.cursor_secret = b.search.cursor_secret = "s";
	srch_cursor_key(&a, ka);
	srch_cursor_key(&b, kb);
	CHECK(memcmp(ka, kb, sizeof ka) == 0);
}

TEST(pages_round_trip_through_the_cache_format)
{
	struct prov_page pg, back;
	struct prov_record *r;
	char *s;
	int credits = 0;
	json_t *j, *ids;

	prov_page_init(&pg);
	prov_page_init(&back);
	r = prov_page_add(&pg);
	REQUIRE(r != NULL);
	CHECK_INT(prov_record_set(r, FLD_FIRST_NAME, " Ada ", 5), ENR_OK);
	CHECK_INT(prov_record_set(r, FLD_BUSINESS_EMAIL, "ada@acme.com", 12), ENR_OK);
	CHECK_INT(prov_record_set(r, FLD_TITLE, "Héad of Sales", strlen("Héad of Sales")), ENR_OK);
	util_strlcpy(r->domain, "acme.com", sizeof r->domain);
	REQUIRE(prov_page_add(&pg) != NULL);
	CHECK_INT(prov_record_set(&pg.rec[1], FLD_COMPANY_NAME, "Initech", 7), ENR_OK);
	pg.total = 40;
	pg.next_cursor = strdup("2$abc");
	s = srch_page_dump(&pg, 2);
	REQUIRE(s != NULL);
	CHECK_INT(srch_page_load(s, &back, &credits), ENR_OK);
	CHECK_INT(back.n, 2);
	CHECK_STR(back.rec[0].value[FLD_FIRST_NAME], "Ada");
	CHECK_STR(back.rec[0].value[FLD_TITLE], "Héad of Sales");
	CHECK_STR(back.rec[0].domain, "acme.com");
	CHECK_STR(back.rec[1].value[FLD_COMPANY_NAME], "Initech");
	CHECK_STR(back.next_cursor, "2$abc");
	CHECK_INT(back.total, 40);
	CHECK_INT(credits, 2);
	free(s);
	CHECK_INT(srch_page_load("{\"r\": 5}", &back, &credits), ENR_E_INVALID);
	CHECK_INT(srch_page_load("not json", &back, &credits), ENR_E_INVALID);
	CHECK_INT(back.n, 0);
	/* A result and the identifiers a batch row takes from it. */
	j = srch_record_json(&pg.rec[0], "pdl");
	REQUIRE(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "_source")), "pdl");
	CHECK_STR(json_string_value(json_object_get(j, "domain")), "acme.com");
	ids = srch_row_identifiers(j);
	REQUIRE(ids != NULL);
	CHECK_STR(json_string_value(json_object_get(ids, "email")), "ada@acme.com");
	CHECK_STR(json_string_value(json_object_get(ids, "first_name")), "Ada");
	CHECK_STR(json_string_value(json_object_get(ids, "domain")), "acme.com");
	CHECK(json_object_get(ids, "title") == NULL && json_object_get(ids, "_source") == NULL);
	{
		json_t *three = json_integer(3);

		CHECK(srch_row_identifiers(three) == NULL);
		json_decref(three);
	}
	json_decref(ids);
	json_decref(j);
	prov_page_release(&pg);
	prov_page_release(&back);
}

TEST(base64url)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\xfd" };
	static const char *const coded[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy", "__79" };
	char out[32];
	unsigned char back[32];
	size_t n;

	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
		CHECK_INT(util_b64url_len(strlen(plain[i])), strlen(coded[i]));
		util_b64url_encode(plain[i], strlen(plain[i]), out);
		CHECK_STR(out, coded[i]);
		CHECK(util_b64url_decode(coded[i], strlen(coded[i]), back, sizeof back, &n));
		CHECK_INT(n, strlen(plain[i]));
		CHECK(memcmp(back, plain[i], n) == 0);
	}
	CHECK(!util_b64url_decode("Zg=", 3, back, sizeof back, &n));  /* padding */
	CHECK(!util_b64url_decode("Z", 1, back, sizeof back, &n));    /* no encoding */
	CHECK(!util_b64url_decode("Zh", 2, back, sizeof back, &n));   /* bits left over */
	CHECK(!util_b64url_decode("Zm+v", 4, back, sizeof back, &n)); /* base64, not url */
	CHECK(!util_b64url_decode("Zm9vYmFy", 8, back, 5, &n));       /* does not fit */
}

int main(void)
{
	setup();
	RUN(values_are_normalised);
	RUN(equal_searches_are_equal);
	RUN(refusals_name_their_field);
	RUN(cursor_round_trip);
	RUN(altered_cursors_are_refused);
	RUN(cursor_key_follows_the_configuration);
	RUN(pages_round_trip_through_the_cache_format);
	RUN(base64url);
	return harness_done();
}
