/*
 * test_query.c - query strings against parameter tables (lib/query.c).
 */
#include <stdlib.h>
#include <string.h>

#include "lib/limits.h"
#include "lib/query.h"

#include "harness.h"

static const struct qs_range days = { 1, 366 };
static const char *const formats[] = { "csv", "ndjson", NULL };

static const struct qs_param table[] = {
	{ "days", 8, qs_valid_int, &days },
	{ "format", 16, qs_valid_choice, formats },
	{ "account", LIM_NAME_MAX, qs_valid_name, NULL },
	{ "enrich", 512, qs_valid_fields, NULL },
	{ "note", 10, NULL, NULL },
};

#define NT (sizeof table / sizeof table[0])

/* The problems of a refused query as "field: problem; ..." (static). */
static const char *problems(const char *query)
{
	static char out[2048];
	struct qs q;
	json_t *d = NULL;
	size_t i, o = 0;
	json_t *e;

	out[0] = '\0';
	qs_init(&q);
	if (qs_parse(query, table, NT, &q, &d) != ENR_E_INVALID) {
		qs_release(&q);
		json_decref(d);
		return "(accepted)";
	}
	qs_release(&q);
	json_array_foreach(d, i, e) {
		int n = snprintf(out + o, sizeof out - o, "%s%s: %s", i ? "; " : "",
				 json_string_value(json_object_get(e, "field")),
				 json_string_value(json_object_get(e, "problem")));

		if (n > 0 && (size_t)n < sizeof out - o)
			o += (size_t)n;
	}
	json_decref(d);
	return out;
}

TEST(accepts_what_the_table_allows)
{
	struct qs q;
	json_t *d = (json_t *)1;

	qs_init(&q);
	CHECK_INT(qs_parse("days=30&format=ndjson&account=acme-1&enrich=title,phone&note=a+b%21",
			   table, NT, &q, &d), ENR_OK);
	CHECK(d == NULL);
	CHECK_STR(qs_get(&q, "days"), "30");
	CHECK_STR(qs_get(&q, "format"), "ndjson");
	CHECK_STR(qs_get(&q, "account"), "acme-1");
	CHECK_STR(qs_get(&q, "enrich"), "title,phone");
	CHECK_STR(qs_get(&q, "note"), "a b!");
	CHECK(qs_get(&q, "nope") == NULL);
	CHECK_INT(qs_parse(NULL, table, NT, &q, &d), ENR_OK);
	CHECK_INT(q.n, 0);
	CHECK_INT(qs_parse("", table, NT, &q, &d), ENR_OK);
	CHECK_INT(qs_parse("&&days=2&", table, NT, &q, &d), ENR_OK);
	CHECK_STR(qs_get(&q, "days"), "2");
	/* An empty list of fields means all of them. */
	CHECK_INT(qs_parse("enrich=", table, NT, &q, &d), ENR_OK);
	CHECK_STR(qs_get(&q, "enrich"), "");
	/* The name may be encoded too. */
	CHECK_INT(qs_parse("%64ays=7", table, NT, &q, &d), ENR_OK);
	CHECK_STR(qs_get(&q, "days"), "7");
	/* Values as long as the query allows, every parameter given. */
	CHECK_INT(qs_parse("note=%61%62&days=9&format=csv&account=a&enrich=", table, NT, &q, &d), ENR_OK);
	CHECK_STR(qs_get(&q, "note"), "ab");
	CHECK_STR(qs_get(&q, "enrich"), "");
	qs_release(&q);
	CHECK(q.buf == NULL && q.n == 0);
}

TEST(refuses_everything_else_by_name)
{
	CHECK_STR(problems("colour=red"), "colour: unknown parameter");
	CHECK_STR(problems("days=1&days=2"), "days: given more than once");
	CHECK_STR(problems("days=abc"), "days: not a whole number from 1 to 366");
	CHECK_STR(problems("days=0"), "days: not a whole number from 1 to 366");
	CHECK_STR(problems("days="), "days: not a whole number from 1 to 366");
	CHECK_STR(problems("days"), "days: not a whole number from 1 to 366");
	CHECK_STR(problems("days=123456789"), "days: longer than 8 bytes");
	CHECK_STR(problems("format=xml"), "format: not one of csv, ndjson");
	CHECK_STR(problems("format=CSV"), "format: not one of csv, ndjson");
	CHECK_STR(problems("account=a%2Fb"), "account: only letters, digits, '.', '-' and '_'");
	CHECK_STR(problems("account="), "account: empty");
	CHECK_STR(problems("enrich=title,salary"), "enrich: \"salary\" is not a field that can be enriched");
	CHECK_STR(problems("enrich=title,"), "enrich: an empty entry in the list of fields");
	CHECK_STR(problems("enrich=,title"), "enrich: an empty entry in the list of fields");
	CHECK_STR(problems("note=%zz"), "note: bad percent-encoding");
	CHECK_STR(problems("note=%4"), "note: bad percent-encoding");
	CHECK_STR(problems("note=%"), "note: bad percent-encoding");
	CHECK_STR(problems("note=%00"), "note: not UTF-8 text (or holds a NUL byte)");
	CHECK_STR(problems("note=%ff%fe"), "note: not UTF-8 text (or holds a NUL byte)");
	CHECK_STR(problems("note=12345678901"), "note: longer than 10 bytes");
	CHECK_STR(problems("da%00ys=1"), "da%00ys: unknown parameter");
	CHECK_STR(problems("%ff=1"), "%ff: unknown parameter");
	/* Every problem is reported, not just the first. */
	CHECK_STR(problems("days=x&colour=1&format=y"),
		  "days: not a whole number from 1 to 366; colour: unknown parameter; "
		  "format: not one of csv, ndjson");
	/* Client bytes come back as printable ASCII only, cut short. */
	CHECK_STR(problems("\x01\xff=1"), "??: unknown parameter");
}

TEST(over_long_queries_and_names)
{
	char *q = malloc(LIM_QUERY_MAX + 2);
	char name[LIM_NAME_MAX + 8];
	const char *p;

	REQUIRE(q != NULL);
	memset(q, 'a', LIM_QUERY_MAX + 1);
	q[LIM_QUERY_MAX + 1] = '\0';
	memcpy(q, "note=", 5);
	CHECK_STR(problems(q), "query: longer than 4096 bytes");
	/* Exactly at the cap: parsed, and the value judged on its own. */
	q[LIM_QUERY_MAX] = '\0';
	CHECK_STR(problems(q), "note: longer than 10 bytes");
	free(q);
	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	p = problems(name);
	CHECK(strncmp(p, "xxxxxxxx", 8) == 0 && strstr(p, ": unknown parameter") != NULL);
	CHECK(strlen(p) <= LIM_NAME_MAX + strlen(": unknown parameter"));
}

int main(void)
{
	RUN(accepts_what_the_table_allows);
	RUN(refuses_everything_else_by_name);
	RUN(over_long_queries_and_names);
	return harness_done();
}
