/*
 * input.c - enrich-batch's input: read and check the whole file before
 * any row is enriched, build the output's header, hand rows to workers.
 *
 * Rows are read the lenient way a CSV job reads them (lib/csv with
 * padding): a short row gets empty cells, and a row the reader rejects
 * still hands out the cells it could split, so every row's input columns
 * come through to the output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "lib/jobs.h"
#include "lib/util.h"

#include "batch.h"

bool eb_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	util_hex(md, n > 32 ? 32 : n, out);
}

static bool has_ident_column(const struct eb_run *r)
{
	for (size_t i = 0; i < r->ncols; i++) {
		if (r->cols[i] >= 0)
			return true;
	}
	return false;
}

/* The input's header, then the added columns named by the rule the job
 * results use too (job_result_columns). */
static enum enr_err build_header(struct eb_run *r, const struct csv_row *hdr)
{
	char names[JOB_COLUMNS_MAX][JOB_COLUMN_NAME_MAX];
	size_t n = 0;
	enum enr_err rc;

	buf_reset(&r->header_line);
	rc = job_result_columns(hdr->fields, hdr->lens, hdr->n, r->want, r->o->extra, names, &n);
	if (rc == ENR_OK && r->bom)
		rc = buf_append(&r->header_line, "\xEF\xBB\xBF", 3);
	for (size_t i = 0; i < hdr->n && rc == ENR_OK; i++) {
		if (i)
			rc = buf_putc(&r->header_line, ',');
		if (rc == ENR_OK)
			rc = csv_write_field_flags(&r->header_line, hdr->fields[i], hdr->lens[i],
						   eb_csv_flags(r->o));
	}
	for (size_t i = 0; i < n && rc == ENR_OK; i++) {
		rc = buf_putc(&r->header_line, ',');
		if (rc == ENR_OK)
			rc = csv_write_field_flags(&r->header_line, names[i], strlen(names[i]),
						   eb_csv_flags(r->o));
	}
	if (rc == ENR_OK)
		rc = buf_puts(&r->header_line, "\r\n");
	return rc;
}

/* Read the header: map its columns and build the output's header. */
static enum enr_err read_header(struct eb_run *r, struct csv_reader *rd)
{
	const char *in = r->o->input;
	struct csv_row row;
	enum enr_err rc = csv_next(rd, &row);

	if (rc == ENR_E_NOT_FOUND) {
		eb_say("the input %s is empty: a CSV file with a header row is expected", in);
		return ENR_E_INVALID;
	}
	if (rc == ENR_E_INVALID) {
		const struct csv_error *e = csv_reader_error(rd);

		eb_say("the input %s is not a readable CSV file: line %zu: header: %s", in, e->line,
		       e->reason);
		return rc;
	}
	if (rc) {
		eb_say("cannot read the input %s: %s", in, enr_strerror(rc));
		return rc;
	}
	r->ncols = row.n;
	r->cols = calloc(row.n, sizeof *r->cols);
	if (r->cols == NULL) {
		eb_say("out of memory");
		return ENR_E_NOMEM;
	}
	csv_header_map(&row, r->cols, NULL);
	if (!has_ident_column(r)) {
		eb_say("the input %s has no identifier column: the header must name at least one of "
		       "email, domain, company_name, linkedin_url, first_name, last_name, phone "
		       "(or a usual spelling such as \"E-mail\", \"Company\", \"LinkedIn URL\")", in);
		return ENR_E_INVALID;
	}
	rc = build_header(r, &row);
	if (rc)
		eb_say("cannot build the output's header: %s", enr_strerror(rc));
	return rc;
}

/* Count the rows; only a problem that leaves the rest unreadable fails. */
static enum enr_err count_rows(struct eb_run *r, struct csv_reader *rd)
{
	struct csv_row row;

	for (;;) {
		enum enr_err rc = csv_next(rd, &row);

		if (rc == ENR_E_NOT_FOUND)
			break;
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(rd);

			if (e->fatal) {
				eb_say("the input %s cannot be read past line %zu: %s", r->o->input,
				       e->line, e->reason);
				return rc;
			}
		} else if (rc) {
			eb_say("cannot read the input %s: %s", r->o->input, enr_strerror(rc));
			return rc;
		}
		r->rows++;
	}
	if (r->rows == 0) {
		eb_say("the input %s has a header but no rows", r->o->input);
		return ENR_E_INVALID;
	}
	return ENR_OK;
}

enum enr_err eb_load_input(struct eb_run *r)
{
	const struct eb_opts *o = r->o;
	struct csv_reader *rd = NULL;
	struct stat st;
	enum enr_err rc;
	char *abs;

