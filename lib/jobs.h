/*
 * jobs.h - batch jobs: what a submission becomes, how a row is enriched and
 * what its result looks like (docs/architecture.md, "Batch jobs").
 *
 * Prefix: job_.  A submission (JSON records or a CSV body) is validated row
 * by row: good rows are queued, bad rows are kept as invalid with their row
 * number and reason and do not sink the job.  A row's input is kept as it
 * came (a JSON object, or a JSON array of the CSV cells), so the results can
 * carry the input columns through untouched.  Workers turn a claimed row
 * back into a normalised record, run the waterfall, and job_decide() says
 * what the outcome means for the row.  Pure functions except where a store
 * is passed; thread-safe.
 */
#ifndef ENR_JOBS_H
#define ENR_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "config.h"
#include "domains.h"
#include "fields.h"
#include "limits.h"
#include "record.h"
#include "store.h"
#include "waterfall.h"

enum job_format { JOB_FMT_JSON, JOB_FMT_CSV, JOB_FMT__MAX };

/* A new job id ("job_" + 24 hex digits of fresh randomness) into out. */
enum enr_err job_new_id(char out[ST_JOB_ID_LEN + 1]) ENR_MUST_CHECK;

/* A validated submission (caller-owned: job_input_init/release). */
struct job_input {
	enum job_format format;
	fld_set want;
	char *columns;                /* JSON array of CSV header names ("[]" for JSON) */
	char webhook_url[2049];
	struct st_job_row *rows;      /* inputs are owned by the struct */
	size_t nrows, arows;
	size_t rejected;
	json_t *rejections;           /* [{"row", "reason"}], first LIM_JOB_REJECTIONS_LISTED */
};

void job_input_init(struct job_input *in);
void job_input_release(struct job_input *in);

/* Parse a JSON submission {"records": [...], "enrich": [...],
 * "webhook_url": "..."}.  ENR_E_INVALID with *details for a body that is
 * not a submission at all (bad JSON, unknown members, no records, too many
 * records, a refused webhook URL); rows that fail are rejected in `in`. */
ENR_MUST_CHECK enum enr_err job_parse_json(const char *body, size_t len, const struct cfg *cfg,
			    const struct dom_lists *lists, struct job_input *in, json_t **details);

/* Parse a CSV submission (RFC 4180; header mapped to identifiers); enrich
 * is the ?enrich= list (NULL or "" for all fields).  CSV rows are read
 * leniently (job_normalise_row; short rows padded with empty cells, extra
 * trailing empty cells dropped); a row the reader rejects keeps the cells
 * it could split, so its input still comes out with the results (cells
 * that are not valid UTF-8 are kept as empty strings). */
ENR_MUST_CHECK enum enr_err job_parse_csv(const char *body, size_t len, const char *enrich,
			   const struct cfg *cfg, const struct dom_lists *lists,
			   struct job_input *in, json_t **details);

/* Rebuild the normalised record of a stored row.  ENR_E_INVALID with a
 * reason in why when the row no longer validates.  On ENR_OK why holds
 * the warnings of a leniently read CSV row ("email ignored: ..."), or ""
 * when there are none (always for JSON rows, which stay strict). */
ENR_MUST_CHECK enum enr_err job_row_record(const struct st_job *job, const char *input, const struct cfg *cfg,
			    const struct dom_lists *lists, struct rec *out, char *why,
			    size_t whylen);

/* Normalise a batch row's record the lenient way (CSV inputs of
 * POST /enrich/enqueue and enrich-batch): an identifier that fails
 * validation is dropped as if it were absent when another valid
 * identifier remains, and said in warn ("email ignored: not a valid e-mail
 * address", several joined by "; "; "" when none; truncated to warnsz).
 * Returns ENR_OK with r normalised; ENR_E_INVALID with *p (when not NULL)
 * naming the first identifier that failed, or the record as a whole, when
 * nothing valid remains - r is then unspecified; ENR_E_NOMEM.  POST
 * /enrich and JSON records stay strict (rec_normalise). */
ENR_MUST_CHECK enum enr_err job_normalise_row(struct rec *r, size_t field_max, char *warn, size_t warnsz,
			       struct rec_problem *p);

/* Optional result columns (bits for job_result_columns). */
#define JOB_COL_SOURCE 1u       /* _source: "field=provider; ..." for every field found */
#define JOB_COL_CONFIDENCE 2u   /* _confidence: the lowest confidence of the fields found */

#define JOB_COLUMNS_MAX (FLD__MAX + 4)
#define JOB_COLUMN_NAME_MAX (LIM_NAME_MAX + 24)

/* The names of the columns a result adds after the input columns, in
 * order: every wanted field (enum fld_id order), then _source and
 * _confidence when asked for in extra, then _status and _error.  One rule
 * for enrich-batch and the job results: a column takes its own name
 * unless an input column or an earlier added column already has it (ASCII
 * case ignored; a "Company" input column does not take "company_name"),
 * and then NAME_enriched, NAME_enriched2, NAME_enriched3, ...  input
 * holds ninput names of lens[i] bytes (lens NULL: NUL-terminated).
 * Writes *n names (at most JOB_COLUMNS_MAX) into names.  Returns ENR_OK,
 * or ENR_E_INTERNAL when no free name was found. */
