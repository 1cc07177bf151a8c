/*
 * store_pg.c - the PostgreSQL back end (libpq): a bounded connection
 * pool, prepared statements per connection, transactions and the query
 * runner (lib/store_int.h).
 *
 * Pool: at most st_options.pool_size connections per process, opened on
 * demand; a caller that finds none free waits up to pool_wait_ms, then
 * gets ENR_E_UNAVAILABLE.  A connection is lent for one operation (one
 * statement or one transaction) and comes back to the pool after it.
 * Every connection runs with statement_timeout set.  A connection that
 * broke (server restart, network) is reset on its next use, and its
 * prepared statements are prepared again.
 *
 * Statements are prepared once per connection under the name "s<slot>",
 * with their parameter types taken from the runner's type letters (int8,
 * float8, text, bytea), so the SQL needs no casts.  Parameters go as text
 * except blobs (binary); results come back as text.
 *
 * Errors (SQLSTATE): 23xxx (unique, foreign key, check) ENR_E_CONFLICT;
 * 40001 serialization failure and 40P01 deadlock: the runner runs the
 * statement or transaction again (three times), then ENR_E_UNAVAILABLE;
 * 57014 (statement timeout), 53xxx (out of resources), 08xxx and 57P0x
 * (connection lost, server shutting down) ENR_E_UNAVAILABLE; anything else
 * ENR_E_STORE, logged with the server's message.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "ascii.h"
#include "log.h"
#include "util.h"

#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA 17
#define OID_FLOAT8 701
#define MIGRATE_LOCK_KEY 7170001   /* pg_advisory_xact_lock key of st_migrate */

struct pg_conn {
	struct db_conn base;
	PGconn *pg;
	int slot;                 /* index in the pool */
	bool broken;              /* reset before the next use */
	bool retry;               /* the last failure was 40001/40P01 */
	bool prepared[DB_STMTS_MAX];
};

struct pg_store {
	char *url;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* CLOCK_MONOTONIC */
	struct pg_conn **conns;   /* size slots; NULL: not opened */
	bool *busy;
	int size;
};

static struct pg_store *pgs(struct store *s)
{
	return s->impl;
}

/* ---- errors -------------------------------------------------------------------- */

static enum enr_err pg_err(struct pg_conn *c, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg);

	c->retry = false;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		c->broken = true;
		log_warn("store", "postgresql: connection lost: %s", PQerrorMessage(c->pg));
		return ENR_E_UNAVAILABLE;
	}
	if (state == NULL) {
		log_error("store", "postgresql: %s", msg);
		return ENR_E_STORE;
	}
	if (strncmp(state, "23", 2) == 0)
		return ENR_E_CONFLICT;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
		c->retry = true;
		return ENR_E_UNAVAILABLE;
	}
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		c->broken = true;
		log_warn("store", "postgresql: %s", msg);
		return ENR_E_UNAVAILABLE;
	}
	if (strcmp(state, "57014") == 0 || strncmp(state, "53", 2) == 0) {
		log_warn("store", "postgresql: %s", msg);
		return ENR_E_UNAVAILABLE;
	}
	log_error("store", "postgresql %s: %s", state, msg);
	return ENR_E_STORE;
}

/* A command without parameters or rows. */
static enum enr_err pg_simple(struct pg_conn *c, const char *sql)
{
	PGresult *res = PQexec(c->pg, sql);
	enum enr_err rc = ENR_OK;
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = pg_err(c, res);
	PQclear(res);
	return rc;
}

/* A command whose failure changes nothing for the caller (a rollback). */
static void pg_quiet(struct pg_conn *c, const char *sql)
{
	PQclear(PQexec(c->pg, sql));
}

/* ---- the pool -------------------------------------------------------------------- */

