/*
 * store_jobs.c - batch jobs in the SQLite store.
 *
 * A job is a row in `jobs` with its counters, and one row per input record
 * in `job_rows`.  Workers claim rows under a lease; every change of a row a
 * worker holds is guarded by `state = running AND owner = me`, so a row
 * whose lease expired and was claimed again can never be finished twice.
 * The job's counters move in the same transaction as the row.
 */
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

enum jstmt {
	J_INSERT_JOB,
	J_INSERT_ROW,
	J_BY_IDEM,
	J_GET,
	J_GET_SEQ,
	J_SINCE,
	J_ERRORS,
	J_ROWS,
	J_CANCEL_ROWS,
	J_CANCEL_JOB,
	J_RETRY_ROWS,
	J_RETRY_JOB,
	J_CLAIM_SELECT,
	J_CLAIM_ROW,
	J_JOB_START,
	J_HEARTBEAT,
	J_RELEASE,
	J_FINISH_ROW,
	J_FINISH_JOB,
	J_END_JOB,
	J_REQUEUE,
	J_HOOKS_DUE,
	J_HOOK_SET,
	J_HOOK_CLAIM,
	J__MAX
};

_Static_assert(J__MAX <= STORE_JOB_STMTS, "raise STORE_JOB_STMTS");

#define JOB_COLS                                                                          \
	"SELECT seq, id, account_id, status, want, format, columns, total, rejected, pending," \
	" done, found, not_found, failed, credits, webhook_url, webhook_state,"            \
	" webhook_attempts, webhook_next_ms, created_ms, started_ms, finished_ms FROM jobs"

