/*
 * csv.h - RFC 4180 CSV: a reader over an in-memory buffer, header mapping
 * to the batch identifiers, and a writer.
 *
 * Prefix: csv_.  Batch bodies (POST /enrich/enqueue with text/csv) and
 * enrich-batch input files are read whole into memory under a byte cap
 * (util_read_file for files) and handed to a reader, which borrows them.
 *
 * What the reader accepts: quoted fields with doubled quotes inside,
 * commas and line ends inside quoted fields (kept as they are), CRLF, LF
 * or lone CR line ends in any mix, a UTF-8 byte order mark at the very
 * start (skipped), a missing final line end.  Empty lines are skipped and
 * are not rows.  The first record is the header; data rows are numbered
 * from 1 after it.  Line numbers are physical lines, from 1.
 *
 * Errors come in two kinds.  A problem confined to one row (a quote in an
 * unquoted field, text after a closing quote, invalid UTF-8, a NUL byte,
 * a cap from limits.h exceeded, a field count different from the
 * header's) is reported for that row and the reader moves past it, so a
 * caller can reject the row and keep the rest.  A problem that leaves the
 * rest of the input unreadable (a quoted field still open at the end of
 * the input) or any problem in the header is fatal: the reader stops.
 *
 * Ownership: a reader owns one arena for the current row's fields; the
 * row handed out points into it and into nothing else.  Nothing here is
 * thread-safe except where a prototype says so; use a reader from one
 * thread at a time.
 */
#ifndef ENR_CSV_H
#define ENR_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "fields.h"

struct csv_reader;

/* One record.  fields[i] is NUL-terminated and lens[i] bytes long (the
 * reader rejects NUL bytes, so strlen agrees).  Everything is borrowed
 * from the reader and valid until its next csv_next or csv_reader_free. */
struct csv_row {
	size_t n;                  /* number of fields, at least 1 */
	const char *const *fields;
	const size_t *lens;
	size_t row;                /* 0 for the header, then 1, 2, ... */
	size_t line;               /* physical line the record starts on */
};

/* The last error of a reader. */
struct csv_error {
	size_t row;         /* the row it belongs to (0: the header) */
	size_t line;        /* the physical line it was found on; for whole-
	                     * field checks (UTF-8, NUL, counts) the line the
	                     * row starts on, for an unterminated quote the
	                     * line the quote opened on */
	bool fatal;         /* true: the reader stopped, nothing follows */
	const char *reason; /* short English phrase, e.g. "quote inside an
	                     * unquoted field"; borrowed from the reader */
};

/* A reader over len bytes at data.  The data is borrowed and must
 * outlive the reader; it need not be NUL-terminated.  Returns NULL when
 * out of memory.  Free with csv_reader_free. */
struct csv_reader *csv_reader_new(const char *data, size_t len);

/* Free the reader and its arena (every row it handed out goes with it).
 * csv_reader_free(NULL) does nothing. */
void csv_reader_free(struct csv_reader *r);

/* Read the next record into *row: the header first (row 0), then the data
 * rows.  Returns
 *   ENR_OK           *row is written;
 *   ENR_E_NOT_FOUND  no more records (also right away on empty input, and
 *                    after a fatal error has been reported);
 *   ENR_E_INVALID    a bad record: csv_reader_error says which row, where
 *                    and why.  When it is not fatal the reader has moved
 *                    past the row and the next call reads the one after;
 *                    when fatal (header problems, a quoted field left
 *                    open at the end) the next call returns
 *                    ENR_E_NOT_FOUND;
 *   ENR_E_NOMEM      out of memory; later calls return it too.
 * *row is written only on ENR_OK. */
ENR_MUST_CHECK enum enr_err csv_next(struct csv_reader *r, struct csv_row *row);

/* The last error csv_next reported (all zero and reason "" before any).
 * Borrowed; valid until the next csv_next or csv_reader_free. */
const struct csv_error *csv_reader_error(const struct csv_reader *r);

/* Lenient field counts for batch inputs (off by default; set before the
 * first data row): a row with fewer fields than the header gets empty
 * fields for the missing ones, and extra trailing fields that are all
 * empty are dropped; such rows are good rows.  A row with extra fields
 * that are not empty is still a row error. */