static void conn_close(struct pg_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

static struct pg_conn *conn_open(struct store *s, int slot, char *why, size_t whylen)
{
	char timeout[96];
	const char *keys[8], *vals[8];
	struct pg_conn *c = calloc(1, sizeof *c);
	int n = 0;

	if (c == NULL)
		return NULL;
	c->base.ops = &st_pg_ops;
	c->base.store = s;
	c->slot = slot;
	snprintf(timeout, sizeof timeout, "-c statement_timeout=%d -c client_min_messages=warning",
		 s->opt.statement_timeout_ms);
	keys[n] = "dbname";
	vals[n++] = pgs(s)->url;
	if (s->password) {
		keys[n] = "password";
		vals[n++] = s->password;
	}
	keys[n] = "options";
	vals[n++] = timeout;
	keys[n] = "connect_timeout";
	vals[n++] = "5";
	keys[n] = "application_name";
	vals[n++] = "enrichd";
	keys[n] = NULL;
	vals[n] = NULL;
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		/* The message names the server, never the password. */
		char msg[512];
		size_t len;

		snprintf(msg, sizeof msg, "cannot connect to %s: %s", s->url,
			 c->pg ? PQerrorMessage(c->pg) : "out of memory");
		len = strlen(msg);
		while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
			msg[--len] = '\0';
		if (why)
			snprintf(why, whylen, "%s", msg);
		else
			log_error("store", "%s", msg);
		conn_close(c);
		return NULL;
	}
	return c;
}

static bool conn_heal(struct pg_conn *c)
{
	if (!c->broken && PQstatus(c->pg) == CONNECTION_OK)
		return true;
	PQreset(c->pg);
	if (PQstatus(c->pg) != CONNECTION_OK) {
		log_warn("store", "postgresql reconnect failed: %s", PQerrorMessage(c->pg));
		return false;
	}
	memset(c->prepared, 0, sizeof c->prepared);
	c->broken = false;
	log_notice("store", "postgresql connection re-established");
	return true;
}

static enum enr_err pg_acquire(struct store *s, struct db_conn **out)
{
	struct pg_store *ps = pgs(s);
	struct timespec deadline;
	int slot = -1;
	bool fresh = false;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += s->opt.pool_wait_ms / 1000;
	deadline.tv_nsec += (long)(s->opt.pool_wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ps->lock);
	for (;;) {
		int empty = -1;

		for (int i = 0; i < ps->size; i++) {
			if (ps->busy[i])
				continue;
			if (ps->conns[i]) {
				slot = i;
				break;
			}
			if (empty < 0)
				empty = i;
		}
		if (slot < 0 && empty >= 0) {
			slot = empty;
			fresh = true;
		}
		if (slot >= 0)
			break;
		if (pthread_cond_timedwait(&ps->cond, &ps->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&ps->lock);
			log_warn("store", "no postgresql connection free within %d ms (store_pool_size %d)",
				 s->opt.pool_wait_ms, ps->size);
			return ENR_E_UNAVAILABLE;
		}
	}
	ps->busy[slot] = true;
	pthread_mutex_unlock(&ps->lock);

	/* Connecting happens outside the pool's lock. */
	if (fresh) {
		struct pg_conn *c = conn_open(s, slot, NULL, 0);

		pthread_mutex_lock(&ps->lock);
		ps->conns[slot] = c;
		if (c == NULL) {
			ps->busy[slot] = false;
			pthread_cond_signal(&ps->cond);
		}
		pthread_mutex_unlock(&ps->lock);
		if (c == NULL)
			return ENR_E_UNAVAILABLE;
	} else if (!conn_heal(ps->conns[slot])) {
		pthread_mutex_lock(&ps->lock);
		ps->busy[slot] = false;
		pthread_cond_signal(&ps->cond);
		pthread_mutex_unlock(&ps->lock);
		return ENR_E_UNAVAILABLE;
	}
	ps->conns[slot]->retry = false;
	*out = &ps->conns[slot]->base;
	return ENR_OK;
}

