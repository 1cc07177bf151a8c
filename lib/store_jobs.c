/*
 * store_jobs.c - batch jobs (both back ends).
 *
 * A job is a row in `jobs` with its counters, and one row per input record
 * in `job_rows`.  Workers claim rows under a lease with one guarded
 * statement (SQLite: an UPDATE of the rows still claimable, inside BEGIN
 * IMMEDIATE; PostgreSQL: the same UPDATE over rows picked FOR UPDATE SKIP
 * LOCKED), and every later change of a row is guarded by
 * `state = running AND owner = me`, so a row whose lease expired and was
 * claimed again can never be finished twice.  The job's counters move in
 * the same transaction as the row.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

const char *const st_job_status_names[ST_JOB__MAX] = {
	[ST_JOB_QUEUED] = "queued",
	[ST_JOB_RUNNING] = "running",
	[ST_JOB_COMPLETED] = "completed",
	[ST_JOB_FAILED] = "failed",
	[ST_JOB_CANCELLED] = "cancelled",
};

#define JOB_COLS                                                                          \
	"SELECT seq, id, account_id, status, want, format, columns, total, rejected, pending," \
	" done, found, not_found, failed, credits, webhook_url, webhook_state,"            \
	" webhook_attempts, webhook_next_ms, created_ms, started_ms, finished_ms FROM jobs"

/* Rows a claim may take: pending and due, or running with a lease that
 * ran out (their worker died). */
#define CLAIMABLE(p) "((" p "state = 0 AND " p "not_before_ms <= ?1)" \
		     " OR (" p "state = 1 AND " p "lease_until_ms < ?1))"
#define CLAIMABLE_PG(p) "((" p "state = 0 AND " p "not_before_ms <= $1)" \
			" OR (" p "state = 1 AND " p "lease_until_ms < $1))"

static struct db_stmt q_insert_job =
	DB_WRITE("INSERT INTO jobs(id, account_id, status, want, format, columns, total,"
		 " rejected, pending, webhook_url, idempotency_key, created_ms, failed)"
		 " VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)"
		 " ON CONFLICT(account_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
		 " DO NOTHING RETURNING seq");
