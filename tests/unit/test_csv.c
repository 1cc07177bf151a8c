/*
 * test_csv.c - the CSV reader, header mapping and writer (lib/csv.c).
 *
 * Most reader tests render everything csv_next reports for an input as
 * one string and compare it whole, so a stray or missing row shows up:
 *
 *   "0:1:[email][name]\n"        row 0 (header), line 1, two fields
 *   "E2:3:quote inside ...\n"    row 2 rejected, found on line 3
 *   "F5:7:quoted field ...\n"    fatal error, nothing after it
 *
 * CR and LF inside fields are shown as \r and \n.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/buf.h"
#include "lib/csv.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/util.h"

#include "harness.h"

static void render_cells(const struct csv_row *rowp, struct buf *out);

/* Everything csv_next reports for len bytes of in, rendered as above.
 * Stops at the end, at a fatal error or after 1000 calls.  lenient: the
 * reader pads rows (csv_reader_set_pad) and a rejected row is followed by
 * " -> " and its cells from csv_reader_bad_row ("-" when none). */
static void render_opt(const char *in, size_t len, struct buf *out, bool lenient)
{
	struct csv_reader *r = csv_reader_new(in, len);
	struct csv_row row;
	enum enr_err rc;

	buf_reset(out);
	if (r == NULL) {
		CHECK_INT(buf_puts(out, "NOMEM"), ENR_OK);
		return;
	}
	csv_reader_set_pad(r, lenient);
	for (int calls = 0; calls < 1000; calls++) {
		rc = csv_next(r, &row);
		if (rc == ENR_E_NOT_FOUND)
			break;
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(r);
			struct csv_row bad;

			CHECK_INT(buf_printf(out, "%c%zu:%zu:%s", e->fatal ? 'F' : 'E', e->row,
					     e->line, e->reason), ENR_OK);
			if (lenient) {
				if (csv_reader_bad_row(r, &bad) == ENR_OK) {
					CHECK_INT(buf_printf(out, " -> %zu:%zu:", bad.row, bad.line), ENR_OK);
					render_cells(&bad, out);
				} else {
					CHECK_INT(buf_puts(out, " -> -"), ENR_OK);
				}
			}
			CHECK_INT(buf_putc(out, '\n'), ENR_OK);
			continue;
		}
		if (rc != ENR_OK) {
			CHECK_INT(buf_printf(out, "rc=%d\n", (int)rc), ENR_OK);
			break;
		}
		CHECK_INT(buf_printf(out, "%zu:%zu:", row.row, row.line), ENR_OK);
		render_cells(&row, out);
		CHECK_INT(buf_putc(out, '\n'), ENR_OK);
	}
	csv_reader_free(r);
}

static void render_n(const char *in, size_t len, struct buf *out)
{
	render_opt(in, len, out, false);
}

static void render_cells(const struct csv_row *rowp, struct buf *out)
{
	const struct csv_row row = *rowp;

	{
		for (size_t i = 0; i < row.n; i++) {
			CHECK_INT(buf_putc(out, '['), ENR_OK);
			for (size_t k = 0; k < row.lens[i]; k++) {
				char c = row.fields[i][k];

				if (c == '\r')
					CHECK_INT(buf_puts(out, "\\r"), ENR_OK);
				else if (c == '\n')
					CHECK_INT(buf_puts(out, "\\n"), ENR_OK);
				else
					CHECK_INT(buf_putc(out, c), ENR_OK);
			}
			CHECK_INT(buf_putc(out, ']'), ENR_OK);
			/* The terminator the header promises. */
			if (row.fields[i][row.lens[i]] != '\0')
				CHECK_INT(buf_puts(out, "(unterminated)"), ENR_OK);
		}
	}
}

/* The same for a C string; the result is borrowed from a static buffer. */
static const char *render(const char *in)
{
	static struct buf out;

	if (out.cap == 0)
		buf_init(&out, 0);
	render_n(in, strlen(in), &out);
	return buf_cstr(&out);
}

TEST(simple_lf)
{
	CHECK_STR(render("email,name\na@x.com,Ann\nb@y.org,Bob\n"),
		  "0:1:[email][name]\n1:2:[a@x.com][Ann]\n2:3:[b@y.org][Bob]\n");
}

TEST(crlf_cr_and_mixes)
{
	CHECK_STR(render("a,b\r\n1,2\r\n3,4\r\n"), "0:1:[a][b]\n1:2:[1][2]\n2:3:[3][4]\n");
	CHECK_STR(render("a,b\r1,2\r3,4\r"), "0:1:[a][b]\n1:2:[1][2]\n2:3:[3][4]\n");
	CHECK_STR(render("a,b\r\n1,2\n3,4\r5,6\r\n"),
		  "0:1:[a][b]\n1:2:[1][2]\n2:3:[3][4]\n3:4:[5][6]\n");
	/* LF CR is two line ends, with an empty line between. */
	CHECK_STR(render("a,b\n\r1,2"), "0:1:[a][b]\n1:3:[1][2]\n");
}