	if (stat(o->input, &st) != 0) {
		eb_say("cannot read the input %s: %s", o->input, strerror(errno));
		return ENR_E_IO;
	}
	if (S_ISDIR(st.st_mode)) {
		eb_say("the input %s is a directory, not a CSV file", o->input);
		return ENR_E_IO;
	}
	errno = 0;
	rc = util_read_file(o->input, (size_t)o->max_bytes, 0, &r->data, &r->len);
	if (rc == ENR_E_TOO_LARGE) {
		eb_say("the input %s is larger than %lld bytes (raise the cap with --max-bytes, at "
		       "most %u)", o->input, (long long)o->max_bytes, LIM_BODY_MAX_CEILING);
		return rc;
	}
	if (rc) {
		eb_say("cannot read the input %s: %s", o->input,
		       rc == ENR_E_IO && errno ? strerror(errno) : enr_strerror(rc));
		return rc;
	}
	r->bom = r->len >= 3 && memcmp(r->data, "\xEF\xBB\xBF", 3) == 0;

	rd = csv_reader_new(r->data, r->len);
	if (rd == NULL) {
		eb_say("out of memory");
		return ENR_E_NOMEM;
	}
	csv_reader_set_pad(rd, true);
	rc = read_header(r, rd);
	if (rc == ENR_OK)
		rc = count_rows(r, rd);
	csv_reader_free(rd);
	if (rc)
		return rc;
	r->target = o->limit > 0 && o->limit < r->rows ? o->limit : r->rows;

	memset(&r->ident, 0, sizeof r->ident);
	abs = realpath(o->input, NULL);
	util_strlcpy(r->ident.input, abs ? abs : o->input, sizeof r->ident.input);
	free(abs);
	r->ident.size = (int64_t)r->len;
	sha256_hex(r->data, r->len, r->ident.sha256);
	util_strlcpy(r->ident.fields, r->fields_canon, sizeof r->ident.fields);
	r->ident.rows = r->rows;
	return ENR_OK;
}

/* The input columns of a row as CSV: exactly the header's count, so the
 * output stays rectangular (a rejected row's extra cells are left out;
 * its _error names its line). */
static enum enr_err put_prefix(struct eb_run *r, struct eb_job *j, const struct csv_row *row)
{
	enum enr_err rc = ENR_OK;

	buf_reset(&j->prefix);
	for (size_t i = 0; i < r->ncols && rc == ENR_OK; i++) {
		if (i)
			rc = buf_putc(&j->prefix, ',');
		if (rc == ENR_OK && row && i < row->n)
			rc = csv_write_field_flags(&j->prefix, row->fields[i], row->lens[i],
						   eb_csv_flags(r->o));
	}
	return rc;
}

enum enr_err eb_next_job(struct eb_run *r, struct eb_job *j)
{
	struct csv_row row;
	enum enr_err rc;

	for (;;) {
		if (r->input_over)
			return ENR_E_NOT_FOUND;
		rc = csv_next(r->reader, &row);
		if (rc == ENR_E_NOT_FOUND) {
			r->input_over = true;
			return rc;
		}
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(r->reader);
			struct csv_row bad;
			bool have;

			if (e->fatal || e->row < 1 || e->row > (size_t)r->rows)
				return ENR_E_INTERNAL;
			if (e->row > (size_t)r->target) {
				r->input_over = true;
				return ENR_E_NOT_FOUND;
			}
			if (!r->todo[e->row])
				continue;
			j->n = (int64_t)e->row;
			j->line = (int64_t)e->line;
			j->csv_bad = true;
			util_strlcpy(j->csv_reason, e->reason, sizeof j->csv_reason);
			have = csv_reader_bad_row(r->reader, &bad) == ENR_OK;
			return put_prefix(r, j, have ? &bad : NULL);
		}
		if (rc)
			return rc;
		if (row.row < 1 || row.row > (size_t)r->rows)
			return ENR_E_INTERNAL;
		if (row.row > (size_t)r->target) {
			r->input_over = true;
			return ENR_E_NOT_FOUND;
		}
		if (!r->todo[row.row])
			continue;
		j->n = (int64_t)row.row;
		j->line = (int64_t)row.line;
		j->csv_bad = false;
		rec_release(&j->rec);
		j->rec.lists = r->svc.lists;
		rc = put_prefix(r, j, &row);
		for (size_t i = 0; i < row.n && rc == ENR_OK; i++) {
			if (r->cols[i] >= 0)
				rc = rec_set(&j->rec, (enum fld_ident)r->cols[i], row.fields[i],
					     row.lens[i]);
		}
		return rc;
	}
}
