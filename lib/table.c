/*
 * table.c - plain-text tables with a header row and cut values.
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#define SEP_WIDTH 2

struct tbl {
	size_t ncols;
	unsigned flags[TBL_COLS_MAX];
	char **cells;     /* (nrows + 1) * ncols, the header first */
	size_t nrows, arows;
};

/* Characters in s: bytes that do not continue a UTF-8 sequence. */
static size_t chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* A copy of s with control characters shown as '?'. */
static char *clean_dup(const char *s)
{
	char *d = strdup(s ? s : "");

	for (char *p = d; p && *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return d;
}

static enum enr_err add_row(struct tbl *t, const char *const *cells)
{
	size_t base;

	if (t->nrows == t->arows) {
		size_t n = t->arows ? t->arows * 2 : 16;
		char **p = realloc(t->cells, n * t->ncols * sizeof *p);

		if (p == NULL)
			return ENR_E_NOMEM;
		t->cells = p;
		t->arows = n;
	}
	base = t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		t->cells[base + i] = clean_dup(cells[i]);
		if (t->cells[base + i] == NULL) {
			while (i-- > 0)
				free(t->cells[base + i]);
			return ENR_E_NOMEM;
		}
	}
	t->nrows++;
	return ENR_OK;
}

struct tbl *tbl_new(size_t ncols, const char *const *headers, const unsigned *flags)
{
	struct tbl *t;

	if (ncols == 0 || ncols > TBL_COLS_MAX)
		return NULL;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	for (size_t i = 0; i < ncols; i++)
		t->flags[i] = flags ? flags[i] : 0;
	if (add_row(t, headers) != ENR_OK) {
		tbl_free(t);
		return NULL;
	}
	return t;
}

void tbl_free(struct tbl *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

enum enr_err tbl_row(struct tbl *t, const char *const *cells)
{
	return add_row(t, cells);
}

size_t tbl_rows(const struct tbl *t)
{
	return t->nrows - 1;
}

/* Append s cut to at most w characters (ending in the ellipsis when cut),
 * padded to w unless it ends the line. */
static enum enr_err put_cell(struct buf *out, const char *s, size_t w, bool right, bool last,
			     const char *ell, size_t ell_w)
{
	size_t n = chars(s), shown = n, bytes = strlen(s), pad;
	enum enr_err rc = ENR_OK;
	bool cut = n > w;

	if (cut) {
		size_t keep = w > ell_w ? w - ell_w : 0, k = 0;

		/* The byte length of the first `keep` characters. */
		for (bytes = 0; s[bytes]; bytes++) {
			if (((unsigned char)s[bytes] & 0xC0) != 0x80 && k++ == keep)
				break;
		}
		shown = keep + ell_w;
	}
	pad = w > shown ? w - shown : 0;
	for (size_t i = 0; right && i < pad && rc == ENR_OK; i++)
		rc = buf_putc(out, ' ');
	if (rc == ENR_OK)
		rc = buf_append(out, s, bytes);
	if (rc == ENR_OK && cut)
		rc = buf_puts(out, ell);
	for (size_t i = 0; !right && !last && i < pad && rc == ENR_OK; i++)
		rc = buf_putc(out, ' ');
	return rc;
}

enum enr_err tbl_render(const struct tbl *t, size_t max_width, bool utf8, struct buf *out)
{
	size_t w[TBL_COLS_MAX], min[TBL_COLS_MAX], total = 0;
	const char *ell = utf8 ? "\xE2\x80\xA6" : "...";
	size_t ell_w = utf8 ? 1 : 3;
	enum enr_err rc = ENR_OK;

	for (size_t c = 0; c < t->ncols; c++) {
		w[c] = 0;
		for (size_t r = 0; r < t->nrows; r++) {
			size_t n = chars(t->cells[r * t->ncols + c]);

			if (n > w[c])
				w[c] = n;
		}
		min[c] = chars(t->cells[c]);
		if (min[c] < ell_w + 1)
			min[c] = ell_w + 1;
		total += w[c] + (c ? SEP_WIDTH : 0);
	}
	/* Narrow the widest column that may be cut, one character at a time. */
	while (max_width && total > max_width) {
		size_t best = t->ncols;

		for (size_t c = 0; c < t->ncols; c++) {
			if ((t->flags[c] & TBL_KEEP) || w[c] <= min[c])
				continue;
			if (best == t->ncols || w[c] > w[best])
				best = c;
		}
		if (best == t->ncols)
			break;
		w[best]--;
		total--;
	}
	for (size_t r = 0; r < t->nrows && rc == ENR_OK; r++) {
		size_t start = out->len;

		for (size_t c = 0; c < t->ncols && rc == ENR_OK; c++) {
			if (c)
				rc = buf_puts(out, "  ");
			if (rc == ENR_OK)
				rc = put_cell(out, t->cells[r * t->ncols + c], w[c],
					      t->flags[c] & TBL_RIGHT, c + 1 == t->ncols, ell, ell_w);
		}
		/* Empty cells at the end leave no trailing spaces. */
		while (rc == ENR_OK && out->len > start && out->data[out->len - 1] == ' ')
			out->data[--out->len] = '\0';
		if (rc == ENR_OK)
			rc = buf_putc(out, '\n');
	}
	return rc;
}

enum enr_err tbl_wrap(const char *text, size_t width, size_t indent, struct buf *out)
{
	size_t col = 0, start = 0;   /* where the current line's text begins */
	enum enr_err rc = ENR_OK;
	const char *p = text;

	while (*p && rc == ENR_OK) {
		size_t wl = strcspn(p, " "), wc = 0;

		for (size_t i = 0; i < wl; i++)
			wc += ((unsigned char)p[i] & 0xC0) != 0x80;
		if (col > start && col + 1 + wc > width) {
			rc = buf_putc(out, '\n');
			for (col = 0; rc == ENR_OK && col < indent; col++)
				rc = buf_putc(out, ' ');
			start = indent;
		} else if (col > start) {
			rc = buf_putc(out, ' ');
			col++;
		}
		if (rc == ENR_OK)
			rc = buf_append(out, p, wl);
		col += wc;
		p += wl;
		while (*p == ' ')
			p++;
	}
	return rc ? rc : buf_putc(out, '\n');
}
