/*
 * store_copy.c - copy a deployment's data from one store into another
 * (enrichctl store copy), e.g. from SQLite to PostgreSQL when one machine
 * is no longer enough.
 *
 * Each table is read in key order from the source and upserted into the
 * target in one transaction of the target, so a copy can be run again
 * (it overwrites what it wrote before) and a failure leaves each table
 * either copied or as it was.  Ids are kept, so client keys, jobs and
 * their rows keep pointing at the same accounts; PostgreSQL's identity
 * sequences are moved past the copied ids afterwards.  Usage journal
 * marks, claims on lookups in flight and budget holds are not copied (they
 * belong to processes of the source).
 */
#include "store.h"
#include "store_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

struct table {
	const char *name;
	const char *cols;      /* in order */
	const char *types;     /* one letter per column */
	const char *key;       /* the conflict target */
	const char *identity;  /* the PostgreSQL identity column, or NULL */
};

/* In the order foreign keys need. */
static const struct table tables[] = {
	{ "accounts", "id, name, requests_per_minute, burst, records_per_hour, records_per_day,"
		      " created_at, credits_per_day, credits_per_month", "itiiiiiii", "id", "id" },
	{ "client_keys", "id, account_id, name, hash, last4, scopes, created_at, expires_at,"
			 " revoked_at", "iitbtiiii", "id", "id" },
	{ "admission", "account_id, tokens, updated_ms, hour_start, hour_used, day_start, day_used",
	  "idiiiii", "account_id", NULL },
	{ "usage_daily", "account_id, day, requests, records, credits, rejections", "itiiii",
	  "account_id, day", NULL },
	{ "upstream_keys", "id, provider, account, last4, ord, state, until_ms, transients,"
			   " backoff_ms, calls, hits, misses, errors, credits, last_used_ms,"
			   " configured, version, requests_left, credits_left, meters_ms",
	  "ttttiiiiiiiiiiiiiiii", "id", NULL },
	{ "ukey_outcomes", "key_id, outcome, calls, credits", "tiii", "key_id, outcome", NULL },
	{ "pace_slots", "scope, next_ms", "ti", "scope", NULL },
	{ "cache", "key, provider, hit, body, expires_ms", "btiti", "key", NULL },
	{ "jobs", "seq, id, account_id, status, want, format, columns, total, rejected, pending,"
		  " done, found, not_found, failed, credits, webhook_url, webhook_state,"
		  " webhook_attempts, webhook_next_ms, idempotency_key, created_ms, started_ms,"
		  " finished_ms", "itiiiitiiiiiiiitiiitiii", "seq", "seq" },
	{ "job_rows", "job_seq, rownum, input, state, status, result, error_code, error, attempts,"
		      " owner, lease_until_ms, not_before_ms, credits, finished_ms",
	  "iitiitttitiiii", "job_seq, rownum", NULL },
	{ "audit_log", "id, at_ms, actor, source, action, target, details", "iittttt", "id",
	  "id" },
	{ "alerts", "id, at_ms, event, provider, key_id, last4, state, until_ms, message",
	  "iitttttit", "id", "id" },
	{ "budget_spent", "scope, period_start, spent", "tii", "scope, period_start", NULL },
	{ "savings_daily", "provider, day, cache_calls, cache_credits, flight_calls, flight_credits",
	  "ttiiii", "provider, day", NULL },
};

#define NTABLES (sizeof tables / sizeof tables[0])
#define COLS_MAX 32

struct copy_stmts {
	struct db_stmt read, write;
	char rsql[1024], wsql[2048];
};

static struct copy_stmts stmts[NTABLES];

/* Split "a, b, c" into names (pointers into buf). */
static int split_cols(const char *cols, char *buf, size_t bufsz, const char *names[COLS_MAX])
{
	int n = 0;
	char *p = buf;

	snprintf(buf, bufsz, "%s", cols);
	while (*p && n < COLS_MAX) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		names[n++] = p;
		while (*p && *p != ',' && *p != ' ')
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static bool in_key(const char *key, const char *name)
{
	char buf[256];
	const char *names[COLS_MAX];
	int n = split_cols(key, buf, sizeof buf, names);

	for (int i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0)
			return true;
	}
	return false;
}