static void pg_release(struct store *s, struct db_conn *dc)
{
	struct pg_store *ps = pgs(s);
	struct pg_conn *c = (struct pg_conn *)dc;

	/* A connection left inside a transaction (a bug, or a lost COMMIT
	 * answer) is not lent again as it is. */
	if (!c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		c->broken = true;
	pthread_mutex_lock(&ps->lock);
	ps->busy[c->slot] = false;
	pthread_cond_signal(&ps->cond);
	pthread_mutex_unlock(&ps->lock);
}

/* ---- rows --------------------------------------------------------------------------- */

struct pg_row {
	PGresult *res;
	int row;
	unsigned char *scratch;   /* a decoded bytea, freed after the callback */
};

static int64_t row_i64(const struct db_row *r, int col)
{
	const struct pg_row *p = r->impl;
	int64_t v = 0;

	if (!PQgetisnull(p->res, p->row, col))
		if (util_parse_i64(PQgetvalue(p->res, p->row, col), INT64_MIN, INT64_MAX, &v) != ENR_OK)
			v = 0;
	return v;
}

static double row_dbl(const struct db_row *r, int col)
{
	const struct pg_row *p = r->impl;
	double v = 0.0;

	if (!PQgetisnull(p->res, p->row, col) &&
	    util_parse_double(PQgetvalue(p->res, p->row, col), -1e300, 1e300, &v) != ENR_OK)
		v = 0.0;
	return v;
}

static const char *row_text(const struct db_row *r, int col)
{
	const struct pg_row *p = r->impl;

	return PQgetisnull(p->res, p->row, col) ? NULL : PQgetvalue(p->res, p->row, col);
}

static const void *row_blob(const struct db_row *r, int col, size_t *len)
{
	struct pg_row *p = r->impl;

	*len = 0;
	if (PQgetisnull(p->res, p->row, col))
		return NULL;
	PQfreemem(p->scratch);
	p->scratch = PQunescapeBytea((const unsigned char *)PQgetvalue(p->res, p->row, col), len);
	return p->scratch;
}

static const struct db_row_ops pg_row_ops = { row_i64, row_dbl, row_text, row_blob };

/* ---- the runner ------------------------------------------------------------------------ */

/* SQLite's ?N parameters as PostgreSQL's $N (the statements hold no
 * question marks elsewhere). */
static char *pg_sql(const struct db_stmt *q)
{
	const char *src = q->pg ? q->pg : q->sql;
	char *out = strdup(src);

	for (char *p = out; out && *p; p++) {
		if (*p == '?' && ascii_is_digit(p[1]))
			*p = '$';
	}
	return out;
}

static Oid oid_of(char type)
{
	switch (type) {
	case 'i': return OID_INT8;
	case 'd': return OID_FLOAT8;
	case 'b': return OID_BYTEA;
	default: return OID_TEXT;
	}
}

static enum enr_err prepare(struct pg_conn *c, struct db_stmt *q, const struct db_param *p, int np,
			    char name[16])
{
	Oid types[DB_PARAMS_MAX];
	int slot = db_stmt_slot(q);
	PGresult *res;
	enum enr_err rc = ENR_OK;
	char *sql;

	if (slot < 0) {
		log_error("store", "statement cache full (raise DB_STMTS_MAX)");
		return ENR_E_INTERNAL;
	}
	snprintf(name, 16, "s%d", slot);
	if (c->prepared[slot])
		return ENR_OK;
	sql = pg_sql(q);
	if (sql == NULL)
		return ENR_E_NOMEM;
	for (int i = 0; i < np; i++)
		types[i] = oid_of(p[i].type);
	res = PQprepare(c->pg, name, sql, np, types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = pg_err(c, res);
		if (rc == ENR_E_STORE)
			log_error("store", "in: %s", sql);
	} else {
		c->prepared[slot] = true;
	}
	PQclear(res);
	free(sql);
	return rc;
}

struct pg_params {
	const char *values[DB_PARAMS_MAX];
	int lengths[DB_PARAMS_MAX];
	int formats[DB_PARAMS_MAX];
	char nums[DB_PARAMS_MAX][32];
};

static void params_fill(struct pg_params *pp, const struct db_param *p, int np)
{
	for (int i = 0; i < np; i++) {
		pp->lengths[i] = 0;
		pp->formats[i] = 0;
		switch (p[i].type) {
		case 'i':
			snprintf(pp->nums[i], sizeof pp->nums[i], "%lld", (long long)p[i].i);
			pp->values[i] = pp->nums[i];
			break;
		case 'd':
			snprintf(pp->nums[i], sizeof pp->nums[i], "%.17g", p[i].d);
			pp->values[i] = pp->nums[i];
			break;
		case 'b':
			pp->values[i] = p[i].p;
			pp->lengths[i] = (int)p[i].len;
			pp->formats[i] = 1;
			break;
		default:
			pp->values[i] = p[i].p;
			break;
		}
	}
}

/* Hand the rows of res to fn; returns how many it saw.  A write's rows
 * are all read (so its RETURNING is complete) even after fn stops. */
static int64_t rows_to(PGresult *res, db_row_fn *fn, void *arg, int64_t base)
{
	struct pg_row pr = { res, 0, NULL };
	struct db_row row = { &pg_row_ops, &pr, (int)base };
	int n = PQntuples(res);

	for (int i = 0; i < n && *fn; i++) {
		pr.row = i;
		row.index = (int)base + i;
		if ((*fn)(arg, &row))
			*fn = NULL;
		PQfreemem(pr.scratch);
		pr.scratch = NULL;
	}
	return n;
}

static enum enr_err pg_exec(struct db_conn *dc, struct db_stmt *q, const struct db_param *p,
			    int np, db_row_fn fn, void *arg, int64_t *changes)
{
	struct pg_conn *c = (struct pg_conn *)dc;
	struct pg_params *pp;
	char name[16];
	enum enr_err rc;
	int64_t seen = 0;

	if (np > DB_PARAMS_MAX)
		return ENR_E_INTERNAL;
	rc = prepare(c, q, p, np, name);
	if (rc)
		return rc;
	pp = malloc(sizeof *pp);
	if (pp == NULL)
		return ENR_E_NOMEM;
	params_fill(pp, p, np);
	if (q->stream) {
		PGresult *res;

		if (!PQsendQueryPrepared(c->pg, name, np, pp->values, pp->lengths, pp->formats, 0) ||
		    !PQsetSingleRowMode(c->pg)) {
			free(pp);
			return pg_err(c, NULL);
		}
		/* Every result is read, even after fn stopped, so the
		 * connection is idle when it goes back to the pool. */
		while ((res = PQgetResult(c->pg)) != NULL) {
			ExecStatusType st = PQresultStatus(res);

			if (st == PGRES_SINGLE_TUPLE)
				seen += rows_to(res, &fn, arg, seen);
			else if (st != PGRES_TUPLES_OK && rc == ENR_OK)
				rc = pg_err(c, res);
			PQclear(res);
		}
	} else {
		PGresult *res = PQexecPrepared(c->pg, name, np, pp->values, pp->lengths, pp->formats, 0);
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			seen = rows_to(res, &fn, arg, 0);
			if (q->write) {
				const char *t = PQcmdTuples(res);

				if (t && *t && util_parse_i64(t, 0, INT64_MAX, &seen) != ENR_OK)
					seen = 0;
			}
		} else {
			rc = pg_err(c, res);
		}
		PQclear(res);
	}
	free(pp);
	if (rc == ENR_OK && changes)
		*changes = seen;
	return rc;
}

