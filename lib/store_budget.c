/*
 * store_budget.c - claims on lookups in flight, credit budgets and the
 * savings counters (both back ends).
 *
 * Claims: one row per lookup key with its owner and expiry; a claim is
 * taken by an upsert whose update is guarded by the holder's expiry, so
 * of two processes claiming at once exactly one gets it.
 *
 * Budgets: budget_spent is the ledger (credits charged per scope and
 * period), budget_holds the credits reserved by calls in flight.  A
 * reservation locks each scope's ledger row with an upsert that returns
 * it, then sums the unexpired holds and decides, in one transaction: the
 * row lock (PostgreSQL) or the write lock (SQLite) serialises reservers,
 * so spent + held never passes the limit whatever the number of callers
 * and hosts.  lib/budget decides the scopes, periods and limits.
 */
#include "store.h"
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static struct db_stmt q_claim =
	DB_WRITE("INSERT INTO flights(key, owner, until_ms) VALUES (?1, ?2, ?4)"
		 " ON CONFLICT(key) DO UPDATE SET owner = excluded.owner,"
		 " until_ms = excluded.until_ms"
		 " WHERE flights.until_ms <= ?3 OR flights.owner = excluded.owner"
		 " RETURNING owner");
static struct db_stmt q_claim_holder = DB_READ("SELECT until_ms FROM flights WHERE key = ?1");
static struct db_stmt q_claim_release = DB_WRITE("DELETE FROM flights WHERE key = ?1 AND owner = ?2");
static struct db_stmt q_claim_get =
	DB_READ("SELECT until_ms FROM flights WHERE key = ?1 AND until_ms > ?2");
static struct db_stmt q_claim_purge =
	DB_WRITE("DELETE FROM flights WHERE key IN"
		 " (SELECT key FROM flights WHERE until_ms <= ?1 LIMIT ?2)");

static struct db_stmt q_ledger_lock =
	DB_WRITE("INSERT INTO budget_spent(scope, period_start, spent) VALUES (?1, ?2, 0)"
		 " ON CONFLICT(scope, period_start) DO UPDATE SET spent = budget_spent.spent"
		 " RETURNING spent");
static struct db_stmt q_holds_expire =
	DB_WRITE("DELETE FROM budget_holds WHERE scope = ?1 AND expires_ms <= ?2");
static struct db_stmt q_holds_sum =
	DB_READ("SELECT coalesce(sum(amount), 0) FROM budget_holds"
		" WHERE scope = ?1 AND period_start = ?2 AND expires_ms > ?3");
static struct db_stmt q_hold_put =
	DB_WRITE("INSERT INTO budget_holds(id, scope, period_start, amount, expires_ms)"
		 " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id, scope) DO UPDATE SET"
		 " amount = budget_holds.amount + excluded.amount, expires_ms = excluded.expires_ms");
static struct db_stmt q_ledger_add =
	DB_WRITE("INSERT INTO budget_spent(scope, period_start, spent) VALUES (?1, ?2, ?3)"
		 " ON CONFLICT(scope, period_start) DO UPDATE SET"
		 " spent = budget_spent.spent + excluded.spent");
static struct db_stmt q_holds_drop = DB_WRITE("DELETE FROM budget_holds WHERE id = ?1");
static struct db_stmt q_ledger_get =
	DB_READ("SELECT spent FROM budget_spent WHERE scope = ?1 AND period_start = ?2");

static struct db_stmt q_savings_add =
	DB_WRITE("INSERT INTO savings_daily(provider, day, cache_calls, cache_credits,"
		 " flight_calls, flight_credits) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		 " ON CONFLICT(provider, day) DO UPDATE SET"
		 " cache_calls = savings_daily.cache_calls + excluded.cache_calls,"
		 " cache_credits = savings_daily.cache_credits + excluded.cache_credits,"
		 " flight_calls = savings_daily.flight_calls + excluded.flight_calls,"
		 " flight_credits = savings_daily.flight_credits + excluded.flight_credits");
