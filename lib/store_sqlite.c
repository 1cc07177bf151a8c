/*
 * store_sqlite.c - the embedded SQLite back end of lib/store.h.
 *
 * One connection per thread (pthread key), prepared statements cached per
 * connection, WAL journal with synchronous=NORMAL (a commit is durable at
 * the next checkpoint; a crash loses no committed transaction, a power cut
 * may lose the last few), busy timeout for other processes.  Writes take a
 * process-wide mutex before BEGIN IMMEDIATE: threads of one process queue
 * on the mutex instead of SQLite's sleeping busy handler, which would add
 * milliseconds of latency under load; other processes are still kept out
 * by SQLite's own lock.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "keypool.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#define BUSY_TIMEOUT_MS 5000

/* ---- schema ------------------------------------------------------------ */

/* Each entry moves the schema from version i to i + 1; never edit one that
 * has shipped, add a new one. */
static const char *const migrations[] = {
	/* 1: accounts, client keys, buckets, quota windows, usage */
	"CREATE TABLE accounts ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  requests_per_minute INTEGER NOT NULL DEFAULT -1,"
	"  burst INTEGER NOT NULL DEFAULT -1,"
	"  records_per_hour INTEGER NOT NULL DEFAULT -1,"
	"  records_per_day INTEGER NOT NULL DEFAULT -1,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE client_keys ("
	"  id INTEGER PRIMARY KEY,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id),"
	"  name TEXT NOT NULL DEFAULT '',"
	"  hash BLOB NOT NULL UNIQUE,"
	"  last4 TEXT NOT NULL,"
	"  scopes INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX client_keys_account ON client_keys(account_id);"
	"CREATE TABLE buckets ("
	"  account_id INTEGER PRIMARY KEY REFERENCES accounts(id),"
	"  tokens REAL NOT NULL,"
	"  updated_ms INTEGER NOT NULL);"
	"CREATE TABLE quota_windows ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id),"
	"  period_s INTEGER NOT NULL,"
	"  start_s INTEGER NOT NULL,"
	"  used INTEGER NOT NULL,"
	"  PRIMARY KEY (account_id, period_s));"
	"CREATE TABLE usage_daily ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id),"
	"  day TEXT NOT NULL,"
	"  requests INTEGER NOT NULL DEFAULT 0,"
	"  records INTEGER NOT NULL DEFAULT 0,"
	"  credits INTEGER NOT NULL DEFAULT 0,"
	"  rejections INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (account_id, day));",

	/* 2: the upstream key pool, pacing slots */
	"CREATE TABLE upstream_keys ("
	"  id TEXT PRIMARY KEY,"
	"  provider TEXT NOT NULL,"
	"  account TEXT NOT NULL,"
	"  last4 TEXT NOT NULL,"
	"  ord INTEGER NOT NULL,"
	"  state INTEGER NOT NULL DEFAULT 0,"
	"  until_ms INTEGER NOT NULL DEFAULT 0,"
	"  transients INTEGER NOT NULL DEFAULT 0,"
	"  backoff_ms INTEGER NOT NULL DEFAULT 0,"
	"  calls INTEGER NOT NULL DEFAULT 0,"
	"  hits INTEGER NOT NULL DEFAULT 0,"
	"  misses INTEGER NOT NULL DEFAULT 0,"
	"  errors INTEGER NOT NULL DEFAULT 0,"
	"  credits INTEGER NOT NULL DEFAULT 0,"
	"  last_used_ms INTEGER NOT NULL DEFAULT 0,"
	"  configured INTEGER NOT NULL DEFAULT 1);"
	"CREATE INDEX upstream_keys_provider ON upstream_keys(provider, ord);"
	"CREATE TABLE pace_slots (scope TEXT PRIMARY KEY, next_ms INTEGER NOT NULL);",

	/* 3: provider answers cache (hits and misses, never errors) */
	"CREATE TABLE cache ("
	"  key BLOB PRIMARY KEY,"
	"  provider TEXT NOT NULL,"
	"  hit INTEGER NOT NULL,"
	"  body TEXT NOT NULL,"
	"  expires_ms INTEGER NOT NULL);"
	"CREATE INDEX cache_expiry ON cache(expires_ms);",

	/* 4: batch jobs and their rows */
	"CREATE TABLE jobs ("
	"  seq INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id),"
	"  status INTEGER NOT NULL DEFAULT 0,"
	"  want INTEGER NOT NULL,"
	"  format INTEGER NOT NULL,"
	"  columns TEXT NOT NULL DEFAULT '[]',"
	"  total INTEGER NOT NULL DEFAULT 0,"
	"  rejected INTEGER NOT NULL DEFAULT 0,"
	"  pending INTEGER NOT NULL DEFAULT 0,"
	"  done INTEGER NOT NULL DEFAULT 0,"
	"  found INTEGER NOT NULL DEFAULT 0,"
	"  not_found INTEGER NOT NULL DEFAULT 0,"
	"  failed INTEGER NOT NULL DEFAULT 0,"
	"  credits INTEGER NOT NULL DEFAULT 0,"
	"  webhook_url TEXT NOT NULL DEFAULT '',"
	"  webhook_state INTEGER NOT NULL DEFAULT 0,"
	"  webhook_attempts INTEGER NOT NULL DEFAULT 0,"
	"  webhook_next_ms INTEGER NOT NULL DEFAULT 0,"
	"  idempotency_key TEXT,"
	"  created_ms INTEGER NOT NULL,"
	"  started_ms INTEGER NOT NULL DEFAULT 0,"
	"  finished_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE UNIQUE INDEX jobs_idempotency ON jobs(account_id, idempotency_key)"
	"  WHERE idempotency_key IS NOT NULL;"
	"CREATE INDEX jobs_webhooks ON jobs(webhook_state, webhook_next_ms);"
	"CREATE TABLE job_rows ("
	"  job_seq INTEGER NOT NULL REFERENCES jobs(seq),"
	"  rownum INTEGER NOT NULL,"
	"  input TEXT NOT NULL,"
	"  state INTEGER NOT NULL DEFAULT 0,"
	"  status INTEGER NOT NULL DEFAULT 0,"
	"  result TEXT,"
	"  error_code TEXT,"
	"  error TEXT,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  owner TEXT,"
	"  lease_until_ms INTEGER NOT NULL DEFAULT 0,"
	"  not_before_ms INTEGER NOT NULL DEFAULT 0,"
	"  credits INTEGER NOT NULL DEFAULT 0,"
	"  finished_ms INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (job_seq, rownum)) WITHOUT ROWID;"
	"CREATE INDEX job_rows_queue ON job_rows(state, not_before_ms);"
	"CREATE INDEX job_rows_owner ON job_rows(owner) WHERE owner IS NOT NULL;",
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- statements ---------------------------------------------------------- */

enum stmt_id {
	Q_PING,
	Q_PROBE,
	Q_ACCOUNT_INSERT,
	Q_ACCOUNT_BY_NAME,
	Q_ACCOUNT_BY_ID,
	Q_ACCOUNT_SET_LIMITS,
	Q_ACCOUNT_ALL,
	Q_KEY_INSERT,
	Q_KEY_BY_HASH,
	Q_KEY_REVOKE,
	Q_KEY_ALL,
	Q_KEY_OF_ACCOUNT,
	Q_BUCKET_GET,
	Q_BUCKET_PUT,
	Q_WINDOW_GET,
	Q_WINDOW_PUT,
	Q_USAGE_ADD,
	Q_USAGE_ALL,
	Q_USAGE_OF_ACCOUNT,
	Q_UKEY_UNCONFIGURE,
	Q_UKEY_UPSERT,
	Q_UKEY_OF_PROVIDER,
	Q_UKEY_BY_ID,
	Q_UKEY_ALL,
	Q_UKEY_PUT,
	Q_UKEY_COOL_ACCOUNT,
	Q_UKEY_COUNTS,
	Q_PACE,
	Q_CACHE_GET,
	Q_CACHE_PUT,
	Q_CACHE_PURGE,
	Q__MAX
};

#define UKEY_COLS                                                                      \
	"SELECT id, provider, account, last4, ord, state, until_ms, transients, backoff_ms," \
	" calls, hits, misses, errors, credits, last_used_ms FROM upstream_keys"

_Static_assert(Q__MAX <= STORE_Q_MAX, "raise STORE_Q_MAX");

static const char *const stmt_sql[Q__MAX] = {
	[Q_PING] = "SELECT 1",
	/* A row no pacing scope can have ("key:..." and "account:..." are). */
	[Q_PROBE] = "INSERT INTO pace_slots(scope, next_ms) VALUES ('health:write-probe', ?1)"
		    " ON CONFLICT(scope) DO UPDATE SET next_ms = excluded.next_ms",
	[Q_ACCOUNT_INSERT] = "INSERT INTO accounts(name, created_at) VALUES (?1, ?2)",
	[Q_ACCOUNT_BY_NAME] = "SELECT id, name, requests_per_minute, burst, records_per_hour,"
			      " records_per_day, created_at FROM accounts WHERE name = ?1",
	[Q_ACCOUNT_BY_ID] = "SELECT id, name, requests_per_minute, burst, records_per_hour,"
			    " records_per_day, created_at FROM accounts WHERE id = ?1",
	[Q_ACCOUNT_SET_LIMITS] = "UPDATE accounts SET requests_per_minute = ?2, burst = ?3,"
				 " records_per_hour = ?4, records_per_day = ?5 WHERE id = ?1",
	[Q_ACCOUNT_ALL] = "SELECT id, name, requests_per_minute, burst, records_per_hour,"
			  " records_per_day, created_at FROM accounts ORDER BY name",
	[Q_KEY_INSERT] = "INSERT INTO client_keys(account_id, name, hash, last4, scopes,"
			 " created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[Q_KEY_BY_HASH] = "SELECT k.id, k.account_id, a.name, k.name, k.last4, k.scopes,"
			  " k.created_at, k.expires_at, k.revoked_at, a.requests_per_minute, a.burst,"
			  " a.records_per_hour, a.records_per_day, a.created_at"
			  " FROM client_keys k JOIN accounts a ON a.id = k.account_id"
			  " WHERE k.hash = ?1",
	[Q_KEY_REVOKE] = "UPDATE client_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at = 0",
	[Q_KEY_ALL] = "SELECT k.id, k.account_id, a.name, k.name, k.last4, k.scopes,"
		      " k.created_at, k.expires_at, k.revoked_at"
		      " FROM client_keys k JOIN accounts a ON a.id = k.account_id ORDER BY k.id",
	[Q_KEY_OF_ACCOUNT] = "SELECT k.id, k.account_id, a.name, k.name, k.last4, k.scopes,"
			     " k.created_at, k.expires_at, k.revoked_at"
			     " FROM client_keys k JOIN accounts a ON a.id = k.account_id"
			     " WHERE k.account_id = ?1 ORDER BY k.id",
	[Q_BUCKET_GET] = "SELECT tokens, updated_ms FROM buckets WHERE account_id = ?1",
	[Q_BUCKET_PUT] = "INSERT INTO buckets(account_id, tokens, updated_ms) VALUES (?1, ?2, ?3)"
			 " ON CONFLICT(account_id) DO UPDATE SET tokens = ?2, updated_ms = ?3",
	[Q_WINDOW_GET] = "SELECT start_s, used FROM quota_windows WHERE account_id = ?1 AND period_s = ?2",
	[Q_WINDOW_PUT] = "INSERT INTO quota_windows(account_id, period_s, start_s, used)"
			 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(account_id, period_s)"
			 " DO UPDATE SET start_s = ?3, used = ?4",
	[Q_USAGE_ADD] = "INSERT INTO usage_daily(account_id, day, requests, records, credits, rejections)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(account_id, day) DO UPDATE SET"
			" requests = requests + ?3, records = records + ?4,"
			" credits = credits + ?5, rejections = rejections + ?6",
	[Q_USAGE_ALL] = "SELECT u.account_id, a.name, u.day, u.requests, u.records, u.credits,"
			" u.rejections FROM usage_daily u JOIN accounts a ON a.id = u.account_id"
			" WHERE u.day >= ?1 ORDER BY u.day DESC, a.name",
	[Q_USAGE_OF_ACCOUNT] = "SELECT u.account_id, a.name, u.day, u.requests, u.records, u.credits,"
			       " u.rejections FROM usage_daily u JOIN accounts a ON a.id = u.account_id"
			       " WHERE u.day >= ?1 AND u.account_id = ?2 ORDER BY u.day DESC",
	[Q_UKEY_UNCONFIGURE] = "UPDATE upstream_keys SET configured = 0",
	[Q_UKEY_UPSERT] = "INSERT INTO upstream_keys(id, provider, account, last4, ord, configured)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT(id) DO UPDATE SET"
			  " provider = ?2, account = ?3, ord = ?5, configured = 1,"
			  " last4 = CASE WHEN ?4 = '' THEN last4 ELSE ?4 END",
	[Q_UKEY_OF_PROVIDER] = UKEY_COLS " WHERE provider = ?1 AND configured = 1 ORDER BY ord",
	[Q_UKEY_BY_ID] = UKEY_COLS " WHERE id = ?1 AND configured = 1",
	[Q_UKEY_ALL] = UKEY_COLS " WHERE configured = 1 ORDER BY provider, ord",
	[Q_UKEY_PUT] = "UPDATE upstream_keys SET state = ?2, until_ms = ?3, transients = ?4,"
		       " backoff_ms = ?5, calls = ?6, hits = ?7, misses = ?8, errors = ?9,"
		       " credits = ?10, last_used_ms = ?11 WHERE id = ?1",
	/* Cool the other keys of one upstream account; deadlines only move later,
	 * and invalid or exhausted keys keep their state. */
	[Q_UKEY_COOL_ACCOUNT] = "UPDATE upstream_keys SET state = 1, until_ms = ?3"
				" WHERE provider = ?1 AND account = ?2 AND id <> ?4 AND configured = 1"
				" AND (state = 0 OR (state = 1 AND until_ms < ?3)"
				"      OR (state = 2 AND until_ms > 0 AND until_ms <= ?5))",
	[Q_UKEY_COUNTS] = "UPDATE upstream_keys SET calls = calls + ?2, hits = hits + ?3,"
			  " misses = misses + ?4, credits = credits + ?5,"
			  " last_used_ms = MAX(last_used_ms, ?6) WHERE id = ?1",
	[Q_PACE] = "INSERT INTO pace_slots(scope, next_ms) VALUES (?1, ?2 + ?3)"
		   " ON CONFLICT(scope) DO UPDATE SET next_ms = MAX(next_ms, ?2) + ?3"
		   " RETURNING next_ms - ?3",
	[Q_CACHE_GET] = "SELECT hit, body, expires_ms FROM cache WHERE key = ?1 AND expires_ms > ?2",
	[Q_CACHE_PUT] = "INSERT INTO cache(key, provider, hit, body, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
			" ON CONFLICT(key) DO UPDATE SET provider = ?2, hit = ?3, body = ?4, expires_ms = ?5",
	[Q_CACHE_PURGE] = "DELETE FROM cache WHERE rowid IN"
			  " (SELECT rowid FROM cache WHERE expires_ms <= ?1 LIMIT ?2)",
};


/* ---- connections ----------------------------------------------------------- */

static void conn_free(void *p)
{
	struct conn *c = p;

	if (c == NULL)
		return;
	for (int i = 0; i < Q__MAX; i++)
		sqlite3_finalize(c->stmt[i]);
	for (int i = 0; i < STORE_JOB_STMTS; i++)
		sqlite3_finalize(c->jstmt[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

/* SQLite result codes that mean "the store cannot take this now" (locked
 * past the busy timeout, read-only, an I/O error, cannot be opened, the
 * disk is full): callers answer 503 unavailable and retry later, rather
 * than 500 for a bug.  Extended codes are judged by their primary code. */
static bool sqlite_unavailable(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_READONLY:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
		return true;
	default:
		return false;
	}
}

enum enr_err st_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_error("store", "%s", msg ? msg : "statement failed");
		sqlite3_free(msg);
		return sqlite_unavailable(sqlite3_extended_errcode(db)) ? ENR_E_UNAVAILABLE
									: ENR_E_STORE;
	}
	return ENR_OK;
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

/* A new connection to path; NULL with why (whylen bytes) filled when it
 * cannot be opened.  Without why the reason goes to the log. */
static struct conn *conn_open(const char *path, char *why, size_t whylen)
{
	struct conn *c = calloc(1, sizeof *c);
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
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	if (st_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			"PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
			/* Many threads have a connection each: keep each page
			 * cache small (512 KiB). */
			"PRAGMA cache_size=-512;"
			) != ENR_OK) {
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

struct conn *st_conn_get(struct store *s)
{
	struct conn *c = pthread_getspecific(s->key);

	if (c)
		return c;
	c = conn_open(s->path, NULL, 0);
	if (c && pthread_setspecific(s->key, c) != 0) {
		conn_free(c);
		c = NULL;
	}
	return c;
}

void st_thread_release(struct store *s)
{
	struct conn *c;

	if (s == NULL)
		return;
	c = pthread_getspecific(s->key);
	pthread_setspecific(s->key, NULL);
	conn_free(c);
}

sqlite3_stmt *st_prepare(struct conn *c, sqlite3_stmt **slot, const char *sql)
{
	if (*slot == NULL &&
	    sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
		log_error("store", "prepare: %s", sqlite3_errmsg(c->db));
		return NULL;
	}
	return *slot;
}

static sqlite3_stmt *stmt(struct conn *c, enum stmt_id id)
{
	if (c->stmt[id] == NULL) {
		if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &c->stmt[id], NULL) != SQLITE_OK) {
			log_error("store", "prepare %d: %s", (int)id, sqlite3_errmsg(c->db));
			return NULL;
		}
	}
	return c->stmt[id];
}

enum enr_err st_step_err(struct conn *c, int rc)
{
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return ENR_E_CONFLICT;
	log_error("store", "%s", sqlite3_errmsg(c->db));
	return sqlite_unavailable(rc) ? ENR_E_UNAVAILABLE : ENR_E_STORE;
}

/* Run a statement that returns no rows; *changes (may be NULL) gets the
 * number of rows it changed. */
enum enr_err st_run(struct conn *c, sqlite3_stmt *st, int *changes)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return st_step_err(c, rc);
	if (changes)
		*changes = sqlite3_changes(c->db);
	return ENR_OK;
}

