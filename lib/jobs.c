/*
 * jobs.c - batch submissions, row records, outcomes and result rendering.
 */
#include "jobs.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "csv.h"
#include "enrich.h"
#include "jbody.h"
#include "json_path.h"
#include "limits.h"
#include "util.h"
#include "webhook.h"

enum enr_err job_new_id(char out[ST_JOB_ID_LEN + 1])
{
	unsigned char raw[12];
	enum enr_err rc = util_random(raw, sizeof raw);

	if (rc)
		return rc;
	memcpy(out, "job_", 4);
	util_hex(raw, sizeof raw, out + 4);
	return ENR_OK;
}

void job_input_init(struct job_input *in)
{
	memset(in, 0, sizeof *in);
	in->want = FLD_ALL;
	in->rejections = json_array();
}

void job_input_release(struct job_input *in)
{
	for (size_t i = 0; i < in->nrows; i++) {
		free((char *)in->rows[i].input);
		free((char *)in->rows[i].error);
	}
	free(in->rows);
	free(in->columns);
	json_decref(in->rejections);
	memset(in, 0, sizeof *in);
}

/* Append a row; input and error are taken over. */
static enum enr_err add_row(struct job_input *in, char *input, char *error, size_t rownum)
{
	if (in->nrows == in->arows) {
		size_t n = in->arows ? in->arows * 2 : 256;
		struct st_job_row *p = realloc(in->rows, n * sizeof *p);

		if (p == NULL) {
			free(input);
			free(error);
			return ENR_E_NOMEM;
		}
		in->rows = p;
		in->arows = n;
	}
	if (input == NULL) {
		free(error);
		return ENR_E_NOMEM;
	}
	in->rows[in->nrows].input = input;
	in->rows[in->nrows].invalid = error != NULL;
	in->rows[in->nrows].error = error;
	in->nrows++;
	if (error) {
		in->rejected++;
		if (json_array_size(in->rejections) < LIM_JOB_REJECTIONS_LISTED)
			json_array_append_new(in->rejections,
					      json_pack("{s:I, s:s}", "row", (json_int_t)rownum,
							"reason", error));
	}
	return ENR_OK;
}

/* "email: not a valid e-mail address; phone: ..." from en_parse details;
 * NULL when out of memory. */