TEST(bom_skipped_only_at_start)
{
	CHECK_STR(render("\xEF\xBB\xBF" "Email,Name\r\nx@y.z,Q\r\n"),
		  "0:1:[Email][Name]\n1:2:[x@y.z][Q]\n");
	/* Elsewhere U+FEFF is data. */
	CHECK_STR(render("a\n\xEF\xBB\xBFz\n"), "0:1:[a]\n1:2:[\xEF\xBB\xBFz]\n");
	/* A BOM and nothing else is an empty input. */
	CHECK_STR(render("\xEF\xBB\xBF"), "");
	/* A partial BOM is invalid UTF-8 in the header. */
	CHECK_STR(render("\xEF\xBB" "a\n"), "F0:1:invalid UTF-8 in field 1\n");
}

TEST(quotes_and_doubled_quotes)
{
	CHECK_STR(render("a,b\n\"x\",\"y, z\"\n"), "0:1:[a][b]\n1:2:[x][y, z]\n");
	CHECK_STR(render("a\n\"say \"\"hi\"\"\"\n"), "0:1:[a]\n1:2:[say \"hi\"]\n");
	CHECK_STR(render("a\n\"\"\"\"\n"), "0:1:[a]\n1:2:[\"]\n");
	CHECK_STR(render("a,b\n\"\",\"\"\n"), "0:1:[a][b]\n1:2:[][]\n");
	/* A quoted field at the very end without a line end. */
	CHECK_STR(render("a,b\n1,\"2\""), "0:1:[a][b]\n1:2:[1][2]\n");
}

TEST(embedded_newlines_keep_bytes_and_count_lines)
{
	CHECK_STR(render("a,b\n\"line1\nline2\",x\nnext,y\n"),
		  "0:1:[a][b]\n1:2:[line1\\nline2][x]\n2:4:[next][y]\n");
	CHECK_STR(render("a,b\r\n\"1\r\n2\r3\",x\r\nn,y\r\n"),
		  "0:1:[a][b]\n1:2:[1\\r\\n2\\r3][x]\n2:5:[n][y]\n");
	/* Only line ends inside quotes stay; the quote then closes. */
	CHECK_STR(render("h\n\"\n\"\n"), "0:1:[h]\n1:2:[\\n]\n");
}

TEST(empty_fields_and_trailing_comma)
{
	CHECK_STR(render("a,b,c\n,,\n1,,3\n"), "0:1:[a][b][c]\n1:2:[][][]\n2:3:[1][][3]\n");
	CHECK_STR(render("a,b,\nx,y,\n"), "0:1:[a][b][]\n1:2:[x][y][]\n");
	/* At the end of input the trailing comma still makes a field. */
	CHECK_STR(render("a,b,\nx,y,"), "0:1:[a][b][]\n1:2:[x][y][]\n");
}

TEST(whitespace_is_data)
{
	CHECK_STR(render("a,b\n  x , y\t\n\" q \",r\n"),
		  "0:1:[a][b]\n1:2:[  x ][ y\t]\n2:3:[ q ][r]\n");
	/* A line of spaces is a record, not an empty line. */
	CHECK_STR(render("a\n   \n"), "0:1:[a]\n1:2:[   ]\n");
}

TEST(missing_final_newline_and_empty_lines)
{
	CHECK_STR(render("a,b\n1,2"), "0:1:[a][b]\n1:2:[1][2]\n");
	CHECK_STR(render("\n\r\n\na,b\n\n\r\n1,2\n\n\n3,4\n\n"),
		  "0:4:[a][b]\n1:7:[1][2]\n2:10:[3][4]\n");
}

TEST(empty_and_header_only)
{
	struct csv_reader *r;
	struct csv_row row;

	CHECK_STR(render(""), "");
	CHECK_STR(render("\r\n\n\r"), "");
	CHECK_STR(render("email,name"), "0:1:[email][name]\n");
	CHECK_STR(render("email,name\r\n"), "0:1:[email][name]\n");

	r = csv_reader_new("", 0);
	REQUIRE(r != NULL);
	CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
	CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
	CHECK_INT(csv_reader_columns(r), 0);
	csv_reader_free(r);

	r = csv_reader_new("a,b,c\n", 6);
	REQUIRE(r != NULL);
	CHECK_INT(csv_next(r, &row), ENR_OK);
	CHECK_INT(csv_reader_columns(r), 3);
	CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
	csv_reader_free(r);
	csv_reader_free(NULL);
}

TEST(ragged_rows_are_row_errors)
{
	CHECK_STR(render("a,b,c\n1,2,3\n1,2\n\n1,2,3,4\n7,8,9\nx\n"),
		  "0:1:[a][b][c]\n"
		  "1:2:[1][2][3]\n"
		  "E2:3:2 fields, the header has 3\n"
		  "E3:5:4 fields, the header has 3\n"
		  "4:6:[7][8][9]\n"
		  "E5:7:1 field, the header has 3\n");
	/* A multi-line row's count error is reported where the row starts. */
	CHECK_STR(render("a,b\n\"x\ny\"\nok,1\n"),
		  "0:1:[a][b]\nE1:2:1 field, the header has 2\n2:4:[ok][1]\n");
}

/* Batch inputs: short rows padded, trailing empty cells dropped, and a
 * rejected row's cells still handed out so its input can be carried. */