static struct db_stmt q_savings_each =
	DB_READ("SELECT provider, day, cache_calls, cache_credits, flight_calls, flight_credits"
		" FROM savings_daily WHERE day >= ?1 ORDER BY day DESC, provider");

/* ---- claims ------------------------------------------------------------------ */

static int row_seen(void *arg, const struct db_row *r)
{
	(void)r;
	*(bool *)arg = true;
	return 0;
}

enum enr_err st_flight_claim(struct store *s, const unsigned char key[32], const char *owner,
			     int64_t now_ms, int64_t until_ms, bool *mine, int64_t *holder_until)
{
	bool got = false;
	int64_t until = 0;
	enum enr_err rc = db_run(s, &q_claim, row_seen, &got, NULL, "btii", key, (size_t)32, owner,
				 now_ms, until_ms);

	if (rc)
		return rc;
	if (!got) {
		rc = db_run(s, &q_claim_holder, db_one_i64, &until, NULL, "b", key, (size_t)32);
		if (rc)
			return rc;
	}
	*mine = got;
	if (holder_until)
		*holder_until = got ? until_ms : until;
	return ENR_OK;
}

enum enr_err st_flight_release(struct store *s, const unsigned char key[32], const char *owner)
{
	return db_run(s, &q_claim_release, NULL, NULL, NULL, "bt", key, (size_t)32, owner);
}

enum enr_err st_flight_get(struct store *s, const unsigned char key[32], int64_t now_ms,
			   bool *held, int64_t *until_ms)
{
	int64_t until = -1;
	enum enr_err rc = db_run(s, &q_claim_get, db_one_i64, &until, NULL, "bi", key, (size_t)32,
				 now_ms);

	if (rc)
		return rc;
	*held = until >= 0;
	if (until_ms)
		*until_ms = until >= 0 ? until : 0;
	return ENR_OK;
}

enum enr_err st_flight_purge(struct store *s, int64_t now_ms, int limit, int *removed)
{
	int64_t n = 0;
	enum enr_err rc = db_run(s, &q_claim_purge, NULL, NULL, &n, "ii", now_ms, (int64_t)limit);

	if (rc == ENR_OK && removed)
		*removed = (int)n;
	return rc;
}

/* ---- budgets -------------------------------------------------------------------- */

struct reserve_tx {
	const char *id;
	const struct st_budget_scope *sc;
	int order[16];
	int n;
	int64_t amount, now_ms, expires_ms;
	bool ok;
	int refused;
	int64_t available;
};

static enum enr_err reserve_tx(struct db_conn *c, void *arg)
{
	struct reserve_tx *x = arg;
	enum enr_err rc;

	x->ok = false;
	x->refused = -1;
	x->available = 0;
	for (int k = 0; k < x->n; k++) {
		const struct st_budget_scope *b = &x->sc[x->order[k]];
		int64_t spent = 0, held = 0;

		rc = db_exec(c, &q_ledger_lock, db_one_i64, &spent, NULL, "ti", b->scope,
			     b->period_start);
		if (rc == ENR_OK)
			rc = db_exec(c, &q_holds_expire, NULL, NULL, NULL, "ti", b->scope, x->now_ms);
		if (rc == ENR_OK)
			rc = db_exec(c, &q_holds_sum, db_one_i64, &held, NULL, "tii", b->scope,
				     b->period_start, x->now_ms);
		if (rc)
			return rc;
		if (spent + held + x->amount > b->limit) {
			int64_t left = b->limit - spent - held;

			x->refused = x->order[k];
			x->available = left > 0 ? left : 0;
			return ENR_OK;
		}
	}
	for (int k = 0; k < x->n; k++) {
		const struct st_budget_scope *b = &x->sc[k];

		rc = db_exec(c, &q_hold_put, NULL, NULL, NULL, "ttiii", x->id, b->scope,
			     b->period_start, x->amount, x->expires_ms);
		if (rc)
			return rc;
	}
	x->ok = true;
	return ENR_OK;
}

