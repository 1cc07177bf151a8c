/*
 * store_accounts.c - accounts and client keys (both back ends).
 *
 * Every change to client keys or account limits bumps the authentication
 * generation in the same transaction, so a process that caches
 * authentication results drops them within ST_AUTH_POLL_MS on any host.
 */
#include "store.h"
#include "store_int.h"

#include <string.h>

#include "util.h"

#define ACCOUNT_COLS "SELECT id, name, requests_per_minute, burst, records_per_hour," \
		     " records_per_day, created_at, credits_per_day, credits_per_month"  \
		     " FROM accounts"
#define KEY_COLS "SELECT k.id, k.account_id, a.name, k.name, k.last4, k.scopes,"   \
		 " k.created_at, k.expires_at, k.revoked_at, a.requests_per_minute,"   \
		 " a.burst, a.records_per_hour, a.records_per_day, a.created_at,"      \
		 " a.credits_per_day, a.credits_per_month"                             \
		 " FROM client_keys k JOIN accounts a ON a.id = k.account_id"

static struct db_stmt q_account_insert =
	DB_WRITE("INSERT INTO accounts(name, created_at) VALUES (?1, ?2) RETURNING id");
static struct db_stmt q_account_by_name = DB_READ(ACCOUNT_COLS " WHERE name = ?1");
static struct db_stmt q_account_by_id = DB_READ(ACCOUNT_COLS " WHERE id = ?1");
static struct db_stmt q_account_all = DB_READ(ACCOUNT_COLS " ORDER BY name");
static struct db_stmt q_account_set_limits =
	DB_WRITE("UPDATE accounts SET requests_per_minute = ?2, burst = ?3,"
		 " records_per_hour = ?4, records_per_day = ?5, credits_per_day = ?6,"
		 " credits_per_month = ?7 WHERE id = ?1");
static struct db_stmt q_account_set_budgets =
	DB_WRITE("UPDATE accounts SET credits_per_day = ?2, credits_per_month = ?3 WHERE id = ?1");
static struct db_stmt q_key_insert =
	DB_WRITE("INSERT INTO client_keys(account_id, name, hash, last4, scopes, created_at,"
		 " expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id");
static struct db_stmt q_key_by_hash = DB_READ(KEY_COLS " WHERE k.hash = ?1");
static struct db_stmt q_key_revoke =
	DB_WRITE("UPDATE client_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0");
static struct db_stmt q_key_all = DB_READ(KEY_COLS " ORDER BY k.id");
static struct db_stmt q_key_of_account = DB_READ(KEY_COLS " WHERE k.account_id = ?1 ORDER BY k.id");

/* ---- accounts ------------------------------------------------------------- */

enum enr_err st_account_create(struct store *s, const char *name, int64_t now_s, int64_t *id)
{
	int64_t v = 0;
	enum enr_err rc = db_run(s, &q_account_insert, db_one_i64, &v, NULL, "ti", name, now_s);

	if (rc == ENR_OK && id)
		*id = v;
	return rc;
}

static void row_account(const struct db_row *r, int off, struct st_account *a)
{
	a->id = db_i64(r, off);
	db_textcpy(r, off + 1, a->name, sizeof a->name);
	a->requests_per_minute = db_i64(r, off + 2);
	a->burst = db_i64(r, off + 3);
	a->records_per_hour = db_i64(r, off + 4);
	a->records_per_day = db_i64(r, off + 5);
	a->created_at = db_i64(r, off + 6);
	a->credits_per_day = db_i64(r, off + 7);
	a->credits_per_month = db_i64(r, off + 8);
}

struct one_account {
	struct st_account a;
	bool found;
};

static int account_row(void *arg, const struct db_row *r)
{
	struct one_account *x = arg;

	row_account(r, 0, &x->a);
	x->found = true;
	return 1;
}

static enum enr_err account_one(struct store *s, struct db_stmt *q, const char *name, int64_t id,
				struct st_account *out)
{
	struct one_account x = { .found = false };
	enum enr_err rc = name ? db_run(s, q, account_row, &x, NULL, "t", name)
			       : db_run(s, q, account_row, &x, NULL, "i", id);

