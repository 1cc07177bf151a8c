/*
 * csv.c - RFC 4180 reader, header mapping and writer.
 *
 * The reader walks the borrowed input once.  Plain runs of bytes are
 * found with a table lookup and copied into the row arena in one go, so
 * the cost per byte stays a compare and a copy.  Fields are stored as
 * offsets while the row grows (the arena may move) and turned into
 * pointers when the row is complete.
 */
#include "csv.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "limits.h"
#include "util.h"

_Static_assert(LIM_CSV_FIELDS_MAX <= INT_MAX, "column indexes are ints");

struct csv_reader {
	const char *data;
	size_t len;
	size_t pos;          /* next byte to read */
	size_t line;         /* physical line of pos */
	size_t records;      /* records read so far, header included */
	size_t columns;      /* fields in the header */
	enum enr_err stop;   /* ENR_OK while reading; what csv_next returns once stopped */

	/* the current row */
	char *arena;         /* field bytes, each field NUL-terminated */
	size_t arena_len;
	size_t arena_alloc;
	size_t *offs;        /* field start offsets into arena */
	size_t *lens;
	const char **ptrs;
	size_t nfields;
	size_t fields_alloc;
	size_t row_start;    /* input offset of the row's first byte */
	bool row_bad;        /* a row-level error was recorded */
	bool row_trunc;      /* a cap was hit: store nothing more of the row */
	bool pad;            /* csv_reader_set_pad */
	size_t line_start;   /* the line the current row starts on */

	struct csv_error err;
	char reason[LIM_CSV_REASON_MAX];
};

/* Bytes that end a plain run: the separator, a quote, line ends. */
static const unsigned char plain_stop[256] = {
	[','] = 1, ['"'] = 1, ['\r'] = 1, ['\n'] = 1,
};

/* Bytes that end a run inside quotes: the quote and line ends (counted). */
static const unsigned char quoted_stop[256] = {
	['"'] = 1, ['\r'] = 1, ['\n'] = 1,
};

struct csv_reader *csv_reader_new(const char *data, size_t len)
{
	struct csv_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->data = data;
	r->len = len;
	r->line = 1;
	r->err.reason = r->reason;
	/* Excel and Notepad put a UTF-8 byte order mark in front; it is not
	 * part of the first header name. */
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		r->pos = 3;
	return r;
}

void csv_reader_free(struct csv_reader *r)
{
	if (r == NULL)
		return;
	free(r->arena);
	free(r->offs);
	free(r->lens);
	free(r->ptrs);
	free(r);
}

const struct csv_error *csv_reader_error(const struct csv_reader *r)
{
	return &r->err;
}

size_t csv_reader_columns(const struct csv_reader *r)
{
	return r->columns;
}