void st_finish(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

void st_col_text(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	util_strlcpy(out, t ? (const char *)t : "", outsz);
}

/* ---- transactions ---------------------------------------------------------- */

enum enr_err st_tx_begin(struct store *s, struct conn *c)
{
	enum enr_err rc;

	pthread_mutex_lock(&s->wlock);
	rc = st_exec(c->db, "BEGIN IMMEDIATE");
	if (rc)
		pthread_mutex_unlock(&s->wlock);
	return rc;
}

enum enr_err st_tx_end(struct store *s, struct conn *c, enum enr_err rc)
{
	if (rc == ENR_OK)
		rc = st_exec(c->db, "COMMIT");
	/* Some errors (a full disk, I/O, memory) make SQLite roll the whole
	 * transaction back itself: a second ROLLBACK would only log a
	 * misleading "no transaction is active" after the real error. */
	if (rc != ENR_OK && !sqlite3_get_autocommit(c->db))
		st_exec(c->db, "ROLLBACK");
	pthread_mutex_unlock(&s->wlock);
	return rc;
}

/* ---- open / migrate ------------------------------------------------------- */

int st_schema_latest(void)
{
	return NMIGRATIONS;
}

/* The authentication generation lives in a small file beside the database,
 * mapped shared so every process on the host reads it without a lock. */
static void auth_gen_map(struct store *s)
{
	char path[4096];
	int fd;
	struct stat st;
	void *m;

	if (snprintf(path, sizeof path, "%s-authgen", s->path) >= (int)sizeof path)
		return;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size < (off_t)sizeof(uint64_t) &&
	    ftruncate(fd, sizeof(uint64_t)) != 0) {
		close(fd);
		return;
	}
	m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	s->auth_gen = m;
	/* Start above zero: zero means "do not cache". */
	if (__atomic_load_n(s->auth_gen, __ATOMIC_ACQUIRE) == 0)
		__atomic_add_fetch(s->auth_gen, 1, __ATOMIC_ACQ_REL);
}