static const char *const jsql[J__MAX] = {
	[J_INSERT_JOB] = "INSERT INTO jobs(id, account_id, status, want, format, columns, total,"
			 " rejected, pending, webhook_url, idempotency_key, created_ms, failed)"
			 " VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)",
	[J_INSERT_ROW] = "INSERT INTO job_rows(job_seq, rownum, input, state, error_code, error)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[J_BY_IDEM] = "SELECT id FROM jobs WHERE account_id = ?1 AND idempotency_key = ?2",
	[J_GET] = JOB_COLS " WHERE id = ?1",
	[J_GET_SEQ] = JOB_COLS " WHERE seq = ?1",
	[J_SINCE] = "SELECT count(*) FROM job_rows WHERE job_seq = ?1 AND finished_ms > ?2"
		    " AND state = 2",
	[J_ERRORS] = "SELECT error_code, count(*) FROM job_rows WHERE job_seq = ?1"
		     " AND error_code IS NOT NULL AND state IN (3, 4)"
		     " GROUP BY error_code ORDER BY 2 DESC, 1 LIMIT 10",
	[J_ROWS] = "SELECT rownum, input, state, status, result, error_code, error FROM job_rows"
		   " WHERE job_seq = ?1 AND state IN (2, 3, 4) ORDER BY rownum",
	[J_CANCEL_ROWS] = "UPDATE job_rows SET state = 5 WHERE job_seq = ?1 AND state = 0",
	[J_CANCEL_JOB] = "UPDATE jobs SET status = 4, pending = pending - ?2, finished_ms = ?3"
			 " WHERE seq = ?1 AND status IN (0, 1)",
	[J_RETRY_ROWS] = "UPDATE job_rows SET state = 0, attempts = 0, not_before_ms = 0, owner = NULL,"
			 " error_code = NULL, error = NULL WHERE job_seq = ?1 AND state = 3",
	[J_RETRY_JOB] = "UPDATE jobs SET pending = pending + ?2, failed = failed - ?2,"
			" status = CASE WHEN started_ms > 0 THEN 1 ELSE 0 END, finished_ms = 0,"
			" webhook_state = CASE WHEN webhook_url <> '' THEN 0 ELSE webhook_state END"
			" WHERE seq = ?1",
	/* Pending rows that are due, and rows whose worker stopped renewing the
	 * lease; oldest job first, input order within a job. */
	[J_CLAIM_SELECT] = "SELECT job_seq, rownum, input, attempts FROM job_rows"
			   " WHERE (state = 0 AND not_before_ms <= ?1)"
			   "    OR (state = 1 AND lease_until_ms < ?1)"
			   " ORDER BY job_seq, rownum LIMIT ?2",
	[J_CLAIM_ROW] = "UPDATE job_rows SET state = 1, owner = ?3, lease_until_ms = ?4"
			" WHERE job_seq = ?1 AND rownum = ?2",
	[J_JOB_START] = "UPDATE jobs SET status = 1, started_ms = ?2 WHERE seq = ?1 AND status = 0",
	[J_HEARTBEAT] = "UPDATE job_rows SET lease_until_ms = ?4"
			" WHERE job_seq = ?1 AND rownum = ?2 AND owner = ?3 AND state = 1",
	[J_RELEASE] = "UPDATE job_rows SET state = 0, owner = NULL, lease_until_ms = 0"
		      " WHERE owner = ?1 AND state = 1",
	[J_FINISH_ROW] = "UPDATE job_rows SET state = ?4, status = ?5, result = ?6, error_code = ?7,"
			 " error = ?8, credits = ?9, finished_ms = ?10, owner = NULL"
			 " WHERE job_seq = ?1 AND rownum = ?2 AND state = 1 AND owner = ?3",
	[J_FINISH_JOB] = "UPDATE jobs SET pending = pending - 1, done = done + ?2, found = found + ?3,"
			 " not_found = not_found + ?4, failed = failed + ?5, credits = credits + ?6"
			 " WHERE seq = ?1 RETURNING pending, status, webhook_url",
	[J_END_JOB] = "UPDATE jobs SET status = ?2, finished_ms = ?3,"
		      " webhook_state = CASE WHEN webhook_url <> '' THEN 1 ELSE 0 END,"
		      " webhook_attempts = 0, webhook_next_ms = ?3"
		      " WHERE seq = ?1 AND status IN (0, 1)",
	[J_REQUEUE] = "UPDATE job_rows SET state = 0, owner = NULL, lease_until_ms = 0,"
		      " not_before_ms = ?4, attempts = attempts + ?5, error_code = ?6, error = ?7"
		      " WHERE job_seq = ?1 AND rownum = ?2 AND state = 1 AND owner = ?3",
	[J_HOOKS_DUE] = "SELECT seq FROM jobs WHERE webhook_state = 1 AND webhook_next_ms <= ?1"
			" ORDER BY webhook_next_ms LIMIT ?2",
	[J_HOOK_SET] = "UPDATE jobs SET webhook_state = ?2, webhook_next_ms = ?3,"
		       " webhook_attempts = webhook_attempts + 1 WHERE seq = ?1",
	[J_HOOK_CLAIM] = "UPDATE jobs SET webhook_next_ms = ?3 WHERE seq = ?1 AND webhook_state = 1"
			 " AND webhook_next_ms <= ?2",
};

static sqlite3_stmt *js(struct conn *c, enum jstmt id)
{
	return st_prepare(c, &c->jstmt[id], jsql[id]);
}