enum enr_err st_budget_reserve(struct store *s, const char *hold_id, const struct st_budget_scope *sc,
			       int n, int64_t amount, int64_t now_ms, int64_t expires_ms, bool *ok,
			       int *refused, int64_t *available)
{
	struct reserve_tx x = { hold_id, sc, { 0 }, n, amount, now_ms, expires_ms, false, -1, 0 };
	enum enr_err rc;

	if (n < 0 || n > (int)(sizeof x.order / sizeof x.order[0]))
		return ENR_E_INVALID;
	/* Rows are locked in one order by everyone, so two reservers of the
	 * same scopes never wait on each other in a circle. */
	for (int i = 0; i < n; i++) {
		int k = i;

		while (k > 0 && strcmp(sc[x.order[k - 1]].scope, sc[i].scope) > 0) {
			x.order[k] = x.order[k - 1];
			k--;
		}
		x.order[k] = i;
	}
	rc = db_tx(s, reserve_tx, &x);
	if (rc)
		return rc;
	*ok = x.ok;
	if (refused)
		*refused = x.refused;
	if (available)
		*available = x.available;
	return ENR_OK;
}

struct settle_tx {
	const char *id;
	const struct st_budget_scope *sc;
	int n;
	int64_t spent;
};

static enum enr_err settle_tx(struct db_conn *c, void *arg)
{
	struct settle_tx *x = arg;
	enum enr_err rc = ENR_OK;

	for (int k = 0; rc == ENR_OK && k < x->n && x->spent > 0; k++)
		rc = db_exec(c, &q_ledger_add, NULL, NULL, NULL, "tii", x->sc[k].scope,
			     x->sc[k].period_start, x->spent);
	if (rc == ENR_OK)
		rc = db_exec(c, &q_holds_drop, NULL, NULL, NULL, "t", x->id);
	return rc;
}

enum enr_err st_budget_settle(struct store *s, const char *hold_id, const struct st_budget_scope *sc,
			      int n, int64_t spent)
{
	struct settle_tx x = { hold_id, sc, n, spent };

	return db_tx(s, settle_tx, &x);
}

enum enr_err st_budget_get(struct store *s, const char *scope, int64_t period_start,
			   int64_t now_ms, int64_t *spent, int64_t *held)
{
	int64_t sp = 0, h = 0;
	enum enr_err rc = db_run(s, &q_ledger_get, db_one_i64, &sp, NULL, "ti", scope, period_start);

	if (rc == ENR_OK)
		rc = db_run(s, &q_holds_sum, db_one_i64, &h, NULL, "tii", scope, period_start, now_ms);
	if (rc)
		return rc;
	*spent = sp;
	*held = h;
	return ENR_OK;
}

/* ---- savings ------------------------------------------------------------------------ */

enum enr_err st_savings_add(struct store *s, const struct st_savings *d)
{
	if ((d->cache_calls | d->cache_credits | d->flight_calls | d->flight_credits) == 0)
		return ENR_OK;
	return db_run(s, &q_savings_add, NULL, NULL, NULL, "ttiiii", d->provider, d->day,
		      d->cache_calls, d->cache_credits, d->flight_calls, d->flight_credits);
}

struct each_savings {
	int (*fn)(void *arg, const struct st_savings *v);
	void *arg;
};

static int savings_row(void *arg, const struct db_row *r)
{
	struct each_savings *x = arg;
	struct st_savings v;

	memset(&v, 0, sizeof v);
	db_textcpy(r, 0, v.provider, sizeof v.provider);
	db_textcpy(r, 1, v.day, sizeof v.day);
	v.cache_calls = db_i64(r, 2);
	v.cache_credits = db_i64(r, 3);
	v.flight_calls = db_i64(r, 4);
	v.flight_credits = db_i64(r, 5);
	return x->fn(x->arg, &v);
}

enum enr_err st_savings_each(struct store *s, const char *from,
			     int (*fn)(void *arg, const struct st_savings *v), void *arg)
{
	struct each_savings x = { fn, arg };

	return db_run(s, &q_savings_each, savings_row, &x, NULL, "t", from);
}