static void auth_gen_bump(struct store *s)
{
	if (s->auth_gen)
		__atomic_add_fetch(s->auth_gen, 1, __ATOMIC_ACQ_REL);
}

uint64_t st_auth_generation(struct store *s)
{
	return s->auth_gen ? __atomic_load_n(s->auth_gen, __ATOMIC_ACQUIRE) : 0;
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* SQLite keeps memory statistics behind one global mutex taken on every
 * allocation; with many threads that mutex becomes the busiest lock in the
 * process.  The statistics are not used. */
static void sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static enum enr_err store_new(const char *url, struct store **out, char *why, size_t whylen)
{
	const char *path = cfg_store_path(url, NULL);
	struct store *s;
	struct conn *c;

	pthread_once(&sqlite_once, sqlite_setup);
	if (path == NULL) {
		snprintf(why, whylen, "%s is not a store URL (\"sqlite:PATH\")", url);
		return ENR_E_INVALID;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return ENR_E_NOMEM;
	s->path = strdup(path);
	if (s->path == NULL || pthread_key_create(&s->key, conn_free) != 0) {
		free(s->path);
		free(s);
		return ENR_E_NOMEM;
	}
	pthread_mutex_init(&s->wlock, NULL);
	auth_gen_map(s);
	c = conn_open(s->path, why, whylen);
	if (c == NULL || pthread_setspecific(s->key, c) != 0) {
		if (c)
			snprintf(why, whylen, "cannot open %s: out of memory", s->path);
		conn_free(c);
		st_close(s);
		return ENR_E_UNAVAILABLE;
	}
	*out = s;
	return ENR_OK;
}

enum enr_err st_open_raw(const char *url, struct store **out)
{
	char why[512];

	return st_open_why(url, false, out, why, sizeof why);
}

enum enr_err st_schema_version(struct store *s, int *out)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_E_STORE;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return ENR_E_STORE;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = ENR_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

enum enr_err st_migrate(struct store *s, int *from, int *to)
{
	return st_migrate_to(s, NMIGRATIONS, from, to);
}

enum enr_err st_migrate_to(struct store *s, int target, int *from, int *to)
{
	struct conn *c = st_conn_get(s);
	enum enr_err rc;
	int v = 0;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	/* Read the version inside the write transaction, so two processes
	 * starting at once do not both apply the same migration. */
	rc = st_schema_version(s, &v);
	if (rc == ENR_OK && v > NMIGRATIONS) {
		log_error("store", "database schema %d is newer than this program (%d)", v,
			  NMIGRATIONS);
		rc = ENR_E_STORE;
	}
	if (from)
		*from = v;
	if (target > NMIGRATIONS)
		target = NMIGRATIONS;
	for (; rc == ENR_OK && v < target; v++) {
		char pragma[48];

		rc = st_exec(c->db, migrations[v]);
		if (rc == ENR_OK) {
			snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
			rc = st_exec(c->db, pragma);
		}
		if (rc == ENR_OK)
			log_info("store", "schema migrated to version %d", v + 1);
	}
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK && to)
		*to = v;
	return rc;
}

enum enr_err st_open_why(const char *url, bool migrate, struct store **out, char *why,
			 size_t whylen)
{
	struct store *s = NULL;
	enum enr_err rc;

	if (whylen)
		why[0] = '\0';
	rc = store_new(url, &s, why, whylen);
	if (rc == ENR_E_NOMEM)
		snprintf(why, whylen, "cannot open %s: out of memory", url);
	if (rc)
		return rc;
	if (migrate) {
		rc = st_migrate(s, NULL, NULL);
		if (rc) {
			snprintf(why, whylen, "cannot bring the schema of %s up to date: %s", s->path,
				 enr_strerror(rc));
			st_close(s);
			return rc;
		}
	}
	*out = s;
	return ENR_OK;
}

enum enr_err st_open(const char *url, struct store **out)
{
	char why[512];

	return st_open_why(url, true, out, why, sizeof why);
}

void st_close(struct store *s)
{
	if (s == NULL)
		return;
	st_thread_release(s);
	if (s->auth_gen)
		munmap(s->auth_gen, sizeof(uint64_t));
	pthread_key_delete(s->key);
	pthread_mutex_destroy(&s->wlock);
	free(s->path);
	free(s);
}

enum enr_err st_probe_write(struct store *s, int64_t now_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = stmt(c, Q_PROBE)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, now_ms);
	rc = st_run(c, st, NULL);
	return st_tx_end(s, c, rc);
}