void st_job_release(struct st_job *j)
{
	free(j->columns);
	j->columns = NULL;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

enum enr_err st_job_create(struct store *s, struct st_job *j, const char *idempotency_key,
			   const struct st_job_row *rows, size_t nrows, int64_t now_ms,
			   char existing[ST_JOB_ID_LEN + 1])
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	unsigned char raw[12];
	enum enr_err rc;
	int64_t accepted = 0;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = util_random(raw, sizeof raw);
	if (rc)
		return rc;
	memcpy(j->id, "job_", 4);
	util_hex(raw, sizeof raw, j->id + 4);
	for (size_t i = 0; i < nrows; i++)
		accepted += !rows[i].invalid;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	if (idempotency_key) {
		st = js(c, J_BY_IDEM);
		if (st == NULL) {
			rc = ENR_E_STORE;
			goto out;
		}
		sqlite3_bind_int64(st, 1, j->account_id);
		sqlite3_bind_text(st, 2, idempotency_key, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			if (existing)
				st_col_text(st, 0, existing, ST_JOB_ID_LEN + 1);
			rc = ENR_E_CONFLICT;
		}
		st_finish(st);
		if (rc)
			goto out;
	}
	st = js(c, J_INSERT_JOB);
	if (st == NULL) {
		rc = ENR_E_STORE;
		goto out;
	}
	sqlite3_bind_text(st, 1, j->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, j->account_id);
	sqlite3_bind_int64(st, 3, j->want);
	sqlite3_bind_int(st, 4, j->format);
	sqlite3_bind_text(st, 5, j->columns ? j->columns : "[]", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, (int64_t)nrows);
	sqlite3_bind_int64(st, 7, (int64_t)nrows - accepted);
	sqlite3_bind_int64(st, 8, accepted);
	sqlite3_bind_text(st, 9, j->webhook_url, -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 10, idempotency_key);
	sqlite3_bind_int64(st, 11, now_ms);
	rc = st_run(c, st, NULL);
	if (rc)
		goto out;
	j->seq = sqlite3_last_insert_rowid(c->db);
	for (size_t i = 0; rc == ENR_OK && i < nrows; i++) {
		st = js(c, J_INSERT_ROW);
		if (st == NULL) {
			rc = ENR_E_STORE;
			break;
		}
		sqlite3_bind_int64(st, 1, j->seq);
		sqlite3_bind_int64(st, 2, (int64_t)i + 1);
		sqlite3_bind_text(st, 3, rows[i].input, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, rows[i].invalid ? ST_ROW_INVALID : ST_ROW_PENDING);
		bind_text_or_null(st, 5, rows[i].invalid ? "invalid_request" : NULL);
		bind_text_or_null(st, 6, rows[i].invalid ? rows[i].error : NULL);
		rc = st_run(c, st, NULL);
	}
	/* A job whose every row was refused is over at once. */
	if (rc == ENR_OK && accepted == 0) {
		st = js(c, J_END_JOB);
		if (st == NULL) {
			rc = ENR_E_STORE;
		} else {
			sqlite3_bind_int64(st, 1, j->seq);
			sqlite3_bind_int(st, 2, ST_JOB_COMPLETED);
			sqlite3_bind_int64(st, 3, now_ms);
			rc = st_run(c, st, NULL);
		}
	}
	j->total = (int64_t)nrows;
	j->rejected = (int64_t)nrows - accepted;
	j->pending = accepted;
	j->created_ms = now_ms;
out:
	return st_tx_end(s, c, rc);
}

static void row_job(sqlite3_stmt *st, struct st_job *j)
{
	const unsigned char *cols = sqlite3_column_text(st, 6);

	memset(j, 0, sizeof *j);
	j->seq = sqlite3_column_int64(st, 0);
	st_col_text(st, 1, j->id, sizeof j->id);
	j->account_id = sqlite3_column_int64(st, 2);
	j->status = (enum st_job_status)sqlite3_column_int(st, 3);
	j->want = (uint32_t)sqlite3_column_int64(st, 4);
	j->format = sqlite3_column_int(st, 5);
	j->columns = strdup(cols ? (const char *)cols : "[]");
	j->total = sqlite3_column_int64(st, 7);
	j->rejected = sqlite3_column_int64(st, 8);
	j->pending = sqlite3_column_int64(st, 9);
	j->done = sqlite3_column_int64(st, 10);
	j->found = sqlite3_column_int64(st, 11);
	j->not_found = sqlite3_column_int64(st, 12);
	j->failed = sqlite3_column_int64(st, 13);
	j->credits = sqlite3_column_int64(st, 14);
	st_col_text(st, 15, j->webhook_url, sizeof j->webhook_url);
	j->webhook_state = (enum st_hook_state)sqlite3_column_int(st, 16);
	j->webhook_attempts = sqlite3_column_int(st, 17);
	j->webhook_next_ms = sqlite3_column_int64(st, 18);
	j->created_ms = sqlite3_column_int64(st, 19);
	j->started_ms = sqlite3_column_int64(st, 20);
	j->finished_ms = sqlite3_column_int64(st, 21);
}

