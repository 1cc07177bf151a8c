/*
 * store_int.h - internals shared by the files of the SQLite store back end
 * (store_sqlite.c: accounts, limits, key pool, cache; store_jobs.c: batch
 * jobs).  Not for callers of lib/store.h.
 */
#ifndef ENR_STORE_INT_H
#define ENR_STORE_INT_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"
#include "store.h"

#define STORE_Q_MAX 64        /* statements of store_sqlite.c */
#define STORE_JOB_STMTS 48    /* statements of store_jobs.c */

/* One thread's connection with its prepared statements. */
struct conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[STORE_Q_MAX];
	sqlite3_stmt *jstmt[STORE_JOB_STMTS];
};

struct store {
	char *path;
	pthread_key_t key;
	pthread_mutex_t wlock;  /* one writer per process at a time */
	uint64_t *auth_gen;     /* mapped PATH-authgen: bumped when keys or accounts change */
};

/* The calling thread's connection (opened on first use); NULL when the
 * database cannot be opened. */
struct conn *st_conn_get(struct store *s);

/* Prepare sql into *slot once per connection. */
sqlite3_stmt *st_prepare(struct conn *c, sqlite3_stmt **slot, const char *sql);

enum enr_err st_exec(sqlite3 *db, const char *sql);
enum enr_err st_step_err(struct conn *c, int rc);
/* Step a statement that returns no rows, reset it; *changes may be NULL. */
enum enr_err st_run(struct conn *c, sqlite3_stmt *st, int *changes);
void st_finish(sqlite3_stmt *st);
void st_col_text(sqlite3_stmt *st, int i, char *out, size_t outsz);

/* BEGIN IMMEDIATE under the process write lock / COMMIT or ROLLBACK. */
enum enr_err st_tx_begin(struct store *s, struct conn *c);
enum enr_err st_tx_end(struct store *s, struct conn *c, enum enr_err rc);

#endif