ENR_MUST_CHECK enum enr_err job_result_columns(const char *const *input, const size_t *lens, size_t ninput,
				fld_set want, unsigned extra,
				char names[JOB_COLUMNS_MAX][JOB_COLUMN_NAME_MAX], size_t *n);

/* The _source cell of a result: "first_name=pdl; title=lusha" for every
 * wanted field that was found, in enum fld_id order ("" when none). */
ENR_MUST_CHECK enum enr_err job_source_cell(const struct wf_result *r, fld_set want, struct buf *out);

/* The _confidence cell: the lowest confidence (0..1, two decimals) of the
 * wanted fields that were found; "" when none was. */
void job_confidence_cell(const struct wf_result *r, fld_set want, char *out, size_t outsz);

/* The stored result of an enriched row: {"fields": {...}, "sources": {...}}. */
char *job_result_json(const struct wf_result *r);

/* What a worker does with a row after the waterfall. */
enum job_action {
	JOB_ROW_DONE,      /* an answer: complete, partial or not_found, no provider failed */
	JOB_ROW_SNOOZE,    /* a provider's keys are all cooling: retry when one is back, free */
	JOB_ROW_RETRY,     /* a provider failed: retry after a back-off, attempt spent */
	JOB_ROW_FAIL,      /* a provider failed and the row is out of attempts */
};

/* Decide for a row that has had `attempts` earlier attempts (the one just
 * made not counted).  A failure is never a miss, so a row is DONE only
 * when every wanted field was found, or when every provider asked answered
 * (hit or "no such record") and none failed, had no usable key or ran out
 * of time: r->status is then complete, partial or not_found.  Otherwise
 * (r->status incomplete, or partial with errors):
 *   - SNOOZE when the account's credit budget refused a paid lookup
 *     (r->budget_exceeded, nothing failed): *not_before is the budget's
 *     reset (r->budget_until_ms); no attempt is spent;
 *   - SNOOZE when a provider had no usable key and one comes back by itself
 *     (r->comes_back_ms): *not_before is that time (now + 1 s at the
 *     earliest); no attempt is spent, so rate limits never fail a row;
 *   - FAIL when attempts + 1 reaches cfg->worker.max_attempts;
 *   - RETRY otherwise: *not_before is now + backoff_base_ms * 2^attempts
 *     (capped at backoff_max_ms) plus up to a quarter of it times jitter
 *     ([0,1)); the attempt counts.
 * *not_before is written for SNOOZE and RETRY only.  Pure; thread-safe;
 * shared by enrich-worker and enrich-batch. */
enum job_action job_decide(const struct wf_result *r, int attempts, const struct cfg *cfg,
			   int64_t now_ms, double jitter, int64_t *not_before);

/* Why a result that job_decide() did not take as done is no answer yet,
 * for reports: code "upstream_failed" (a provider failed on every key
 * tried), "deadline" (the walk's deadline passed; deadline_ms, when
 * positive, is named), "budget_exceeded" (the credit budget is spent),
 * "no_key" (no usable key for the providers named), else "incomplete".  Writes NUL-terminated code and reason. */
void job_not_done_reason(const struct wf_result *r, int64_t deadline_ms, char *code,
			 size_t codesz, char *reason, size_t reasonsz);

/* The machine code of a row that did not get an answer, for the job's
 * error summary: "upstream_timeout" (a timeout or the deadline),
 * "budget_exceeded" (the account's credit budget is spent), "unavailable"
 * (only providers without a usable key) or "upstream_failed". */
const char *job_error_code(const struct wf_result *r);

/* The row's _error text: which provider failed how, and after how many
 * attempts ("pdl: transient; lusha: timeout (3 attempts)").  Always
 * NUL-terminated. */
void job_error_text(const struct wf_result *r, int attempts, char *out, size_t outsz);

/* A row's _status in the results: complete, partial, not_found (done),
 * incomplete (failed: providers failed on every attempt; the fields found
 * so far are filled, _error says which provider failed how, and
 * POST /enrich/jobs/{id}/retry runs it again), invalid, pending. */
const char *job_row_status(const struct st_job_row_out *row);

/* Result formats.  JOB_OUT_CSV neutralises cells that a spreadsheet would
 * run as formulas (a leading '=', '+', '-', '@', tab or CR gets a single
 * quote in front: lib/csv.h CSV_W_NEUTRALISE_FORMULAS), whether they came
 * from the input or from a provider; JOB_OUT_CSV_RAW writes every cell as
 * it is, for machine consumers (?formulas=raw). */
enum job_out { JOB_OUT_CSV, JOB_OUT_CSV_RAW, JOB_OUT_NDJSON };

/* The CSV header line of a job's results (fmt: JOB_OUT_CSV or
 * JOB_OUT_CSV_RAW; the names of CSV input columns are the client's). */
ENR_MUST_CHECK enum enr_err job_csv_header(const struct st_job *job, enum job_out fmt, struct buf *out);

/* One finished row in the given format (appended to out). */
ENR_MUST_CHECK enum enr_err job_render_row(const struct st_job *job, const struct st_job_row_out *row,
			    enum job_out fmt, struct buf *out);

/* GET /enrich/jobs/{id}: status, counts, progress, rate, ETA, credits,
 * times and top errors. New reference. */
json_t *job_status_json(struct store *s, const struct st_job *job, int64_t now_ms);

#endif
