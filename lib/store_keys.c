/*
 * store_keys.c - the upstream key pool and pacing slots (both back ends).
 *
 * lib/keypool decides every state transition; this file keeps the result.
 * A key's row has a version that each state change moves: a caller reads
 * a key, applies an outcome in C and stores it with a compare-and-set, so
 * two hosts applying outcomes to one key at once never lose one (the
 * loser reads again and re-applies on top).  Call counters are added, not
 * written, so counts gathered elsewhere are never overwritten.
 */
#include "store.h"
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define UKEY_COLS                                                                      \
	"SELECT id, provider, account, last4, ord, state, until_ms, transients, backoff_ms," \
	" calls, hits, misses, errors, credits, last_used_ms, version, requests_left,"    \
	" credits_left, meters_ms FROM upstream_keys"

static struct db_stmt q_unconfigure = DB_WRITE("UPDATE upstream_keys SET configured = 0");
static struct db_stmt q_upsert =
	DB_WRITE("INSERT INTO upstream_keys(id, provider, account, last4, ord, configured)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT(id) DO UPDATE SET"
		 " provider = excluded.provider, account = excluded.account, ord = excluded.ord,"
		 " configured = 1, last4 = CASE WHEN excluded.last4 = '' THEN upstream_keys.last4"
		 " ELSE excluded.last4 END");
static struct db_stmt q_of_provider =
	DB_READ(UKEY_COLS " WHERE provider = ?1 AND configured = 1 ORDER BY ord");
static struct db_stmt q_by_id = DB_READ(UKEY_COLS " WHERE id = ?1 AND configured = 1");
static struct db_stmt q_all = DB_READ(UKEY_COLS " WHERE configured = 1 ORDER BY provider, ord");
static struct db_stmt q_put = DB_WRITE2(
	"UPDATE upstream_keys SET state = ?3, until_ms = ?4, transients = ?5, backoff_ms = ?6,"
	" calls = calls + ?7, hits = hits + ?8, misses = misses + ?9, errors = errors + ?10,"
	" credits = credits + ?11, last_used_ms = MAX(last_used_ms, ?12), version = version + 1"
	" WHERE id = ?1 AND version = ?2",
	"UPDATE upstream_keys SET state = $3, until_ms = $4, transients = $5, backoff_ms = $6,"
	" calls = calls + $7, hits = hits + $8, misses = misses + $9, errors = errors + $10,"
	" credits = credits + $11, last_used_ms = GREATEST(last_used_ms, $12),"
	" version = version + 1 WHERE id = $1 AND version = $2");
/* Deadlines only move later, and invalid or exhausted keys keep their
 * state (an exhausted key whose deadline passed is active again). */
static struct db_stmt q_cool_account =
	DB_WRITE("UPDATE upstream_keys SET state = 1, until_ms = ?3, version = version + 1"
		 " WHERE provider = ?1 AND account = ?2 AND id <> ?4 AND configured = 1"
		 " AND (state = 0 OR (state = 1 AND until_ms < ?3)"
		 "      OR (state = 2 AND until_ms > 0 AND until_ms <= ?5))");
static struct db_stmt q_counts = DB_WRITE2(
	"UPDATE upstream_keys SET calls = calls + ?2, hits = hits + ?3, misses = misses + ?4,"
	" credits = credits + ?5, last_used_ms = MAX(last_used_ms, ?6) WHERE id = ?1",
	"UPDATE upstream_keys SET calls = calls + $2, hits = hits + $3, misses = misses + $4,"
	" credits = credits + $5, last_used_ms = GREATEST(last_used_ms, $6) WHERE id = $1");
static struct db_stmt q_pace = DB_WRITE2(
	"INSERT INTO pace_slots(scope, next_ms) VALUES (?1, ?2 + ?3)"
	" ON CONFLICT(scope) DO UPDATE SET next_ms = MAX(pace_slots.next_ms, ?2) + ?3"
	" RETURNING next_ms - ?3",
	"INSERT INTO pace_slots(scope, next_ms) VALUES ($1, $2 + $3)"
	" ON CONFLICT(scope) DO UPDATE SET next_ms = GREATEST(pace_slots.next_ms, $2) + $3"
	" RETURNING next_ms - $3");

static struct db_stmt q_outcome_add =
	DB_WRITE("INSERT INTO ukey_outcomes(key_id, outcome, calls, credits) VALUES (?1, ?2, ?3, ?4)"
		 " ON CONFLICT(key_id, outcome) DO UPDATE SET"
		 " calls = ukey_outcomes.calls + excluded.calls,"
		 " credits = ukey_outcomes.credits + excluded.credits");
static struct db_stmt q_outcome_all =
	DB_READ("SELECT k.provider, o.key_id, o.outcome, o.calls, o.credits FROM ukey_outcomes o"
		" JOIN upstream_keys k ON k.id = o.key_id WHERE k.configured = 1"
		" ORDER BY k.provider, k.ord, o.outcome");