enum enr_err st_ping(struct store *s)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, Q_PING)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = sqlite3_step(st);
	st_finish(st);
	return rc == SQLITE_ROW ? ENR_OK : st_step_err(c, rc);
}

/* ---- accounts ------------------------------------------------------------------ */

enum enr_err st_account_create(struct store *s, const char *name, int64_t now_s, int64_t *id)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = stmt(c, Q_ACCOUNT_INSERT)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now_s);
	rc = st_run(c, st, NULL);
	if (rc == ENR_OK && id)
		*id = sqlite3_last_insert_rowid(c->db);
	return st_tx_end(s, c, rc);
}

static void row_account(sqlite3_stmt *st, struct st_account *a)
{
	a->id = sqlite3_column_int64(st, 0);
	st_col_text(st, 1, a->name, sizeof a->name);
	a->requests_per_minute = sqlite3_column_int64(st, 2);
	a->burst = sqlite3_column_int64(st, 3);
	a->records_per_hour = sqlite3_column_int64(st, 4);
	a->records_per_day = sqlite3_column_int64(st, 5);
	a->created_at = sqlite3_column_int64(st, 6);
}

static enum enr_err account_one(struct store *s, enum stmt_id q, const char *name, int64_t id,
				struct st_account *out)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, q)) == NULL)
		return ENR_E_UNAVAILABLE;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_account(st, out);
	st_finish(st);
	if (rc == SQLITE_ROW)
		return ENR_OK;
	return rc == SQLITE_DONE ? ENR_E_NOT_FOUND : st_step_err(c, rc);
}

