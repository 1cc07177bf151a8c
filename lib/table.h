/*
 * table.h - plain-text tables for the command-line tools: a header row,
 * aligned columns, and long values cut with an ellipsis so a table fits a
 * given width.
 *
 * Prefix: tbl_.  A table is built row by row (cells are copied) and
 * rendered into a struct buf; nothing is printed here.  Widths are counted
 * in characters (UTF-8 code points), control characters are shown as '?'
 * so a value cannot move the cursor.  tbl_new returns a table the caller
 * frees with tbl_free (tbl_free(NULL) does nothing).  Not thread-safe.
 */
#ifndef ENR_TABLE_H
#define ENR_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

#define TBL_COLS_MAX 16

/* Column flags. */
#define TBL_RIGHT 1u   /* right-aligned (numbers) */
#define TBL_KEEP 2u    /* never cut (ids a command takes back, states) */

struct tbl;

/* A table of ncols (1..TBL_COLS_MAX) columns with these headers (copied)
 * and flags (NULL: all 0).  NULL when out of memory or ncols is out of
 * range. */
struct tbl *tbl_new(size_t ncols, const char *const *headers, const unsigned *flags);

void tbl_free(struct tbl *t);

/* Append a row of ncols cells (copied; NULL is an empty cell). */
ENR_MUST_CHECK enum enr_err tbl_row(struct tbl *t, const char *const *cells);

/* The number of rows appended. */
size_t tbl_rows(const struct tbl *t);

/* Render the table into out: the header, then every row, columns two
 * spaces apart, no trailing spaces, lines ended by '\n'.  When the natural
 * widths exceed max_width, the widest columns that may be cut are narrowed
 * (never below their header) and their long values end in an ellipsis:
 * U+2026 when utf8, else "...".  max_width 0 means no limit. */
ENR_MUST_CHECK enum enr_err tbl_render(const struct tbl *t, size_t max_width, bool utf8, struct buf *out);

/* Append text to out wrapped at width characters (words are not split;
 * a longer word gets a line of its own), continuation lines indented by
 * indent spaces, every line ended by '\n'. */
ENR_MUST_CHECK enum enr_err tbl_wrap(const char *text, size_t width, size_t indent, struct buf *out);

#endif
