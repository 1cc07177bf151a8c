/*
 * store_int.h - what the store's files share: the back-end table, the
 * query runner and the row reader.  Not for callers of lib/store.h.
 *
 * Layout (docs/architecture.md, "The store seam"):
 *   store.c            dispatch by URL scheme, options, the runner's
 *                      entry points, the authentication generation cache
 *   store_sqlite.c     SQLite: connections, transactions, the runner
 *   store_pg.c         PostgreSQL: the pool, transactions, the runner
 *   store_schema.c     both back ends' migrations
 *   store_accounts.c   accounts and client keys
 *   store_usage.c      admission state and usage
 *   store_keys.c       the upstream key pool and pacing
 *   store_cache.c      the answers cache
 *   store_jobs.c       batch jobs
 *   store_copy.c       moving a deployment from one store to another
 *
 * A statement is written once, in SQLite's dialect with numbered
 * parameters (?1, ?2, ...); the PostgreSQL runner turns ?N into $N.  A
 * statement whose PostgreSQL form differs (GREATEST for MAX, FOR UPDATE
 * SKIP LOCKED, ...) carries that form beside it.  Parameters are passed
 * with a type string, one letter each:
 *   i  int64_t          d  double
 *   t  const char *     (NULL binds SQL NULL)
 *   b  const void *, size_t   (a blob: BLOB / bytea)
 */
#ifndef ENR_STORE_INT_H
#define ENR_STORE_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define DB_STMTS_MAX 160     /* distinct statements of all store files */
#define DB_PARAMS_MAX 448    /* parameters of one statement */
#define DB_ARGS_MAX 16       /* arguments of one db_run or db_exec: on the caller's stack,
				 a waiting request's */

enum db_dialect { DB_SQLITE, DB_PG, DB__MAX };

struct db_stmt {
	const char *sql;     /* SQLite form, ?N parameters */
	const char *pg;      /* PostgreSQL form when it differs; NULL: from sql */
	bool write;          /* changes data (SQLite: runs under the write lock) */
	bool stream;         /* rows go to the callback while the query runs
			      * (large results); the callback must not call the
			      * store */
	int slot;            /* per-connection cache slot, assigned at first use */
};

#define DB_READ(s) { .sql = (s) }
#define DB_WRITE(s) { .sql = (s), .write = true }
#define DB_READ2(s, p) { .sql = (s), .pg = (p) }
#define DB_WRITE2(s, p) { .sql = (s), .pg = (p), .write = true }

/* A bound parameter (the type string's letters, as an array). */
struct db_param {
	char type;               /* 'i', 'd', 't' or 'b' */
	int64_t i;
	double d;
	const void *p;           /* 't': the string (NULL: SQL NULL); 'b': the bytes */
	size_t len;              /* 'b' */
};

/* One result row, valid during the callback only. */
struct db_row;
struct db_row_ops {
	int64_t (*i64)(const struct db_row *r, int col);
	double (*dbl)(const struct db_row *r, int col);
	const char *(*text)(const struct db_row *r, int col);   /* NULL for SQL NULL */
	const void *(*blob)(const struct db_row *r, int col, size_t *len);
};
struct db_row {
	const struct db_row_ops *ops;
	void *impl;
	int index;
};

int64_t db_i64(const struct db_row *r, int col);
int db_int(const struct db_row *r, int col);
double db_dbl(const struct db_row *r, int col);
const char *db_text(const struct db_row *r, int col);
/* Copy a text column into out (truncating; "" for NULL). */
void db_textcpy(const struct db_row *r, int col, char *out, size_t outsz);
/* A heap copy of a text column ("" for NULL); NULL when out of memory. */
char *db_strdup(const struct db_row *r, int col);
const void *db_blob(const struct db_row *r, int col, size_t *len);

/* A row callback: returns non-zero to stop. */
typedef int (*db_row_fn)(void *arg, const struct db_row *r);

/* Every back end's connection starts with this. */
struct db_conn {
	const struct store_ops *ops;
	struct store *store;
};

/* A back end (curl's struct Curl_ssl pattern): the store's files call
 * these through the runner below, never a back end directly. */