TEST(lenient_reader_pads_and_hands_out_bad_rows)
{
	static struct buf b;

	buf_init(&b, 0);
	static const char in1[] = "a,b,c\n1,2,3\n1,2\n\n1,2,,\n1,2,3,4\nx\n\"q\"x,y\"z,3\n";
	static const char in2[] = "a,b\nok,\xff\xfe\n";

	render_opt(in1, strlen(in1), &b, true);
	CHECK_STR(buf_cstr(&b),
		  "0:1:[a][b][c]\n"
		  "1:2:[1][2][3]\n"
		  "2:3:[1][2][]\n"
		  "3:5:[1][2][]\n"
		  "E4:6:4 fields, the header has 3 -> 4:6:[1][2][3][4]\n"
		  "5:7:[x][][]\n"
		  "E6:8:text after a closing quote -> 6:8:[qx][y\"z][3]\n");
	/* Invalid UTF-8 is handed out as it is (the caller decides what to do). */
	render_opt(in2, strlen(in2), &b, true);
	CHECK_STR(buf_cstr(&b), "0:1:[a][b]\nE1:2:invalid UTF-8 in field 2 -> 1:2:[ok][\xff\xfe]\n");
	/* A row cut short by a cap is not handed out. */
	{
		size_t n = LIM_CSV_FIELD_MAX + 64;
		char *in = malloc(n + 16);

		REQUIRE(in != NULL);
		memcpy(in, "a,b\nx,", 6);
		memset(in + 6, 'y', n);
		memcpy(in + 6 + n, "\nz,w\n", 5);
		render_opt(in, n + 11, &b, true);
		CHECK_INT(strlen("\nz,w\n"), 5);
		CHECK(strstr(buf_cstr(&b), " longer than ") != NULL);
		CHECK(strstr(buf_cstr(&b), " -> -\n2:3:[z][w]\n") != NULL);
		free(in);
	}
	/* Without the option nothing changes. */
	render_opt("a,b\n1\n", 6, &b, false);
	CHECK_INT(strlen("a,b\n1\n"), 6);
	CHECK_STR(buf_cstr(&b), "0:1:[a][b]\nE1:2:1 field, the header has 2\n");
	buf_release(&b);
}

TEST(stray_quote_rejects_row_and_goes_on)
{
	CHECK_STR(render("a,b\n1,2\nab\"c,d\n3,4\n"),
		  "0:1:[a][b]\n1:2:[1][2]\nE2:3:quote inside an unquoted field\n3:4:[3][4]\n");
	/* The quote is on the row's second physical line. */
	CHECK_STR(render("a,b\n\"m\nn\",x\"y\n3,4\n"),
		  "0:1:[a][b]\nE1:3:quote inside an unquoted field\n2:4:[3][4]\n");
	CHECK_STR(render("a\nx\"\n"), "0:1:[a]\nE1:2:quote inside an unquoted field\n");
}

TEST(text_after_closing_quote)
{
	CHECK_STR(render("a,b\n\"x\"y,2\n3,4\n"),
		  "0:1:[a][b]\nE1:2:text after a closing quote\n2:3:[3][4]\n");
	CHECK_STR(render("a,b\n\"x\" ,2\n3,4\n"),
		  "0:1:[a][b]\nE1:2:text after a closing quote\n2:3:[3][4]\n");
	/* The junk holds a quote; the row still ends at its line end. */
	CHECK_STR(render("a,b\n\"x\"y\"z,2\n3,4\n"),
		  "0:1:[a][b]\nE1:2:text after a closing quote\n2:3:[3][4]\n");
	/* After a multi-line quoted field, on its closing line. */
	CHECK_STR(render("a,b\n1,\"x\n\ny\"z\n3,4\n"),
		  "0:1:[a][b]\nE1:4:text after a closing quote\n2:5:[3][4]\n");
}

TEST(unterminated_quote_is_fatal)
{
	CHECK_STR(render("a,b\n1,2\n3,\"open\n4,5\n6,7\n"),
		  "0:1:[a][b]\n1:2:[1][2]\nF2:3:quoted field not closed before the end of input\n");
	CHECK_STR(render("a,b\n1,\"\"\"\n"),
		  "0:1:[a][b]\nF1:2:quoted field not closed before the end of input\n");
	CHECK_STR(render("\""), "F0:1:quoted field not closed before the end of input\n");

	/* After the fatal report the reader is over. */
	{
		struct csv_reader *r = csv_reader_new("a\n\"x", 4);
		struct csv_row row;

		REQUIRE(r != NULL);
		CHECK_INT(csv_next(r, &row), ENR_OK);
		CHECK_INT(csv_next(r, &row), ENR_E_INVALID);
		CHECK(csv_reader_error(r)->fatal);
		CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
		CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
		csv_reader_free(r);
	}
}

TEST(header_errors_are_fatal)
{
	CHECK_STR(render("a,b\"c\n1,2\n"), "F0:1:quote inside an unquoted field\n");
	CHECK_STR(render("\"a\"x,b\n1,2\n"), "F0:1:text after a closing quote\n");
	CHECK_STR(render("a,\xff\n1,2\n"), "F0:1:invalid UTF-8 in field 2\n");
}