static enum enr_err pg_begin(struct db_conn *dc)
{
	return pg_simple((struct pg_conn *)dc, "BEGIN");
}

static enum enr_err pg_commit(struct db_conn *dc)
{
	struct pg_conn *c = (struct pg_conn *)dc;
	enum enr_err rc = pg_simple(c, "COMMIT");

	if (rc && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		pg_quiet(c, "ROLLBACK");
	return rc;
}

static void pg_rollback(struct db_conn *dc)
{
	struct pg_conn *c = (struct pg_conn *)dc;
	bool retry = c->retry;

	if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		pg_quiet(c, "ROLLBACK");
	c->retry = retry; /* the rollback's own result does not change that */
}

static bool pg_retryable(struct db_conn *dc)
{
	return ((struct pg_conn *)dc)->retry;
}

static enum enr_err pg_script(struct db_conn *dc, const char *sql)
{
	return pg_simple((struct pg_conn *)dc, sql);
}

static enum enr_err pg_migrate_lock(struct db_conn *dc)
{
	struct pg_conn *c = (struct pg_conn *)dc;
	char sql[128];
	enum enr_err rc;

	snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%d)", MIGRATE_LOCK_KEY);
	rc = pg_simple(c, sql);
	if (rc == ENR_OK)
		rc = pg_simple(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
	return rc;
}

static enum enr_err pg_version_get(struct db_conn *dc, int *v)
{
	struct pg_conn *c = (struct pg_conn *)dc;
	PGresult *res = PQexec(c->pg, "SELECT to_regclass('schema_version') IS NOT NULL");
	enum enr_err rc = ENR_OK;
	bool exists;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_err(c, res);
		PQclear(res);
		return rc;
	}
	exists = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	*v = 0;
	if (!exists)
		return ENR_OK;
	res = PQexec(c->pg, "SELECT coalesce(max(version), 0) FROM schema_version");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		int64_t x = 0;