static enum enr_err job_one(struct store *s, enum jstmt q, const char *id, int64_t seq,
			    int64_t account_id, struct st_job *out)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;
	struct st_job j;

	if (c == NULL || (st = js(c, q)) == NULL)
		return ENR_E_UNAVAILABLE;
	if (id)
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(st, 1, seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_job(st, &j);
	st_finish(st);
	if (rc == SQLITE_DONE)
		return ENR_E_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return st_step_err(c, rc);
	if (j.columns == NULL)
		return ENR_E_NOMEM;
	/* Another account's job does not exist for this caller. */
	if (account_id >= 0 && j.account_id != account_id) {
		st_job_release(&j);
		return ENR_E_NOT_FOUND;
	}
	*out = j;
	return ENR_OK;
}

enum enr_err st_job_get(struct store *s, const char *id, int64_t account_id, struct st_job *out)
{
	return job_one(s, J_GET, id, 0, account_id, out);
}

enum enr_err st_job_by_seq(struct store *s, int64_t seq, struct st_job *out)
{
	return job_one(s, J_GET_SEQ, NULL, seq, -1, out);
}

enum enr_err st_job_finished_since(struct store *s, int64_t seq, int64_t since_ms, int64_t *n)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = js(c, J_SINCE)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, since_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	st_finish(st);
	return rc == SQLITE_ROW ? ENR_OK : st_step_err(c, rc);
}

enum enr_err st_job_errors(struct store *s, int64_t seq,
			   int (*fn)(void *arg, const char *code, int64_t count), void *arg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = js(c, J_ERRORS)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_int64(st, 1, seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *code = sqlite3_column_text(st, 0);

		if (fn(arg, code ? (const char *)code : "", sqlite3_column_int64(st, 1)))
			break;
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
}

static const char *text_or_null(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

enum enr_err st_job_rows_each(struct store *s, int64_t seq,
			      int (*fn)(void *arg, const struct st_job_row_out *r), void *arg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = js(c, J_ROWS)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_int64(st, 1, seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct st_job_row_out r;

		r.rownum = sqlite3_column_int64(st, 0);
		r.input = text_or_null(st, 1);
		r.state = (enum st_row_state)sqlite3_column_int(st, 2);
		r.status = sqlite3_column_int(st, 3);
		r.result = text_or_null(st, 4);
		r.error_code = text_or_null(st, 5);
		r.error = text_or_null(st, 6);
		if (fn(arg, &r))
			break;
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
}

enum enr_err st_job_cancel(struct store *s, int64_t seq, int64_t now_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int n = 0, changed = 0;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	st = js(c, J_CANCEL_ROWS);
	rc = st ? ENR_OK : ENR_E_STORE;
	if (rc == ENR_OK) {
		sqlite3_bind_int64(st, 1, seq);
		rc = st_run(c, st, &n);
	}
	if (rc == ENR_OK && (st = js(c, J_CANCEL_JOB)) != NULL) {
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, n);
		sqlite3_bind_int64(st, 3, now_ms);
		rc = st_run(c, st, &changed);
		if (rc == ENR_OK && changed == 0)
			rc = ENR_E_CONFLICT;
	}
	return st_tx_end(s, c, rc);
}

enum enr_err st_job_retry(struct store *s, int64_t seq, int64_t now_ms, int64_t *n)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int moved = 0;

	(void)now_ms;
	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	st = js(c, J_RETRY_ROWS);
	rc = st ? ENR_OK : ENR_E_STORE;
	if (rc == ENR_OK) {
		sqlite3_bind_int64(st, 1, seq);
		rc = st_run(c, st, &moved);
	}
	if (rc == ENR_OK && moved > 0 && (st = js(c, J_RETRY_JOB)) != NULL) {
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, moved);
		rc = st_run(c, st, NULL);
	}
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK)
		*n = moved;
	return rc;
}