TEST(invalid_utf8_rejected_with_row)
{
	CHECK_STR(render("a,b\n1,2\n\xc3\x28,x\nok,\xc3\xa9\n"),
		  "0:1:[a][b]\n1:2:[1][2]\nE2:3:invalid UTF-8 in field 1\n3:4:[ok][\xc3\xa9]\n");
	/* Overlong, surrogate, truncated at the end of input. */
	CHECK_STR(render("a\n\xc0\xaf\n\xed\xa0\x80\n\xe2\x82"),
		  "0:1:[a]\nE1:2:invalid UTF-8 in field 1\nE2:3:invalid UTF-8 in field 1\n"
		  "E3:4:invalid UTF-8 in field 1\n");
	/* Four-byte characters are fine; inside quotes too. */
	CHECK_STR(render("a\n\"\xf0\x9f\x98\x80,\"\n"), "0:1:[a]\n1:2:[\xf0\x9f\x98\x80,]\n");
}

TEST(nul_rejected)
{
	struct buf out;
	static const char in[] = "a,b\n1,x\0y\n\"p\0\",2\n3,4\n";

	buf_init(&out, 0);
	render_n(in, sizeof(in) - 1, &out);
	CHECK_STR(buf_cstr(&out), "0:1:[a][b]\nE1:2:NUL byte in field 2\n"
				  "E2:3:NUL byte in field 1\n3:4:[3][4]\n");
	render_n("\0", 1, &out);
	CHECK_STR(buf_cstr(&out), "F0:1:NUL byte in field 1\n");
	buf_release(&out);
}

/* A data row of one field of n bytes of c, between two good rows. */
static void check_field_cap(size_t n, const char *want_row2)
{
	struct buf in, out;
	char want[256];

	buf_init(&in, 0);
	buf_init(&out, 0);
	CHECK_INT(buf_puts(&in, "h\nok\n"), ENR_OK);
	for (size_t i = 0; i < n; i++)
		CHECK_INT(buf_putc(&in, 'x'), ENR_OK);
	CHECK_INT(buf_puts(&in, "\nlast\n"), ENR_OK);
	render_n(in.data, in.len, &out);
	snprintf(want, sizeof(want), "0:1:[h]\n1:2:[ok]\n%s3:4:[last]\n", want_row2);
	/* The good long row is too long to compare; check its frame. */
	if (want_row2[0] == '\0') {
		CHECK(strncmp(buf_cstr(&out), "0:1:[h]\n1:2:[ok]\n2:3:[", 22) == 0);
		CHECK(out.len > n);
	} else {
		CHECK_STR(buf_cstr(&out), want);
	}
	buf_release(&in);
	buf_release(&out);
}

TEST(field_cap)
{
	char msg[128];

	check_field_cap(LIM_CSV_FIELD_MAX, "");
	snprintf(msg, sizeof(msg), "E2:3:field 1 longer than %u bytes\n", LIM_CSV_FIELD_MAX);
	check_field_cap(LIM_CSV_FIELD_MAX + 1, msg);
}

TEST(field_cap_counts_unquoted_bytes)
{
	/* LIM_CSV_FIELD_MAX quotes written doubled: 2 * max + 2 raw bytes,
	 * max bytes of value, so the row is fine. */
	struct buf in;
	struct csv_reader *r;
	struct csv_row row;

	buf_init(&in, 0);
	CHECK_INT(buf_puts(&in, "h\n\""), ENR_OK);
	for (size_t i = 0; i < LIM_CSV_FIELD_MAX; i++)
		CHECK_INT(buf_puts(&in, "\"\""), ENR_OK);
	CHECK_INT(buf_puts(&in, "\"\n"), ENR_OK);
	r = csv_reader_new(in.data, in.len);
	REQUIRE(r != NULL);
	CHECK_INT(csv_next(r, &row), ENR_OK);
	CHECK_INT(csv_next(r, &row), ENR_OK);
	CHECK_INT(row.lens[0], LIM_CSV_FIELD_MAX);
	CHECK(row.fields[0][0] == '"' && row.fields[0][LIM_CSV_FIELD_MAX - 1] == '"');
	CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
	csv_reader_free(r);
	buf_release(&in);
}

TEST(fields_cap)
{
	struct buf in, out;
	char want[256];

	buf_init(&in, 0);
	buf_init(&out, 0);
	/* A header of max columns is fine; one more is fatal. */
	for (unsigned i = 0; i < LIM_CSV_FIELDS_MAX; i++)
		CHECK_INT(buf_puts(&in, i ? ",h" : "h"), ENR_OK);
	CHECK_INT(buf_puts(&in, "\n"), ENR_OK);
	for (unsigned i = 0; i < LIM_CSV_FIELDS_MAX + 1; i++)
		CHECK_INT(buf_puts(&in, i ? ",1" : "1"), ENR_OK);
	CHECK_INT(buf_puts(&in, "\n"), ENR_OK);
	for (unsigned i = 0; i < LIM_CSV_FIELDS_MAX; i++)
		CHECK_INT(buf_puts(&in, i ? ",2" : "2"), ENR_OK);
	CHECK_INT(buf_puts(&in, "\n"), ENR_OK);
	{
		struct csv_reader *r = csv_reader_new(in.data, in.len);
		struct csv_row row;

		REQUIRE(r != NULL);
		CHECK_INT(csv_next(r, &row), ENR_OK);
		CHECK_INT(row.n, LIM_CSV_FIELDS_MAX);
		CHECK_INT(csv_next(r, &row), ENR_E_INVALID);
		snprintf(want, sizeof(want), "more than %u fields", LIM_CSV_FIELDS_MAX);
		CHECK_STR(csv_reader_error(r)->reason, want);
		CHECK_INT(csv_reader_error(r)->row, 1);
		CHECK_INT(csv_reader_error(r)->line, 2);
		CHECK(!csv_reader_error(r)->fatal);
		CHECK_INT(csv_next(r, &row), ENR_OK);
		CHECK_INT(row.row, 2);
		CHECK_INT(row.n, LIM_CSV_FIELDS_MAX);
		CHECK_STR(row.fields[LIM_CSV_FIELDS_MAX - 1], "2");
		CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
		csv_reader_free(r);
	}
	buf_reset(&in);
	for (unsigned i = 0; i < LIM_CSV_FIELDS_MAX + 1; i++)
		CHECK_INT(buf_puts(&in, ","), ENR_OK);
	render_n(in.data, in.len, &out);
	snprintf(want, sizeof(want), "F0:1:more than %u fields\n", LIM_CSV_FIELDS_MAX);
	CHECK_STR(buf_cstr(&out), want);
	buf_release(&in);
	buf_release(&out);
}

