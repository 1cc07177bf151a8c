/*
 * test_table.c - plain-text tables (lib/table.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/table.h"
#include "lib/util.h"

#include "harness.h"

/* The widest line of s, in characters. */
static size_t widest(const char *s)
{
	size_t best = 0, n = 0;

	for (; *s; s++) {
		if (*s == '\n') {
			best = n > best ? n : best;
			n = 0;
		} else if (((unsigned char)*s & 0xC0) != 0x80) {
			n++;
		}
	}
	return n > best ? n : best;
}

TEST(aligned_with_a_header)
{
	static const char *const h[] = { "ID", "NAME", "CALLS" };
	static const unsigned f[] = { TBL_KEEP, 0, TBL_RIGHT };
	static const char *const r1[] = { "pdl-1", "first", "7" };
	static const char *const r2[] = { "lusha-10", NULL, "12345" };
	struct tbl *t = tbl_new(3, h, f);
	struct buf b;

	REQUIRE(t != NULL);
	buf_init(&b, 0);
	CHECK_INT(tbl_row(t, r1), ENR_OK);
	CHECK_INT(tbl_row(t, r2), ENR_OK);
	CHECK_INT(tbl_rows(t), 2);
	CHECK_INT(tbl_render(t, 100, true, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "ID        NAME   CALLS\n"
				"pdl-1     first      7\n"
				"lusha-10         12345\n");
	tbl_free(t);
	tbl_free(NULL);
	buf_release(&b);
}

TEST(long_values_are_cut_to_fit)
{
	static const char *const h[] = { "ID", "ACCOUNT", "NOTE", "N" };
	static const unsigned f[] = { TBL_KEEP, 0, 0, TBL_RIGHT };
	char longid[80], longacc[120], note[200];
	const char *row[4] = { longid, longacc, note, "1" };
	struct tbl *t = tbl_new(4, h, f);
	struct buf b;

	REQUIRE(t != NULL);
	memset(longid, 'i', 60);
	longid[60] = '\0';
	memset(longacc, 'a', 100);
	longacc[100] = '\0';
	/* UTF-8 is counted in characters and cut between them. */
	memcpy(note, "caf\xC3\xA9 ", 7);
	for (int i = 0; i < 40; i++)
		memcpy(note + 6 + i * 2, "\xC3\xA9", 3);
	buf_init(&b, 0);
	CHECK_INT(tbl_row(t, row), ENR_OK);
	CHECK_INT(tbl_render(t, 100, true, &b), ENR_OK);
	CHECK_INT(widest(buf_cstr(&b)), 100);
	CHECK(strstr(buf_cstr(&b), longid) != NULL);              /* kept whole */
	CHECK(strstr(buf_cstr(&b), longacc) == NULL);             /* cut */
	CHECK(strstr(buf_cstr(&b), "\xE2\x80\xA6") != NULL);      /* with an ellipsis */
	CHECK(util_utf8_valid(buf_cstr(&b), b.len));
	buf_reset(&b);
	CHECK_INT(tbl_render(t, 100, false, &b), ENR_OK);
	CHECK_INT(widest(buf_cstr(&b)), 100);
	CHECK(strstr(buf_cstr(&b), "...") != NULL);
	buf_reset(&b);
	/* No limit: nothing is cut. */
	CHECK_INT(tbl_render(t, 0, true, &b), ENR_OK);
	CHECK(strstr(buf_cstr(&b), longacc) != NULL);
	tbl_free(t);
	buf_release(&b);
}

TEST(control_characters_are_shown_as_question_marks)
{
	static const char *const h[] = { "NAME" };
	static const char *const r[] = { "a\033[2Jb\nc" };
	struct tbl *t = tbl_new(1, h, NULL);
	struct buf b;

	REQUIRE(t != NULL);
	buf_init(&b, 0);
	CHECK_INT(tbl_row(t, r), ENR_OK);
	CHECK_INT(tbl_render(t, 0, true, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "NAME\na?[2Jb?c\n");
	CHECK(tbl_new(0, h, NULL) == NULL);
	CHECK(tbl_new(TBL_COLS_MAX + 1, h, NULL) == NULL);
	tbl_free(t);
	buf_release(&b);
}

TEST(many_rows)
{
	static const char *const h[] = { "N" };
	struct tbl *t = tbl_new(1, h, NULL);
	struct buf b;
	char n[16];
	const char *r[1] = { n };

	REQUIRE(t != NULL);
	for (int i = 0; i < 1000; i++) {
		snprintf(n, sizeof n, "%d", i);
		CHECK_INT(tbl_row(t, r), ENR_OK);
	}
	buf_init(&b, 0);
	CHECK_INT(tbl_render(t, 0, true, &b), ENR_OK);
	CHECK(strstr(buf_cstr(&b), "\n999\n") != NULL);
	CHECK_INT(tbl_rows(t), 1000);
	tbl_free(t);
	buf_release(&b);
}

TEST(wrapping)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT(tbl_wrap("pdl-1: cooling until 12:00 (in 42s): the provider rate-limited it", 24, 2,
			   &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "pdl-1: cooling until\n"
				"  12:00 (in 42s): the\n"
				"  provider rate-limited\n"
				"  it\n");
	buf_reset(&b);
	CHECK_INT(tbl_wrap("short", 24, 2, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "short\n");
	buf_reset(&b);
	CHECK_INT(tbl_wrap("a averyveryverylongwordthatdoesnotfit b", 10, 2, &b), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a\n  averyveryverylongwordthatdoesnotfit\n  b\n");
	buf_release(&b);
}

int main(void)
{
	RUN(aligned_with_a_header);
	RUN(long_values_are_cut_to_fit);
	RUN(control_characters_are_shown_as_question_marks);
	RUN(many_rows);
	RUN(wrapping);
	return harness_done();
}