enum enr_err st_rows_claim(struct store *s, const char *owner, int64_t now_ms, int64_t lease_ms,
			   int max, struct st_claim *out, int *n)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int got = 0, src;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	st = js(c, J_CLAIM_SELECT);
	if (st == NULL) {
		rc = ENR_E_STORE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, max);
	while ((src = sqlite3_step(st)) == SQLITE_ROW && got < max) {
		const unsigned char *in = sqlite3_column_text(st, 2);

		out[got].seq = sqlite3_column_int64(st, 0);
		out[got].rownum = sqlite3_column_int64(st, 1);
		out[got].input = strdup(in ? (const char *)in : "");
		out[got].attempts = sqlite3_column_int(st, 3);
		if (out[got].input == NULL) {
			rc = ENR_E_NOMEM;
			break;
		}
		got++;
	}
	st_finish(st);
	if (rc == ENR_OK && src != SQLITE_ROW && src != SQLITE_DONE)
		rc = st_step_err(c, src);
	for (int i = 0; rc == ENR_OK && i < got; i++) {
		st = js(c, J_CLAIM_ROW);
		if (st == NULL) {
			rc = ENR_E_STORE;
			break;
		}
		sqlite3_bind_int64(st, 1, out[i].seq);
		sqlite3_bind_int64(st, 2, out[i].rownum);
		sqlite3_bind_text(st, 3, owner, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, now_ms + lease_ms);
		rc = st_run(c, st, NULL);
		if (rc == ENR_OK && (i == 0 || out[i].seq != out[i - 1].seq) &&
		    (st = js(c, J_JOB_START)) != NULL) {
			sqlite3_bind_int64(st, 1, out[i].seq);
			sqlite3_bind_int64(st, 2, now_ms);
			rc = st_run(c, st, NULL);
		}
	}
out:
	rc = st_tx_end(s, c, rc);
	if (rc != ENR_OK) {
		for (int i = 0; i < got; i++)
			free(out[i].input);
		return rc;
	}
	*n = got;
	return ENR_OK;
}

static enum enr_err owner_update(struct store *s, enum jstmt q, const char *owner, int *changes)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = js(c, q)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_TRANSIENT);
	rc = st_run(c, st, changes);
	return st_tx_end(s, c, rc);
}

enum enr_err st_rows_heartbeat(struct store *s, const char *owner, int64_t until_ms,
			       const struct st_row_ref *rows, int n, int *renewed)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int total = 0;

	if (n <= 0) {
		if (renewed)
			*renewed = 0;
		return ENR_OK;
	}
	if (c == NULL || (st = js(c, J_HEARTBEAT)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	for (int i = 0; i < n && rc == ENR_OK; i++) {
		int changes = 0;

		sqlite3_bind_int64(st, 1, rows[i].seq);
		sqlite3_bind_int64(st, 2, rows[i].rownum);
		sqlite3_bind_text(st, 3, owner, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, until_ms);
		rc = st_run(c, st, &changes);
		total += changes;
	}
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK && renewed)
		*renewed = total;
	return rc;
}

enum enr_err st_rows_release(struct store *s, const char *owner, int *n)
{
	int changes = 0;
	enum enr_err rc = owner_update(s, J_RELEASE, owner, &changes);

	if (rc == ENR_OK && n)
		*n = changes;
	return rc;
}