TEST(row_cap)
{
	/* Twenty fields of a little under the field cap pass the field cap
	 * but not the row cap. */
	struct buf in, out;
	size_t per = LIM_CSV_ROW_MAX / 16 - 1;
	char want[256];

	buf_init(&in, 32u * 1024u * 1024u);
	buf_init(&out, 0);
	REQUIRE(per < LIM_CSV_FIELD_MAX);
	for (int f = 0; f < 20; f++)
		CHECK_INT(buf_puts(&in, f ? ",h" : "h"), ENR_OK);
	CHECK_INT(buf_puts(&in, "\r\n"), ENR_OK);
	for (int f = 0; f < 20; f++) {
		if (f)
			CHECK_INT(buf_putc(&in, ','), ENR_OK);
		for (size_t i = 0; i < per; i++)
			CHECK_INT(buf_putc(&in, 'y'), ENR_OK);
	}
	CHECK_INT(buf_puts(&in, "\r\n"), ENR_OK);
	for (int f = 0; f < 20; f++)
		CHECK_INT(buf_puts(&in, f ? ",z" : "z"), ENR_OK);
	render_n(in.data, in.len, &out);
	/* The header is 20 columns of "h"; the bad row is not shown. */
	snprintf(want, sizeof(want), "E1:2:row longer than %u bytes\n2:3:[z]", LIM_CSV_ROW_MAX);
	CHECK(strncmp(buf_cstr(&out), "0:1:[h][h]", 10) == 0);
	CHECK(strstr(buf_cstr(&out), want) != NULL);
	CHECK(strstr(buf_cstr(&out), "yy") == NULL);
	buf_release(&in);
	buf_release(&out);
}

TEST(error_positions_and_reader_error_before_any)
{
	struct csv_reader *r = csv_reader_new("a\n", 2);
	const struct csv_error *e;

	REQUIRE(r != NULL);
	e = csv_reader_error(r);
	CHECK_STR(e->reason, "");
	CHECK_INT(e->row, 0);
	CHECK(!e->fatal);
	csv_reader_free(r);
}

/* ---- header mapping ---- */

static const struct {
	const char *name;
	int ident;
} spellings[] = {
	{ "Email", ID_EMAIL }, { "E-mail", ID_EMAIL }, { "Email Address", ID_EMAIL },
	{ "Work Email", ID_EMAIL }, { "Business Email", ID_EMAIL }, { "Mail", ID_EMAIL },
	{ "email", ID_EMAIL },
	{ "Domain", ID_DOMAIN }, { "Website", ID_DOMAIN }, { "Company Domain", ID_DOMAIN },
	{ "Company Website", ID_DOMAIN }, { "Web Site", ID_DOMAIN }, { "domain", ID_DOMAIN },
	{ "Company", ID_COMPANY_NAME }, { "Company Name", ID_COMPANY_NAME },
	{ "Organization", ID_COMPANY_NAME }, { "Organisation", ID_COMPANY_NAME },
	{ "Account", ID_COMPANY_NAME }, { "Account Name", ID_COMPANY_NAME },
	{ "Employer", ID_COMPANY_NAME }, { "company_name", ID_COMPANY_NAME },
	{ "LinkedIn", ID_LINKEDIN_URL }, { "LinkedIn URL", ID_LINKEDIN_URL },
	{ "LinkedIn Profile", ID_LINKEDIN_URL }, { "Linkedin Url", ID_LINKEDIN_URL },
	{ "Person Linkedin Url", ID_LINKEDIN_URL }, { "linkedin_url", ID_LINKEDIN_URL },
	{ "First Name", ID_FIRST_NAME }, { "Firstname", ID_FIRST_NAME },
	{ "Given Name", ID_FIRST_NAME }, { "First", ID_FIRST_NAME },
	{ "first_name", ID_FIRST_NAME },
	{ "Last Name", ID_LAST_NAME }, { "Lastname", ID_LAST_NAME }, { "Surname", ID_LAST_NAME },
	{ "Family Name", ID_LAST_NAME }, { "Last", ID_LAST_NAME }, { "last_name", ID_LAST_NAME },
	{ "Phone", ID_PHONE }, { "Phone Number", ID_PHONE }, { "Mobile", ID_PHONE },
	{ "Mobile Phone", ID_PHONE }, { "Telephone", ID_PHONE }, { "phone", ID_PHONE },
};