enum enr_err st_account_by_name(struct store *s, const char *name, struct st_account *out)
{
	return account_one(s, Q_ACCOUNT_BY_NAME, name, 0, out);
}

enum enr_err st_account_by_id(struct store *s, int64_t id, struct st_account *out)
{
	return account_one(s, Q_ACCOUNT_BY_ID, NULL, id, out);
}

enum enr_err st_account_set_limits(struct store *s, int64_t id, const struct st_account *l)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int changes = 0;

	if (c == NULL || (st = stmt(c, Q_ACCOUNT_SET_LIMITS)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, l->requests_per_minute);
	sqlite3_bind_int64(st, 3, l->burst);
	sqlite3_bind_int64(st, 4, l->records_per_hour);
	sqlite3_bind_int64(st, 5, l->records_per_day);
	rc = st_run(c, st, &changes);
	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_NOT_FOUND;
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK)
		auth_gen_bump(s);
	return rc;
}

enum enr_err st_account_each(struct store *s, int (*fn)(void *arg, const struct st_account *a),
			     void *arg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, Q_ACCOUNT_ALL)) == NULL)
		return ENR_E_UNAVAILABLE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct st_account a;

		row_account(st, &a);
		if (fn(arg, &a))
			break;
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
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

/* ---- client keys ---------------------------------------------------------------- */

enum enr_err st_client_key_insert(struct store *s, int64_t account_id, const char *name,
				  const unsigned char hash[AUTH_HASH_LEN], const char *last4,
				  unsigned scopes, int64_t expires_at, int64_t now_s, int64_t *id)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = stmt(c, Q_KEY_INSERT)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, hash, AUTH_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, last4, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, scopes);
	sqlite3_bind_int64(st, 6, now_s);
	sqlite3_bind_int64(st, 7, expires_at);
	rc = st_run(c, st, NULL);
	if (rc == ENR_OK && id)
		*id = sqlite3_last_insert_rowid(c->db);
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK)
		auth_gen_bump(s);
	return rc;
}

static void row_key(sqlite3_stmt *st, struct st_client_key *k)
{
	k->id = sqlite3_column_int64(st, 0);
	k->account_id = sqlite3_column_int64(st, 1);
	st_col_text(st, 2, k->account, sizeof k->account);
	st_col_text(st, 3, k->name, sizeof k->name);
	st_col_text(st, 4, k->last4, sizeof k->last4);
	k->scopes = (unsigned)sqlite3_column_int64(st, 5);
	k->created_at = sqlite3_column_int64(st, 6);
	k->expires_at = sqlite3_column_int64(st, 7);
	k->revoked_at = sqlite3_column_int64(st, 8);
}

enum enr_err st_client_key_by_hash(struct store *s, const unsigned char hash[AUTH_HASH_LEN],
				   struct st_client_key *out)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, Q_KEY_BY_HASH)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_blob(st, 1, hash, AUTH_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct st_account *a = &out->account_row;

		row_key(st, out);
		a->id = out->account_id;
		util_strlcpy(a->name, out->account, sizeof a->name);
		a->requests_per_minute = sqlite3_column_int64(st, 9);
		a->burst = sqlite3_column_int64(st, 10);
		a->records_per_hour = sqlite3_column_int64(st, 11);
		a->records_per_day = sqlite3_column_int64(st, 12);
		a->created_at = sqlite3_column_int64(st, 13);
	}
	st_finish(st);
	if (rc == SQLITE_ROW)
		return ENR_OK;
	return rc == SQLITE_DONE ? ENR_E_NOT_FOUND : st_step_err(c, rc);
}

enum enr_err st_client_key_revoke(struct store *s, int64_t id, int64_t now_s)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int changes = 0;

	if (c == NULL || (st = stmt(c, Q_KEY_REVOKE)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_s);
	rc = st_run(c, st, &changes);
	if (rc == ENR_OK && changes == 0)
		rc = ENR_E_NOT_FOUND;
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK)
		auth_gen_bump(s);
	return rc;
}

enum enr_err st_client_key_each(struct store *s, int64_t account_id,
				int (*fn)(void *arg, const struct st_client_key *k), void *arg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, account_id < 0 ? Q_KEY_ALL : Q_KEY_OF_ACCOUNT)) == NULL)
		return ENR_E_UNAVAILABLE;
	if (account_id >= 0)
		sqlite3_bind_int64(st, 1, account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct st_client_key k;

		row_key(st, &k);
		if (fn(arg, &k))
			break;
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
}

