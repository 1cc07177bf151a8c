/*
 * test_jw.c - the JSON writer (lib/jw.c): what it writes reads back as the
 * same values, strings are escaped, bad UTF-8 is replaced, misuse and the
 * buffer's cap are reported.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/jw.h"

#include "harness.h"

TEST(nested_values_read_back_as_written)
{
	struct buf b;
	struct jw w;
	json_t *j;

	buf_init(&b, 0);
	jw_init(&w, &b);
	jw_object(&w);
	jw_key(&w, "s");
	jw_string(&w, "plain");
	jw_key(&w, "n");
	jw_int(&w, -9223372036854775807LL - 1);
	jw_key(&w, "r");
	jw_real(&w, 0.9);
	jw_key(&w, "whole");
	jw_real(&w, 2.0);
	jw_key(&w, "nan");
	jw_real(&w, NAN);
	jw_key(&w, "t");
	jw_bool(&w, true);
	jw_key(&w, "none");
	jw_string(&w, NULL);
	jw_key(&w, "a");
	jw_array(&w);
	jw_int(&w, 1);
	jw_array(&w);
	jw_end(&w);
	jw_object(&w);
	jw_end(&w);
	jw_bool(&w, false);
	jw_end(&w);
	jw_end(&w);
	CHECK_INT(jw_finish(&w), ENR_OK);
	CHECK_STR(b.data, "{\"s\":\"plain\",\"n\":-9223372036854775808,\"r\":0.9,"
			  "\"whole\":2.0,\"nan\":null,\"t\":true,\"none\":null,"
			  "\"a\":[1,[],{},false]}");
	j = json_loads(b.data, 0, NULL);
	REQUIRE(j != NULL);
	CHECK(json_is_real(json_object_get(j, "whole")));
	CHECK_DBL(json_real_value(json_object_get(j, "r")), 0.9, 0);
	CHECK_INT(json_array_size(json_object_get(j, "a")), 4);
	json_decref(j);
	buf_release(&b);
}

/* One real alone, as written. */
static const char *real_text(struct buf *b, double v)
{
	struct jw w;

	buf_reset(b);
	jw_init(&w, b);
	jw_real(&w, v);
	CHECK_INT(jw_finish(&w), ENR_OK);
	return buf_cstr(b);
}

TEST(reals_read_back_exactly_and_short_decimals_stay_short)
{
	static const struct { double v; const char *text; } shorts[] = {
		{ 0.0, "0.0" }, { -0.0, "-0.0" }, { 1.0, "1.0" }, { 0.9, "0.9" },
		{ 0.85, "0.85" }, { -2.5, "-2.5" }, { 0.000001, "0.000001" },
		{ 123456.654321, "123456.654321" }, { 999999999.0, "999999999.0" },
		{ 1e9, "1000000000.0" }, { 0.1 + 0.2, "0.30000000000000004" },
		{ 1e-7, "9.9999999999999995e-08" }, { 1e300, "1.0000000000000001e+300" },
	};
	struct buf b;
	unsigned seed = 7;

	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
		const char *t = real_text(&b, shorts[i].v);

		CHECK_STR(t, shorts[i].text);
		CHECK(strtod(t, NULL) == shorts[i].v);
		CHECK(signbit(strtod(t, NULL)) == signbit(shorts[i].v));
	}
	/* Random values, with few and with many digits: each reads back as
	 * itself and keeps its point. */
	for (int i = 0; i < 200000; i++) {
		double v;
		const char *t;

		seed = seed * 1103515245u + 12345u;
		if (i % 2)
			v = (double)(seed % 2000001u) / 1000.0 - 1000.0;
		else
			v = ldexp((double)seed, (int)(seed % 61) - 50);
		t = real_text(&b, v);
		if (strtod(t, NULL) != v || strpbrk(t, ".e") == NULL) {
			CHECK(strtod(t, NULL) == v);
			CHECK(strpbrk(t, ".e") != NULL);
			break;
		}
	}
	buf_release(&b);
}