/* A meter the answer did not carry (-1) keeps the stored one. */
static struct db_stmt q_meters =
	DB_WRITE("UPDATE upstream_keys SET"
		 " requests_left = CASE WHEN ?2 >= 0 THEN ?2 ELSE requests_left END,"
		 " credits_left = CASE WHEN ?3 >= 0 THEN ?3 ELSE credits_left END,"
		 " meters_ms = ?4 WHERE id = ?1 AND meters_ms <= ?4");

/* ---- sync ------------------------------------------------------------------- */

struct sync_tx {
	const struct st_ukey_cfg *keys;
	size_t n;
};

static enum enr_err sync_tx(struct db_conn *c, void *arg)
{
	struct sync_tx *x = arg;
	enum enr_err rc = db_exec(c, &q_unconfigure, NULL, NULL, NULL, "");

	for (size_t i = 0; rc == ENR_OK && i < x->n; i++) {
		const struct st_ukey_cfg *k = &x->keys[i];

		rc = db_exec(c, &q_upsert, NULL, NULL, NULL, "tttti",
			     k->id, k->provider, k->account, k->last4, (int64_t)k->ord);
	}
	return rc;
}

enum enr_err st_ukey_sync(struct store *s, const struct st_ukey_cfg *keys, size_t n)
{
	struct sync_tx x = { keys, n };

	return db_tx(s, sync_tx, &x);
}

/* ---- reads ---------------------------------------------------------------------- */

static void row_ukey(const struct db_row *r, struct kp_key *k)
{
	int state;

	memset(k, 0, sizeof *k);
	db_textcpy(r, 0, k->id, sizeof k->id);
	db_textcpy(r, 1, k->provider, sizeof k->provider);
	db_textcpy(r, 2, k->account, sizeof k->account);
	db_textcpy(r, 3, k->last4, sizeof k->last4);
	k->ord = db_int(r, 4);
	state = db_int(r, 5);
	k->state = state >= 0 && state < KP_STATE__MAX ? (enum kp_state)state : KP_INVALID;
	k->until_ms = db_i64(r, 6);
	k->transients = db_int(r, 7);
	k->backoff_ms = db_i64(r, 8);
	k->calls = db_i64(r, 9);
	k->hits = db_i64(r, 10);
	k->misses = db_i64(r, 11);
	k->errors = db_i64(r, 12);
	k->credits = db_i64(r, 13);
	k->last_used_ms = db_i64(r, 14);
	k->version = db_i64(r, 15);
	k->requests_left = db_i64(r, 16);
	k->credits_left = db_i64(r, 17);
	k->meters_ms = db_i64(r, 18);
}

struct key_list {
	struct kp_key *keys;
	int max, n;
	int cap;      /* grown on the heap as rows come; 0 with a caller's array */
	bool nomem;
};

static int list_row(void *arg, const struct db_row *r)
{
	struct key_list *x = arg;

	if (x->n >= x->max)
		return 1;
	if (x->cap > 0 && x->n == x->cap) {
		int cap = x->cap * 2 < x->max ? x->cap * 2 : x->max;
		struct kp_key *k = realloc(x->keys, (size_t)cap * sizeof *k);

		if (k == NULL) {
			x->nomem = true;
			return 1;
		}
		x->keys = k;
		x->cap = cap;
	}
	row_ukey(r, &x->keys[x->n++]);
	return 0;
}

enum enr_err st_ukeys_of(struct store *s, const char *provider, struct kp_key *keys, int max,
			 int *n)
{
	struct key_list x = { keys, max, 0, 0, false };
	enum enr_err rc = db_run(s, &q_of_provider, list_row, &x, NULL, "t", provider);

	if (rc == ENR_OK)
		*n = x.n;
	return rc;
}

/* A pool has a few keys: the array starts at that and grows on the store's
 * side, so no room for the most a provider may have waits in the queue
 * with the call. */
#define UKEYS_FIRST 4

enum enr_err st_ukeys_load(struct store *s, const char *provider, int max, struct kp_key **keys,
			   int *n)
{
	struct key_list x = { NULL, max, 0, max < UKEYS_FIRST ? max : UKEYS_FIRST, false };
	enum enr_err rc;

	*keys = NULL;
	*n = 0;
	if (max <= 0)
		return ENR_OK;
	x.keys = malloc((size_t)x.cap * sizeof *x.keys);
	if (x.keys == NULL)
		return ENR_E_NOMEM;
	rc = db_run(s, &q_of_provider, list_row, &x, NULL, "t", provider);
	if (rc == ENR_OK && x.nomem)
		rc = ENR_E_NOMEM;
	if (rc != ENR_OK || x.n == 0) {
		free(x.keys);
		return rc;
	}
	if (x.n < x.cap) {
		struct kp_key *fit = realloc(x.keys, (size_t)x.n * sizeof *fit);

		if (fit)
			x.keys = fit;
	}
	*keys = x.keys;
	*n = x.n;
	return ENR_OK;
}

