/*
 * test_pct.c - percent-encoding (lib/pct.c).
 */
#include <string.h>

#include "lib/buf.h"
#include "lib/pct.h"

#include "harness.h"

static int seen_min = 999;

static bool no_pipe(int c)
{
	seen_min = c < seen_min ? c : seen_min;
	return c != '|' && c != '%' && c != 0xff;
}

TEST(encode_keeps_the_unreserved_set)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT(pct_encode(&b, "a-Z_0.~ +/%é", strlen("a-Z_0.~ +/%é"), NULL, 0), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a-Z_0.~%20%2B%2F%25%C3%A9");
	buf_reset(&b);
	CHECK_INT(pct_encode(&b, "é/", 3, NULL, PCT_LOWER_HEX), ENR_OK);
	CHECK_STR(buf_cstr(&b), "%c3%a9%2f");
	buf_reset(&b);
	/* n bytes, NUL included; keep decides, and sees bytes as 0..255 */
	CHECK_INT(pct_encode(&b, "a|b\0c\xff", 6, no_pipe, 0), ENR_OK);
	CHECK_INT(b.len, 10);
	CHECK(memcmp(b.data, "a%7Cb\0c%FF", 10) == 0);
	CHECK_INT(seen_min, 0); /* never a negative char */
	buf_release(&b);
}

TEST(encode_leaves_the_buffer_as_it_was_past_its_cap)
{
	struct buf b;

	buf_init(&b, 8);
	REQUIRE(buf_puts(&b, "x=") == ENR_OK);
	CHECK_INT(pct_encode(&b, "abc def", 7, NULL, 0), ENR_E_TOO_LARGE);
	CHECK_STR(buf_cstr(&b), "x=");
	CHECK_INT(b.len, 2);
	CHECK_INT(pct_encode(&b, "abc", 3, NULL, 0), ENR_OK);
	CHECK_STR(buf_cstr(&b), "x=abc");
	buf_release(&b);
}

TEST(decode)
{
	char out[16];
	size_t n = 99;

	CHECK(pct_decode("a%2Fb%c3%A9+c", 13, 0, out, sizeof out, &n));
	CHECK_STR(out, "a/b\xc3\xa9+c");
	CHECK_INT(n, 7);
	CHECK(pct_decode("a+b", 3, PCT_PLUS_SPACE, out, sizeof out, &n));
	CHECK_STR(out, "a b");
	CHECK(pct_decode("%2B", 3, PCT_PLUS_SPACE, out, sizeof out, &n));
	CHECK_STR(out, "+");
	CHECK(pct_decode("x%00y", 5, 0, out, sizeof out, &n));
	CHECK_INT(n, 3);
	CHECK(out[1] == '\0' && out[2] == 'y');
	CHECK(pct_decode("", 0, 0, out, sizeof out, &n));
	CHECK_INT(n, 0);
	CHECK_STR(out, "");
	/* bad escapes */
	CHECK(!pct_decode("%zz", 3, 0, out, sizeof out, &n));
	CHECK(!pct_decode("%4", 2, 0, out, sizeof out, &n));
	CHECK(!pct_decode("%", 1, 0, out, sizeof out, &n));
	CHECK(!pct_decode("ab%4g", 5, 0, out, sizeof out, &n));
	/* n bounds what is read: "%41" cut to "%4" is bad */
	CHECK(!pct_decode("%41", 2, 0, out, sizeof out, &n));
	/* n + 1 always fits; less may not */
	CHECK(pct_decode("abc", 3, 0, out, 4, &n));
	CHECK(!pct_decode("abc", 3, 0, out, 3, &n));
	CHECK(pct_decode("%41%42", 6, 0, out, 3, &n));
	CHECK_STR(out, "AB");
	CHECK(!pct_decode("", 0, 0, out, 0, &n));
}

TEST(is_escape)
{
	CHECK(pct_is_escape("%41"));
	CHECK(pct_is_escape("%aF..."));
	CHECK(!pct_is_escape("%4"));
	CHECK(!pct_is_escape("%"));
	CHECK(!pct_is_escape("%g1"));
	CHECK(!pct_is_escape("41"));
}

int main(void)
{
	RUN(encode_keeps_the_unreserved_set);
	RUN(encode_leaves_the_buffer_as_it_was_past_its_cap);
	RUN(decode);
	RUN(is_escape);
	return harness_done();
}