static void set_error(struct csv_reader *r, size_t line, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void set_error(struct csv_reader *r, size_t line, bool fatal, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->err.row = r->records;
	r->err.line = line;
	r->err.fatal = fatal;
}

/* Record the first problem of the current row; later ones add nothing. */
static void row_error(struct csv_reader *r, size_t line, const char *reason)
{
	if (r->row_bad)
		return;
	r->row_bad = true;
	set_error(r, line, false, "%s", reason);
}

/* A cap was hit: the row is bad and the rest of it is not stored, so its
 * cells are not handed out either (csv_reader_bad_row). */
static void row_cap(struct csv_reader *r, size_t line, const char *reason)
{
	row_error(r, line, reason);
	r->row_trunc = true;
}

static enum enr_err arena_reserve(struct csv_reader *r, size_t n)
{
	size_t need = r->arena_len + n;
	size_t nalloc;
	char *p;

	if (need <= r->arena_alloc)
		return ENR_OK;
	/* The caps keep need below LIM_CSV_ROW_MAX + LIM_CSV_FIELDS_MAX, so
	 * doubling cannot overflow. */
	nalloc = r->arena_alloc ? r->arena_alloc : 4096;
	while (nalloc < need)
		nalloc *= 2;
	p = realloc(r->arena, nalloc);
	if (p == NULL)
		return ENR_E_NOMEM;
	r->arena = p;
	r->arena_alloc = nalloc;
	return ENR_OK;
}

/* Start a field.  Past the field-count cap the row is marked bad and
 * nothing is stored. */
static enum enr_err field_begin(struct csv_reader *r)
{
	if (r->row_trunc)
		return ENR_OK;
	if (r->nfields == LIM_CSV_FIELDS_MAX) {
		char msg[LIM_CSV_REASON_MAX];

		snprintf(msg, sizeof(msg), "more than %u fields", LIM_CSV_FIELDS_MAX);
		row_cap(r, r->line, msg);
		return ENR_OK;
	}
	if (r->nfields == r->fields_alloc) {
		size_t n = r->fields_alloc ? r->fields_alloc * 2 : 16;
		size_t *offs, *lens;
		const char **ptrs;

		if (n > LIM_CSV_FIELDS_MAX)
			n = LIM_CSV_FIELDS_MAX;
		offs = realloc(r->offs, n * sizeof(*offs));
		if (offs == NULL)
			return ENR_E_NOMEM;
		r->offs = offs;
		lens = realloc(r->lens, n * sizeof(*lens));
		if (lens == NULL)
			return ENR_E_NOMEM;
		r->lens = lens;
		ptrs = realloc(r->ptrs, n * sizeof(*ptrs));
		if (ptrs == NULL)
			return ENR_E_NOMEM;
		r->ptrs = ptrs;
		r->fields_alloc = n;
	}
	r->offs[r->nfields] = r->arena_len;
	return ENR_OK;
}

/* Append n bytes to the current field.  raw_end is the input offset just
 * past the bytes being stored, for the row cap. */
static enum enr_err field_add(struct csv_reader *r, const char *s, size_t n, size_t raw_end)
{
	size_t have;
	enum enr_err rc;

	if (r->row_trunc || n == 0)
		return ENR_OK;
	if (raw_end - r->row_start > LIM_CSV_ROW_MAX) {
		char msg[LIM_CSV_REASON_MAX];

		snprintf(msg, sizeof(msg), "row longer than %u bytes", LIM_CSV_ROW_MAX);
		row_cap(r, r->line, msg);
		return ENR_OK;
	}
	have = r->arena_len - r->offs[r->nfields];
	if (n > LIM_CSV_FIELD_MAX - have) {
		char msg[LIM_CSV_REASON_MAX];

		snprintf(msg, sizeof(msg), "field %zu longer than %u bytes", r->nfields + 1,
			 LIM_CSV_FIELD_MAX);
		row_cap(r, r->line, msg);
		return ENR_OK;
	}
	rc = arena_reserve(r, n);
	if (rc)
		return rc;
	memcpy(r->arena + r->arena_len, s, n);
	r->arena_len += n;
	return ENR_OK;
}

static enum enr_err field_end(struct csv_reader *r)
{
	enum enr_err rc;

	if (r->row_trunc)
		return ENR_OK;
	rc = arena_reserve(r, 1);
	if (rc)
		return rc;
	r->lens[r->nfields] = r->arena_len - r->offs[r->nfields];
	r->arena[r->arena_len++] = '\0';
	r->nfields++;
	return ENR_OK;
}

/* Step over the line end at i (CRLF, LF or a lone CR) and count it. */
static size_t skip_line_end(struct csv_reader *r, size_t i)
{
	if (r->data[i] == '\r' && i + 1 < r->len && r->data[i + 1] == '\n')
		i++;
	r->line++;
	return i + 1;
}

/* Read the quoted field whose opening quote is at *ip.  Returns ENR_OK
 * with *ip just past the closing quote, or ENR_E_INVALID (fatal, error
 * set) when the input ends inside the quotes. */
static enum enr_err read_quoted(struct csv_reader *r, size_t *ip)
{
	const unsigned char *p = (const unsigned char *)r->data;
	size_t len = r->len;
	size_t open_line = r->line;
	size_t i = *ip + 1;
	enum enr_err rc;

	for (;;) {
		size_t j = i;

		while (j < len && !quoted_stop[p[j]])
			j++;
		if (j == len) {
			set_error(r, open_line, true, "quoted field not closed before the end of input");
			return ENR_E_INVALID;
		}
		if (p[j] == '"') {
			rc = field_add(r, r->data + i, j - i, j);
			if (rc)
				return rc;
			if (j + 1 < len && p[j + 1] == '"') {
				/* RFC 4180 section 2 rule 7: "" is one quote. */
				rc = field_add(r, "\"", 1, j + 2);
				if (rc)
					return rc;
				i = j + 2;
				continue;
			}
			*ip = j + 1;
			return ENR_OK;
		}
		/* A line end inside quotes belongs to the value, byte for byte;
		 * a cap it breaks is reported on the line it ends. */
		j += (p[j] == '\r' && j + 1 < len && p[j + 1] == '\n') ? 2 : 1;
		rc = field_add(r, r->data + i, j - i, j);
		if (rc)
			return rc;
		r->line++;
		i = j;
	}
}

/* Check the stored fields of a complete row starting on line: UTF-8
 * only, no NUL. */
static void check_text(struct csv_reader *r, size_t line)
{
	for (size_t k = 0; k < r->nfields && !r->row_bad; k++) {
		const char *s = r->arena + r->offs[k];
		char msg[LIM_CSV_REASON_MAX];

		if (memchr(s, '\0', r->lens[k]) != NULL) {
			snprintf(msg, sizeof(msg), "NUL byte in field %zu", k + 1);
			row_error(r, line, msg);
		} else if (!util_utf8_valid(s, r->lens[k])) {
			snprintf(msg, sizeof(msg), "invalid UTF-8 in field %zu", k + 1);
			row_error(r, line, msg);
		}
	}
}

/* Read one record starting at r->pos (not on an empty line).  Returns
 * ENR_OK with the fields in the arena (r->row_bad set when the row is to
 * be rejected), or a fatal error. */
static enum enr_err read_record(struct csv_reader *r)
{
	const unsigned char *p = (const unsigned char *)r->data;
	size_t len = r->len;
	size_t i = r->pos;
	enum enr_err rc;

	r->arena_len = 0;
	r->nfields = 0;
	r->row_start = i;
	r->row_bad = false;
	r->row_trunc = false;
	for (;;) {
		rc = field_begin(r);
		if (rc)
			return rc;
		if (i < len && p[i] == '"') {
			rc = read_quoted(r, &i);
			if (rc)
				return rc;
			/* read_quoted consumed any "", so a quote cannot be next. */
			if (i < len && p[i] != ',' && p[i] != '\r' && p[i] != '\n')
				row_error(r, r->line, "text after a closing quote");
		}
		/* A plain field; in a row already found bad this also swallows
		 * what follows a closing quote, so the row ends where a lenient
		 * reader would end it. */
		for (;;) {
			size_t j = i;

			while (j < len && !plain_stop[p[j]])
				j++;
			rc = field_add(r, r->data + i, j - i, j);
			if (rc)
				return rc;
			i = j;
			if (i < len && p[i] == '"') {
				row_error(r, r->line, "quote inside an unquoted field");
				/* Kept in the cell, for csv_reader_bad_row. */
				rc = field_add(r, "\"", 1, i + 1);
				if (rc)
					return rc;
				i++;
				continue;
			}
			break;
		}
		rc = field_end(r);
		if (rc)
			return rc;
		if (i < len && p[i] == ',') {
			i++;
			continue;
		}
		break;
	}
	/* Fields of empty strings add no bytes through field_add; the count
	 * cap bounds them, and this catches a long row of them anyway. */
	if (i - r->row_start > LIM_CSV_ROW_MAX) {
		char msg[LIM_CSV_REASON_MAX];

		snprintf(msg, sizeof(msg), "row longer than %u bytes", LIM_CSV_ROW_MAX);
		row_error(r, r->line, msg);
	}
	if (i < len)
		i = skip_line_end(r, i);
	r->pos = i;
	return ENR_OK;
}

/* Lenient field counts: missing trailing cells become empty ones; extra
 * trailing cells that are all empty (a spreadsheet's trailing commas) are
 * dropped.  Other extra cells stay an error. */
static enum enr_err pad_row(struct csv_reader *r)
{
	enum enr_err rc;

	if (r->nfields > r->columns) {
		for (size_t k = r->columns; k < r->nfields; k++) {
			if (r->lens[k] != 0)
				return ENR_OK;
		}
		r->nfields = r->columns;
		return ENR_OK;
	}
	while (r->nfields < r->columns) {
		rc = field_begin(r);
		if (rc == ENR_OK)
			rc = field_end(r);
		if (rc)
			return rc;
	}
	return ENR_OK;
}

void csv_reader_set_pad(struct csv_reader *r, bool on)
{
	r->pad = on;
}

enum enr_err csv_reader_bad_row(struct csv_reader *r, struct csv_row *row)
{
	if (!r->row_bad || r->row_trunc || r->err.fatal || r->nfields == 0 || r->records < 2)
		return ENR_E_NOT_FOUND;
	for (size_t k = 0; k < r->nfields; k++)
		r->ptrs[k] = r->arena + r->offs[k];
	row->n = r->nfields;
	row->fields = r->ptrs;
	row->lens = r->lens;
	row->row = r->err.row;
	row->line = r->line_start;
	return ENR_OK;
}

enum enr_err csv_next(struct csv_reader *r, struct csv_row *row)
{
	const char *p = r->data;
	size_t line;
	enum enr_err rc;

	if (r->stop)
		return r->stop;
	/* Empty lines are not records (and not rows). */
	while (r->pos < r->len && (p[r->pos] == '\r' || p[r->pos] == '\n'))
		r->pos = skip_line_end(r, r->pos);
	if (r->pos == r->len) {
		r->stop = ENR_E_NOT_FOUND;
		return ENR_E_NOT_FOUND;
	}
	line = r->line_start = r->line;
	rc = read_record(r);
	if (rc) {
		/* A quote left open swallowed the rest; ENR_E_INVALID is
		 * reported once, then the input is over. */
		r->stop = rc == ENR_E_INVALID ? ENR_E_NOT_FOUND : rc;
		return rc;
	}
	/* Whole-row checks report the line the row starts on. */
	if (!r->row_bad)
		check_text(r, line);
	if (!r->row_bad && r->records > 0 && r->pad && r->nfields != r->columns) {
		rc = pad_row(r);
		if (rc)
			return rc;
	}
	if (!r->row_bad && r->records > 0 && r->nfields != r->columns) {
		char msg[LIM_CSV_REASON_MAX];

		snprintf(msg, sizeof(msg), "%zu field%s, the header has %zu", r->nfields,
			 r->nfields == 1 ? "" : "s", r->columns);
		row_error(r, line, msg);
	}
	if (r->row_bad) {
		r->records++;
		if (r->records == 1) {
			/* Without a header no row can be mapped. */
			r->err.fatal = true;
			r->stop = ENR_E_NOT_FOUND;
		}
		return ENR_E_INVALID;
	}
	for (size_t k = 0; k < r->nfields; k++)
		r->ptrs[k] = r->arena + r->offs[k];
	if (r->records == 0)
		r->columns = r->nfields;
	row->n = r->nfields;
	row->fields = r->ptrs;
	row->lens = r->lens;
	row->row = r->records;
	row->line = line;
	r->records++;
	return ENR_OK;
}

/* ---- header mapping ---- */

const struct csv_alias csv_aliases[] = {
	{ "Email", ID_EMAIL },
	{ "E-mail", ID_EMAIL },
	{ "Email Address", ID_EMAIL },
	{ "E-mail Address", ID_EMAIL },
	{ "Work Email", ID_EMAIL },
	{ "Business Email", ID_EMAIL },
	{ "Mail", ID_EMAIL },

	/* A bare "URL" column is as often a profile as a website; it is
	 * carried through rather than guessed at. */
	{ "Domain", ID_DOMAIN },
	{ "Domain Name", ID_DOMAIN },
	{ "Website", ID_DOMAIN },
	{ "Web Site", ID_DOMAIN },
	{ "Website URL", ID_DOMAIN },
	{ "Company Domain", ID_DOMAIN },
	{ "Company Website", ID_DOMAIN },
	{ "Company URL", ID_DOMAIN },

	{ "Company", ID_COMPANY_NAME },
	{ "Company Name", ID_COMPANY_NAME },
	{ "Organization", ID_COMPANY_NAME },
	{ "Organisation", ID_COMPANY_NAME },
	{ "Organization Name", ID_COMPANY_NAME },
	{ "Account", ID_COMPANY_NAME },
	{ "Account Name", ID_COMPANY_NAME },
	{ "Employer", ID_COMPANY_NAME },

	{ "LinkedIn", ID_LINKEDIN_URL },
	{ "LinkedIn URL", ID_LINKEDIN_URL },
	{ "LinkedIn Profile", ID_LINKEDIN_URL },
	{ "LinkedIn Profile URL", ID_LINKEDIN_URL },
	{ "Person Linkedin Url", ID_LINKEDIN_URL },

	{ "First Name", ID_FIRST_NAME },
	{ "Firstname", ID_FIRST_NAME },
	{ "Given Name", ID_FIRST_NAME },
	{ "First", ID_FIRST_NAME },

	{ "Last Name", ID_LAST_NAME },
	{ "Lastname", ID_LAST_NAME },
	{ "Surname", ID_LAST_NAME },
	{ "Family Name", ID_LAST_NAME },
	{ "Last", ID_LAST_NAME },

	{ "Phone", ID_PHONE },
	{ "Phone Number", ID_PHONE },
	{ "Mobile", ID_PHONE },
	{ "Mobile Phone", ID_PHONE },
	{ "Mobile Number", ID_PHONE },
	{ "Telephone", ID_PHONE },
	{ "Telephone Number", ID_PHONE },
};

const size_t csv_aliases_count = sizeof(csv_aliases) / sizeof(csv_aliases[0]);

static bool name_ignored(char c)
{
	return c == ' ' || c == '\t' || c == '-' || c == '_';
}

/* Compare a header name with a spelling, both with the ignored bytes
 * dropped and ASCII case folded. */
static bool name_matches(const char *a, size_t alen, const char *b)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < alen && name_ignored(a[i]))
			i++;
		while (b[j] != '\0' && name_ignored(b[j]))
			j++;
		if (i == alen || b[j] == '\0')
			return i == alen && b[j] == '\0';
		if (ascii_to_lower(a[i]) != ascii_to_lower(b[j]))
			return false;
		i++;
		j++;
	}
}