/* ---- admission ------------------------------------------------------------------- */

void st_day(int64_t now_s, char out[11])
{
	struct tm tm;
	time_t t = (time_t)now_s;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static enum enr_err window_get(struct conn *c, int64_t account, int64_t period,
			       struct rl_window *w)
{
	sqlite3_stmt *st = stmt(c, Q_WINDOW_GET);
	int rc;

	if (st == NULL)
		return ENR_E_STORE;
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_int64(st, 2, period);
	rc = sqlite3_step(st);
	w->start_s = 0;
	w->used = 0;
	if (rc == SQLITE_ROW) {
		w->start_s = sqlite3_column_int64(st, 0);
		w->used = sqlite3_column_int64(st, 1);
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
}

static enum enr_err window_put(struct conn *c, int64_t account, int64_t period,
			       const struct rl_window *w)
{
	sqlite3_stmt *st = stmt(c, Q_WINDOW_PUT);

	if (st == NULL)
		return ENR_E_STORE;
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_int64(st, 2, period);
	sqlite3_bind_int64(st, 3, w->start_s);
	sqlite3_bind_int64(st, 4, w->used);
	return st_run(c, st, NULL);
}

static enum enr_err usage_add(struct conn *c, int64_t account, int64_t now_s, int64_t requests,
			      int64_t records, int64_t credits, int64_t rejections)
{
	sqlite3_stmt *st = stmt(c, Q_USAGE_ADD);
	char day[11];

	if (st == NULL)
		return ENR_E_STORE;
	st_day(now_s, day);
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, requests);
	sqlite3_bind_int64(st, 4, records);
	sqlite3_bind_int64(st, 5, credits);
	sqlite3_bind_int64(st, 6, rejections);
	return st_run(c, st, NULL);
}

static enum enr_err admit_tx(struct conn *c, const struct st_admit_req *q, struct st_admit_res *r)
{
	struct rl_bucket b = { 0, 0 };
	struct rl_bucket_limits bl = { q->limits.requests_per_minute, q->limits.burst };
	struct rl_bucket_verdict bv;
	struct rl_window wh, wd;
	struct rl_window_verdict vh, vd;
	int64_t now_s = q->now_ms / 1000;
	sqlite3_stmt *st = stmt(c, Q_BUCKET_GET);
	enum enr_err rc;
	int src;

	if (st == NULL)
		return ENR_E_STORE;
	sqlite3_bind_int64(st, 1, q->account_id);
	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		b.tokens = sqlite3_column_double(st, 0);
		b.updated_ms = sqlite3_column_int64(st, 1);
	}
	st_finish(st);
	if (src != SQLITE_ROW && src != SQLITE_DONE)
		return st_step_err(c, src);
	rc = window_get(c, q->account_id, 3600, &wh);
	if (rc == ENR_OK)
		rc = window_get(c, q->account_id, 86400, &wd);
	if (rc)
		return rc;

	/* Decide on both quotas first, so a denial takes nothing. */
	rl_window_peek(&wh, q->limits.records_per_hour, 3600, now_s, q->records, &vh);
	rl_window_peek(&wd, q->limits.records_per_day, 86400, now_s, q->records, &vd);
	rl_bucket_take(&b, &bl, q->now_ms, q->request_cost, &bv);
	r->bucket_remaining = bv.remaining;
	r->bucket_reset_s = (bv.full_in_ms + 999) / 1000;
	r->hour_remaining = vh.remaining;
	r->hour_reset_s = vh.reset_s;
	r->day_remaining = vd.remaining;
	r->day_reset_s = vd.reset_s;
	r->records_fit = vh.fits < vd.fits ? vh.fits : vd.fits;
	r->retry_after_s = 0;

	if (!bv.allowed || !vh.allowed || !vd.allowed) {
		/* Nothing is counted: report what is left as it stands. */
		struct rl_window_verdict ph, pd;

		rl_window_peek(&wh, q->limits.records_per_hour, 3600, now_s, 0, &ph);
		rl_window_peek(&wd, q->limits.records_per_day, 86400, now_s, 0, &pd);
		r->hour_remaining = ph.remaining;
		r->day_remaining = pd.remaining;
	}
	if (!bv.allowed) {
		r->verdict = ST_ADMIT_RATE_LIMITED;
		r->retry_after_s = (bv.retry_after_ms + 999) / 1000;
	} else if (!vh.allowed || !vd.allowed) {
		r->verdict = ST_ADMIT_QUOTA;
		/* The day window may reset later than the hour one. */
		r->retry_after_s = !vd.allowed ? vd.reset_s : vh.reset_s;
		/* The request still took its token: it was made. */
	} else {
		int64_t extra_r = q->extra_records;

		r->verdict = ST_ADMIT_OK;
		/* A lease takes what is there, up to what was asked. */
		if (extra_r > vh.remaining)
			extra_r = vh.remaining;
		if (extra_r > vd.remaining)
			extra_r = vd.remaining;
		if (extra_r < 0)
			extra_r = 0;
		r->granted_records = extra_r;
		if (q->extra_tokens > 0 && b.tokens >= 1.0) {
			int64_t t = (int64_t)b.tokens;

			r->granted_tokens = t < q->extra_tokens ? t : q->extra_tokens;
			b.tokens -= (double)r->granted_tokens;
			r->bucket_remaining -= r->granted_tokens;
		}
		rl_window_take(&wh, q->limits.records_per_hour, 3600, now_s, q->records + extra_r, &vh);
		rl_window_take(&wd, q->limits.records_per_day, 86400, now_s, q->records + extra_r, &vd);
		r->hour_remaining = vh.remaining;
		r->day_remaining = vd.remaining;
		rc = window_put(c, q->account_id, 3600, &wh);
		if (rc == ENR_OK)
			rc = window_put(c, q->account_id, 86400, &wd);
		if (rc)
			return rc;
	}
	/* The refill is kept even when the request was denied. */
	st = stmt(c, Q_BUCKET_PUT);
	if (st == NULL)
		return ENR_E_STORE;
	sqlite3_bind_int64(st, 1, q->account_id);
	sqlite3_bind_double(st, 2, b.tokens);
	sqlite3_bind_int64(st, 3, b.updated_ms);
	rc = st_run(c, st, NULL);
	if (rc)
		return rc;
	if (r->verdict == ST_ADMIT_OK)
		return usage_add(c, q->account_id, now_s, q->request_cost, q->records, 0, 0);
	return usage_add(c, q->account_id, now_s, r->verdict == ST_ADMIT_QUOTA ? q->request_cost : 0,
			 0, 0, 1);
}