void csv_reader_set_pad(struct csv_reader *r, bool on);

/* After csv_next returned a non-fatal ENR_E_INVALID for a data row: its
 * fields as far as they could be split (a stray quote is kept in its
 * field; the row has as many fields as it had, not the header's count).
 * Borrowed like a csv_row.  ENR_E_NOT_FOUND when there is no such row or
 * a cap (field, row or field-count limit) stopped the reader from keeping
 * the row whole: nothing of it is handed out then. */
ENR_MUST_CHECK enum enr_err csv_reader_bad_row(struct csv_reader *r, struct csv_row *row);

/* The number of columns in the header; 0 until csv_next returned it. */
size_t csv_reader_columns(const struct csv_reader *r);

/* Header mapping.  A name matches a spelling when both are equal after
 * dropping spaces, tabs, '-' and '_' and ignoring ASCII case, so "E-mail",
 * " e_mail " and "EMAIL" all match "Email".  The identifier names
 * themselves (fld_ident_names) match too. */
struct csv_alias {
	const char *name;          /* a spelling as people write it */
	enum fld_ident ident;
};

/* Every spelling that is recognised, csv_aliases_count entries.  Static;
 * exposed for tests and for documentation. */
extern const struct csv_alias csv_aliases[];
extern const size_t csv_aliases_count;

/* The identifier a header name of len bytes stands for (an enum
 * fld_ident value), or -1 when it is not recognised.  Thread-safe. */
int csv_header_ident(const char *name, size_t len);

/* Map the header's columns.  cols (header->n entries, caller-owned)
 * receives for each column its enum fld_ident value, or -1 for a column
 * to carry through untouched: an unknown name, or an identifier that an
 * earlier column already claimed (the first column wins).  idents, when
 * not NULL, receives ID__MAX entries: the column of each identifier or -1
 * when no column has it.  Thread-safe. */
void csv_header_map(const struct csv_row *header, int *cols, int *idents);

/* Append one field of n bytes to b, quoted when it must be: it contains a
 * comma, a quote, CR or LF, starts or ends with a space or a tab, or
 * starts with a byte order mark.  Quotes inside are doubled.  Returns
 * ENR_OK or ENR_E_TOO_LARGE / ENR_E_NOMEM from the buffer, which is then
 * left as it was. */
ENR_MUST_CHECK enum enr_err csv_write_field(struct buf *b, const char *s, size_t n);

/* Append one row of n fields (n >= 1; ENR_E_INVALID otherwise), separated
 * by commas and ended with CRLF (RFC 4180 section 2).  lens may be NULL
 * when every field is NUL-terminated.  A row of one empty field is
 * written as "" so it does not read back as an empty line.  Returns as
 * csv_write_field; on failure b is left as it was. */
ENR_MUST_CHECK enum enr_err csv_write_row(struct buf *b, const char *const *fields, const size_t *lens,
			   size_t n);

/* Writer options.
 *
 * CSV_W_NEUTRALISE_FORMULAS: a field that starts with '=', '+', '-', '@',
 * a tab or a CR is written with a single quote in front ("=HYPERLINK(..)"
 * becomes "'=HYPERLINK(..)"), so a spreadsheet shows it as text instead of
 * running it as a formula (OWASP "CSV Injection").  Everything else is
 * written as by csv_write_field.  For files people open; machine consumers
 * that need the bytes as they are write without it. */
#define CSV_W_NEUTRALISE_FORMULAS 1u

/* True when a field of n bytes at s would get the quote under
 * CSV_W_NEUTRALISE_FORMULAS. */
bool csv_is_formula(const char *s, size_t n);

/* csv_write_field and csv_write_row with options (flags: CSV_W_*). */
ENR_MUST_CHECK enum enr_err csv_write_field_flags(struct buf *b, const char *s, size_t n, unsigned flags);
ENR_MUST_CHECK enum enr_err csv_write_row_flags(struct buf *b, const char *const *fields, const size_t *lens,
				 size_t n, unsigned flags);

#endif
