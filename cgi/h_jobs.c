/*
 * h_jobs.c - batch enrichment: POST /enrich/enqueue and the jobs API.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "lib/estimate.h"
#include "lib/jobs.h"
#include "lib/log.h"
#include "lib/util.h"
#include "routes.h"

#define STREAM_CHUNK (64u * 1024u)

/* An Idempotency-Key is printable ASCII, at most 128 bytes. */
static bool idem_ok(const char *k)
{
	size_t n = 0;

	for (; k[n]; n++) {
		if (k[n] < 0x21 || k[n] > 0x7e)
			return false;
	}
	return n > 0 && n <= 128;
}

static void accepted(struct http_req *r, const struct st_job *job, json_t *rejections)
{
	char url[64];
	json_t *j;

	snprintf(url, sizeof url, "/enrich/jobs/%s", job->id);
	http_set_header(r, "Location", url);
	j = json_pack("{s:s, s:s, s:I, s:I, s:s}", "job_id", job->id, "status",
		      st_job_status_names[job->status], "total", (json_int_t)job->total, "rejected",
		      (json_int_t)job->rejected, "status_url", url);
	if (j && rejections && json_array_size(rejections) > 0)
		json_object_set(j, "rejections", rejections);
	http_json(r, 202, j);
}

/* ?dry_run=true: what the batch would cost, from the cache and the input,
 * calling nobody and creating nothing (no job, no quota or budget spent). */
static enum enr_err estimate(struct http_req *r, const struct job_input *in)
{
	struct st_job fake;
	struct est e;
	struct wf_ctx ctx;
	json_t *j;
	enum enr_err rc = ENR_OK;

	memset(&fake, 0, sizeof fake);
	fake.format = in->format;
	fake.columns = in->columns;
	fake.want = in->want;
	memset(&ctx, 0, sizeof ctx);
	ctx.store = app_store();
	ctx.cfg = r->cfg;
	ctx.pctx = app_prov_ctx();
	ctx.endpoint = CFG_EP_ENQUEUE;
	ctx.no_calls = true;
	est_init(&e, r->cfg, CFG_EP_ENQUEUE);
	for (size_t i = 0; rc == ENR_OK && i < in->nrows; i++) {
		struct rec rec;
		struct est_row row;
		char why[256];

		if (in->rows[i].invalid)
			continue;
		rec_init(&rec);
		rc = job_row_record(&fake, in->rows[i].input, r->cfg, app_lists(), &rec, why,
				    sizeof why);
		if (rc == ENR_E_INVALID) {
			rc = ENR_OK; /* validated at submission: counted there */
		} else if (rc == ENR_OK) {
			rc = est_row(&ctx, &rec, in->want, &row);
			if (rc == ENR_OK)
				rc = est_add(&e, &row);
		}
		rec_release(&rec);
	}
	if (rc == ENR_OK) {
		est_finish(&e, app_store(), util_now_ms());
		j = est_json(&e);
		if (j == NULL) {
			rc = ENR_E_NOMEM;
		} else {
			json_object_set_new(j, "dry_run", json_true());
			json_object_set_new(j, "total", json_integer((json_int_t)in->nrows));
			json_object_set_new(j, "rejected", json_integer((json_int_t)in->rejected));
			if (in->rejections && json_array_size(in->rejections) > 0)
				json_object_set(j, "rejections", in->rejections);
			http_json(r, 200, j);
		}
	}
	est_release(&e);
	return rc;
}

/* The earlier job of an idempotent resubmission, answered like the first time. */
static enum enr_err answer_existing(struct http_req *r, const char *id)
{
	struct st_job job;
	enum enr_err rc = st_job_get(app_store(), id, r->account_id, &job);

	if (rc)
		return rc;
	http_set_header(r, "Idempotent-Replayed", "true");
	accepted(r, &job, NULL);
	st_job_release(&job);
	return ENR_OK;
}

enum enr_err h_enqueue(struct http_req *r)
{
	struct job_input in;
	struct st_job job;
	json_t *details = NULL;
	const char *idem = http_param(r, "HTTP_IDEMPOTENCY_KEY");
	const char *enrich = qs_get(&r->qs, "enrich");
	const char *dry = qs_get(&r->qs, "dry_run");
	char existing[ST_JOB_ID_LEN + 1] = "";
	int64_t fit = 0, counted;
	enum enr_err rc;
	bool csv = http_content_type_is(r, "text/csv"), created = false;
	bool dry_run = dry && strcmp(dry, "true") == 0;

