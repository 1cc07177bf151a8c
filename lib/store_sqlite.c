/*
 * store_sqlite.c - the embedded SQLite back end: connections,
 * transactions and the query runner (lib/store_int.h).
 *
 * One connection per thread (pthread key), prepared statements cached per
 * connection, WAL journal with synchronous=NORMAL (a commit survives a
 * crash of the process; a power cut may lose the last transactions before
 * the next checkpoint), a busy timeout for other processes.  Writes take
 * a process-wide mutex before SQLite's own lock: threads of one process
 * queue on the mutex instead of SQLite's sleeping busy handler, which
 * would add milliseconds of latency under load.  The mutex is only a
 * queue: atomicity comes from SQLite's write lock (BEGIN IMMEDIATE), which
 * also keeps other processes out, and the conformance suite runs its
 * races across two processes to keep it honest.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"


struct sq_store {
	char *path;
	pthread_key_t key;
	pthread_mutex_t wlock;  /* the queue for the write lock (see above) */
	uint64_t *auth_gen;     /* mapped PATH-authgen: bumped by this host's processes */
};

struct sq_conn {
	struct db_conn base;
	sqlite3 *db;
	bool in_tx;
	sqlite3_stmt *stmt[DB_STMTS_MAX];
	sqlite3_stmt *tx[3];   /* BEGIN IMMEDIATE, COMMIT, ROLLBACK, prepared once */
};

enum { TX_BEGIN, TX_COMMIT, TX_ROLLBACK };

static struct sq_store *sq(struct store *s)
{
	return s->impl;
}

/* ---- errors ------------------------------------------------------------------ */

/* SQLite result codes that mean "the store cannot take this now" (locked
 * past the busy timeout, read-only, an I/O error, cannot be opened, the
 * disk is full) are ENR_E_UNAVAILABLE: callers answer 503 and retry later,
 * rather than 500 for a bug.  Extended codes are judged by their primary
 * code. */
enum enr_err st_sqlite_map(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return ENR_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_PERM:
		return ENR_E_UNAVAILABLE;
	case SQLITE_CONSTRAINT:
		return ENR_E_CONFLICT;
	case SQLITE_NOMEM:
		return ENR_E_NOMEM;
	default:
		return ENR_E_STORE;
	}
}

static enum enr_err sq_err(sqlite3 *db, int rc)
{
	enum enr_err e = st_sqlite_map(rc);

	if (e == ENR_E_UNAVAILABLE)
		log_warn("store", "sqlite: %s", sqlite3_errmsg(db));
	else if (e == ENR_E_STORE)
		log_error("store", "sqlite: %s", sqlite3_errmsg(db));
	return e;
}

static enum enr_err sq_execsql(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? ENR_OK : sq_err(db, rc);
}

/* ---- connections ---------------------------------------------------------------- */

