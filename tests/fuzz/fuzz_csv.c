/*
 * fuzz_csv.c - libFuzzer target for the CSV reader, header mapping and
 * writer (lib/csv.c).
 *
 * Reads the input to the end, checking what the header promises of every
 * row and error; maps the header; writes each good row and reads it back
 * alone; then writes all good rows as one document and reads it back in
 * step with a second pass over the input.  A third pass reads leniently
 * (csv_reader_set_pad): the same rows, every good row of the strict pass
 * unchanged, padded rows as wide as the header, and the cells of rejected
 * rows within the caps.  Any broken promise aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/csv.h"
#include "lib/fields.h"
#include "lib/limits.h"
#include "lib/util.h"

#include "responder_stack.h"


static void check(int ok)
{
	if (!ok)
		abort();
}

static int same_row(const struct csv_row *a, const struct csv_row *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->lens[i] != b->lens[i] || memcmp(a->fields[i], b->fields[i], a->lens[i]) != 0)
			return 0;
	}
	return 1;
}

static void check_row(const struct csv_row *row, size_t columns)
{
	check(row->n >= 1 && row->n <= LIM_CSV_FIELDS_MAX);
	check(row->line >= 1);
	if (row->row > 0)
		check(row->n == columns);
	for (size_t i = 0; i < row->n; i++) {
		check(row->lens[i] <= LIM_CSV_FIELD_MAX);
		check(row->fields[i][row->lens[i]] == '\0');
		check(util_utf8_valid(row->fields[i], row->lens[i]));
	}
}

static void check_header(const struct csv_row *row)
{
	int *cols = malloc(row->n * sizeof(*cols));
	int idents[ID__MAX];

	check(cols != NULL);
	csv_header_map(row, cols, idents);
	for (int id = 0; id < ID__MAX; id++) {
		if (idents[id] >= 0) {
			check((size_t)idents[id] < row->n && cols[idents[id]] == id);
		}
	}
	for (size_t i = 0; i < row->n; i++) {
		check(cols[i] >= -1 && cols[i] < ID__MAX);
		if (cols[i] >= 0)
			check(idents[cols[i]] == (int)i);
		check(csv_header_ident(row->fields[i], row->lens[i]) >= -1);
	}
	free(cols);
}

/* Write one row alone and read it back: the same fields, then the end.
 * Returns false when the written row is past the row cap. */
static int round_trip_row(const struct csv_row *row)
{
	int fits;

	struct buf b;
	struct csv_reader *r;
	struct csv_row back;

	buf_init(&b, 0);
	check(csv_write_row(&b, row->fields, row->lens, row->n) == ENR_OK);
	/* Quoting adds bytes, so a row near the cap may pass it written. */
	fits = b.len - 2 <= LIM_CSV_ROW_MAX;
	if (fits) {
		r = csv_reader_new(b.data, b.len);
		check(r != NULL);
		check(csv_next(r, &back) == ENR_OK);
		check(back.row == 0 && back.line == 1);
		check(same_row(row, &back));
		check(csv_next(r, &back) == ENR_E_NOT_FOUND);
		csv_reader_free(r);
	}
	buf_release(&b);
	return fits;
}

static void lenient_pass(const char *in, size_t size)
{
	struct csv_reader *strict = csv_reader_new(in, size), *lax = csv_reader_new(in, size);
	struct csv_row a, b;

	check(strict != NULL && lax != NULL);
	csv_reader_set_pad(lax, true);
	for (;;) {
		enum enr_err rs = csv_next(strict, &a), rl = csv_next(lax, &b);

		if (rl == ENR_OK) {
			check_row(&b, csv_reader_columns(lax));
			check(b.row == 0 || b.n == csv_reader_columns(lax));
		} else if (rl == ENR_E_INVALID && !csv_reader_error(lax)->fatal) {
			struct csv_row bad;

			/* Only a bad row of the strict pass is bad here. */
			check(rs == ENR_E_INVALID);
			if (csv_reader_bad_row(lax, &bad) == ENR_OK) {
				check(bad.n >= 1 && bad.n <= LIM_CSV_FIELDS_MAX);
				check(bad.row == csv_reader_error(lax)->row);
				for (size_t i = 0; i < bad.n; i++)
					check(bad.lens[i] <= LIM_CSV_FIELD_MAX &&
					      bad.fields[i][bad.lens[i]] == '\0');
			}
		}
		if (rs == ENR_OK)
			check(rl == ENR_OK && a.row == b.row && same_row(&a, &b));
		if (rs == ENR_E_NOT_FOUND || rl == ENR_E_NOT_FOUND) {
			check(rs == rl);
			break;
		}
		check(rs != ENR_E_NOMEM && rl != ENR_E_NOMEM);
	}
	csv_reader_free(strict);
	csv_reader_free(lax);
}

static int fuzz_one(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct csv_reader *r, *again = NULL, *back = NULL;
	struct csv_row row, row2;
	struct buf all;
	size_t calls = 0, last_row = 0, good = 0;
	int have_any = 0, oversize = 0;
	enum enr_err rc;

	(void)csv_header_ident(in, size);
	buf_init(&all, 64u * 1024u * 1024u);
	r = csv_reader_new(in, size);
	check(r != NULL);
	for (;;) {
		/* Every record eats at least one byte. */
		check(++calls <= size + 2);
		rc = csv_next(r, &row);
		if (rc == ENR_E_NOT_FOUND)
			break;
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(r);

			check(e->reason[0] != '\0' && e->line >= 1);
			check(!have_any || e->row == last_row + 1);
			have_any = 1;
			last_row = e->row;
			if (e->fatal || e->row == 0) {
				check(e->fatal);
				check(csv_next(r, &row) == ENR_E_NOT_FOUND);
				break;
			}
			continue;
		}
		check(rc == ENR_OK);
		check(!have_any ? row.row == 0 : row.row == last_row + 1);
		have_any = 1;
		last_row = row.row;
		check_row(&row, csv_reader_columns(r));
		if (row.row == 0) {
			check_header(&row);
			check(csv_reader_columns(r) == row.n);
		}
		if (!round_trip_row(&row))
			oversize = 1;
		if (csv_write_row(&all, row.fields, row.lens, row.n) != ENR_OK)
			oversize = 1;
		good++;
	}
	csv_reader_free(r);

	/* The good rows written as one document read back as the same rows,
	 * in order, and nothing else. */
	if (!oversize) {
		again = csv_reader_new(in, size);
		back = csv_reader_new(all.data ? all.data : "", all.len);
		check(again != NULL && back != NULL);
		while ((rc = csv_next(again, &row)) != ENR_E_NOT_FOUND) {
			if (rc == ENR_E_INVALID)
				continue;
			check(rc == ENR_OK);
			rc = csv_next(back, &row2);
			check(rc == ENR_OK);
			check(same_row(&row, &row2));
			good--;
		}
		check(good == 0);
		check(csv_next(back, &row2) == ENR_E_NOT_FOUND);
	}
	csv_reader_free(again);
	csv_reader_free(back);
	buf_release(&all);
	lenient_pass(in, size);
	return 0;
}

FUZZ_TARGET(fuzz_one)