	if (idem && *idem == '\0')
		idem = NULL;
	if (idem && !idem_ok(idem)) {
		http_error(r, ENR_E_INVALID, "Idempotency-Key must be 1 to 128 printable characters",
			   json_pack("[{s:s, s:s}]", "field", "Idempotency-Key", "problem",
				     "not printable ASCII of at most 128 bytes"));
		return ENR_OK;
	}
	if (idem && !dry_run) {
		/* A quick answer for a resubmission; st_job_create decides for
		 * sure (two submissions racing each other). */
		rc = st_job_find_idempotent(app_store(), r->account_id, idem, existing);
		if (rc == ENR_OK)
			return answer_existing(r, existing);
		if (rc != ENR_E_NOT_FOUND)
			return rc;
	}
	if (!csv && !http_is_json(r)) {
		http_error(r, ENR_E_MEDIA_TYPE, "the body must be application/json or text/csv", NULL);
		return ENR_OK;
	}
	if (!http_charset_ok(r)) {
		http_error(r, ENR_E_MEDIA_TYPE, "the body must be UTF-8 (charset=utf-8)", NULL);
		return ENR_OK;
	}
	if (!csv && enrich) {
		/* A JSON submission names its fields in the body; a query it would
		 * ignore is refused, not dropped. */
		http_error(r, ENR_E_INVALID, "?enrich= is for CSV bodies; a JSON submission "
					     "names its fields in \"enrich\"",
			   json_pack("[{s:s, s:s}]", "field", "enrich", "problem",
				     "given in the query of a JSON submission"));
		return ENR_OK;
	}
	rc = http_read_body(r, (size_t)r->cfg->limits.body_max_bytes);
	if (rc) {
		http_error(r, rc == ENR_E_TOO_LARGE ? rc : ENR_E_INVALID,
			   rc == ENR_E_TOO_LARGE ? NULL : "the request body could not be read", NULL);
		return ENR_OK;
	}
	job_input_init(&in);
	memset(&job, 0, sizeof job);
	if (csv) {
		rc = job_parse_csv(r->body.data, r->body.len, enrich, r->cfg, app_lists(), &in,
				   &details);
	} else {
		bool from_search = false;

		/* {"from_search": ...}: the records are a search's results. */
		rc = h_from_search(r, &in, &details, &from_search);
		if (r->responded) {
			rc = ENR_OK;
			goto out;
		}
		if (!from_search)
			rc = job_parse_json(r->body.data, r->body.len, r->cfg, app_lists(), &in,
					    &details);
	}
	if (rc == ENR_E_INVALID || rc == ENR_E_TOO_LARGE) {
		http_error(r, rc, rc == ENR_E_TOO_LARGE ? "the batch holds too many records"
							: "the submission is not valid; see details",
			   details);
		details = NULL;
		rc = ENR_OK;
		goto out;
	}
	if (rc)
		goto out;
	if (dry_run) {
		rc = estimate(r, &in);
		goto out;
	}

	/* The whole batch against the record quota, up front. */
	counted = (int64_t)(in.nrows - in.rejected);
	rc = route_admit(r, 0, counted, &fit);
	if (rc == ENR_E_QUOTA) {
		char msg[160];

		snprintf(msg, sizeof msg,
			 "the batch has %zu records; %lld fit in the account's quota now",
			 in.nrows - in.rejected, (long long)fit);
		http_error(r, rc, msg,
			   json_pack("[{s:s, s:s, s:I}]", "field", "records", "problem",
				     "over the record quota", "fits", (json_int_t)fit));
		rc = ENR_OK;
		goto out;
	}
	if (rc)
		goto out;

	job.account_id = r->account_id;
	job.want = in.want;
	job.format = in.format;
	job.columns = in.columns;
	util_strlcpy(job.webhook_url, in.webhook_url, sizeof job.webhook_url);
	rc = job_new_id(job.id);
	if (rc == ENR_OK)
		rc = st_job_create(app_store(), &job, idem, in.rows, in.nrows, util_now_ms(),
				   &created, existing);
	job.columns = NULL; /* still in.columns' */
	if (rc || !created) {
		/* The records were counted for a job that is not there: give
		 * them back to the quota and the usage. */
		enum enr_err rr = adm_refund(app_admission(), r->account_id, &r->limits, counted,
					     util_now_ms());

		if (rr)
			log_warn("jobs", "%lld records of account %s not given back to the quota: %s",
				 (long long)counted, r->account_name, enr_strerror(rr));
	}
	if (rc)
		goto out;
	if (!created) {
		rc = answer_existing(r, existing);
		goto out;
	}
	log_info("jobs", "job %s: %lld rows queued, %lld rejected, account %s", job.id,
		 (long long)job.pending, (long long)job.rejected, r->account_name);
	accepted(r, &job, in.rejections);
out:
	json_decref(details);
	job_input_release(&in);
	return rc;
}