struct key_each {
	int (*fn)(void *arg, const struct kp_key *k);
	void *arg;
};

static int each_row(void *arg, const struct db_row *r)
{
	struct key_each *x = arg;
	struct kp_key k;

	row_ukey(r, &k);
	return x->fn(x->arg, &k);
}

enum enr_err st_ukey_each(struct store *s, int (*fn)(void *arg, const struct kp_key *k), void *arg)
{
	struct key_each x = { fn, arg };

	return db_run(s, &q_all, each_row, &x, NULL, "");
}

enum enr_err st_ukey_get(struct store *s, const char *id, struct kp_key *out)
{
	struct kp_key k;
	struct key_list x = { &k, 1, 0, 0, false };
	enum enr_err rc = db_run(s, &q_by_id, list_row, &x, NULL, "t", id);

	if (rc)
		return rc;
	if (x.n == 0)
		return ENR_E_NOT_FOUND;
	*out = k;
	return ENR_OK;
}

/* ---- writes ------------------------------------------------------------------------- */

static int64_t grew(int64_t after, int64_t before)
{
	return after > before ? after - before : 0;
}

enum enr_err st_ukey_put(struct store *s, const struct kp_key *b, const struct kp_key *a,
			 bool *stored)
{
	int64_t changes = 0;
	enum enr_err rc = db_run(s, &q_put, NULL, NULL, &changes, "tiiiiiiiiiii", b->id, b->version,
				 (int64_t)a->state, a->until_ms, (int64_t)a->transients,
				 a->backoff_ms, grew(a->calls, b->calls), grew(a->hits, b->hits),
				 grew(a->misses, b->misses), grew(a->errors, b->errors),
				 grew(a->credits, b->credits), a->last_used_ms);

	if (rc == ENR_OK)
		*stored = changes == 1;
	return rc;
}

enum enr_err st_ukey_cool_account(struct store *s, const char *provider, const char *account,
				  const char *except_id, int64_t until_ms, int64_t now_ms, int *n)
{
	int64_t changes = 0;
	enum enr_err rc = db_run(s, &q_cool_account, NULL, NULL, &changes, "ttiti", provider,
				 account, until_ms, except_id, now_ms);

	if (rc == ENR_OK && n)
		*n = (int)changes;
	return rc;
}

enum enr_err st_ukey_add_counts(struct store *s, const char *id, int64_t calls, int64_t hits,
				int64_t misses, int64_t credits, int64_t last_used_ms)
{
	return db_run(s, &q_counts, NULL, NULL, NULL, "tiiiii", id, calls, hits, misses, credits,
		      last_used_ms);
}

enum enr_err st_pace_reserve(struct store *s, const char *scope, int64_t interval_ms,
			     int64_t now_ms, int64_t *start_ms)
{
	int64_t v = now_ms;
	enum enr_err rc = db_run(s, &q_pace, db_one_i64, &v, NULL, "tii", scope, now_ms,
				 interval_ms);

	if (rc == ENR_OK)
		*start_ms = v;
	return rc;
}

/* ---- outcomes and meters ----------------------------------------------------------- */

enum enr_err st_ukey_outcome_add(struct store *s, const char *id, int outcome, int64_t calls,
				 int64_t credits)
{
	if (calls == 0 && credits == 0)
		return ENR_OK;
	return db_run(s, &q_outcome_add, NULL, NULL, NULL, "tiii", id, (int64_t)outcome, calls,
		      credits);
}

struct outcome_each {
	int (*fn)(void *arg, const char *provider, const char *id, int outcome, int64_t calls,
		  int64_t credits);
	void *arg;
};

static int outcome_row(void *arg, const struct db_row *r)
{
	struct outcome_each *x = arg;

	return x->fn(x->arg, db_text(r, 0) ? db_text(r, 0) : "", db_text(r, 1) ? db_text(r, 1) : "",
		     db_int(r, 2), db_i64(r, 3), db_i64(r, 4));
}

enum enr_err st_ukey_outcome_each(struct store *s,
				  int (*fn)(void *arg, const char *provider, const char *id,
					    int outcome, int64_t calls, int64_t credits),
				  void *arg)
{
	struct outcome_each x = { fn, arg };

	return db_run(s, &q_outcome_all, outcome_row, &x, NULL, "");
}

enum enr_err st_ukey_meters_put(struct store *s, const char *id, int64_t requests_left,
				int64_t credits_left, int64_t at_ms)
{
	return db_run(s, &q_meters, NULL, NULL, NULL, "tiii", id, requests_left, credits_left,
		      at_ms);
}