	if (rc)
		return rc;
	if (!x.found)
		return ENR_E_NOT_FOUND;
	*out = x.a;
	return ENR_OK;
}

enum enr_err st_account_by_name(struct store *s, const char *name, struct st_account *out)
{
	return account_one(s, &q_account_by_name, name, 0, out);
}

enum enr_err st_account_by_id(struct store *s, int64_t id, struct st_account *out)
{
	return account_one(s, &q_account_by_id, NULL, id, out);
}

struct set_limits {
	int64_t id;
	const struct st_account *l;
};

static enum enr_err set_limits_tx(struct db_conn *c, void *arg)
{
	struct set_limits *x = arg;
	int64_t changes = 0;
	enum enr_err rc = db_exec(c, &q_account_set_limits, NULL, NULL, &changes, "iiiiiii", x->id,
				  x->l->requests_per_minute, x->l->burst, x->l->records_per_hour,
				  x->l->records_per_day, x->l->credits_per_day,
				  x->l->credits_per_month);

	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_NOT_FOUND;
	return rc ? rc : st_auth_bump(c);
}

enum enr_err st_account_set_limits(struct store *s, int64_t id, const struct st_account *l)
{
	struct set_limits x = { id, l };
	enum enr_err rc = db_tx(s, set_limits_tx, &x);

	if (rc == ENR_OK)
		st_auth_bumped(s);
	return rc;
}

struct set_budgets {
	int64_t id, per_day, per_month;
};

static enum enr_err set_budgets_tx(struct db_conn *c, void *arg)
{
	struct set_budgets *x = arg;
	int64_t changes = 0;
	enum enr_err rc = db_exec(c, &q_account_set_budgets, NULL, NULL, &changes, "iii", x->id,
				  x->per_day, x->per_month);

	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_NOT_FOUND;
	return rc ? rc : st_auth_bump(c);
}

enum enr_err st_account_set_budgets(struct store *s, int64_t id, int64_t credits_per_day,
				    int64_t credits_per_month)
{
	struct set_budgets x = { id, credits_per_day, credits_per_month };
	enum enr_err rc = db_tx(s, set_budgets_tx, &x);

	if (rc == ENR_OK)
		st_auth_bumped(s);
	return rc;
}

struct each_account {
	int (*fn)(void *arg, const struct st_account *a);
	void *arg;
};

static int each_account_row(void *arg, const struct db_row *r)
{
	struct each_account *x = arg;
	struct st_account a;

	row_account(r, 0, &a);
	return x->fn(x->arg, &a);
}

enum enr_err st_account_each(struct store *s, int (*fn)(void *arg, const struct st_account *a),
			     void *arg)
{
	struct each_account x = { fn, arg };

	return db_run(s, &q_account_all, each_account_row, &x, NULL, "");
}

void st_account_limits(const struct st_account *a, const struct cfg_account_limits *d,
		       struct cfg_account_limits *out)
{
	out->requests_per_minute = a->requests_per_minute >= 0 ? a->requests_per_minute
							       : d->requests_per_minute;
	out->burst = a->burst >= 0 ? a->burst : d->burst;
	out->records_per_hour = a->records_per_hour >= 0 ? a->records_per_hour : d->records_per_hour;
	out->records_per_day = a->records_per_day >= 0 ? a->records_per_day : d->records_per_day;
}

/* ---- client keys -------------------------------------------------------------- */

struct key_insert {
	int64_t account_id;
	const char *name;
	const unsigned char *hash;
	const char *last4;
	unsigned scopes;
	int64_t expires_at, now_s, id;
};

static enum enr_err key_insert_tx(struct db_conn *c, void *arg)
{
	struct key_insert *x = arg;
	enum enr_err rc = db_exec(c, &q_key_insert, db_one_i64, &x->id, NULL, "itbtiii",
				  x->account_id, x->name ? x->name : "", x->hash,
				  (size_t)AUTH_HASH_LEN, x->last4, (int64_t)x->scopes, x->now_s,
				  x->expires_at);