static char *reason_of(json_t *details)
{
	struct buf b;
	size_t i;
	json_t *d;

	buf_init(&b, 1024);
	json_array_foreach(details, i, d) {
		const char *f = json_string_value(json_object_get(d, "field"));
		const char *p = json_string_value(json_object_get(d, "problem"));

		if (buf_printf(&b, "%s%s: %s", i ? "; " : "", f ? f : "?", p ? p : "?") != ENR_OK) {
			buf_release(&b);
			return NULL;
		}
	}
	if (b.len == 0 && buf_puts(&b, "not a valid record") != ENR_OK) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* The stored input of a refused record, for the results: its members whose
 * values are scalars (anything nested becomes null), or null when it is not
 * an object.  Built one level deep on purpose, so a hostile value is never
 * walked recursively, whatever got past the nesting check. */
static char *rejected_input(json_t *v)
{
	json_t *flat;
	const char *name;
	json_t *m;
	char *s;

	if (!json_is_object(v))
		return strdup("null");
	flat = json_object();
	if (flat == NULL)
		return NULL;
	json_object_foreach(v, name, m) {
		if (json_object_set_new(flat, name, json_is_array(m) || json_is_object(m)
							    ? json_null() : json_incref(m)) != 0)
			break;
	}
	s = json_dumps(flat, JSON_COMPACT);
	json_decref(flat);
	return s;
}

/* Printable ASCII only: a detail may quote client bytes (a member name, a
 * ?enrich= entry) and must stay valid text, or jansson refuses it and the
 * refusal would go out without saying why. */
static void detail(json_t **details, const char *field, const char *problem)
{
	char f[LIM_NAME_MAX + 1], p[320];

	ascii_printable_copy(field, strlen(field), f, sizeof f);
	ascii_printable_copy(problem, strlen(problem), p, sizeof p);
	if (*details == NULL)
		*details = json_array();
	json_array_append_new(*details, json_pack("{s:s, s:s}", "field", f, "problem", p));
}

enum enr_err job_parse_json(const char *body, size_t len, const struct cfg *cfg,
			    const struct dom_lists *lists, struct job_input *in, json_t **details)
{
	json_t *j = NULL, *records, *v;
	const char *name;
	enum enr_err rc = ENR_OK;
	size_t i;

	*details = NULL;
	in->format = JOB_FMT_JSON;
	in->columns = strdup("[]");
	if (in->columns == NULL)
		return ENR_E_NOMEM;
	*details = json_array();
	if (*details == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	rc = jb_load(body, len, &j, *details);
	if (rc)
		goto out;
	if (!json_is_object(j)) {
		detail(details, "body", "must be a JSON object");
		rc = ENR_E_INVALID;
		goto out;
	}
	json_object_foreach(j, name, v) {
		if (strcmp(name, "records") && strcmp(name, "enrich") && strcmp(name, "webhook_url")) {
			detail(details, name, "unknown member");
			rc = ENR_E_INVALID;
		}
	}
	if (rc)
		goto out;
	v = json_object_get(j, "enrich");
	if (v) {
		char why[160];

		if (fld_list_parse_json(v, &in->want, why, sizeof why)) {
			detail(details, "enrich", why);
			rc = ENR_E_INVALID;
			goto out;
		}
	}
	v = json_object_get(j, "webhook_url");
	if (v) {
		char why[160];

		if (!json_is_string(v) || json_string_length(v) >= sizeof in->webhook_url) {
			detail(details, "webhook_url", "must be a URL string");
			rc = ENR_E_INVALID;
			goto out;
		}
		if (wh_check_url(json_string_value(v), cfg->webhooks.allow_private, why, sizeof why)) {
			detail(details, "webhook_url", why);
			rc = ENR_E_INVALID;
			goto out;
		}
		util_strlcpy(in->webhook_url, json_string_value(v), sizeof in->webhook_url);
	}
	records = json_object_get(j, "records");
	if (!json_is_array(records) || json_array_size(records) == 0) {
		detail(details, "records", "must be a non-empty array of records");
		rc = ENR_E_INVALID;
		goto out;
	}
	if (json_array_size(records) > (size_t)cfg->limits.records_per_job_max) {
		char what[96];

		snprintf(what, sizeof what, "more than %d records (limits.records_per_job_max)",
			 cfg->limits.records_per_job_max);
		detail(details, "records", what);
		rc = ENR_E_TOO_LARGE;
		goto out;
	}
	json_array_foreach(records, i, v) {
		struct en_request req;
		json_t *d = NULL;
		enum enr_err prc;

		en_request_init(&req);
		prc = en_parse_record(v, cfg, lists, false, &req, &d);
		en_request_release(&req);
		if (prc == ENR_E_INVALID) {
			char *why = reason_of(d);

			json_decref(d);
			if (why == NULL) {
				rc = ENR_E_NOMEM;
				goto out;
			}
			rc = add_row(in, rejected_input(v), why, i + 1);
		} else if (prc == ENR_OK) {
			rc = add_row(in, json_dumps(v, JSON_COMPACT), NULL, i + 1);
		} else {
			rc = prc;
		}
		if (rc)
			goto out;
	}
out:
	json_decref(j);
	if (*details && json_array_size(*details) == 0) {
		json_decref(*details);
		*details = NULL;
	}
	return rc;
}

/* A record from a CSV row: the mapped columns' cells. */
static enum enr_err csv_record(const int *cols, size_t ncols, const char *const *cells,
			       const size_t *lens, struct rec *r)
{
	for (size_t c = 0; c < ncols; c++) {
		if (cols[c] >= 0 && lens[c] > 0) {
			enum enr_err rc = rec_set(r, (enum fld_ident)cols[c], cells[c], lens[c]);

			if (rc)
				return rc;
		}
	}
	return ENR_OK;
}

/* A JSON array of the cells; one that JSON cannot hold (not UTF-8, or a
 * NUL byte) becomes "" so the others keep their columns. */
static char *cells_json(const char *const *cells, const size_t *lens, size_t n)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; a && i < n; i++) {
		bool ok = util_utf8_valid(cells[i], lens[i]);

		json_array_append_new(a, json_stringn(ok ? cells[i] : "", ok ? lens[i] : 0));
	}
	s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

enum enr_err job_normalise_row(struct rec *r, size_t field_max, char *warn, size_t warnsz,
			       struct rec_problem *p)
{
	struct rec_problem first = { ID__MAX, "no identifier" }, cur = first;
	bool have_first = false;
	size_t wl = 0;

	if (warnsz)
		warn[0] = '\0';
	/* Each round drops one identifier, so ID__MAX + 1 rounds settle it. */
	for (int round = 0; round <= ID__MAX; round++) {
		enum enr_err rc = rec_normalise(r, field_max, &cur);
		bool other = false;

		if (rc != ENR_E_INVALID)
			return rc;
		if (cur.field >= ID__MAX)
			break;
		if (!have_first) {
			first = cur;
			have_first = true;
		}
		for (int i = 0; i < ID__MAX; i++)
			other |= i != (int)cur.field && r->v[i] != NULL && r->len[i] > 0;
		if (!other)
			break;
		if (wl < warnsz) {
			int w = snprintf(warn + wl, warnsz - wl, "%s%s ignored: %s", wl ? "; " : "",
					 fld_ident_names[cur.field], cur.reason ? cur.reason : "not valid");

			wl = w < 0 ? wl : wl + (size_t)w;
		}
		rc = rec_set(r, cur.field, NULL, 0);
		if (rc)
			return rc;
	}
	if (p)
		*p = have_first ? first : cur;
	return ENR_E_INVALID;
}

/* Validate a CSV row's record leniently; *reason (malloc'd) when it is
 * invalid; warn gets the warnings of a valid one. */
static enum enr_err validate_rec(struct rec *r, const struct cfg *cfg,
				 const struct dom_lists *lists, char **reason, char *warn,
				 size_t warnsz)
{
	struct rec_problem p;
	enum enr_err rc;

	r->lists = lists;
	rc = job_normalise_row(r, (size_t)cfg->limits.field_max_bytes, warn, warnsz, &p);
	if (rc == ENR_E_INVALID) {
		struct buf b;

		buf_init(&b, 512);
		rc = buf_printf(&b, "%s: %s", p.field < ID__MAX ? fld_ident_names[p.field] : "record",
				p.reason);
		if (rc == ENR_OK && (*reason = buf_steal(&b)) == NULL)
			rc = ENR_E_NOMEM;
		buf_release(&b);
		return rc;
	}
	return rc;
}

enum enr_err job_parse_csv(const char *body, size_t len, const char *enrich,
			   const struct cfg *cfg, const struct dom_lists *lists,
			   struct job_input *in, json_t **details)
{
	struct csv_reader *rd = NULL;
	struct csv_row row;
	int *cols = NULL, idents[ID__MAX];
	size_t ncols = 0;
	enum enr_err rc;
	bool any_ident = false;

	*details = NULL;
	in->format = JOB_FMT_CSV;
	if (enrich && *enrich) {
		char why[160];

		if (fld_list_parse(enrich, strlen(enrich), &in->want, why, sizeof why)) {
			detail(details, "enrich", why);
			return ENR_E_INVALID;
		}
	}
	rd = csv_reader_new(body, len);
	if (rd == NULL)
		return ENR_E_NOMEM;
	csv_reader_set_pad(rd, true);
	rc = csv_next(rd, &row);
	if (rc != ENR_OK) {
		if (rc == ENR_E_NOMEM)
			goto out;
		detail(details, "body", rc == ENR_E_NOT_FOUND ? "the CSV body is empty"
							       : csv_reader_error(rd)->reason);
		rc = ENR_E_INVALID;
		goto out;
	}
	ncols = row.n;
	cols = calloc(ncols, sizeof *cols);
	if (cols == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	csv_header_map(&row, cols, idents);
	for (int i = 0; i < ID__MAX; i++)
		any_ident |= idents[i] >= 0;
	if (!any_ident) {
		detail(details, "body", "no column of the header names an identifier "
					"(email, domain, company, linkedin, first/last name, phone)");
		rc = ENR_E_INVALID;
		goto out;
	}
	in->columns = cells_json(row.fields, row.lens, row.n);
	if (in->columns == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	for (;;) {
		size_t rownum;
		char *reason = NULL;

		rc = csv_next(rd, &row);
		if (rc == ENR_E_NOT_FOUND) {
			rc = ENR_OK;
			break;
		}
		if (rc == ENR_E_NOMEM)
			goto out;
		if (in->nrows >= (size_t)cfg->limits.records_per_job_max) {
			char what[96];

			snprintf(what, sizeof what, "more than %d records (limits.records_per_job_max)",
				 cfg->limits.records_per_job_max);
			detail(details, "body", what);
			rc = ENR_E_TOO_LARGE;
			goto out;
		}
		if (rc == ENR_E_INVALID) {
			const struct csv_error *e = csv_reader_error(rd);
			struct csv_row bad;
			struct buf b;

			if (e->fatal) {
				char what[256];

				snprintf(what, sizeof what, "line %zu: %s", e->line, e->reason);
				detail(details, "body", what);
				rc = ENR_E_INVALID;
				goto out;
			}
			char *why;

			buf_init(&b, 512);
			rc = buf_printf(&b, "line %zu: %s", e->line, e->reason);
			why = rc == ENR_OK ? buf_steal(&b) : NULL;
			buf_release(&b);
			if (why == NULL) {
				rc = ENR_E_NOMEM;
				goto out;
			}
			/* The cells the reader could split still come out with
			 * the results. */
			if (csv_reader_bad_row(rd, &bad) == ENR_OK)
				rc = add_row(in, cells_json(bad.fields, bad.lens, bad.n), why, e->row);
			else
				rc = add_row(in, strdup("[]"), why, e->row);
			if (rc)
				goto out;
			continue;
		}
		rownum = row.row;
		{
			struct rec r;

			/* The warnings are worked out again when the row runs. */
			rec_init(&r);
			rc = csv_record(cols, ncols, row.fields, row.lens, &r);
			if (rc == ENR_OK)
				rc = validate_rec(&r, cfg, lists, &reason, NULL, 0);
			rec_release(&r);
		}
		if (rc == ENR_OK)
			rc = add_row(in, cells_json(row.fields, row.lens, row.n), reason, rownum);
		if (rc)
			goto out;
	}
	if (in->nrows == 0) {
		detail(details, "body", "the CSV body has a header but no rows");
		rc = ENR_E_INVALID;
	}
out:
	free(cols);
	csv_reader_free(rd);
	return rc;
}

enum enr_err job_row_record(const struct st_job *job, const char *input, const struct cfg *cfg,
			    const struct dom_lists *lists, struct rec *out, char *why,
			    size_t whylen)
{
	json_t *in = json_loads(input, 0, NULL);
	enum enr_err rc = ENR_OK;
	char *reason = NULL;
	char warn[LIM_JOB_WARN_MAX];

	warn[0] = '\0';
	if (whylen)
		why[0] = '\0';
	if (in == NULL) {
		util_strlcpy(why, "stored input is not readable", whylen);
		return ENR_E_INVALID;
	}
	if (job->format == JOB_FMT_JSON) {
		struct en_request req;
		json_t *d = NULL;

		en_request_init(&req);
		rc = en_parse_record(in, cfg, lists, false, &req, &d);
		if (rc == ENR_OK) {
			*out = req.rec;      /* ownership moves to out */
			rec_init(&req.rec);
		} else if (rc == ENR_E_INVALID) {
			/* The reason goes out through why, below. */
			reason = reason_of(d);
			rc = reason ? ENR_OK : ENR_E_NOMEM;
		}
		json_decref(d);
		en_request_release(&req);
	} else {
		json_t *hdr = json_loads(job->columns, 0, NULL);
		size_t n = json_array_size(hdr), i;
		bool claimed[ID__MAX] = { false };
		json_t *v;

		/* The first column of an identifier owns it, empty or not, as
		 * csv_header_map decided when the job was submitted. */
		for (i = 0; rc == ENR_OK && i < n && i < json_array_size(in); i++) {
			const char *name = json_string_value(json_array_get(hdr, i));
			int id = name ? csv_header_ident(name, strlen(name)) : -1;

			if (id < 0 || claimed[id])
				continue;
			claimed[id] = true;
			v = json_array_get(in, i);
			if (json_string_length(v) > 0)
				rc = rec_set(out, (enum fld_ident)id, json_string_value(v),
					     json_string_length(v));
		}
		json_decref(hdr);
		if (rc == ENR_OK)
			rc = validate_rec(out, cfg, lists, &reason, warn, sizeof warn);
	}
	json_decref(in);
	if (rc == ENR_OK && reason) {
		util_strlcpy(why, reason, whylen);
		rc = ENR_E_INVALID;
	} else if (rc == ENR_OK) {
		util_strlcpy(why, warn, whylen);
	}
	free(reason);
	return rc;
}

/* True when name (nlen bytes) is one of the n names (ASCII case ignored). */
static bool name_taken(const char *const *names, const size_t *lens, size_t n, const char *name,
		       size_t nlen)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = lens ? lens[i] : strlen(names[i]);

		if (l == nlen && strncasecmp(names[i], name, nlen) == 0)
			return true;
	}
	return false;
}

enum enr_err job_result_columns(const char *const *input, const size_t *lens, size_t ninput,
				fld_set want, unsigned extra,
				char names[JOB_COLUMNS_MAX][JOB_COLUMN_NAME_MAX], size_t *n)
{
	const char *base[JOB_COLUMNS_MAX], *chosen[JOB_COLUMNS_MAX];
	size_t nbase = 0;

	for (int f = 0; f < FLD__MAX; f++) {
		if (want & FLD_BIT(f))
			base[nbase++] = fld_names[f];
	}
	if (extra & JOB_COL_SOURCE)
		base[nbase++] = "_source";
	if (extra & JOB_COL_CONFIDENCE)
		base[nbase++] = "_confidence";
	base[nbase++] = "_status";
	base[nbase++] = "_error";
	for (size_t i = 0; i < nbase; i++) {
		char *cand = names[i];

		snprintf(cand, JOB_COLUMN_NAME_MAX, "%s", base[i]);
		/* A free name always exists below the bound: there are fewer
		 * names than candidates. */
		for (int k = 1;; k++) {
			size_t cl = strlen(cand);

			if (!name_taken(input, lens, ninput, cand, cl) &&
			    !name_taken(chosen, NULL, i, cand, cl))
				break;
			if (k > (int)(LIM_CSV_FIELDS_MAX + JOB_COLUMNS_MAX))
				return ENR_E_INTERNAL;
			if (k == 1)
				snprintf(cand, JOB_COLUMN_NAME_MAX, "%s_enriched", base[i]);
			else
				snprintf(cand, JOB_COLUMN_NAME_MAX, "%s_enriched%d", base[i], k);
		}
		chosen[i] = cand;
	}
	*n = nbase;
	return ENR_OK;
}

enum enr_err job_source_cell(const struct wf_result *r, fld_set want, struct buf *out)
{
	bool any = false;

	for (int f = 0; f < FLD__MAX; f++) {
		enum enr_err rc;

		if (!(want & FLD_BIT(f)) || r->value[f] == NULL)
			continue;
		rc = buf_printf(out, "%s%s=%s", any ? "; " : "", fld_names[f],
				r->source[f] ? r->source[f] : "?");
		if (rc)
			return rc;
		any = true;
	}
	return ENR_OK;
}

void job_confidence_cell(const struct wf_result *r, fld_set want, char *out, size_t outsz)
{
	double low = 2.0;

	for (int f = 0; f < FLD__MAX; f++) {
		if ((want & FLD_BIT(f)) && r->value[f] != NULL && r->confidence[f] < low)
			low = r->confidence[f];
	}
	if (low > 1.0)
		snprintf(out, outsz, "%s", "");
	else
		snprintf(out, outsz, "%.2f", low < 0 ? 0.0 : low);
}

void job_not_done_reason(const struct wf_result *r, int64_t deadline_ms, char *code,
			 size_t codesz, char *reason, size_t reasonsz)
{
	if (r->paid_failed > 0) {
		snprintf(code, codesz, "upstream_failed");
		snprintf(reason, reasonsz,
			 "a provider failed on every key tried (errors, timeouts or refusals)");
	} else if (r->deadline_passed) {
		snprintf(code, codesz, "deadline");
		if (deadline_ms > 0)
			snprintf(reason, reasonsz, "the deadline of %lld ms passed",
				 (long long)deadline_ms);
		else
			snprintf(reason, reasonsz, "the deadline passed");
	} else if (r->budget_exceeded) {
		snprintf(code, codesz, "budget_exceeded");
		snprintf(reason, reasonsz, "the credit budget is spent until it resets");
	} else if (r->paid_unavailable > 0) {
		size_t l;

		snprintf(code, codesz, "no_key");
		l = (size_t)snprintf(reason, reasonsz, "no usable key for");
		for (int i = 0; i < r->nskipped && l < reasonsz; i++)
			l += (size_t)snprintf(reason + l, reasonsz - l, "%s %s", i ? "," : "",
					      r->skipped[i]);
	} else {
		snprintf(code, codesz, "incomplete");
		snprintf(reason, reasonsz, "a provider could not answer; running the row again may "
					   "find more");
	}
}

char *job_result_json(const struct wf_result *r)
{
	json_t *f = json_object(), *s = json_object(), *top;
	char *out;

	for (int i = 0; f && s && i < FLD__MAX; i++) {
		if (!r->value[i])
			continue;
		json_object_set_new(f, fld_names[i], json_string(r->value[i]));
		if (r->source[i])
			json_object_set_new(s, fld_names[i], json_string(r->source[i]));
	}
	top = json_pack("{s:o, s:o}", "fields", f, "sources", s);
	out = top ? json_dumps(top, JSON_COMPACT) : NULL;
	json_decref(top);
	return out;
}

enum job_action job_decide(const struct wf_result *r, int attempts, const struct cfg *cfg,
			   int64_t now_ms, double jitter, int64_t *not_before)
{
	bool failed = r->paid_failed > 0 || r->paid_unavailable > 0 || r->deadline_passed ||
		      r->budget_exceeded;
	int64_t backoff;

	if (r->status == WF_COMPLETE || !failed)
		return JOB_ROW_DONE;
	/* The account's credit budget is spent: wait for its reset, for free
	 * (nothing was bought for the fields still missing). */
	if (r->budget_exceeded && r->paid_failed == 0 && !r->deadline_passed) {
		*not_before = r->budget_until_ms > now_ms ? r->budget_until_ms : now_ms + 60000;
		return JOB_ROW_SNOOZE;
	}
	/* Every key is cooling: wait for the first to come back, for free.
	 * Keys that only an admin can bring back spend an attempt, so a job
	 * cannot wait forever. */
	if (r->paid_unavailable > 0 && r->comes_back_ms > 0) {
		*not_before = r->comes_back_ms > now_ms ? r->comes_back_ms : now_ms + 1000;
		return JOB_ROW_SNOOZE;
	}
	if (attempts + 1 >= cfg->worker.max_attempts)
		return JOB_ROW_FAIL;
	backoff = (int64_t)cfg->worker.backoff_base_ms << (attempts < 20 ? attempts : 20);
	if (backoff > cfg->worker.backoff_max_ms || backoff <= 0)
		backoff = cfg->worker.backoff_max_ms;
	*not_before = now_ms + util_jitter_add(backoff, jitter);
	return JOB_ROW_RETRY;
}

const char *job_error_code(const struct wf_result *r)
{
	bool timeout = r->deadline_passed;

	for (int i = 0; i < r->nerrors; i++)
		timeout |= r->errors[i].kind == WF_ERR_TIMEOUT;
	if (timeout)
		return "upstream_timeout";
	if (r->paid_failed == 0 && r->budget_exceeded)
		return "budget_exceeded";
	if (r->paid_failed == 0 && r->paid_unavailable > 0)
		return "unavailable";
	return "upstream_failed";
}

void job_error_text(const struct wf_result *r, int attempts, char *out, size_t outsz)
{
	size_t n;

	wf_errors_text(r, out, outsz);
	n = strlen(out);
	if (n == 0)
		n = (size_t)snprintf(out, outsz, "no provider answered");
	if (n < outsz)
		snprintf(out + n, outsz - n, " (%d attempt%s)", attempts, attempts == 1 ? "" : "s");
}

/* Indexed by the stored result status (1 + enum wf_status). */
static const char *const row_status_names[] = { "", "complete", "partial", "not_found",
						"incomplete" };

_Static_assert(sizeof row_status_names / sizeof row_status_names[0] == 1 + WF_STATUS__MAX,
	       "a name for every enum wf_status");

const char *job_row_status(const struct st_job_row_out *row)
{
	switch (row->state) {
	case ST_ROW_DONE:
		return row->status >= 1 && row->status <= 4 ? row_status_names[row->status] : "done";
	case ST_ROW_FAILED:
		/* Providers failed on every attempt: not a miss, and retryable. */
		return "incomplete";
	case ST_ROW_INVALID:
		return "invalid";
	default:
		return "pending";
	}
}

/* Column names of the input part of the results. */
static json_t *input_columns(const struct st_job *job)
{
	if (job->format == JOB_FMT_CSV)
		return json_loads(job->columns, 0, NULL);
	{
		json_t *a = json_array();

		for (int i = 0; a && i < ID__MAX; i++)
			json_array_append_new(a, json_string(fld_ident_names[i]));
		return a;
	}
}

static unsigned csv_flags(enum job_out fmt)
{
	return fmt == JOB_OUT_CSV_RAW ? 0 : CSV_W_NEUTRALISE_FORMULAS;
}

enum enr_err job_csv_header(const struct st_job *job, enum job_out fmt, struct buf *out)
{
	json_t *cols = input_columns(job), *c;
	const char *names[ID__MAX + JOB_COLUMNS_MAX + 1024];
	char added[JOB_COLUMNS_MAX][JOB_COLUMN_NAME_MAX];
	size_t lens[sizeof names / sizeof names[0]], n = 0, nadded = 0, i;
	enum enr_err rc;

	if (cols == NULL)
		return ENR_E_NOMEM;
	json_array_foreach(cols, i, c) {
		if (n >= 1024 + ID__MAX)
			break;
		names[n] = json_string_value(c) ? json_string_value(c) : "";
		lens[n] = strlen(names[n]);
		n++;
	}
	rc = job_result_columns(names, lens, n, job->want, 0, added, &nadded);
	for (i = 0; rc == ENR_OK && i < nadded; i++) {
		names[n] = added[i];
		lens[n++] = strlen(added[i]);
	}
	if (rc == ENR_OK)
		rc = csv_write_row_flags(out, names, lens, n, csv_flags(fmt));
	json_decref(cols);
	return rc;
}

enum enr_err job_render_row(const struct st_job *job, const struct st_job_row_out *row,
			    enum job_out fmt, struct buf *out)
{
	json_t *in = row->input ? json_loads(row->input, 0, NULL) : NULL;
	json_t *res = row->result ? json_loads(row->result, 0, NULL) : NULL;
	json_t *fields = json_object_get(res, "fields");
	enum enr_err rc = ENR_OK;

	if (fmt == JOB_OUT_NDJSON) {
		json_t *o = json_object();
		char *s;

		json_object_set_new(o, "row", json_integer(row->rownum));
		if (job->format == JOB_FMT_CSV) {
			json_t *cols = json_loads(job->columns, 0, NULL), *m = json_object();
			size_t i;
			json_t *v;

			json_array_foreach(in, i, v) {
				const char *name = json_string_value(json_array_get(cols, i));

				if (name && !json_object_get(m, name))
					json_object_set(m, name, v);
			}
			json_decref(cols);
			json_object_set_new(o, "input", m);
		} else {
			json_object_set(o, "input", in ? in : json_null());
		}
		for (int f = 0; f < FLD__MAX; f++) {
			json_t *v = json_object_get(fields, fld_names[f]);

			if (job->want & FLD_BIT(f))
				json_object_set(o, fld_names[f], v ? v : json_null());
		}
		json_object_set_new(o, "_status", json_string(job_row_status(row)));
		json_object_set_new(o, "_error", row->error ? json_string(row->error) : json_null());
		s = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		if (s == NULL)
			rc = ENR_E_NOMEM;
		else if ((rc = buf_puts(out, s)) == ENR_OK)
			rc = buf_putc(out, '\n');
		free(s);
	} else {
		json_t *cols = input_columns(job);
		size_t ncols = json_array_size(cols);
		const char *cells[ID__MAX + FLD__MAX + 2 + 1024];
		size_t lens[sizeof cells / sizeof cells[0]], n = 0;

		for (size_t i = 0; i < ncols && n < 1024 + ID__MAX; i++) {
			json_t *v = job->format == JOB_FMT_CSV
					    ? json_array_get(in, i)
					    : json_object_get(in, fld_ident_names[i]);

			cells[n] = json_is_string(v) ? json_string_value(v) : "";
			lens[n] = json_is_string(v) ? json_string_length(v) : 0;
			n++;
		}
		for (int f = 0; f < FLD__MAX; f++) {
			json_t *v;

			if (!(job->want & FLD_BIT(f)))
				continue;
			v = json_object_get(fields, fld_names[f]);
			cells[n] = json_is_string(v) ? json_string_value(v) : "";
			lens[n] = json_is_string(v) ? json_string_length(v) : 0;
			n++;
		}
		cells[n] = job_row_status(row);
		lens[n] = strlen(cells[n]);
		n++;
		cells[n] = row->error ? row->error : "";
		lens[n] = strlen(cells[n]);
		n++;
		rc = csv_write_row_flags(out, cells, lens, n, csv_flags(fmt));
		json_decref(cols);
	}
	json_decref(in);
	json_decref(res);
	return rc;
}

static int error_row(void *arg, const char *code, int64_t count)
{
	json_array_append_new((json_t *)arg,
			      json_pack("{s:s, s:I}", "code", code, "count", (json_int_t)count));
	return 0;
}

static json_t *time_or_null(int64_t ms)
{
	char t[21];

	if (ms <= 0)
		return json_null();
	util_fmt_time_s(ms / 1000, t);
	return json_string(t);
}

json_t *job_status_json(struct store *s, const struct st_job *job, int64_t now_ms)
{
	json_t *o = json_object(), *errors = json_array();
	int64_t finished = job->done + job->failed + job->rejected;
	int64_t recent = 0;
	double rate = 0;

	if (o == NULL || errors == NULL) {
		json_decref(o);
		json_decref(errors);
		return NULL;
	}
	/* Without the store the summary goes out without its error list. */
	if (st_job_errors(s, job->seq, error_row, errors) != ENR_OK)
		json_array_clear(errors);
	if (job->status == ST_JOB_RUNNING && job->started_ms > 0) {
		/* The last minute says more about the current pace than the
		 * average since the start. */
		if (st_job_finished_since(s, job->seq, now_ms - 60000, &recent) == ENR_OK &&
		    now_ms - job->started_ms >= 60000)
			rate = (double)recent;
		else if (now_ms > job->started_ms)
			rate = (double)job->done * 60000.0 / (double)(now_ms - job->started_ms);
	} else if (job->finished_ms > job->started_ms && job->started_ms > 0) {
		rate = (double)job->done * 60000.0 / (double)(job->finished_ms - job->started_ms);
	}
	json_object_set_new(o, "job_id", json_string(job->id));
	json_object_set_new(o, "status", json_string(st_job_status_names[job->status]));
	json_object_set_new(o, "total", json_integer(job->total));
	json_object_set_new(o, "done", json_integer(job->done));
	json_object_set_new(o, "found", json_integer(job->found));
	json_object_set_new(o, "not_found", json_integer(job->not_found));
	json_object_set_new(o, "failed", json_integer(job->failed));
	json_object_set_new(o, "rejected", json_integer(job->rejected));
	json_object_set_new(o, "pending", json_integer(job->pending > 0 ? job->pending : 0));
	json_object_set_new(o, "progress",
			    json_real(job->total ? round((double)finished * 1000.0 /
							 (double)job->total) / 1000.0 : 1.0));
	json_object_set_new(o, "rate_per_min", json_real(round(rate * 10.0) / 10.0));
	if (job->status == ST_JOB_RUNNING && rate > 0)
		json_object_set_new(o, "eta_seconds",
				    json_integer((json_int_t)ceil((double)job->pending * 60.0 / rate)));
	else
		json_object_set_new(o, "eta_seconds",
				    job->pending > 0 ? json_null() : json_integer(0));
	json_object_set_new(o, "credits_used", json_integer(job->credits));
	json_object_set_new(o, "created_at", time_or_null(job->created_ms));
	json_object_set_new(o, "started_at", time_or_null(job->started_ms));
	json_object_set_new(o, "finished_at", time_or_null(job->finished_ms));
	json_object_set_new(o, "errors", errors);
	return o;
}
