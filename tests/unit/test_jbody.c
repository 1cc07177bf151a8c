/*
 * test_jbody.c - JSON bodies against a table of members: every kind of
 * refusal names its field, nothing is defaulted behind the caller's back.
 */
#include <string.h>

#include "lib/jbody.h"

#include "harness.h"

static const struct jb_field table[] = {
	{ "name", JB_STRING, 1, 8, true },
	{ "burst", JB_LIMIT, 1, 100, false },
	{ "days", JB_INT, 1, 30, false },
	{ "scopes", JB_WORDS, 1, 3, false },
	{ "on", JB_BOOL, 0, 0, false },
};
#define N (sizeof table / sizeof table[0])

static const char *first_field(json_t *details)
{
	return json_string_value(json_object_get(json_array_get(details, 0), "field"));
}

static const char *first_problem(json_t *details)
{
	return json_string_value(json_object_get(json_array_get(details, 0), "problem"));
}

/* Parse body; on refusal return the first problem's field ("" when accepted). */
static void refused(const char *body, const char *field, const char *problem)
{
	struct jb_value v[N];
	json_t *doc = NULL, *details = NULL;
	enum enr_err rc = jb_parse(body, strlen(body), table, N, &doc, v, &details);

	CHECK_INT(rc, ENR_E_INVALID);
	CHECK(doc == NULL);
	if (details) {
		CHECK_STR(first_field(details), field);
		CHECK(strstr(first_problem(details), problem) != NULL);
		if (strstr(first_problem(details), problem) == NULL)
			fprintf(stderr, "  got: %s\n", first_problem(details));
	}
	for (size_t i = 0; i < N; i++)
		CHECK(!v[i].present);
	json_decref(details);
}

TEST(accepts_what_the_table_says)
{
	const char *body = "{\"name\":\"acme\",\"burst\":\"default\",\"days\":7,"
			   "\"scopes\":[\"a\",\"b\"],\"on\":true}";
	struct jb_value v[N];
	json_t *doc = NULL, *details = NULL;

	CHECK_INT(jb_parse(body, strlen(body), table, N, &doc, v, &details), ENR_OK);
	CHECK(details == NULL);
	CHECK(v[0].present && v[0].len == 4);
	CHECK_STR(v[0].s, "acme");
	CHECK(v[1].present && v[1].is_default);
	CHECK(v[2].present && v[2].i == 7);
	CHECK(v[3].present && json_array_size(v[3].arr) == 2);
	CHECK(v[4].present && v[4].b);
	json_decref(doc);
	body = "{\"name\":\"x\",\"burst\":100}";
	CHECK_INT(jb_parse(body, strlen(body), table, N, &doc, v, &details), ENR_OK);
	CHECK(v[1].present && !v[1].is_default && v[1].i == 100 && !v[2].present);
	json_decref(doc);
}

TEST(refuses_with_the_field_and_why)
{
	refused("", "body", "required");
	refused("[1]", "body", "object");
	refused("{\"name\":", "body", "not valid JSON");
	refused("{\"name\":\"a\",\"name\":\"b\"}", "body", "duplicate");
	refused("{\"name\":\"a\",\"bogus\":1}", "bogus", "unknown member");
	refused("{\"burst\":5}", "name", "is required");
	refused("{\"name\":\"\"}", "name", "1 to 8 bytes");
	refused("{\"name\":\"123456789\"}", "name", "1 to 8 bytes");
	refused("{\"name\":\"a\\u0000b\"}", "body", "not valid JSON"); /* jansson refuses NUL */
	refused("{\"name\":1}", "name", "must be a string");
	refused("{\"name\":\"a\",\"burst\":0}", "burst", "or \"default\"");
	refused("{\"name\":\"a\",\"burst\":\"lots\"}", "burst", "whole number");
	refused("{\"name\":\"a\",\"burst\":1.5}", "burst", "whole number");
	refused("{\"name\":\"a\",\"days\":\"default\"}", "days", "whole number from 1 to 30");
	refused("{\"name\":\"a\",\"scopes\":[]}", "scopes", "1 to 3 entries");
	refused("{\"name\":\"a\",\"scopes\":\"a\"}", "scopes", "array");
	refused("{\"name\":\"a\",\"scopes\":[\"a\",2]}", "scopes", "entry 1");
	refused("{\"name\":\"a\",\"on\":1}", "on", "true or false");
}

TEST(refuses_deep_nesting_before_parsing)
{
	char body[200];
	size_t o = 0;

	o += (size_t)snprintf(body + o, sizeof body - o, "{\"name\":\"a\",\"days\":");
	for (int i = 0; i < 40; i++)
		body[o++] = '[';
	for (int i = 0; i < 40; i++)
		body[o++] = ']';
	body[o++] = '}';
	body[o] = '\0';
	refused(body, "body", "nested deeper than 32");
}

TEST(hostile_member_names_are_quoted_as_ascii)
{
	struct jb_value v[N];
	json_t *doc = NULL, *details = NULL;
	const char *body = "{\"name\":\"a\",\"\\u00e9\\u0007x\":1}";

	CHECK_INT(jb_parse(body, strlen(body), table, N, &doc, v, &details), ENR_E_INVALID);
	CHECK_STR(first_field(details), "???x");
	json_decref(details);
}

int main(void)
{
	RUN(accepts_what_the_table_says);
	RUN(refuses_with_the_field_and_why);
	RUN(refuses_deep_nesting_before_parsing);
	RUN(hostile_member_names_are_quoted_as_ascii);
	return harness_done();
}
