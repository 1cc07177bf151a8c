/*
 * store_usage.c - admission state and daily usage (both back ends).
 *
 * Admission: one row per account holds the token bucket and both quota
 * windows.  st_adm_update locks the row with an upsert that returns it
 * (a new account gets a zero row), lets the caller decide, writes the new
 * state and the usage in the same transaction.  The lock is the row's, so
 * callers on other hosts queue behind it exactly like other threads.
 *
 * Usage journals: a process counts requests served from a lease in a
 * journal file (lib/usage_journal) and flushes cumulative totals; the
 * marks in usage_journals say how much of each total is already in
 * usage_daily, and move in the same transaction.
 */
#include "store.h"
#include "store_int.h"

#include <string.h>
#include <time.h>

static struct db_stmt q_adm_lock =
	DB_WRITE("INSERT INTO admission(account_id) VALUES (?1) ON CONFLICT(account_id)"
		 " DO UPDATE SET tokens = admission.tokens"
		 " RETURNING tokens, updated_ms, hour_start, hour_used, day_start, day_used");
static struct db_stmt q_adm_put =
	DB_WRITE("UPDATE admission SET tokens = ?2, updated_ms = ?3, hour_start = ?4,"
		 " hour_used = ?5, day_start = ?6, day_used = ?7 WHERE account_id = ?1");
static struct db_stmt q_usage_add =
	DB_WRITE("INSERT INTO usage_daily(account_id, day, requests, records, credits, rejections)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(account_id, day) DO UPDATE SET"
		 " requests = usage_daily.requests + excluded.requests,"
		 " records = usage_daily.records + excluded.records,"
		 " credits = usage_daily.credits + excluded.credits,"
		 " rejections = usage_daily.rejections + excluded.rejections");
#define USAGE_COLS "SELECT u.account_id, a.name, u.day, u.requests, u.records, u.credits," \
		   " u.rejections FROM usage_daily u JOIN accounts a ON a.id = u.account_id"
static struct db_stmt q_usage_all =
	DB_READ(USAGE_COLS " WHERE u.day >= ?1 ORDER BY u.day DESC, a.name");
static struct db_stmt q_usage_of_account =
	DB_READ(USAGE_COLS " WHERE u.day >= ?1 AND u.account_id = ?2 ORDER BY u.day DESC");
static struct db_stmt q_usage_totals =
	DB_READ("SELECT u.account_id, a.name, '', CAST(sum(u.requests) AS BIGINT),"
		" CAST(sum(u.records) AS BIGINT), CAST(sum(u.credits) AS BIGINT),"
		" CAST(sum(u.rejections) AS BIGINT) FROM usage_daily u JOIN accounts a ON a.id = u.account_id"
		" GROUP BY u.account_id, a.name ORDER BY a.name");
static struct db_stmt q_mark_lock =
	DB_WRITE("INSERT INTO usage_journals(journal, account_id, day) VALUES (?1, ?2, ?3)"
		 " ON CONFLICT(journal, account_id, day) DO UPDATE SET"
		 " requests = usage_journals.requests"
		 " RETURNING requests, records, credits, rejections");
static struct db_stmt q_mark_put =
	DB_WRITE("UPDATE usage_journals SET requests = ?4, records = ?5, credits = ?6,"
		 " rejections = ?7 WHERE journal = ?1 AND account_id = ?2 AND day = ?3");
static struct db_stmt q_mark_forget = DB_WRITE("DELETE FROM usage_journals WHERE journal = ?1");