int csv_header_ident(const char *name, size_t len)
{
	for (int k = 0; k < ID__MAX; k++) {
		if (name_matches(name, len, fld_ident_names[k]))
			return k;
	}
	for (size_t k = 0; k < csv_aliases_count; k++) {
		if (name_matches(name, len, csv_aliases[k].name))
			return (int)csv_aliases[k].ident;
	}
	return -1;
}

void csv_header_map(const struct csv_row *header, int *cols, int *idents)
{
	int seen[ID__MAX];

	for (int k = 0; k < ID__MAX; k++)
		seen[k] = -1;
	for (size_t i = 0; i < header->n; i++) {
		int id = csv_header_ident(header->fields[i], header->lens[i]);

		if (id >= 0 && seen[id] >= 0)
			id = -1;
		if (id >= 0)
			seen[id] = (int)i;
		cols[i] = id;
	}
	if (idents != NULL)
		memcpy(idents, seen, sizeof(seen));
}

/* ---- writer ---- */

static bool needs_quotes(const char *s, size_t n)
{
	if (n == 0)
		return false;
	if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
		return true;
	/* A value starting with U+FEFF written first in a file would be
	 * taken for a byte order mark and dropped; quoted it is not first. */
	if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (plain_stop[(unsigned char)s[i]])
			return true;
	}
	return false;
}