static void conn_free(void *p)
{
	struct sq_conn *c = p;

	if (c == NULL)
		return;
	for (int i = 0; i < DB_STMTS_MAX; i++)
		sqlite3_finalize(c->stmt[i]);
	for (int i = 0; i < 3; i++)
		sqlite3_finalize(c->tx[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

/* Why path could not be opened: the operating system's reason when SQLite
 * has one, and a directory that does not exist named as such. */
static void open_why(sqlite3 *db, const char *path, char *why, size_t whylen)
{
	int e = db ? sqlite3_system_errno(db) : ENOMEM;
	const char *slash = strrchr(path, '/');
	struct stat st;
	char dir[4096];

	if (e == 0) {
		snprintf(why, whylen, "cannot open %s: %s", path, sqlite3_errmsg(db));
		return;
	}
	if (e == ENOENT && slash && slash > path && (size_t)(slash - path) < sizeof dir) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		if (stat(dir, &st) != 0) {
			snprintf(why, whylen, "cannot open %s: %s (directory %s does not exist)", path,
				 strerror(e), dir);
			return;
		}
		/* SQLite retries a refused create read-only, and reports that. */
		if (access(dir, W_OK | X_OK) != 0) {
			snprintf(why, whylen, "cannot open %s: %s (directory %s is not writable)", path,
				 strerror(EACCES), dir);
			return;
		}
	}
	snprintf(why, whylen, "cannot open %s: %s", path, strerror(e));
}

/* A new connection to the store's file; NULL with why (whylen bytes)
 * filled when it cannot be opened.  Without why the reason goes to the
 * log. */
static struct sq_conn *conn_open(struct store *s, char *why, size_t whylen)
{
	struct sq_conn *c = calloc(1, sizeof *c);
	const char *path = sq(s)->path;
	char msg[512];
	bool log = why == NULL;

	if (why == NULL) {
		why = msg;
		whylen = sizeof msg;
	}
	if (c == NULL) {
		snprintf(why, whylen, "cannot open %s: out of memory", path);
		return NULL;
	}
	c->base.ops = &st_sqlite_ops;
	c->base.store = s;
	/* The database holds personal data: create it 0600 ourselves, since
	 * SQLite would create it 0644 (less the umask).  SQLite gives the -wal
	 * and -shm files the mode of the database file, so they follow.
	 * O_EXCL: only a file nobody has open yet; closing a descriptor of an
	 * open database would drop this process's POSIX locks on it. */
	if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd >= 0)
			close(fd);
	}
	if (sqlite3_open_v2(path, &c->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		open_why(c->db, path, why, whylen);
		if (log)
			log_error("store", "%s", why);
		conn_free(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->db, s->opt.busy_timeout_ms);
	if (sq_execsql(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			      "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
			      /* Many threads have a connection each: keep each
			       * page cache small (512 KiB). */
			      "PRAGMA cache_size=-512;") != ENR_OK) {
		/* SQLite opens the file lazily: this is where a missing or
		 * read-only directory shows. */
		open_why(c->db, path, why, whylen);
		if (log)
			log_error("store", "%s", why);
		conn_free(c);
		return NULL;
	}
	return c;
}

static enum enr_err sq_acquire(struct store *s, struct db_conn **out)
{
	struct sq_conn *c = pthread_getspecific(sq(s)->key);

	if (c == NULL) {
		c = conn_open(s, NULL, 0);
		if (c == NULL)
			return ENR_E_UNAVAILABLE;
		if (pthread_setspecific(sq(s)->key, c) != 0) {
			conn_free(c);
			return ENR_E_NOMEM;
		}
	}
	*out = &c->base;
	return ENR_OK;
}

static void sq_release(struct store *s, struct db_conn *c)
{
	(void)s;
	(void)c; /* the thread keeps its connection */
}

enum enr_err st_sqlite_query_only(struct store *s, bool on)
{
	struct db_conn *dc;
	enum enr_err rc;

	if (s->ops != &st_sqlite_ops)
		return ENR_E_INVALID;
	rc = sq_acquire(s, &dc);
	if (rc)
		return rc;
	return sq_execsql(((struct sq_conn *)dc)->db,
			  on ? "PRAGMA query_only = 1" : "PRAGMA query_only = 0");
}

static void sq_thread_release(struct store *s)
{
	struct sq_conn *c = pthread_getspecific(sq(s)->key);

	pthread_setspecific(sq(s)->key, NULL);
	conn_free(c);
}

/* ---- rows ------------------------------------------------------------------------ */

static int64_t row_i64(const struct db_row *r, int col)
{
	return sqlite3_column_int64(r->impl, col);
}

static double row_dbl(const struct db_row *r, int col)
{
	return sqlite3_column_double(r->impl, col);
}

static const char *row_text(const struct db_row *r, int col)
{
	return (const char *)sqlite3_column_text(r->impl, col);
}

static const void *row_blob(const struct db_row *r, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(r->impl, col);

	*len = (size_t)sqlite3_column_bytes(r->impl, col);
	return b;
}

static const struct db_row_ops sq_row_ops = { row_i64, row_dbl, row_text, row_blob };

/* ---- the runner -------------------------------------------------------------------- */

static sqlite3_stmt *prepared(struct sq_conn *c, struct db_stmt *q)
{
	int slot = db_stmt_slot(q);

	if (slot < 0) {
		log_error("store", "statement cache full (raise DB_STMTS_MAX)");
		return NULL;
	}
	if (c->stmt[slot] == NULL &&
	    sqlite3_prepare_v3(c->db, q->sql, -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[slot],
			       NULL) != SQLITE_OK) {
		log_error("store", "prepare: %s: %s", sqlite3_errmsg(c->db), q->sql);
		return NULL;
	}
	return c->stmt[slot];
}

static void bind_all(sqlite3_stmt *st, const struct db_param *p, int np)
{
	for (int i = 0; i < np; i++) {
		int n = i + 1;

		switch (p[i].type) {
		case 'i':
			sqlite3_bind_int64(st, n, p[i].i);
			break;
		case 'd':
			sqlite3_bind_double(st, n, p[i].d);
			break;
		case 't':
			if (p[i].p)
				sqlite3_bind_text(st, n, p[i].p, -1, SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, n);
			break;
		case 'b':
			sqlite3_bind_blob(st, n, p[i].p, (int)p[i].len, SQLITE_TRANSIENT);
			break;
		default:
			break;
		}
	}
}

static enum enr_err sq_exec(struct db_conn *dc, struct db_stmt *q, const struct db_param *p,
			    int np, db_row_fn fn, void *arg, int64_t *changes)
{
	struct sq_conn *c = (struct sq_conn *)dc;
	struct sq_store *ss = sq(dc->store);
	sqlite3_stmt *st = prepared(c, q);
	struct db_row row = { &sq_row_ops, NULL, 0 };
	bool lock = q->write && !c->in_tx;
	enum enr_err rc = ENR_OK;
	int src;

	if (st == NULL)
		return ENR_E_STORE;
	row.impl = st;
	bind_all(st, p, np);
	if (lock)
		pthread_mutex_lock(&ss->wlock);
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn && fn(arg, &row)) {
			/* A write statement must run to its end even when the
			 * caller has seen enough. */
			if (!q->write)
				break;
			fn = NULL;
		}
		row.index++;
	}
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		rc = sq_err(c->db, src);
	else if (changes)
		*changes = q->write ? sqlite3_changes(c->db) : row.index;
	if (lock)
		pthread_mutex_unlock(&ss->wlock);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* BEGIN, COMMIT and ROLLBACK run with every write: prepared once per
 * connection rather than parsed each time. */
static enum enr_err tx_step(struct sq_conn *c, int which)
{
	static const char *const sql[3] = { "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK" };
	int rc;

	if (c->tx[which] == NULL) {
		rc = sqlite3_prepare_v3(c->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT,
					&c->tx[which], NULL);
		if (rc != SQLITE_OK)
			return sq_err(c->db, rc);
	}
	rc = sqlite3_step(c->tx[which]);
	sqlite3_reset(c->tx[which]);
	if (rc == SQLITE_DONE)
		return ENR_OK;
	/* A failed rollback says nothing the failure before it did not. */
	return which == TX_ROLLBACK ? ENR_E_STORE : sq_err(c->db, rc);
}

static enum enr_err sq_begin(struct db_conn *dc)
{
	struct sq_conn *c = (struct sq_conn *)dc;
	struct sq_store *ss = sq(dc->store);
	enum enr_err rc;

	pthread_mutex_lock(&ss->wlock);
	rc = tx_step(c, TX_BEGIN);
	if (rc) {
		pthread_mutex_unlock(&ss->wlock);
		return rc;
	}
	c->in_tx = true;
	return ENR_OK;
}

static void sq_rollback(struct db_conn *dc)
{
	struct sq_conn *c = (struct sq_conn *)dc;

	/* SQLite may have rolled the transaction back itself (a full disk,
	 * an I/O error): only roll back what is still open. */
	if (!sqlite3_get_autocommit(c->db))
		enr_ignore(tx_step(c, TX_ROLLBACK));
	c->in_tx = false;
	pthread_mutex_unlock(&sq(dc->store)->wlock);
}

static enum enr_err sq_commit(struct db_conn *dc)
{
	struct sq_conn *c = (struct sq_conn *)dc;
	enum enr_err rc = tx_step(c, TX_COMMIT);

	if (rc) {
		sq_rollback(dc);
		return rc;
	}
	c->in_tx = false;
	pthread_mutex_unlock(&sq(dc->store)->wlock);
	return ENR_OK;
}

static bool sq_retryable(struct db_conn *c)
{
	(void)c; /* a busy database was already waited for (busy timeout) */
	return false;
}

static enum enr_err sq_script(struct db_conn *dc, const char *sql)
{
	return sq_execsql(((struct sq_conn *)dc)->db, sql);
}

static enum enr_err sq_migrate_lock(struct db_conn *c)
{
	(void)c; /* BEGIN IMMEDIATE already holds the database's write lock */
	return ENR_OK;
}

static enum enr_err sq_version_get(struct db_conn *dc, int *v)
{
	struct sq_conn *c = (struct sq_conn *)dc;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sq_err(c->db, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? ENR_OK : sq_err(c->db, rc);
}

static enum enr_err sq_version_set(struct db_conn *dc, int v)
{
	char pragma[48];

	snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v);
	return sq_execsql(((struct sq_conn *)dc)->db, pragma);
}

/* ---- the host-local authentication generation --------------------------------- */

/* A small file beside the database, mapped shared so every process on the
 * host sees a change the moment it commits, without a query. */
static void auth_gen_map(struct sq_store *ss)
{
	char path[4096];

	if (snprintf(path, sizeof path, "%s-authgen", ss->path) < (int)sizeof path)
		ss->auth_gen = st_counter_map(path);
}

static uint64_t sq_auth_local(struct store *s)
{
	struct sq_store *ss = sq(s);

	return ss->auth_gen ? __atomic_load_n(ss->auth_gen, __ATOMIC_ACQUIRE) : 0;
}

static void sq_auth_local_bump(struct store *s)
{
	struct sq_store *ss = sq(s);

	if (ss->auth_gen)
		__atomic_add_fetch(ss->auth_gen, 1, __ATOMIC_ACQ_REL);
}

/* ---- open / close ------------------------------------------------------------------ */

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* SQLite keeps memory statistics behind one global mutex taken on every
 * allocation; with many threads that mutex becomes the busiest lock in the
 * process.  The statistics are not used. */
static void sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void sq_close(struct store *s)
{
	struct sq_store *ss = sq(s);

	if (ss == NULL)
		return;
	sq_thread_release(s);
	if (ss->auth_gen)
		munmap(ss->auth_gen, sizeof(uint64_t));
	pthread_key_delete(ss->key);
	pthread_mutex_destroy(&ss->wlock);
	free(ss->path);
	free(ss);
	s->impl = NULL;
}

static enum enr_err sq_open(struct store *s, const char *path, char *why, size_t whylen)
{
	struct sq_store *ss;
	struct sq_conn *c;

	pthread_once(&sqlite_once, sqlite_setup);
	ss = calloc(1, sizeof *ss);
	if (ss == NULL)
		return ENR_E_NOMEM;
	ss->path = strdup(path);
	if (ss->path == NULL || pthread_key_create(&ss->key, conn_free) != 0) {
		free(ss->path);
		free(ss);
		return ENR_E_NOMEM;
	}
	pthread_mutex_init(&ss->wlock, NULL);
	s->impl = ss;
	auth_gen_map(ss);
	/* The first connection here, so that a file that cannot be opened is
	 * named with the reason. */
	c = conn_open(s, why, whylen);
	if (c == NULL || pthread_setspecific(ss->key, c) != 0) {
		conn_free(c);
		sq_close(s);
		return ENR_E_UNAVAILABLE;
	}
	return ENR_OK;
}

const struct store_ops st_sqlite_ops = {
	.name = "sqlite",
	.dialect = DB_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.acquire = sq_acquire,
	.release = sq_release,
	.thread_release = sq_thread_release,
	.exec = sq_exec,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.retryable = sq_retryable,
	.script = sq_script,
	.migrate_lock = sq_migrate_lock,
	.version_get = sq_version_get,
	.version_set = sq_version_set,
	.auth_local = sq_auth_local,
	.auth_local_bump = sq_auth_local_bump,
};