enum enr_err st_admit(struct store *s, const struct st_admit_req *q, struct st_admit_res *out)
{
	struct conn *c = st_conn_get(s);
	struct st_admit_res r;
	enum enr_err rc;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	memset(&r, 0, sizeof r);
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	rc = st_tx_end(s, c, admit_tx(c, q, &r));
	if (rc == ENR_OK)
		*out = r;
	return rc;
}

/* ---- usage ------------------------------------------------------------------------ */

enum enr_err st_usage_add_credits(struct store *s, int64_t account_id, int64_t now_s,
				  int64_t credits)
{
	struct conn *c = st_conn_get(s);
	enum enr_err rc;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	return st_tx_end(s, c, usage_add(c, account_id, now_s, 0, 0, credits, 0));
}

enum enr_err st_usage_add(struct store *s, int64_t account_id, int64_t now_s, int64_t requests,
			  int64_t records, int64_t credits, int64_t rejections)
{
	struct conn *c = st_conn_get(s);
	enum enr_err rc;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	return st_tx_end(s, c, usage_add(c, account_id, now_s, requests, records, credits, rejections));
}

enum enr_err st_usage_each(struct store *s, int64_t account_id, const char *from,
			   int (*fn)(void *arg, const struct st_usage *u), void *arg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, account_id < 0 ? Q_USAGE_ALL : Q_USAGE_OF_ACCOUNT)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_TRANSIENT);
	if (account_id >= 0)
		sqlite3_bind_int64(st, 2, account_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct st_usage u;

		u.account_id = sqlite3_column_int64(st, 0);
		st_col_text(st, 1, u.account, sizeof u.account);
		st_col_text(st, 2, u.day, sizeof u.day);
		u.requests = sqlite3_column_int64(st, 3);
		u.records = sqlite3_column_int64(st, 4);
		u.credits = sqlite3_column_int64(st, 5);
		u.rejections = sqlite3_column_int64(st, 6);
		if (fn(arg, &u))
			break;
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
}

/* ---- upstream key pool ------------------------------------------------------- */

enum enr_err st_ukey_sync(struct store *s, const struct cfg *cfg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	st = stmt(c, Q_UKEY_UNCONFIGURE);
	rc = st ? st_run(c, st, NULL) : ENR_E_STORE;
	for (size_t i = 0; rc == ENR_OK && i < cfg->nproviders; i++) {
		const struct cfg_provider *p = &cfg->providers[i];

		for (size_t k = 0; rc == ENR_OK && k < p->nkeys; k++) {
			const struct cfg_key *key = &p->keys[k];
			size_t sl = strlen(key->secret);

			st = stmt(c, Q_UKEY_UPSERT);
			if (st == NULL) {
				rc = ENR_E_STORE;
				break;
			}
			sqlite3_bind_text(st, 1, key->id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, p->name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 3, key->account, -1, SQLITE_TRANSIENT);
			/* Only the last four characters of a secret are ever stored. */
			sqlite3_bind_text(st, 4, sl >= 4 ? key->secret + sl - 4 : "", -1,
					  SQLITE_TRANSIENT);
			sqlite3_bind_int(st, 5, (int)k);
			rc = st_run(c, st, NULL);
		}
	}
	return st_tx_end(s, c, rc);
}

static void row_ukey(sqlite3_stmt *st, struct kp_key *k)
{
	int state;

	st_col_text(st, 0, k->id, sizeof k->id);
	st_col_text(st, 1, k->provider, sizeof k->provider);
	st_col_text(st, 2, k->account, sizeof k->account);
	st_col_text(st, 3, k->last4, sizeof k->last4);
	k->ord = sqlite3_column_int(st, 4);
	state = sqlite3_column_int(st, 5);
	k->state = state >= 0 && state < KP_STATE__MAX ? (enum kp_state)state : KP_INVALID;
	k->until_ms = sqlite3_column_int64(st, 6);
	k->transients = sqlite3_column_int(st, 7);
	k->backoff_ms = sqlite3_column_int64(st, 8);
	k->calls = sqlite3_column_int64(st, 9);
	k->hits = sqlite3_column_int64(st, 10);
	k->misses = sqlite3_column_int64(st, 11);
	k->errors = sqlite3_column_int64(st, 12);
	k->credits = sqlite3_column_int64(st, 13);
	k->last_used_ms = sqlite3_column_int64(st, 14);
}