bool csv_is_formula(const char *s, size_t n)
{
	return n > 0 && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' ||
			 s[0] == '\t' || s[0] == '\r');
}

/* Append without the all-or-nothing guarantee; callers restore b->len. */
static enum enr_err put_field(struct buf *b, const char *s, size_t n, unsigned flags)
{
	bool quote_mark = (flags & CSV_W_NEUTRALISE_FORMULAS) && csv_is_formula(s, n);
	enum enr_err rc;
	size_t i = 0;

	if (!needs_quotes(s, n)) {
		rc = quote_mark ? buf_putc(b, '\'') : ENR_OK;
		return rc ? rc : buf_append(b, s, n);
	}
	rc = buf_putc(b, '"');
	if (rc == ENR_OK && quote_mark)
		rc = buf_putc(b, '\'');
	while (rc == ENR_OK && i < n) {
		const char *q = memchr(s + i, '"', n - i);
		size_t run = q ? (size_t)(q - (s + i)) + 1 : n - i;

		/* Copy through the quote, then add the second one. */
		rc = buf_append(b, s + i, run);
		if (rc == ENR_OK && q != NULL)
			rc = buf_putc(b, '"');
		i += run;
	}
	if (rc == ENR_OK)
		rc = buf_putc(b, '"');
	return rc;
}