/* Apply a case or separator change to name into out (size outsz). */
static void variant(const char *name, int how, char *out, size_t outsz)
{
	size_t j = 0;

	if (how == 3 && j + 2 < outsz) {
		out[j++] = ' ';
		out[j++] = '\t';
	}
	for (size_t i = 0; name[i] != '\0' && j + 3 < outsz; i++) {
		char c = name[i];

		if (how == 0)
			c = ascii_to_upper(c);
		else if (how == 1)
			c = ascii_to_lower(c);
		else if (how == 2 && (c == ' ' || c == '-'))
			c = '_';
		else if (how == 4 && (c == ' ' || c == '_'))
			c = '-';
		else if (how == 5 && (c == ' ' || c == '-' || c == '_'))
			continue;
		out[j++] = c;
	}
	if (how == 3)
		out[j++] = ' ';
	out[j] = '\0';
}

TEST(alias_spellings_all_variants)
{
	char v[128];

	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		for (int how = 0; how <= 5; how++) {
			int got;

			variant(spellings[i].name, how, v, sizeof(v));
			got = csv_header_ident(v, strlen(v));
			if (got != spellings[i].ident)
				HARNESS_FAIL("\"%s\" (from \"%s\") maps to %d, want %d", v,
					     spellings[i].name, got, spellings[i].ident);
		}
	}
}

TEST(alias_table_entries_map_to_their_ident)
{
	CHECK(csv_aliases_count >= 40);
	for (size_t i = 0; i < csv_aliases_count; i++) {
		const char *n = csv_aliases[i].name;

		if (csv_header_ident(n, strlen(n)) != (int)csv_aliases[i].ident)
			HARNESS_FAIL("alias \"%s\" does not map to %d", n, csv_aliases[i].ident);
	}
	/* Every identifier has at least its own name and one alias. */
	for (int id = 0; id < ID__MAX; id++) {
		int n = 0;

		for (size_t i = 0; i < csv_aliases_count; i++)
			n += (int)csv_aliases[i].ident == id;
		if (n == 0)
			HARNESS_FAIL("no alias for %s", fld_ident_names[id]);
	}
}

TEST(unknown_headers)
{
	static const char *const unknown[] = {
		"", "   ", "-_-", "URL", "Title", "Notes", "Emails", "E mail x", "Phone2",
		"First Name Last Name", "Job Title", "Name", "Company Size", "Website Domain x",
		"\xc3\x89mail",
	};

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		int got = csv_header_ident(unknown[i], strlen(unknown[i]));

		if (got != -1)
			HARNESS_FAIL("\"%s\" maps to %d, want -1", unknown[i], got);
	}
	/* The length is honoured: "Emailx" cut to 5 bytes is "Email". */
	CHECK_INT(csv_header_ident("Emailx", 5), ID_EMAIL);
	CHECK_INT(csv_header_ident("Emailx", 6), -1);
}

TEST(header_map_with_duplicates)
{
	struct csv_reader *r;
	struct csv_row row;
	int cols[8], idents[ID__MAX];
	static const char in[] = "Notes,E-mail,Company,Work Email,first_name,Organisation,URL,Mobile\n";

	r = csv_reader_new(in, sizeof(in) - 1);
	REQUIRE(r != NULL);
	REQUIRE(csv_next(r, &row) == ENR_OK);
	REQUIRE(row.n == 8);
	csv_header_map(&row, cols, idents);
	CHECK_INT(cols[0], -1);
	CHECK_INT(cols[1], ID_EMAIL);
	CHECK_INT(cols[2], ID_COMPANY_NAME);
	CHECK_INT(cols[3], -1); /* second email column: carried through */
	CHECK_INT(cols[4], ID_FIRST_NAME);
	CHECK_INT(cols[5], -1); /* second company column */
	CHECK_INT(cols[6], -1);
	CHECK_INT(cols[7], ID_PHONE);
	CHECK_INT(idents[ID_EMAIL], 1);
	CHECK_INT(idents[ID_DOMAIN], -1);
	CHECK_INT(idents[ID_COMPANY_NAME], 2);
	CHECK_INT(idents[ID_LINKEDIN_URL], -1);
	CHECK_INT(idents[ID_FIRST_NAME], 4);
	CHECK_INT(idents[ID_LAST_NAME], -1);
	CHECK_INT(idents[ID_PHONE], 7);
	/* idents is optional. */
	cols[0] = 99;
	csv_header_map(&row, cols, NULL);
	CHECK_INT(cols[0], -1);
	CHECK_INT(cols[1], ID_EMAIL);
	csv_reader_free(r);
}

/* ---- writer ---- */

TEST(write_field_quoting)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "a,b", "\"a,b\"" },
		{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "\"", "\"\"\"\"" },
		{ "l1\nl2", "\"l1\nl2\"" },
		{ "cr\r", "\"cr\r\"" },
		{ " lead", "\" lead\"" },
		{ "trail ", "\"trail \"" },
		{ "\ttab", "\"\ttab\"" },
		{ "in side", "in side" },
		{ "\xEF\xBB\xBFx", "\"\xEF\xBB\xBFx\"" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
	};
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		CHECK_INT(csv_write_field(&b, cases[i].in, strlen(cases[i].in)), ENR_OK);
		CHECK_STR(buf_cstr(&b), cases[i].want);
	}
	buf_release(&b);
}