static struct db_stmt q_insert_row =
	DB_WRITE("INSERT INTO job_rows(job_seq, rownum, input, state, error_code, error)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
static struct db_stmt q_by_idem =
	DB_READ("SELECT id FROM jobs WHERE account_id = ?1 AND idempotency_key = ?2");
static struct db_stmt q_get = DB_READ(JOB_COLS " WHERE id = ?1");
/* The listing: JOB_COLS of j, then the account's name. */
#define PAGE_COLS                                                                          \
	"SELECT j.seq, j.id, j.account_id, j.status, j.want, j.format, j.columns, j.total,"   \
	" j.rejected, j.pending, j.done, j.found, j.not_found, j.failed, j.credits,"        \
	" j.webhook_url, j.webhook_state, j.webhook_attempts, j.webhook_next_ms,"           \
	" j.created_ms, j.started_ms, j.finished_ms, a.name"                                \
	" FROM jobs j JOIN accounts a ON a.id = j.account_id"
#define PAGE_AFTER " (j.created_ms < ?1 OR (j.created_ms = ?1 AND j.seq < ?2))"
#define PAGE_ORDER " ORDER BY j.created_ms DESC, j.seq DESC LIMIT ?3"
static struct db_stmt q_page_all = DB_READ(PAGE_COLS " WHERE" PAGE_AFTER PAGE_ORDER);
static struct db_stmt q_page_account =
	DB_READ(PAGE_COLS " WHERE j.account_id = ?4 AND" PAGE_AFTER PAGE_ORDER);
static struct db_stmt q_stats_rows =
	DB_READ("SELECT state, count(*) FROM job_rows WHERE state IN (0, 1, 3) GROUP BY state");
static struct db_stmt q_stats_jobs = DB_READ("SELECT status, count(*) FROM jobs GROUP BY status");
static struct db_stmt q_stats_oldest =
	DB_READ("SELECT coalesce(min(created_ms), 0) FROM jobs WHERE pending > 0 AND status IN (0, 1)");
static struct db_stmt q_get_seq = DB_READ(JOB_COLS " WHERE seq = ?1");
static struct db_stmt q_since =
	DB_READ("SELECT count(*) FROM job_rows WHERE job_seq = ?1 AND finished_ms > ?2"
		" AND state = 2");
static struct db_stmt q_errors =
	DB_READ("SELECT error_code, count(*) FROM job_rows WHERE job_seq = ?1"
		" AND error_code IS NOT NULL AND state IN (3, 4)"
		" GROUP BY error_code ORDER BY 2 DESC, 1 LIMIT 10");
static struct db_stmt q_rows = {
	.sql = "SELECT rownum, input, state, status, result, error_code, error FROM job_rows"
	       " WHERE job_seq = ?1 AND state IN (2, 3, 4) ORDER BY rownum",
	.stream = true,
};
static struct db_stmt q_cancel_rows =
	DB_WRITE("UPDATE job_rows SET state = 5 WHERE job_seq = ?1 AND state = 0");
static struct db_stmt q_cancel_job =
	DB_WRITE("UPDATE jobs SET status = 4, pending = pending - ?2, finished_ms = ?3"
		 " WHERE seq = ?1 AND status IN (0, 1)");
static struct db_stmt q_retry_rows =
	DB_WRITE("UPDATE job_rows SET state = 0, attempts = 0, not_before_ms = 0, owner = NULL,"
		 " error_code = NULL, error = NULL WHERE job_seq = ?1 AND state = 3");
static struct db_stmt q_retry_job =
	DB_WRITE("UPDATE jobs SET pending = pending + ?2, failed = failed - ?2,"
		 " status = CASE WHEN started_ms > 0 THEN 1 ELSE 0 END, finished_ms = 0,"
		 " webhook_state = CASE WHEN webhook_url <> '' THEN 0 ELSE webhook_state END"
		 " WHERE seq = ?1");
/* Oldest job first, input order within a job. */
static struct db_stmt q_claim = DB_WRITE2(
	"UPDATE job_rows SET state = 1, owner = ?3, lease_until_ms = ?4"
	" WHERE (job_seq, rownum) IN (SELECT job_seq, rownum FROM job_rows WHERE " CLAIMABLE("")
	"   ORDER BY job_seq, rownum LIMIT ?2)"
	" AND " CLAIMABLE("") " RETURNING job_seq, rownum, input, attempts",
	/* MATERIALIZED: the rows are picked and locked once.  As a plain
	 * subquery the planner may rescan it, and a rescan skips the rows
	 * this statement already updated and locks further ones: more rows
	 * than asked for would change hands. */
	"WITH c AS MATERIALIZED (SELECT job_seq, rownum FROM job_rows WHERE " CLAIMABLE_PG("")
	"   ORDER BY job_seq, rownum LIMIT $2 FOR UPDATE SKIP LOCKED)"
	" UPDATE job_rows r SET state = 1, owner = $3, lease_until_ms = $4 FROM c"
	" WHERE r.job_seq = c.job_seq AND r.rownum = c.rownum AND " CLAIMABLE_PG("r.")
	" RETURNING r.job_seq, r.rownum, r.input, r.attempts");
static struct db_stmt q_job_start =
	DB_WRITE("UPDATE jobs SET status = 1, started_ms = ?2 WHERE seq = ?1 AND status = 0");
static struct db_stmt q_heartbeat =
	DB_WRITE("UPDATE job_rows SET lease_until_ms = ?4"
		 " WHERE job_seq = ?1 AND rownum = ?2 AND owner = ?3 AND state = 1");
static struct db_stmt q_release =
	DB_WRITE("UPDATE job_rows SET state = 0, owner = NULL, lease_until_ms = 0"
		 " WHERE owner = ?1 AND state = 1");
static struct db_stmt q_release_one =
	DB_WRITE("UPDATE job_rows SET state = 0, owner = NULL, lease_until_ms = 0"
		 " WHERE job_seq = ?1 AND rownum = ?2 AND owner = ?3 AND state = 1");
static struct db_stmt q_finish_row =
	DB_WRITE("UPDATE job_rows SET state = ?4, status = ?5, result = ?6, error_code = ?7,"
		 " error = ?8, credits = ?9, finished_ms = ?10, owner = NULL"
		 " WHERE job_seq = ?1 AND rownum = ?2 AND state = 1 AND owner = ?3");
static struct db_stmt q_finish_job =
	DB_WRITE("UPDATE jobs SET pending = pending - 1, done = done + ?2, found = found + ?3,"
		 " not_found = not_found + ?4, failed = failed + ?5, credits = credits + ?6"
		 " WHERE seq = ?1 RETURNING pending, status");
static struct db_stmt q_end_job =
	DB_WRITE("UPDATE jobs SET status = ?2, finished_ms = ?3,"
		 " webhook_state = CASE WHEN webhook_url <> '' THEN 1 ELSE 0 END,"
		 " webhook_attempts = 0, webhook_next_ms = ?3"
		 " WHERE seq = ?1 AND status IN (0, 1)");
static struct db_stmt q_requeue =
	DB_WRITE("UPDATE job_rows SET state = 0, owner = NULL, lease_until_ms = 0,"
		 " not_before_ms = ?4, attempts = attempts + ?5, error_code = ?6, error = ?7"
		 " WHERE job_seq = ?1 AND rownum = ?2 AND state = 1 AND owner = ?3");
static struct db_stmt q_hooks_due =
	DB_READ("SELECT seq FROM jobs WHERE webhook_state = 1 AND webhook_next_ms <= ?1"
		" ORDER BY webhook_next_ms LIMIT ?2");
static struct db_stmt q_hook_set =
	DB_WRITE("UPDATE jobs SET webhook_state = ?2, webhook_next_ms = ?3,"
		 " webhook_attempts = webhook_attempts + 1 WHERE seq = ?1");
static struct db_stmt q_hook_claim =
	DB_WRITE("UPDATE jobs SET webhook_next_ms = ?3 WHERE seq = ?1 AND webhook_state = 1"
		 " AND webhook_next_ms <= ?2");

/* Rows go in by ROWS_PER_INSERT a statement (a PostgreSQL round trip
 * each); the statement is written once, at first use. */
#define ROWS_PER_INSERT 50
#define ROW_PARAMS 6
static struct db_stmt q_insert_rows = { .write = true };
static char insert_rows_sql[ROWS_PER_INSERT * 40 + 128];
static pthread_once_t insert_rows_once = PTHREAD_ONCE_INIT;

static void insert_rows_build(void)
{
	size_t o = (size_t)snprintf(insert_rows_sql, sizeof insert_rows_sql,
				    "INSERT INTO job_rows(job_seq, rownum, input, state,"
				    " error_code, error) VALUES ");

	for (int r = 0; r < ROWS_PER_INSERT; r++) {
		int b = r * ROW_PARAMS;

		o += (size_t)snprintf(insert_rows_sql + o, sizeof insert_rows_sql - o,
				      "%s(?%d, ?%d, ?%d, ?%d, ?%d, ?%d)", r ? ", " : "", b + 1,
				      b + 2, b + 3, b + 4, b + 5, b + 6);
	}
	q_insert_rows.sql = insert_rows_sql;
}

void st_job_release(struct st_job *j)
{
	free(j->columns);
	j->columns = NULL;
}

/* ---- create ------------------------------------------------------------------ */

struct create_tx {
	struct st_job *j;
	const char *idem;
	const struct st_job_row *rows;
	size_t nrows;
	int64_t now_ms, accepted, seq;
	bool created;
	char existing[ST_JOB_ID_LEN + 1];
};

static int idem_row(void *arg, const struct db_row *r)
{
	db_textcpy(r, 0, arg, ST_JOB_ID_LEN + 1);
	return 1;
}

static void row_params(struct db_param *p, int64_t seq, size_t i, const struct st_job_row *row)
{
	memset(p, 0, ROW_PARAMS * sizeof *p);
	p[0].type = 'i';
	p[0].i = seq;
	p[1].type = 'i';
	p[1].i = (int64_t)i + 1;
	p[2].type = 't';
	p[2].p = row->input;
	p[3].type = 'i';
	p[3].i = row->invalid ? ST_ROW_INVALID : ST_ROW_PENDING;
	p[4].type = 't';
	p[4].p = row->invalid ? "invalid_request" : NULL;
	p[5].type = 't';
	p[5].p = row->invalid ? row->error : NULL;
}

static enum enr_err create_tx(struct db_conn *c, void *arg)
{
	struct create_tx *x = arg;
	struct st_job *j = x->j;
	struct db_param p[ROWS_PER_INSERT * ROW_PARAMS];
	enum enr_err rc;
	size_t i = 0;

	x->seq = 0;
	x->created = false;
	x->existing[0] = '\0';
	rc = db_exec(c, &q_insert_job, db_one_i64, &x->seq, NULL, "tiiitiiitti", j->id,
		     j->account_id, (int64_t)j->want, (int64_t)j->format,
		     j->columns ? j->columns : "[]", (int64_t)x->nrows,
		     (int64_t)x->nrows - x->accepted, x->accepted, j->webhook_url, x->idem,
		     x->now_ms);
	if (rc)
		return rc;
	if (x->seq == 0) {
		/* The idempotency key was used: answer with that job. */
		rc = db_exec(c, &q_by_idem, idem_row, x->existing, NULL, "it", j->account_id,
			     x->idem);
		if (rc == ENR_OK && x->existing[0] == '\0')
			rc = ENR_E_STORE; /* a conflict on a key nobody holds */
		return rc;
	}
	x->created = true;
	for (; rc == ENR_OK && i + ROWS_PER_INSERT <= x->nrows; i += ROWS_PER_INSERT) {
		for (int r = 0; r < ROWS_PER_INSERT; r++)
			row_params(&p[r * ROW_PARAMS], x->seq, i + (size_t)r, &x->rows[i + (size_t)r]);
		rc = db_execv(c, &q_insert_rows, p, ROWS_PER_INSERT * ROW_PARAMS, NULL, NULL, NULL);
	}
	for (; rc == ENR_OK && i < x->nrows; i++) {
		row_params(p, x->seq, i, &x->rows[i]);
		rc = db_execv(c, &q_insert_row, p, ROW_PARAMS, NULL, NULL, NULL);
	}
	/* A job whose every row was refused is over at once. */
	if (rc == ENR_OK && x->accepted == 0)
		rc = db_exec(c, &q_end_job, NULL, NULL, NULL, "iii", x->seq,
			     (int64_t)ST_JOB_COMPLETED, x->now_ms);
	return rc;
}

enum enr_err st_job_create(struct store *s, struct st_job *j, const char *idempotency_key,
			   const struct st_job_row *rows, size_t nrows, int64_t now_ms,
			   bool *created, char existing[ST_JOB_ID_LEN + 1])
{
	struct create_tx x;
	enum enr_err rc;

	pthread_once(&insert_rows_once, insert_rows_build);
	memset(&x, 0, sizeof x);
	x.j = j;
	x.idem = idempotency_key;
	x.rows = rows;
	x.nrows = nrows;
	x.now_ms = now_ms;
	for (size_t i = 0; i < nrows; i++)
		x.accepted += !rows[i].invalid;
	rc = db_tx(s, create_tx, &x);
	if (rc)
		return rc;
	*created = x.created;
	if (!x.created) {
		if (existing)
			util_strlcpy(existing, x.existing, ST_JOB_ID_LEN + 1);
		return ENR_OK;
	}
	j->seq = x.seq;
	j->total = (int64_t)nrows;
	j->rejected = (int64_t)nrows - x.accepted;
	j->pending = x.accepted;
	j->created_ms = now_ms;
	j->status = x.accepted > 0 ? ST_JOB_QUEUED : ST_JOB_COMPLETED;
	return ENR_OK;
}

enum enr_err st_job_find_idempotent(struct store *s, int64_t account_id, const char *key,
				    char id[ST_JOB_ID_LEN + 1])
{
	char v[ST_JOB_ID_LEN + 1] = "";
	enum enr_err rc = db_run(s, &q_by_idem, idem_row, v, NULL, "it", account_id, key);

	if (rc)
		return rc;
	if (v[0] == '\0')
		return ENR_E_NOT_FOUND;
	util_strlcpy(id, v, ST_JOB_ID_LEN + 1);
	return ENR_OK;
}

/* ---- reads ---------------------------------------------------------------------- */

struct one_job {
	struct st_job j;
	bool found;
};

static int job_row(void *arg, const struct db_row *r)
{
	struct one_job *x = arg;
	struct st_job *j = &x->j;

	memset(j, 0, sizeof *j);
	j->seq = db_i64(r, 0);
	db_textcpy(r, 1, j->id, sizeof j->id);
	j->account_id = db_i64(r, 2);
	j->status = (enum st_job_status)db_int(r, 3);
	j->want = (uint32_t)db_i64(r, 4);
	j->format = db_int(r, 5);
	j->columns = db_strdup(r, 6);
	j->total = db_i64(r, 7);
	j->rejected = db_i64(r, 8);
	j->pending = db_i64(r, 9);
	j->done = db_i64(r, 10);
	j->found = db_i64(r, 11);
	j->not_found = db_i64(r, 12);
	j->failed = db_i64(r, 13);
	j->credits = db_i64(r, 14);
	db_textcpy(r, 15, j->webhook_url, sizeof j->webhook_url);
	j->webhook_state = (enum st_hook_state)db_int(r, 16);
	j->webhook_attempts = db_int(r, 17);
	j->webhook_next_ms = db_i64(r, 18);
	j->created_ms = db_i64(r, 19);
	j->started_ms = db_i64(r, 20);
	j->finished_ms = db_i64(r, 21);
	x->found = true;
	return 1;
}

static enum enr_err job_one(struct store *s, struct db_stmt *q, const char *id, int64_t seq,
			    int64_t account_id, struct st_job *out)
{
	struct one_job x = { .found = false };
	enum enr_err rc = id ? db_run(s, q, job_row, &x, NULL, "t", id)
			     : db_run(s, q, job_row, &x, NULL, "i", seq);

	if (rc) {
		if (x.found)
			st_job_release(&x.j);
		return rc;
	}
	if (!x.found)
		return ENR_E_NOT_FOUND;
	if (x.j.columns == NULL)
		return ENR_E_NOMEM;
	/* Another account's job does not exist for this caller. */
	if (account_id >= 0 && x.j.account_id != account_id) {
		st_job_release(&x.j);
		return ENR_E_NOT_FOUND;
	}
	*out = x.j;
	return ENR_OK;
}

enum enr_err st_job_get(struct store *s, const char *id, int64_t account_id, struct st_job *out)
{
	return job_one(s, &q_get, id, 0, account_id, out);
}

enum enr_err st_job_by_seq(struct store *s, int64_t seq, struct st_job *out)
{
	return job_one(s, &q_get_seq, NULL, seq, -1, out);
}

struct page_each {
	int (*fn)(void *arg, const struct st_job *j, const char *account);
	void *arg;
	enum enr_err rc;
};

static int page_row(void *arg, const struct db_row *r)
{
	struct page_each *x = arg;
	struct one_job one = { .found = false };
	char account[LIM_NAME_MAX + 1];
	int stop;

	job_row(&one, r);
	if (one.j.columns == NULL) {
		x->rc = ENR_E_NOMEM;
		return 1;
	}
	db_textcpy(r, 22, account, sizeof account);
	stop = x->fn(x->arg, &one.j, account);
	st_job_release(&one.j);
	return stop;
}

enum enr_err st_job_page(struct store *s, int64_t account_id, const struct st_job_cursor *after,
			 int limit,
			 int (*fn)(void *arg, const struct st_job *j, const char *account),
			 void *arg)
{
	struct page_each x = { fn, arg, ENR_OK };
	int64_t c = after ? after->created_ms : INT64_MAX, q = after ? after->seq : INT64_MAX;
	enum enr_err rc;

	if (limit <= 0)
		return ENR_OK;
	if (account_id < 0)
		rc = db_run(s, &q_page_all, page_row, &x, NULL, "iii", c, q, (int64_t)limit);
	else
		rc = db_run(s, &q_page_account, page_row, &x, NULL, "iiii", c, q, (int64_t)limit,
			    account_id);
	return rc ? rc : x.rc;
}

static int stats_row(void *arg, const struct db_row *r)
{
	struct st_queue_stats *st = arg;
	int state = db_int(r, 0);
	int64_t n = db_i64(r, 1);

	if (state == ST_ROW_PENDING)
		st->rows_pending = n;
	else if (state == ST_ROW_RUNNING)
		st->rows_running = n;
	else if (state == ST_ROW_FAILED)
		st->rows_failed = n;
	return 0;
}

static int stats_job(void *arg, const struct db_row *r)
{
	struct st_queue_stats *st = arg;
	int status = db_int(r, 0);

	if (status >= 0 && status < ST_JOB__MAX)
		st->jobs[status] = db_i64(r, 1);
	return 0;
}

enum enr_err st_queue_stats(struct store *s, struct st_queue_stats *out)
{
	struct st_queue_stats st;
	enum enr_err rc;

	memset(&st, 0, sizeof st);
	rc = db_run(s, &q_stats_rows, stats_row, &st, NULL, "");
	if (rc == ENR_OK)
		rc = db_run(s, &q_stats_jobs, stats_job, &st, NULL, "");
	if (rc == ENR_OK)
		rc = db_run(s, &q_stats_oldest, db_one_i64, &st.oldest_pending_ms, NULL, "");
	if (rc == ENR_OK)
		*out = st;
	return rc;
}

enum enr_err st_job_finished_since(struct store *s, int64_t seq, int64_t since_ms, int64_t *n)
{
	int64_t v = 0;
	enum enr_err rc = db_run(s, &q_since, db_one_i64, &v, NULL, "ii", seq, since_ms);

	if (rc == ENR_OK)
		*n = v;
	return rc;
}

struct each_error {
	int (*fn)(void *arg, const char *code, int64_t count);
	void *arg;
};

static int error_row(void *arg, const struct db_row *r)
{
	struct each_error *x = arg;
	const char *code = db_text(r, 0);

	return x->fn(x->arg, code ? code : "", db_i64(r, 1));
}

enum enr_err st_job_errors(struct store *s, int64_t seq,
			   int (*fn)(void *arg, const char *code, int64_t count), void *arg)
{
	struct each_error x = { fn, arg };

	return db_run(s, &q_errors, error_row, &x, NULL, "i", seq);
}

struct each_row {
	int (*fn)(void *arg, const struct st_job_row_out *r);
	void *arg;
};

static int result_row(void *arg, const struct db_row *r)
{
	struct each_row *x = arg;
	struct st_job_row_out o;

	o.rownum = db_i64(r, 0);
	o.input = db_text(r, 1);
	o.state = (enum st_row_state)db_int(r, 2);
	o.status = db_int(r, 3);
	o.result = db_text(r, 4);
	o.error_code = db_text(r, 5);
	o.error = db_text(r, 6);
	return x->fn(x->arg, &o);
}

enum enr_err st_job_rows_each(struct store *s, int64_t seq,
			      int (*fn)(void *arg, const struct st_job_row_out *r), void *arg)
{
	struct each_row x = { fn, arg };

	return db_run(s, &q_rows, result_row, &x, NULL, "i", seq);
}

/* ---- cancel and retry ------------------------------------------------------------- */

struct job_op {
	int64_t seq, now_ms, n;
};

static enum enr_err cancel_tx(struct db_conn *c, void *arg)
{
	struct job_op *x = arg;
	int64_t rows = 0, changed = 0;
	enum enr_err rc = db_exec(c, &q_cancel_rows, NULL, NULL, &rows, "i", x->seq);

	if (rc == ENR_OK)
		rc = db_exec(c, &q_cancel_job, NULL, NULL, &changed, "iii", x->seq, rows, x->now_ms);
	if (rc == ENR_OK && changed == 0)
		rc = ENR_E_CONFLICT; /* the job already ended: nothing changes */
	return rc;
}

enum enr_err st_job_cancel(struct store *s, int64_t seq, int64_t now_ms)
{
	struct job_op x = { seq, now_ms, 0 };

	return db_tx(s, cancel_tx, &x);
}

static enum enr_err retry_tx(struct db_conn *c, void *arg)
{
	struct job_op *x = arg;
	enum enr_err rc;

	x->n = 0;
	rc = db_exec(c, &q_retry_rows, NULL, NULL, &x->n, "i", x->seq);
	if (rc == ENR_OK && x->n > 0)
		rc = db_exec(c, &q_retry_job, NULL, NULL, NULL, "ii", x->seq, x->n);
	return rc;
}

enum enr_err st_job_retry(struct store *s, int64_t seq, int64_t now_ms, int64_t *n)
{
	struct job_op x = { seq, now_ms, 0 };
	enum enr_err rc = db_tx(s, retry_tx, &x);

	if (rc == ENR_OK)
		*n = x.n;
	return rc;
}

/* ---- the worker's side ------------------------------------------------------------- */

struct claim_tx {
	const char *owner;
	int64_t now_ms, lease_ms;
	int max, got;
	struct st_claim *out;
	bool nomem, extra;
};

static int claim_row(void *arg, const struct db_row *r)
{
	struct claim_tx *x = arg;
	struct st_claim *cl;

	if (x->got >= x->max) {
		x->extra = true; /* never: the statement takes at most max */
		return 1;
	}
	cl = &x->out[x->got];
	cl->seq = db_i64(r, 0);
	cl->rownum = db_i64(r, 1);
	cl->input = db_strdup(r, 2);
	cl->attempts = db_int(r, 3);
	if (cl->input == NULL)
		x->nomem = true;
	else
		x->got++;
	return 0;
}

static int by_row(const void *a, const void *b)
{
	const struct st_claim *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->rownum < y->rownum ? -1 : x->rownum > y->rownum;
}

static void claims_free(struct claim_tx *x)
{
	for (int i = 0; i < x->got; i++)
		free(x->out[i].input);
	x->got = 0;
}

static enum enr_err claim_tx(struct db_conn *c, void *arg)
{
	struct claim_tx *x = arg;
	enum enr_err rc;

	claims_free(x);
	x->nomem = x->extra = false;
	rc = db_exec(c, &q_claim, claim_row, x, NULL, "iiti", x->now_ms, (int64_t)x->max, x->owner,
		     x->now_ms + x->lease_ms);
	if (rc == ENR_OK && x->nomem)
		rc = ENR_E_NOMEM;
	/* Rows that changed hands without the caller knowing would stay
	 * running until their lease ran out: undo the whole claim. */
	if (rc == ENR_OK && x->extra)
		rc = ENR_E_INTERNAL;
	if (rc)
		return rc;
	/* The rows come back in any order: jobs are started in seq order,
	 * so concurrent claimers take the jobs' locks in one order. */
	qsort(x->out, (size_t)x->got, sizeof x->out[0], by_row);
	for (int i = 0; rc == ENR_OK && i < x->got; i++) {
		if (i > 0 && x->out[i].seq == x->out[i - 1].seq)
			continue;
		rc = db_exec(c, &q_job_start, NULL, NULL, NULL, "ii", x->out[i].seq, x->now_ms);
	}
	return rc;
}

enum enr_err st_rows_claim(struct store *s, const char *owner, int64_t now_ms, int64_t lease_ms,
			   int max, struct st_claim *out, int *n)
{
	struct claim_tx x = { owner, now_ms, lease_ms, max, 0, out, false, false };
	enum enr_err rc;

	if (max <= 0) {
		*n = 0;
		return ENR_OK;
	}
	rc = db_tx(s, claim_tx, &x);
	if (rc) {
		claims_free(&x);
		return rc;
	}
	*n = x.got;
	return ENR_OK;
}

struct beat_tx {
	const char *owner;
	int64_t until_ms;
	const struct st_row_ref *rows;
	int n;
	int64_t renewed;
};

static enum enr_err beat_tx(struct db_conn *c, void *arg)
{
	struct beat_tx *x = arg;
	enum enr_err rc = ENR_OK;

	x->renewed = 0;
	for (int i = 0; rc == ENR_OK && i < x->n; i++) {
		int64_t changes = 0;

		rc = db_exec(c, &q_heartbeat, NULL, NULL, &changes, "iiti", x->rows[i].seq,
			     x->rows[i].rownum, x->owner, x->until_ms);
		x->renewed += changes;
	}
	return rc;
}

enum enr_err st_rows_heartbeat(struct store *s, const char *owner, int64_t until_ms,
			       const struct st_row_ref *rows, int n, int *renewed)
{
	struct beat_tx x = { owner, until_ms, rows, n, 0 };
	enum enr_err rc = n > 0 ? db_tx(s, beat_tx, &x) : ENR_OK;

	if (rc == ENR_OK && renewed)
		*renewed = (int)x.renewed;
	return rc;
}

enum enr_err st_rows_release(struct store *s, const char *owner, int *n)
{
	int64_t changes = 0;
	enum enr_err rc = db_run(s, &q_release, NULL, NULL, &changes, "t", owner);

	if (rc == ENR_OK && n)
		*n = (int)changes;
	return rc;
}

enum enr_err st_row_release(struct store *s, int64_t seq, int64_t rownum, const char *owner)
{
	int64_t changes = 0;
	enum enr_err rc = db_run(s, &q_release_one, NULL, NULL, &changes, "iit", seq, rownum, owner);

	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_CONFLICT;
	return rc;
}

struct finish_tx {
	int64_t seq, rownum;
	const char *owner;
	enum st_row_state state;
	int status;
	const char *result, *error_code, *error;
	int64_t credits, now_ms;
	bool ended;
};

static int finish_row(void *arg, const struct db_row *r)
{
	int64_t *v = arg;

	v[0] = db_i64(r, 0);
	v[1] = db_i64(r, 1);
	return 0;
}

static enum enr_err finish_tx(struct db_conn *c, void *arg)
{
	struct finish_tx *x = arg;
	int64_t changes = 0, after[2] = { 1, 0 };
	bool done = x->state == ST_ROW_DONE;
	enum enr_err rc;

	x->ended = false;
	rc = db_exec(c, &q_finish_row, NULL, NULL, &changes, "iitiitttii", x->seq, x->rownum,
		     x->owner, (int64_t)x->state, (int64_t)x->status, x->result, x->error_code,
		     x->error, x->credits, x->now_ms);
	if (rc)
		return rc;
	if (changes == 0)
		return ENR_E_CONFLICT; /* the lease was lost: someone else owns the row */
	rc = db_exec(c, &q_finish_job, finish_row, after, NULL, "iiiiii", x->seq, (int64_t)done,
		     (int64_t)(done && x->status != 3), (int64_t)(done && x->status == 3),
		     (int64_t)(x->state == ST_ROW_FAILED || x->state == ST_ROW_INVALID),
		     x->credits);
	if (rc)
		return rc;
	if (after[0] <= 0 && (after[1] == ST_JOB_QUEUED || after[1] == ST_JOB_RUNNING)) {
		rc = db_exec(c, &q_end_job, NULL, NULL, NULL, "iii", x->seq,
			     (int64_t)ST_JOB_COMPLETED, x->now_ms);
		x->ended = rc == ENR_OK;
	}
	return rc;
}

enum enr_err st_row_finish(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			   enum st_row_state state, int status, const char *result,
			   const char *error_code, const char *error, int64_t credits,
			   int64_t now_ms, bool *job_ended)
{
	struct finish_tx x = { seq, rownum, owner, state, status, result, error_code, error,
			       credits, now_ms, false };
	enum enr_err rc = db_tx(s, finish_tx, &x);

	if (rc == ENR_OK && job_ended)
		*job_ended = x.ended;
	return rc;
}

enum enr_err st_row_requeue(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			    int64_t not_before_ms, bool count_attempt, const char *error_code,
			    const char *error)
{
	int64_t changes = 0;
	enum enr_err rc = db_run(s, &q_requeue, NULL, NULL, &changes, "iitiitt", seq, rownum, owner,
				 not_before_ms, (int64_t)(count_attempt ? 1 : 0), error_code, error);

	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_CONFLICT;
	return rc;
}

/* ---- webhooks ------------------------------------------------------------------------ */

struct seq_list {
	int64_t *seqs;
	int max, n;
};

static int seq_row(void *arg, const struct db_row *r)
{
	struct seq_list *x = arg;

	if (x->n >= x->max)
		return 1;
	x->seqs[x->n++] = db_i64(r, 0);
	return 0;
}

enum enr_err st_webhooks_due(struct store *s, int64_t now_ms, int max, int64_t *seqs, int *n)
{
	struct seq_list x = { seqs, max, 0 };
	enum enr_err rc = db_run(s, &q_hooks_due, seq_row, &x, NULL, "ii", now_ms, (int64_t)max);

	if (rc == ENR_OK)
		*n = x.n;
	return rc;
}

enum enr_err st_webhook_claim(struct store *s, int64_t seq, int64_t now_ms, int64_t lease_until_ms,
			      bool *mine)
{
	int64_t changes = 0;
	enum enr_err rc = db_run(s, &q_hook_claim, NULL, NULL, &changes, "iii", seq, now_ms,
				 lease_until_ms);

	if (rc == ENR_OK)
		*mine = changes == 1;
	return rc;
}

enum enr_err st_webhook_result(struct store *s, int64_t seq, enum st_hook_state state,
			       int64_t next_ms)
{
	return db_run(s, &q_hook_set, NULL, NULL, NULL, "iii", seq, (int64_t)state, next_ms);
}