enum enr_err csv_write_field_flags(struct buf *b, const char *s, size_t n, unsigned flags)
{
	size_t mark = b->len;
	enum enr_err rc = put_field(b, s, n, flags);

	if (rc)
		buf_truncate(b, mark);
	return rc;
}

enum enr_err csv_write_field(struct buf *b, const char *s, size_t n)
{
	return csv_write_field_flags(b, s, n, 0);
}

enum enr_err csv_write_row(struct buf *b, const char *const *fields, const size_t *lens,
			   size_t n)
{
	return csv_write_row_flags(b, fields, lens, n, 0);
}

enum enr_err csv_write_row_flags(struct buf *b, const char *const *fields, const size_t *lens,
				 size_t n, unsigned flags)
{
	size_t mark = b->len;
	enum enr_err rc = ENR_OK;

	if (n == 0)
		return ENR_E_INVALID;
	if (n == 1 && (lens ? lens[0] : strlen(fields[0])) == 0) {
		rc = buf_append(b, "\"\"\r\n", 4);
		goto out;
	}
	for (size_t i = 0; i < n && rc == ENR_OK; i++) {
		if (i > 0)
			rc = buf_putc(b, ',');
		if (rc == ENR_OK)
			rc = put_field(b, fields[i], lens ? lens[i] : strlen(fields[i]), flags);
	}
	if (rc == ENR_OK)
		rc = buf_append(b, "\r\n", 2);
out:
	if (rc)
		buf_truncate(b, mark);
	return rc;
}