/* The account whose jobs r may see: its own, or any (-1) for an admin key,
 * so operators can follow, download, retry and cancel every account's jobs. */
static int64_t jobs_of(const struct http_req *r)
{
	return (r->scopes & SCOPE_ADMIN) ? -1 : r->account_id;
}

/* The job in the path, of this account (any for an admin); answers 404 itself. */
static bool load_job(struct http_req *r, struct st_job *job, enum enr_err *rc)
{
	*rc = st_job_get(app_store(), r->params[0], jobs_of(r), job);
	if (*rc == ENR_E_NOT_FOUND) {
		http_error(r, ENR_E_NOT_FOUND, "no such job", NULL);
		*rc = ENR_OK;
		return false;
	}
	return *rc == ENR_OK;
}

enum enr_err h_job_status(struct http_req *r)
{
	struct st_job job;
	enum enr_err rc;
	json_t *j;

	if (!load_job(r, &job, &rc))
		return rc;
	j = job_status_json(app_store(), &job, util_now_ms());
	st_job_release(&job);
	if (j == NULL)
		return ENR_E_NOMEM;
	http_json(r, 200, j);
	return ENR_OK;
}

struct stream {
	struct http_req *r;
	const struct st_job *job;
	enum job_out fmt;
	struct buf b;
	bool broken;
};

static int stream_row(void *arg, const struct st_job_row_out *row)
{
	struct stream *s = arg;

	if (job_render_row(s->job, row, s->fmt, &s->b) != ENR_OK)
		return 1;
	if (s->b.len >= STREAM_CHUNK) {
		if (http_write(s->r, s->b.data, s->b.len) != ENR_OK) {
			s->broken = true; /* the client went away */
			return 1;
		}
		buf_reset(&s->b);
	}
	return 0;
}

enum enr_err h_job_results(struct http_req *r)
{
	struct st_job job;
	struct stream s;
	const char *fmt = qs_get(&r->qs, "format"), *formulas = qs_get(&r->qs, "formulas");
	enum enr_err rc;

	if (fmt == NULL)
		fmt = "csv";
	if (formulas && strcmp(fmt, "csv") != 0) {
		http_error(r, ENR_E_INVALID, "formulas applies to CSV results only",
			   json_pack("[{s:s, s:s}]", "field", "formulas", "problem",
				     "given with format=ndjson"));
		return ENR_OK;
	}
	if (!load_job(r, &job, &rc))
		return rc;
	s.r = r;
	s.job = &job;
	if (strcmp(fmt, "ndjson") == 0)
		s.fmt = JOB_OUT_NDJSON;
	else if (formulas && strcmp(formulas, "raw") == 0)
		s.fmt = JOB_OUT_CSV_RAW;
	else
		s.fmt = JOB_OUT_CSV;
	s.broken = false;
	buf_init(&s.b, STREAM_CHUNK * 4);
	if (s.fmt != JOB_OUT_NDJSON) {
		char cd[96];

		snprintf(cd, sizeof cd, "attachment; filename=\"%s.csv\"", job.id);
		http_set_header(r, "Content-Disposition", cd);
		rc = job_csv_header(&job, s.fmt, &s.b);
	}
	http_set_header(r, "X-Job-Status", st_job_status_names[job.status]);
	http_begin_stream(r, 200, s.fmt != JOB_OUT_NDJSON ? "text/csv; charset=utf-8"
							  : "application/x-ndjson");
	if (rc == ENR_OK)
		rc = st_job_rows_each(app_store(), job.seq, stream_row, &s);
	if (rc == ENR_OK && !s.broken && s.b.len)
		http_write(r, s.b.data, s.b.len);
	if (rc)
		log_error("jobs", "results of %s cut short: %s", job.id, enr_strerror(rc));
	buf_release(&s.b);
	st_job_release(&job);
	return ENR_OK; /* the status line has gone out; nothing else to say */
}

enum enr_err h_job_retry(struct http_req *r)
{
	struct st_job job;
	enum enr_err rc;
	int64_t n = 0;

	if (!load_job(r, &job, &rc))
		return rc;
	if (job.status == ST_JOB_CANCELLED) {
		st_job_release(&job);
		http_error(r, ENR_E_CONFLICT, "the job was cancelled", NULL);
		return ENR_OK;
	}
	rc = st_job_retry(app_store(), job.seq, util_now_ms(), &n);
	st_job_release(&job);
	if (rc)
		return rc;
	rc = st_job_get(app_store(), r->params[0], jobs_of(r), &job);
	if (rc)
		return rc;
	http_json(r, 200, json_pack("{s:s, s:I, s:s}", "job_id", job.id, "requeued", (json_int_t)n,
				    "status", st_job_status_names[job.status]));
	st_job_release(&job);
	return ENR_OK;
}