enum enr_err st_ukeys_of(struct store *s, const char *provider, struct kp_key *keys, int max,
			 int *n)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc, got = 0;

	if (c == NULL || (st = stmt(c, Q_UKEY_OF_PROVIDER)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_text(st, 1, provider, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && got < max)
		row_ukey(st, &keys[got++]);
	st_finish(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return st_step_err(c, rc);
	*n = got;
	return ENR_OK;
}

enum enr_err st_ukey_each(struct store *s, int (*fn)(void *arg, const struct kp_key *k), void *arg)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;

	if (c == NULL || (st = stmt(c, Q_UKEY_ALL)) == NULL)
		return ENR_E_UNAVAILABLE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kp_key k;

		row_ukey(st, &k);
		if (fn(arg, &k))
			break;
	}
	st_finish(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? ENR_OK : st_step_err(c, rc);
}

static enum enr_err ukey_get(struct conn *c, const char *id, struct kp_key *k)
{
	sqlite3_stmt *st = stmt(c, Q_UKEY_BY_ID);
	int rc;

	if (st == NULL)
		return ENR_E_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_ukey(st, k);
	st_finish(st);
	if (rc == SQLITE_ROW)
		return ENR_OK;
	return rc == SQLITE_DONE ? ENR_E_NOT_FOUND : st_step_err(c, rc);
}

static enum enr_err ukey_put(struct conn *c, const struct kp_key *k)
{
	sqlite3_stmt *st = stmt(c, Q_UKEY_PUT);

	if (st == NULL)
		return ENR_E_STORE;
	sqlite3_bind_text(st, 1, k->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, (int)k->state);
	sqlite3_bind_int64(st, 3, k->until_ms);
	sqlite3_bind_int(st, 4, k->transients);
	sqlite3_bind_int64(st, 5, k->backoff_ms);
	sqlite3_bind_int64(st, 6, k->calls);
	sqlite3_bind_int64(st, 7, k->hits);
	sqlite3_bind_int64(st, 8, k->misses);
	sqlite3_bind_int64(st, 9, k->errors);
	sqlite3_bind_int64(st, 10, k->credits);
	sqlite3_bind_int64(st, 11, k->last_used_ms);
	return st_run(c, st, NULL);
}

enum enr_err st_ukey_apply(struct store *s, const char *id, enum prov_outcome o,
			   int64_t hint_until_ms, int credits, int64_t now_ms,
			   const struct kp_params *p, struct kp_key *after, struct kp_change *ch,
			   int *account_cooled)
{
	struct conn *c = st_conn_get(s);
	struct kp_key k;
	struct kp_change change;
	unsigned char r8[2];
	enum enr_err rc;
	int cooled = 0;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	if (util_random(r8, sizeof r8) != ENR_OK)
		r8[0] = r8[1] = 0;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	rc = ukey_get(c, id, &k);
	if (rc == ENR_OK) {
		kp_apply(&k, o, hint_until_ms, credits, now_ms, p,
			 (double)(r8[0] | r8[1] << 8) / 65536.0, &change);
		rc = ukey_put(c, &k);
	}
	if (rc == ENR_OK && change.account_cool && change.to == KP_COOLING) {
		sqlite3_stmt *st = stmt(c, Q_UKEY_COOL_ACCOUNT);

		if (st == NULL) {
			rc = ENR_E_STORE;
		} else {
			sqlite3_bind_text(st, 1, k.provider, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, k.account, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 3, k.until_ms);
			sqlite3_bind_text(st, 4, k.id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 5, now_ms);
			rc = st_run(c, st, &cooled);
		}
	}
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK) {
		if (after)
			*after = k;
		if (ch)
			*ch = change;
		if (account_cooled)
			*account_cooled = cooled;
	}
	return rc;
}

enum enr_err st_ukey_revive(struct store *s, const char *id, struct kp_key *after)
{
	struct conn *c = st_conn_get(s);
	struct kp_key k;
	enum enr_err rc;

	if (c == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	rc = ukey_get(c, id, &k);
	if (rc == ENR_OK) {
		kp_revive(&k);
		rc = ukey_put(c, &k);
	}
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK && after)
		*after = k;
	return rc;
}

/* A write statement with one RETURNING integer. */
static enum enr_err returning_i64(struct store *s, struct conn *c, sqlite3_stmt *st, int64_t *out)
{
	enum enr_err rc = st_tx_begin(s, c);
	int src;

	if (rc) {
		st_finish(st);
		return rc;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	/* Step to the end so the statement completes before the commit. */
	while (src == SQLITE_ROW)
		src = sqlite3_step(st);
	st_finish(st);
	rc = src == SQLITE_DONE ? ENR_OK : st_step_err(c, src);
	return st_tx_end(s, c, rc);
}

enum enr_err st_ukey_add_counts(struct store *s, const char *id, int64_t calls, int64_t hits,
				int64_t misses, int64_t credits, int64_t last_used_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = stmt(c, Q_UKEY_COUNTS)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, calls);
	sqlite3_bind_int64(st, 3, hits);
	sqlite3_bind_int64(st, 4, misses);
	sqlite3_bind_int64(st, 5, credits);
	sqlite3_bind_int64(st, 6, last_used_ms);
	rc = st_run(c, st, NULL);
	return st_tx_end(s, c, rc);
}

enum enr_err st_pace_reserve(struct store *s, const char *scope, int64_t interval_ms,
			     int64_t now_ms, int64_t *start_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int64_t v = now_ms;
	enum enr_err rc;

	if (c == NULL || (st = stmt(c, Q_PACE)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_text(st, 1, scope, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int64(st, 3, interval_ms);
	rc = returning_i64(s, c, st, &v);
	if (rc == ENR_OK)
		*start_ms = v;
	return rc;
}

/* ---- cache ------------------------------------------------------------------------ */

enum enr_err st_cache_get(struct store *s, const unsigned char key[32], int64_t now_ms, bool *hit,
			  char **body, int64_t *expires_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	int rc;
	char *b = NULL;

	if (c == NULL || (st = stmt(c, Q_CACHE_GET)) == NULL)
		return ENR_E_UNAVAILABLE;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 1);

		*hit = sqlite3_column_int(st, 0) != 0;
		*expires_ms = sqlite3_column_int64(st, 2);
		b = strdup(t ? (const char *)t : "");
	}
	st_finish(st);
	if (rc == SQLITE_ROW) {
		if (b == NULL)
			return ENR_E_NOMEM;
		*body = b;
		return ENR_OK;
	}
	return rc == SQLITE_DONE ? ENR_E_NOT_FOUND : st_step_err(c, rc);
}

enum enr_err st_cache_put(struct store *s, const unsigned char key[32], const char *provider,
			  bool hit, const char *body, int64_t expires_ms)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;

	if (c == NULL || (st = stmt(c, Q_CACHE_PUT)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, provider, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, hit);
	sqlite3_bind_text(st, 4, body, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, expires_ms);
	rc = st_run(c, st, NULL);
	return st_tx_end(s, c, rc);
}

enum enr_err st_cache_purge(struct store *s, int64_t now_ms, int limit, int *removed)
{
	struct conn *c = st_conn_get(s);
	sqlite3_stmt *st;
	enum enr_err rc;
	int n = 0;

	if (c == NULL || (st = stmt(c, Q_CACHE_PURGE)) == NULL)
		return ENR_E_UNAVAILABLE;
	rc = st_tx_begin(s, c);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int(st, 2, limit);
	rc = st_run(c, st, &n);
	rc = st_tx_end(s, c, rc);
	if (rc == ENR_OK && removed)
		*removed = n;
	return rc;
}