TEST(strings_are_escaped_as_json_needs)
{
	static const char in[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f é 日本 😀";
	struct buf b;
	struct jw w;
	json_t *j;

	buf_init(&b, 0);
	jw_init(&w, &b);
	jw_array(&w);
	jw_string(&w, in);
	jw_end(&w);
	CHECK_INT(jw_finish(&w), ENR_OK);
	CHECK_STR(b.data, "[\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f é 日本 😀\"]");
	j = json_loads(b.data, 0, NULL);
	REQUIRE(j != NULL);
	CHECK_STR(json_string_value(json_array_get(j, 0)), in);
	json_decref(j);
	buf_release(&b);
}

TEST(bad_utf8_is_replaced_byte_by_byte)
{
	/* A lone continuation, an overlong '/', a surrogate, past U+10FFFF,
	 * a sequence cut short at the end. */
	static const char in[] = "a\x80" "b\xC0\xAF" "c\xED\xA0\x80" "d\xF4\x90\x80\x80" "e\xE6\x97";
	struct buf b;
	struct jw w;
	json_t *j;
	const char *s;

	buf_init(&b, 0);
	jw_init(&w, &b);
	jw_object(&w);
	jw_key(&w, "k\xFF");
	jw_string(&w, in);
	jw_end(&w);
	CHECK_INT(jw_finish(&w), ENR_OK);
	j = json_loads(b.data, 0, NULL);
	REQUIRE(j != NULL); /* valid JSON, whatever came in */
	REQUIRE(json_object_get(j, "k\xEF\xBF\xBD") != NULL);
	s = json_string_value(json_object_get(j, "k\xEF\xBF\xBD"));
	CHECK_STR(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD" "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
		     "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "e\xEF\xBF\xBD\xEF\xBF\xBD");
	json_decref(j);
	buf_release(&b);
}

TEST(misuse_is_reported_not_written)
{
	struct buf b;
	struct jw w;

	buf_init(&b, 0);
	jw_init(&w, &b);
	jw_object(&w);
	jw_int(&w, 1); /* a value with no key */
	CHECK_INT(jw_finish(&w), ENR_E_INVALID);
	CHECK_STR(b.data, "{");

	buf_reset(&b);
	jw_init(&w, &b);
	jw_array(&w);
	jw_key(&w, "k"); /* a key in an array */
	CHECK_INT(jw_finish(&w), ENR_E_INVALID);

	buf_reset(&b);
	jw_init(&w, &b);
	jw_object(&w);
	jw_key(&w, "k");
	jw_end(&w); /* a key with no value */
	CHECK_INT(jw_finish(&w), ENR_E_INVALID);

	buf_reset(&b);
	jw_init(&w, &b);
	jw_array(&w);
	CHECK_INT(jw_finish(&w), ENR_E_INVALID); /* left open */
	jw_end(&w);
	jw_end(&w); /* one end too many */
	CHECK_INT(jw_finish(&w), ENR_E_INVALID);

	buf_reset(&b);
	jw_init(&w, &b);
	for (int i = 0; i <= JW_DEPTH_MAX; i++)
		jw_array(&w);
	CHECK_INT(jw_finish(&w), ENR_E_TOO_LARGE);
	CHECK_INT(b.len, JW_DEPTH_MAX);
	buf_release(&b);
}

TEST(the_buffer_cap_sticks_as_the_error)
{
	struct buf b;
	struct jw w;

	buf_init(&b, 16);
	jw_init(&w, &b);
	jw_array(&w);
	jw_string(&w, "0123456789");
	jw_string(&w, "0123456789");
	jw_int(&w, 42); /* after the failure: nothing */
	jw_end(&w);
	CHECK_INT(jw_finish(&w), ENR_E_TOO_LARGE);
	CHECK(b.len <= 16);
	CHECK_STR(b.data, "[\"0123456789\",\""); /* what fitted, no more */
	buf_release(&b);
}

TEST(writing_appends_to_what_the_buffer_holds)
{
	struct buf b;
	struct jw w;

	buf_init(&b, 0);
	REQUIRE(buf_puts(&b, "x=") == ENR_OK);
	jw_init(&w, &b);
	jw_int(&w, 0);
	CHECK_INT(jw_finish(&w), ENR_OK);
	CHECK_STR(b.data, "x=0");
	buf_release(&b);
}

int main(void)
{
	RUN(nested_values_read_back_as_written);
	RUN(reals_read_back_exactly_and_short_decimals_stay_short);
	RUN(strings_are_escaped_as_json_needs);
	RUN(bad_utf8_is_replaced_byte_by_byte);
	RUN(misuse_is_reported_not_written);
	RUN(the_buffer_cap_sticks_as_the_error);
	RUN(writing_appends_to_what_the_buffer_holds);
	return harness_done();
}