enum enr_err h_job_cancel(struct http_req *r)
{
	struct st_job job;
	enum enr_err rc;
	json_t *j;

	if (!load_job(r, &job, &rc))
		return rc;
	rc = st_job_cancel(app_store(), job.seq, util_now_ms());
	st_job_release(&job);
	if (rc == ENR_E_CONFLICT) {
		http_error(r, rc, "the job has already ended", NULL);
		return ENR_OK;
	}
	if (rc)
		return rc;
	rc = st_job_get(app_store(), r->params[0], jobs_of(r), &job);
	if (rc)
		return rc;
	j = job_status_json(app_store(), &job, util_now_ms());
	st_job_release(&job);
	http_json(r, 200, j);
	return ENR_OK;
}

/* ---- the listing ----------------------------------------------------------------- */

#define JOBS_PAGE_DEFAULT 20

struct page_ctx {
	json_t *arr;
	int limit, n;
	struct st_job_cursor last;
	bool more, failed;
	int64_t now_ms;
};

static int page_job(void *arg, const struct st_job *j, const char *account)
{
	struct page_ctx *c = arg;
	json_t *o;

	if (c->n == c->limit) {
		c->more = true; /* the one read beyond the page: there is a next page */
		return 1;
	}
	o = job_status_json(app_store(), j, c->now_ms);
	if (o == NULL) {
		c->failed = true;
		return 1;
	}
	json_object_set_new(o, "account", json_string(account));
	json_array_append_new(c->arr, o);
	c->last.created_ms = j->created_ms;
	c->last.seq = j->seq;
	c->n++;
	return 0;
}

/* A cursor is "CREATED_MS.SEQ" of the last job of the previous page; the
 * route's table has checked its shape. */
static bool cursor_parse(const char *s, struct st_job_cursor *out)
{
	char a[24];
	const char *dot = strchr(s, '.');
	size_t n = dot ? (size_t)(dot - s) : 0;

	if (dot == NULL || n == 0 || n >= sizeof a)
		return false;
	memcpy(a, s, n);
	a[n] = '\0';
	return util_parse_i64(a, 0, INT64_MAX, &out->created_ms) == ENR_OK &&
	       util_parse_i64(dot + 1, 1, INT64_MAX, &out->seq) == ENR_OK;
}

/* GET /enrich/jobs[?limit=N][&cursor=C][&account=NAME]: the caller's jobs
 * (an admin: every account's, or one's with ?account=), newest first; a
 * page ends with next_cursor, null on the last one. */
enum enr_err h_jobs_list(struct http_req *r)
{
	const char *lim = qs_get(&r->qs, "limit"), *cur = qs_get(&r->qs, "cursor");
	const char *name = qs_get(&r->qs, "account");
	struct page_ctx c = { .arr = json_array(), .limit = JOBS_PAGE_DEFAULT,
			      .now_ms = util_now_ms() };
	struct st_job_cursor after;
	int64_t account_id = jobs_of(r), v;
	char next[48];
	enum enr_err rc;

	if (c.arr == NULL)
		return ENR_E_NOMEM;
	if (lim && util_parse_i64(lim, 1, 100, &v) == ENR_OK)
		c.limit = (int)v;
	if (cur && !cursor_parse(cur, &after)) {
		json_decref(c.arr);
		return ENR_E_INTERNAL; /* the table let through what it should not */
	}
	if (name) {
		struct st_account a;

		if (!(r->scopes & SCOPE_ADMIN)) {
			json_decref(c.arr);
			http_error(r, ENR_E_FORBIDDEN, "?account= needs the admin scope",
				   json_pack("[{s:s, s:s}]", "field", "account", "problem",
					     "only an admin key may list another account's jobs"));
			return ENR_OK;
		}
		rc = st_account_by_name(app_store(), name, &a);
		if (rc == ENR_E_NOT_FOUND) {
			json_decref(c.arr);
			http_error(r, rc, "no such account", NULL);
			return ENR_OK;
		}
		if (rc) {
			json_decref(c.arr);
			return rc;
		}
		account_id = a.id;
	}
	rc = st_job_page(app_store(), account_id, cur ? &after : NULL, c.limit + 1, page_job, &c);
	if (rc == ENR_OK && c.failed)
		rc = ENR_E_NOMEM;
	if (rc) {
		json_decref(c.arr);
		return rc;
	}
	snprintf(next, sizeof next, "%lld.%lld", (long long)c.last.created_ms, (long long)c.last.seq);
	http_json(r, 200, json_pack("{s:o, s:s?}", "jobs", c.arr, "next_cursor", c.more ? next : NULL));
	return ENR_OK;
}