struct store_ops {
	const char *name;
	enum db_dialect dialect;
	/* Open target (the URL, or the path after "sqlite:"); on failure why
	 * (whylen bytes) names it and the reason. */
	enum enr_err (*open)(struct store *s, const char *target, char *why, size_t whylen);
	void (*close)(struct store *s);
	/* A connection for the calling thread (SQLite: the thread's own;
	 * PostgreSQL: one from the pool, waiting up to the pool timeout). */
	enum enr_err (*acquire)(struct store *s, struct db_conn **out);
	void (*release)(struct store *s, struct db_conn *c);
	void (*thread_release)(struct store *s);
	enum enr_err (*exec)(struct db_conn *c, struct db_stmt *q, const struct db_param *p,
			     int np, db_row_fn fn, void *arg, int64_t *changes);
	/* A write transaction (SQLite BEGIN IMMEDIATE, PostgreSQL BEGIN). */
	enum enr_err (*begin)(struct db_conn *c);
	enum enr_err (*commit)(struct db_conn *c);
	void (*rollback)(struct db_conn *c);
	/* True when the last failure may succeed if the transaction is run
	 * again (serialization failure, deadlock). */
	bool (*retryable)(struct db_conn *c);
	/* Run a migration script (several statements, no parameters). */
	enum enr_err (*script)(struct db_conn *c, const char *sql);
	/* Take the lock that keeps two processes from migrating at once,
	 * inside the migration transaction. */
	enum enr_err (*migrate_lock)(struct db_conn *c);
	/* The schema version (0 for an empty database). */
	enum enr_err (*version_get)(struct db_conn *c, int *v);
	enum enr_err (*version_set)(struct db_conn *c, int v);
	/* A host-local fast path for the authentication generation (SQLite's
	 * mapped file); NULL when the back end has none. */
	uint64_t (*auth_local)(struct store *s);
	void (*auth_local_bump)(struct store *s);
};

extern const struct store_ops st_sqlite_ops;
extern const struct store_ops st_pg_ops;

struct store {
	const struct store_ops *ops;
	void *impl;                 /* the back end's state */
	char *url;
	struct st_options opt;
	char *password;             /* resolved store_password (PostgreSQL), or NULL */
	uint64_t *auth_map;         /* state_dir's mapped counter, or NULL */
	/* Authentication generation cache (store.c). */
	uint64_t auth_gen;          /* atomic */
	int64_t auth_read_ms;       /* atomic: monotonic ms of the last read */
	int auth_refreshing;        /* atomic flag */
};

/* The slot of a statement in a connection's cache (assigned once). */
int db_stmt_slot(struct db_stmt *q);

/* Run one statement on its own connection (an autocommit statement; a
 * write statement is atomic by itself).  fn/arg/changes may be NULL. */
enum enr_err db_run(struct store *s, struct db_stmt *q, db_row_fn fn, void *arg,
		    int64_t *changes, const char *types, ...);

/* Run a statement on c (inside db_tx). */
enum enr_err db_exec(struct db_conn *c, struct db_stmt *q, db_row_fn fn, void *arg,
		     int64_t *changes, const char *types, ...);

/* db_exec with the parameters as an array (statements built at run time). */
enum enr_err db_execv(struct db_conn *c, struct db_stmt *q, const struct db_param *p, int np,
		      db_row_fn fn, void *arg, int64_t *changes);

/* Run body in one write transaction; commit when it returns ENR_OK, roll
 * back otherwise.  On a serialization failure or deadlock the whole body
 * runs again (up to three times), so it must start from its inputs and
 * write its outputs only through arg. */
typedef enum enr_err (*db_tx_fn)(struct db_conn *c, void *arg);
enum enr_err db_tx(struct store *s, db_tx_fn body, void *arg);

enum db_dialect db_dialect_of(const struct store *s);

/* Row callbacks shared by the store files. */
int db_one_i64(void *arg, const struct db_row *r);   /* arg: int64_t *, column 0 */

/* Bump the authentication generation inside a transaction (every change to
 * client keys or account limits does, in the same transaction). */
enum enr_err st_auth_bump(struct db_conn *c);
/* After such a transaction committed: tell this host's processes at once. */
void st_auth_bumped(struct store *s);

/* A counter every process of the host shares: the 8-byte file at path
 * (made 0600 when missing), mapped shared; NULL when it cannot be.  The
 * caller unmaps it (munmap, sizeof(uint64_t)). */
uint64_t *st_counter_map(const char *path);

/* SQLite's result code as the error enum (store_sqlite.c). */
enum enr_err st_sqlite_map(int rc);
/* Tests: make the calling thread's SQLite connection refuse writes (on)
 * or take them again, as a read-only or full disk would. */
enum enr_err st_sqlite_query_only(struct store *s, bool on);

/* Schema (store_schema.c). */
int st_schema_count(enum db_dialect d);
const char *st_schema_step(enum db_dialect d, int i);

#endif