		if (util_parse_i64(PQgetvalue(res, 0, 0), 0, 1000000, &x) == ENR_OK)
			*v = (int)x;
	} else {
		rc = pg_err(c, res);
	}
	PQclear(res);
	return rc;
}

static enum enr_err pg_version_set(struct db_conn *dc, int v)
{
	char sql[96];

	snprintf(sql, sizeof sql, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
		 v);
	return pg_simple((struct pg_conn *)dc, sql);
}

/* ---- open / close ---------------------------------------------------------------------- */

static void pg_close(struct store *s)
{
	struct pg_store *ps = pgs(s);

	if (ps == NULL)
		return;
	for (int i = 0; ps->conns && i < ps->size; i++)
		conn_close(ps->conns[i]);
	free(ps->conns);
	free(ps->busy);
	pthread_cond_destroy(&ps->cond);
	pthread_mutex_destroy(&ps->lock);
	free(ps->url);
	free(ps);
	s->impl = NULL;
}

static enum enr_err pg_open(struct store *s, const char *url, char *why, size_t whylen)
{
	struct pg_store *ps = calloc(1, sizeof *ps);
	pthread_condattr_t ca;

	if (ps == NULL)
		return ENR_E_NOMEM;
	ps->size = s->opt.pool_size;
	ps->url = strdup(url);
	ps->conns = calloc((size_t)ps->size, sizeof *ps->conns);
	ps->busy = calloc((size_t)ps->size, sizeof *ps->busy);
	pthread_mutex_init(&ps->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ps->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->impl = ps;
	if (ps->url == NULL || ps->conns == NULL || ps->busy == NULL) {
		pg_close(s);
		return ENR_E_NOMEM;
	}
	/* One connection now, so a wrong URL or password fails at start,
	 * with the server's reason. */
	ps->conns[0] = conn_open(s, 0, why, whylen);
	if (ps->conns[0] == NULL) {
		pg_close(s);
		return ENR_E_UNAVAILABLE;
	}
	return ENR_OK;
}

const struct store_ops st_pg_ops = {
	.name = "postgresql",
	.dialect = DB_PG,
	.open = pg_open,
	.close = pg_close,
	.acquire = pg_acquire,
	.release = pg_release,
	.thread_release = NULL,
	.exec = pg_exec,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.retryable = pg_retryable,
	.script = pg_script,
	.migrate_lock = pg_migrate_lock,
	.version_get = pg_version_get,
	.version_set = pg_version_set,
	.auth_local = NULL,
	.auth_local_bump = NULL,
};