static void build(size_t i)
{
	const struct table *t = &tables[i];
	struct copy_stmts *c = &stmts[i];
	char buf[1024];
	const char *names[COLS_MAX];
	int n = split_cols(t->cols, buf, sizeof buf, names);
	size_t o;

	if (c->read.sql)
		return;
	snprintf(c->rsql, sizeof c->rsql, "SELECT %s FROM %s ORDER BY %s", t->cols, t->name, t->key);
	o = (size_t)snprintf(c->wsql, sizeof c->wsql, "INSERT INTO %s(%s) VALUES (", t->name,
			     t->cols);
	for (int k = 0; k < n; k++)
		o += (size_t)snprintf(c->wsql + o, sizeof c->wsql - o, "%s?%d", k ? ", " : "", k + 1);
	o += (size_t)snprintf(c->wsql + o, sizeof c->wsql - o, ") ON CONFLICT(%s) DO UPDATE SET ",
			      t->key);
	for (int k = 0, first = 1; k < n; k++) {
		if (in_key(t->key, names[k]))
			continue;
		o += (size_t)snprintf(c->wsql + o, sizeof c->wsql - o, "%s%s = excluded.%s",
				      first ? "" : ", ", names[k], names[k]);
		first = 0;
	}
	c->read.sql = c->rsql;
	c->write.sql = c->wsql;
	c->write.write = true;
	c->read.stream = true;
}

struct copy_arg {
	const struct table *t;
	struct copy_stmts *c;
	struct store *from;
	struct db_conn *to;
	int64_t rows;
	enum enr_err rc;
};

static int copy_row(void *arg, const struct db_row *r)
{
	struct copy_arg *x = arg;
	struct db_param p[COLS_MAX];
	int n = (int)strlen(x->t->types);

	for (int k = 0; k < n; k++) {
		memset(&p[k], 0, sizeof p[k]);
		p[k].type = x->t->types[k];
		switch (p[k].type) {
		case 'i':
			p[k].i = db_i64(r, k);
			break;
		case 'd':
			p[k].d = db_dbl(r, k);
			break;
		case 'b':
			p[k].p = db_blob(r, k, &p[k].len);
			break;
		default:
			p[k].p = db_text(r, k);
			break;
		}
	}
	x->rc = db_execv(x->to, &x->c->write, p, n, NULL, NULL, NULL);
	if (x->rc)
		return 1;
	x->rows++;
	return 0;
}

static enum enr_err copy_tx(struct db_conn *to, void *arg)
{
	struct copy_arg *x = arg;
	enum enr_err rc;

	x->to = to;
	x->rows = 0;
	x->rc = ENR_OK;
	rc = db_run(x->from, &x->c->read, copy_row, x, NULL, "");
	if (rc == ENR_OK)
		rc = x->rc;
	if (rc == ENR_OK && x->t->identity && to->ops->dialect == DB_PG) {
		char sql[256];

		snprintf(sql, sizeof sql,
			 "SELECT setval(pg_get_serial_sequence('%s', '%s'),"
			 " coalesce((SELECT max(%s) FROM %s), 0) + 1, false)",
			 x->t->name, x->t->identity, x->t->identity, x->t->name);
		rc = to->ops->script(to, sql);
	}
	if (rc == ENR_OK && strcmp(x->t->name, "client_keys") == 0)
		rc = st_auth_bump(to);
	return rc;
}

enum enr_err st_copy(struct store *from, struct store *to,
		     void (*fn)(void *arg, const char *table, int64_t rows), void *arg)
{
	for (size_t i = 0; i < NTABLES; i++) {
		struct copy_arg x = { &tables[i], &stmts[i], from, NULL, 0, ENR_OK };
		enum enr_err rc;

		build(i);
		rc = db_tx(to, copy_tx, &x);
		if (rc) {
			log_error("store", "copy of table %s failed: %s", tables[i].name,
				  enr_strerror(rc));
			return rc;
		}
		if (fn)
			fn(arg, tables[i].name, x.rows);
	}
	st_auth_bumped(to);
	return ENR_OK;
}