	return rc ? rc : st_auth_bump(c);
}

enum enr_err st_client_key_insert(struct store *s, int64_t account_id, const char *name,
				  const unsigned char hash[AUTH_HASH_LEN], const char *last4,
				  unsigned scopes, int64_t expires_at, int64_t now_s, int64_t *id)
{
	struct key_insert x = { account_id, name, hash, last4, scopes, expires_at, now_s, 0 };
	enum enr_err rc = db_tx(s, key_insert_tx, &x);

	if (rc)
		return rc;
	st_auth_bumped(s);
	if (id)
		*id = x.id;
	return ENR_OK;
}

static void row_key(const struct db_row *r, struct st_client_key *k)
{
	struct st_account *a = &k->account_row;

	k->id = db_i64(r, 0);
	k->account_id = db_i64(r, 1);
	db_textcpy(r, 2, k->account, sizeof k->account);
	db_textcpy(r, 3, k->name, sizeof k->name);
	db_textcpy(r, 4, k->last4, sizeof k->last4);
	k->scopes = (unsigned)db_i64(r, 5);
	k->created_at = db_i64(r, 6);
	k->expires_at = db_i64(r, 7);
	k->revoked_at = db_i64(r, 8);
	a->id = k->account_id;
	util_strlcpy(a->name, k->account, sizeof a->name);
	a->requests_per_minute = db_i64(r, 9);
	a->burst = db_i64(r, 10);
	a->records_per_hour = db_i64(r, 11);
	a->records_per_day = db_i64(r, 12);
	a->created_at = db_i64(r, 13);
	a->credits_per_day = db_i64(r, 14);
	a->credits_per_month = db_i64(r, 15);
}

struct one_key {
	struct st_client_key k;
	bool found;
};

static int one_key_row(void *arg, const struct db_row *r)
{
	struct one_key *x = arg;

	row_key(r, &x->k);
	x->found = true;
	return 1;
}

enum enr_err st_client_key_by_hash(struct store *s, const unsigned char hash[AUTH_HASH_LEN],
				   struct st_client_key *out)
{
	struct one_key x = { .found = false };
	enum enr_err rc = db_run(s, &q_key_by_hash, one_key_row, &x, NULL, "b", hash,
				 (size_t)AUTH_HASH_LEN);

	if (rc)
		return rc;
	if (!x.found)
		return ENR_E_NOT_FOUND;
	*out = x.k;
	return ENR_OK;
}

struct key_revoke {
	int64_t id, now_s;
};

static enum enr_err key_revoke_tx(struct db_conn *c, void *arg)
{
	struct key_revoke *x = arg;
	int64_t changes = 0;
	enum enr_err rc = db_exec(c, &q_key_revoke, NULL, NULL, &changes, "ii", x->id, x->now_s);

	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_NOT_FOUND;
	return rc ? rc : st_auth_bump(c);
}

enum enr_err st_client_key_revoke(struct store *s, int64_t id, int64_t now_s)
{
	struct key_revoke x = { id, now_s };
	enum enr_err rc = db_tx(s, key_revoke_tx, &x);

	if (rc == ENR_OK)
		st_auth_bumped(s);
	return rc;
}

struct each_key {
	int (*fn)(void *arg, const struct st_client_key *k);
	void *arg;
};

static int each_key_row(void *arg, const struct db_row *r)
{
	struct each_key *x = arg;
	struct st_client_key k;

	memset(&k, 0, sizeof k);
	row_key(r, &k);
	return x->fn(x->arg, &k);
}

enum enr_err st_client_key_each(struct store *s, int64_t account_id,
				int (*fn)(void *arg, const struct st_client_key *k), void *arg)
{
	struct each_key x = { fn, arg };

	if (account_id < 0)
		return db_run(s, &q_key_all, each_key_row, &x, NULL, "");
	return db_run(s, &q_key_of_account, each_key_row, &x, NULL, "i", account_id);
}