TEST(write_neutralises_formulas_when_asked)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "=1+1", "'=1+1" },
		{ "+1 555 0100", "'+1 555 0100" },
		{ "-2", "'-2" },
		{ "@SUM(A1)", "'@SUM(A1)" },
		{ "\tx", "\"'\tx\"" },
		{ "\rx", "\"'\rx\"" },
		{ "=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"" },
		{ "plain", "plain" },
		{ " =x", "\" =x\"" },   /* not at the start: left alone */
		{ "a=b", "a=b" },
		{ "", "" },
		{ "'=x", "'=x" },
	};
	struct buf b;
	const char *row[] = { "=A1", "ok", "-" };

	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		CHECK_INT(csv_write_field_flags(&b, cases[i].in, strlen(cases[i].in),
						CSV_W_NEUTRALISE_FORMULAS), ENR_OK);
		CHECK_STR(buf_cstr(&b), cases[i].want);
		CHECK(csv_is_formula(cases[i].in, strlen(cases[i].in)) ==
		      (strcmp(cases[i].in, cases[i].want) != 0 && cases[i].in[0] != ' '));
	}
	buf_reset(&b);
	CHECK_INT(csv_write_row_flags(&b, row, NULL, 3, CSV_W_NEUTRALISE_FORMULAS), ENR_OK);
	CHECK_STR(buf_cstr(&b), "'=A1,ok,'-\r\n");
	/* Without the flag nothing changes. */
	buf_reset(&b);
	CHECK_INT(csv_write_row_flags(&b, row, NULL, 3, 0), ENR_OK);
	CHECK_STR(buf_cstr(&b), "=A1,ok,-\r\n");
	buf_reset(&b);
	CHECK_INT(csv_write_row(&b, row, NULL, 3), ENR_OK);
	CHECK_STR(buf_cstr(&b), "=A1,ok,-\r\n");
	buf_release(&b);
}

TEST(write_row_crlf_and_edge_rows)
{
	struct buf b;
	const char *f3[] = { "a", "b,c", "" };
	const char *f1[] = { "" };
	const size_t l2[] = { 1, 3 };

	buf_init(&b, 0);
	CHECK_INT(csv_write_row(&b, f3, NULL, 3), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a,\"b,c\",\r\n");
	buf_reset(&b);
	CHECK_INT(csv_write_row(&b, f1, NULL, 1), ENR_OK);
	CHECK_STR(buf_cstr(&b), "\"\"\r\n");
	buf_reset(&b);
	/* lens are honoured over the terminators. */
	CHECK_INT(csv_write_row(&b, f3, l2, 2), ENR_OK);
	CHECK_STR(buf_cstr(&b), "a,\"b,c\"\r\n");
	CHECK_INT(csv_write_row(&b, f3, NULL, 0), ENR_E_INVALID);
	CHECK_STR(buf_cstr(&b), "a,\"b,c\"\r\n");
	buf_release(&b);
}

TEST(write_over_cap_leaves_buffer)
{
	struct buf b;
	const char *f[] = { "0123456789", "abc,def" };

	buf_init(&b, 16);
	CHECK_INT(csv_write_row(&b, f, NULL, 1), ENR_OK);
	CHECK_STR(buf_cstr(&b), "0123456789\r\n");
	CHECK_INT(csv_write_row(&b, f, NULL, 2), ENR_E_TOO_LARGE);
	CHECK_STR(buf_cstr(&b), "0123456789\r\n");
	CHECK_INT(csv_write_field(&b, "\"x\"", 3), ENR_E_TOO_LARGE);
	CHECK_STR(buf_cstr(&b), "0123456789\r\n");
	CHECK_INT(csv_write_field(&b, "ab", 2), ENR_OK);
	CHECK_STR(buf_cstr(&b), "0123456789\r\nab");
	buf_release(&b);
}

TEST(round_trip)
{
	static const char *const rows[][4] = {
		{ "email", "note", "empty", "x" },
		{ "a@b.c", "line1\nline2", "", "\"quoted\"" },
		{ "", "", "", "" },
		{ " sp ", "cr\rlf\r\n", ",", "\xEF\xBB\xBF" },
		{ "\xc3\xa9t\xc3\xa9", "\"", "\"\"", "a\"b,c\nd" },
		{ "\t", "\n", "\r", "\r\n\r\n" },
	};
	size_t nrows = sizeof(rows) / sizeof(rows[0]);
	struct buf b;
	struct csv_reader *r;
	struct csv_row row;

	buf_init(&b, 0);
	for (size_t i = 0; i < nrows; i++)
		REQUIRE(csv_write_row(&b, rows[i], NULL, 4) == ENR_OK);
	r = csv_reader_new(b.data, b.len);
	REQUIRE(r != NULL);
	for (size_t i = 0; i < nrows; i++) {
		REQUIRE(csv_next(r, &row) == ENR_OK);
		CHECK_INT(row.row, i);
		REQUIRE(row.n == 4);
		for (size_t k = 0; k < 4; k++) {
			CHECK_INT(row.lens[k], strlen(rows[i][k]));
			CHECK_STR(row.fields[k], rows[i][k]);
		}
	}
	CHECK_INT(csv_next(r, &row), ENR_E_NOT_FOUND);
	csv_reader_free(r);

	/* One column of empty values must not read back as empty lines. */
	buf_reset(&b);
	{
		const char *one[] = { "" };
		const char *hdr[] = { "h" };

		REQUIRE(csv_write_row(&b, hdr, NULL, 1) == ENR_OK);
		REQUIRE(csv_write_row(&b, one, NULL, 1) == ENR_OK);
		REQUIRE(csv_write_row(&b, one, NULL, 1) == ENR_OK);
	}
	CHECK_STR(render(buf_cstr(&b)), "0:1:[h]\n1:2:[]\n2:3:[]\n");
	buf_release(&b);
}