void st_day(int64_t now_s, char out[11])
{
	struct tm tm;
	time_t t = (time_t)now_s;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static bool delta_zero(const struct st_usage_delta *d)
{
	return (d->requests | d->records | d->credits | d->rejections) == 0;
}

static enum enr_err usage_add_day(struct db_conn *c, int64_t account_id, const char *day,
				  const struct st_usage_delta *d)
{
	if (delta_zero(d))
		return ENR_OK;
	return db_exec(c, &q_usage_add, NULL, NULL, NULL, "itiiii", account_id, day, d->requests,
		       d->records, d->credits, d->rejections);
}

/* ---- admission -------------------------------------------------------------- */

struct adm_tx {
	int64_t account_id, now_s;
	st_adm_fn fn;
	void *arg;
	struct st_adm_state st;
	bool got;
};

static int adm_row(void *arg, const struct db_row *r)
{
	struct adm_tx *x = arg;

	x->st.bucket.tokens = db_dbl(r, 0);
	x->st.bucket.updated_ms = db_i64(r, 1);
	x->st.hour.start_s = db_i64(r, 2);
	x->st.hour.used = db_i64(r, 3);
	x->st.day.start_s = db_i64(r, 4);
	x->st.day.used = db_i64(r, 5);
	x->got = true;
	return 0;
}

static enum enr_err adm_update_tx(struct db_conn *c, void *arg)
{
	struct adm_tx *x = arg;
	struct st_usage_delta u;
	char day[11];
	enum enr_err rc;

	memset(&x->st, 0, sizeof x->st);
	memset(&u, 0, sizeof u);
	x->got = false;
	rc = db_exec(c, &q_adm_lock, adm_row, x, NULL, "i", x->account_id);
	if (rc)
		return rc;
	if (!x->got)
		return ENR_E_STORE;
	if (!x->fn(x->arg, &x->st, &u))
		return ENR_OK;
	rc = db_exec(c, &q_adm_put, NULL, NULL, NULL, "idiiiii", x->account_id,
		     x->st.bucket.tokens, x->st.bucket.updated_ms, x->st.hour.start_s,
		     x->st.hour.used, x->st.day.start_s, x->st.day.used);
	if (rc)
		return rc;
	st_day(x->now_s, day);
	return usage_add_day(c, x->account_id, day, &u);
}

enum enr_err st_adm_update(struct store *s, int64_t account_id, int64_t now_s, st_adm_fn fn,
			   void *arg)
{
	struct adm_tx x = { .account_id = account_id, .now_s = now_s, .fn = fn, .arg = arg };

	return db_tx(s, adm_update_tx, &x);
}

/* ---- usage -------------------------------------------------------------------- */

enum enr_err st_usage_add(struct store *s, int64_t account_id, int64_t now_s,
			  const struct st_usage_delta *d)
{
	char day[11];

	if (delta_zero(d))
		return ENR_OK;
	st_day(now_s, day);
	return db_run(s, &q_usage_add, NULL, NULL, NULL, "itiiii", account_id, day, d->requests,
		      d->records, d->credits, d->rejections);
}

struct each_usage {
	int (*fn)(void *arg, const struct st_usage *u);
	void *arg;
};

static int usage_row(void *arg, const struct db_row *r)
{
	struct each_usage *x = arg;
	struct st_usage u;

	u.account_id = db_i64(r, 0);
	db_textcpy(r, 1, u.account, sizeof u.account);
	db_textcpy(r, 2, u.day, sizeof u.day);
	u.requests = db_i64(r, 3);
	u.records = db_i64(r, 4);
	u.credits = db_i64(r, 5);
	u.rejections = db_i64(r, 6);
	return x->fn(x->arg, &u);
}

enum enr_err st_usage_each(struct store *s, int64_t account_id, const char *from,
			   int (*fn)(void *arg, const struct st_usage *u), void *arg)
{
	struct each_usage x = { fn, arg };

	if (account_id < 0)
		return db_run(s, &q_usage_all, usage_row, &x, NULL, "t", from);
	return db_run(s, &q_usage_of_account, usage_row, &x, NULL, "ti", from, account_id);
}

enum enr_err st_usage_totals(struct store *s,
			     int (*fn)(void *arg, const struct st_usage *total), void *arg)
{
	struct each_usage x = { fn, arg };

	return db_run(s, &q_usage_totals, usage_row, &x, NULL, "");
}

/* ---- journals ------------------------------------------------------------------- */

struct flush_tx {
	const char *journal;
	const struct st_journal_line *lines;
	size_t n;
};

static int mark_row(void *arg, const struct db_row *r)
{
	struct st_usage_delta *m = arg;

	m->requests = db_i64(r, 0);
	m->records = db_i64(r, 1);
	m->credits = db_i64(r, 2);
	m->rejections = db_i64(r, 3);
	return 0;
}

static int64_t ahead(int64_t total, int64_t mark)
{
	return total > mark ? total - mark : 0;
}

static enum enr_err flush_tx(struct db_conn *c, void *arg)
{
	struct flush_tx *x = arg;
	enum enr_err rc = ENR_OK;

	for (size_t i = 0; rc == ENR_OK && i < x->n; i++) {
		const struct st_journal_line *l = &x->lines[i];
		struct st_usage_delta mark = { 0, 0, 0, 0 }, d;

		rc = db_exec(c, &q_mark_lock, mark_row, &mark, NULL, "tit", x->journal,
			     l->account_id, l->day);
		if (rc)
			break;
		d.requests = ahead(l->total.requests, mark.requests);
		d.records = ahead(l->total.records, mark.records);
		d.credits = ahead(l->total.credits, mark.credits);
		d.rejections = ahead(l->total.rejections, mark.rejections);
		if (delta_zero(&d))
			continue;
		rc = usage_add_day(c, l->account_id, l->day, &d);
		if (rc == ENR_OK)
			rc = db_exec(c, &q_mark_put, NULL, NULL, NULL, "titiiii", x->journal,
				     l->account_id, l->day, mark.requests + d.requests,
				     mark.records + d.records, mark.credits + d.credits,
				     mark.rejections + d.rejections);
	}
	return rc;
}

enum enr_err st_usage_journal_flush(struct store *s, const char *journal,
				    const struct st_journal_line *lines, size_t n)
{
	struct flush_tx x = { journal, lines, n };

	if (n == 0)
		return ENR_OK;
	return db_tx(s, flush_tx, &x);
}

enum enr_err st_usage_journal_forget(struct store *s, const char *journal)
{
	return db_run(s, &q_mark_forget, NULL, NULL, NULL, "t", journal);
}