enum enr_err st_row_finish(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			   enum st_row_state state, int status, const char *result,
			   const char *error_code, const char *error, int64_t credits,
			   int64_t now_ms, bool *job_ended)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int changes = 0, src;
	int64_t pending = 1;
	int status_now = 0;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	st = js(c, J_FINISH_ROW);
	if (st == NULL) {
		rc = ENR_E_STORE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, rownum);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, (int)state);
	sqlite3_bind_int(st, 5, status);
	bind_text_or_null(st, 6, result);
	bind_text_or_null(st, 7, error_code);
	bind_text_or_null(st, 8, error);
	sqlite3_bind_int64(st, 9, credits);
	sqlite3_bind_int64(st, 10, now_ms);
	rc = st_run(c, st, &changes);
	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_CONFLICT; /* the lease was lost: someone else owns the row */
	if (rc)
		goto out;
	st = js(c, J_FINISH_JOB);
	if (st == NULL) {
		rc = ENR_E_STORE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, state == ST_ROW_DONE);
	sqlite3_bind_int(st, 3, state == ST_ROW_DONE && status != 3);
	sqlite3_bind_int(st, 4, state == ST_ROW_DONE && status == 3);
	sqlite3_bind_int(st, 5, state == ST_ROW_FAILED || state == ST_ROW_INVALID);
	sqlite3_bind_int64(st, 6, credits);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		pending = sqlite3_column_int64(st, 0);
		status_now = sqlite3_column_int(st, 1);
	}
	while (src == SQLITE_ROW)
		src = sqlite3_step(st);
	st_finish(st);
	if (src != SQLITE_DONE) {
		rc = st_step_err(c, src);
		goto out;
	}
	if (pending <= 0 && (status_now == ST_JOB_QUEUED || status_now == ST_JOB_RUNNING)) {
		st = js(c, J_END_JOB);
		if (st == NULL) {
			rc = ENR_E_STORE;
			goto out;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int(st, 2, ST_JOB_COMPLETED);
		sqlite3_bind_int64(st, 3, now_ms);
		rc = st_run(c, st, NULL);
		if (job_ended)
			*job_ended = true;
	} else if (job_ended) {
		*job_ended = false;
	}
out:
	return st_tx_end(s, c, rc);
}

enum enr_err st_row_requeue(struct store *s, int64_t seq, int64_t rownum, const char *owner,
			    int64_t not_before_ms, bool count_attempt, const char *error_code,
			    const char *error)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int changes = 0;

	if (c == NULL || (st = js(c, J_REQUEUE)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, rownum);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, not_before_ms);
	sqlite3_bind_int(st, 5, count_attempt ? 1 : 0);
	bind_text_or_null(st, 6, error_code);
	bind_text_or_null(st, 7, error);
	rc = st_run(c, st, &changes);
	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_CONFLICT;
	return st_tx_end(s, c, rc);
}

enum enr_err st_webhooks_due(struct store *s, int64_t now_ms, int max, int64_t *seqs, int *n)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc, got = 0;

	if (c == NULL || (st = js(c, J_HOOKS_DUE)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && got < max)
		seqs[got++] = sqlite3_column_int64(st, 0);
	st_finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return st_step_err(c, rc);
	*n = got;
	return ENR_OK;
}

enum enr_err st_webhook_result(struct store *s, int64_t seq, enum st_hook_state state,
			       int64_t next_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = js(c, J_HOOK_SET)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, (int)state);
	sqlite3_bind_int64(st, 3, next_ms);
	rc = st_run(c, st, NULL);
	return st_tx_end(s, c, rc);
}

enum enr_err st_job_find_idempotent(struct store *s, int64_t account_id, const char *key,
				    char id[ST_JOB_ID_LEN + 1])
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = js(c, J_BY_IDEM)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		st_col_text(st, 0, id, ST_JOB_ID_LEN + 1);
	st_finish(st);
	if (rc == SQLITE_ROW)
		return ENR_OK;
	return rc == SQLITE_DONE ? ENR_E_NOT_FOUND : st_step_err(c, rc);
}

enum enr_err st_webhook_claim(struct store *s, int64_t seq, int64_t now_ms, int64_t lease_until_ms,
			      bool *mine)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int changes = 0;

	if (c == NULL || (st = js(c, J_HOOK_CLAIM)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int64(st, 3, lease_until_ms);
	rc = st_run(c, st, &changes);
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK)
		*mine = changes == 1;
	return rc;
}