/* ---- volume ---- */

TEST(hundred_thousand_rows)
{
	enum { ROWS = 100000 };
	struct buf in;
	struct csv_reader *r;
	struct csv_row row;
	size_t rows = 0, bad = 0, fields = 0, bytes = 0;
	int64_t t0, us;
	enum enr_err rc;

	buf_init(&in, 64u * 1024u * 1024u);
	REQUIRE(buf_puts(&in, "\xEF\xBB\xBF" "Email,First Name,Last Name,Company,Website,"
			      "LinkedIn URL,Phone,Notes\r\n") == ENR_OK);
	for (int i = 1; i <= ROWS; i++) {
		/* Every 1000th row is ragged; every 250th has a quoted note
		 * with a comma, a doubled quote and a line break. */
		if (i % 1000 == 0) {
			REQUIRE(buf_printf(&in, "short%d@example.com,only two\r\n", i) == ENR_OK);
			continue;
		}
		REQUIRE(buf_printf(&in,
				   "person%d@example.com,First%d,Last%d,\"Example, Inc. %d\","
				   "example%d.com,https://www.linkedin.com/in/person-%d,"
				   "+1 555 %07d,",
				   i, i, i, i, i % 977, i, i) == ENR_OK);
		if (i % 250 == 0)
			REQUIRE(buf_puts(&in, "\"said \"\"yes\"\",\r\nthen left\"\r\n") == ENR_OK);
		else
			REQUIRE(buf_puts(&in, "a plain note that pads the row out to about two "
					      "hundred bytes of ordinary text for the test\r\n") ==
				ENR_OK);
	}
	CHECK(in.len > 18u * 1024u * 1024u);

	t0 = util_mono_us();
	r = csv_reader_new(in.data, in.len);
	REQUIRE(r != NULL);
	while ((rc = csv_next(r, &row)) != ENR_E_NOT_FOUND) {
		if (rc == ENR_E_INVALID) {
			bad++;
			if (csv_reader_error(r)->row % 1000 != 0)
				HARNESS_FAIL("row %zu rejected", csv_reader_error(r)->row);
			continue;
		}
		REQUIRE(rc == ENR_OK);
		rows++;
		fields += row.n;
		for (size_t k = 0; k < row.n; k++)
			bytes += row.lens[k];
	}
	us = util_mono_us() - t0;
	CHECK_INT(rows, 1 + ROWS - ROWS / 1000);
	CHECK_INT(bad, ROWS / 1000);
	CHECK_INT(fields, 8 * rows);
	CHECK(bytes > 15u * 1024u * 1024u);
	printf("# %zu bytes, %d rows read in %.1f ms\n", in.len, ROWS, (double)us / 1000.0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* Sanitizers slow everything several times; only plain builds time. */
	CHECK(us < 1000000);
#endif
	csv_reader_free(r);
	buf_release(&in);
}

int main(void)
{
	RUN(simple_lf);
	RUN(crlf_cr_and_mixes);
	RUN(bom_skipped_only_at_start);
	RUN(quotes_and_doubled_quotes);
	RUN(embedded_newlines_keep_bytes_and_count_lines);
	RUN(empty_fields_and_trailing_comma);
	RUN(whitespace_is_data);
	RUN(missing_final_newline_and_empty_lines);
	RUN(empty_and_header_only);
	RUN(ragged_rows_are_row_errors);
	RUN(lenient_reader_pads_and_hands_out_bad_rows);
	RUN(stray_quote_rejects_row_and_goes_on);
	RUN(text_after_closing_quote);
	RUN(unterminated_quote_is_fatal);
	RUN(header_errors_are_fatal);
	RUN(invalid_utf8_rejected_with_row);
	RUN(nul_rejected);
	RUN(field_cap);
	RUN(field_cap_counts_unquoted_bytes);
	RUN(fields_cap);
	RUN(row_cap);
	RUN(error_positions_and_reader_error_before_any);
	RUN(alias_spellings_all_variants);
	RUN(alias_table_entries_map_to_their_ident);
	RUN(unknown_headers);
	RUN(header_map_with_duplicates);
	RUN(write_field_quoting);
	RUN(write_row_crlf_and_edge_rows);
	RUN(write_neutralises_formulas_when_asked);
	RUN(write_over_cap_leaves_buffer);
	RUN(round_trip);
	RUN(hundred_thousand_rows);
	return harness_done();
}
