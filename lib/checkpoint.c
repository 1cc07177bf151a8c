/*
 * checkpoint.c - the enrich-batch checkpoint file (SQLite).
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "util.h"

/* "EnBc" in PRAGMA application_id tells a checkpoint from any other
 * SQLite file (https://www.sqlite.org/fileformat.html#application_id). */
#define CKPT_APP_ID 0x456e4263
#define CKPT_VERSION 1
#define BUSY_TIMEOUT_MS 5000

const char *const ckpt_state_names[CKPT_STATE__MAX] = {
	[CKPT_COMPLETE] = "complete",
	[CKPT_PARTIAL] = "partial",
	[CKPT_NOT_FOUND] = "not_found",
	[CKPT_FAILED] = "failed",
	[CKPT_INVALID] = "invalid",
};

static const char schema[] =
	"CREATE TABLE meta ("
	"  k TEXT PRIMARY KEY,"
	"  v TEXT NOT NULL);"
	"CREATE TABLE rows ("
	"  n INTEGER PRIMARY KEY,"
	"  line INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  code TEXT NOT NULL DEFAULT '',"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  out BLOB NOT NULL,"
	"  credits INTEGER NOT NULL DEFAULT 0,"
	"  calls INTEGER NOT NULL DEFAULT 0,"
	"  cached INTEGER NOT NULL DEFAULT 0,"
	"  attempts INTEGER NOT NULL DEFAULT 1);"
	"CREATE INDEX rows_state ON rows(state);";

struct ckpt {
	pthread_mutex_t mu;
	sqlite3 *db;
	sqlite3_stmt *put;
	int lock_fd;
	bool in_tx;
	int pending;
	int64_t first_ms;   /* when the oldest pending row was put */
};

bool ckpt_state_parse(const char *s, enum ckpt_state *out)
{
	for (int i = 0; i < CKPT_STATE__MAX; i++) {
		if (strcmp(ckpt_state_names[i], s) == 0) {
			*out = (enum ckpt_state)i;
			return true;
		}
	}
	return false;
}

static enum enr_err db_err(sqlite3 *db, const char *what)
{
	int code = sqlite3_errcode(db);

	/* Not a checkpoint at all is the caller's to explain. */
	log_msg(code == SQLITE_NOTADB ? LOG_LVL_DEBUG : LOG_LVL_ERROR, "ckpt", "%s: %s", what,
		sqlite3_errmsg(db));
	if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
		return ENR_E_INVALID;
	if (code == SQLITE_NOMEM)
		return ENR_E_NOMEM;
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return ENR_E_UNAVAILABLE;
	return ENR_E_STORE;
}

static enum enr_err exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_err(db, "statement failed");
	return ENR_OK;
}

static enum enr_err pragma_int(sqlite3 *db, const char *sql, int *out)
{
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_OK;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_err(db, "cannot read the checkpoint");
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	else
		rc = db_err(db, "cannot read the checkpoint");
	sqlite3_finalize(st);
	return rc;
}

/* Bring a fresh file to the current format, or check an existing one. */
static enum enr_err prepare_schema(sqlite3 *db)
{
	int app = 0, version = 0, tables = 0;
	enum enr_err rc;

	rc = pragma_int(db, "PRAGMA application_id", &app);
	if (rc == ENR_OK)
		rc = pragma_int(db, "PRAGMA user_version", &version);
	if (rc == ENR_OK)
		rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc)
		return rc;
	if (app == CKPT_APP_ID)
		return version >= 1 && version <= CKPT_VERSION ? ENR_OK : ENR_E_INVALID;
	if (app != 0 || version != 0 || tables != 0)
		return ENR_E_INVALID;
	rc = exec(db, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = exec(db, schema);
	if (rc == ENR_OK) {
		char sql[96];

		snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d",
			 CKPT_APP_ID, CKPT_VERSION);
		rc = exec(db, sql);
	}
	if (rc == ENR_OK)
		rc = exec(db, "COMMIT");
	if (rc)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

enum enr_err ckpt_open(const char *path, unsigned flags, struct ckpt **out)
{
	struct ckpt *c = NULL;
	bool created = false;
	int fd = -1;
	enum enr_err rc;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && (flags & CKPT_CREATE)) {
		/* Results are personal data: the file is the owner's only. */
		fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		if (fd < 0) {
			rc = ENR_E_IO;
			goto out;
		}
		created = true;
	}
	if (fd < 0) {
		rc = errno == ENOENT ? ENR_E_NOT_FOUND : ENR_E_IO;
		goto out;
	}
	/* flock and SQLite's fcntl locks do not interact on Linux; this fd
	 * stays open until SQLite has closed the file, so closing it never
	 * drops SQLite's own locks (POSIX releases every fcntl lock of a
	 * process on the first close of any descriptor of the file). */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? ENR_E_CONFLICT : ENR_E_IO;
		goto out;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		rc = ENR_E_NOMEM;
		goto out;
	}
	c->lock_fd = -1;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		c = NULL;
		rc = ENR_E_NOMEM;
		goto out;
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = c->db ? db_err(c->db, "cannot open the checkpoint") : ENR_E_NOMEM;
		goto out;
	}
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	rc = exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
	if (rc == ENR_OK)
		rc = prepare_schema(c->db);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(c->db,
			       "INSERT INTO rows (n, line, state, code, reason, out, credits, calls,"
			       " cached) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
			       " ON CONFLICT(n) DO UPDATE SET line = excluded.line,"
			       " state = excluded.state, code = excluded.code,"
			       " reason = excluded.reason, out = excluded.out,"
			       " credits = credits + excluded.credits,"
			       " calls = calls + excluded.calls, cached = excluded.cached,"
			       " attempts = attempts + 1",
			       -1, &c->put, NULL) != SQLITE_OK) {
		rc = db_err(c->db, "cannot prepare the checkpoint");
		goto out;
	}
	c->lock_fd = fd;
	fd = -1;
	*out = c;
	c = NULL;
	rc = ENR_OK;
out:
	if (c) {
		sqlite3_finalize(c->put);
		sqlite3_close_v2(c->db);
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
	if (fd >= 0) {
		int saved = errno;

		/* Best effort: the file this call created goes with its failure,
		 * which is what the caller hears about. */
		if (created)
			enr_ignore(ckpt_remove(path));
		close(fd);
		errno = saved;
	}
	return rc;
}

/* Commit the open transaction; called with the mutex held. */
static enum enr_err commit_locked(struct ckpt *c)
{
	enum enr_err rc;

	if (!c->in_tx)
		return ENR_OK;
	rc = exec(c->db, "COMMIT");
	if (rc)
		return rc;
	c->in_tx = false;
	c->pending = 0;
	return ENR_OK;
}

void ckpt_close(struct ckpt *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	commit_locked(c);
	pthread_mutex_unlock(&c->mu);
	sqlite3_finalize(c->put);
	sqlite3_close_v2(c->db);
	close(c->lock_fd);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

enum enr_err ckpt_remove(const char *path)
{
	static const char *const suffixes[] = { "-wal", "-shm", "" };
	char p[PATH_MAX + 8];
	enum enr_err rc = ENR_OK;

	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		if ((size_t)snprintf(p, sizeof p, "%s%s", path, suffixes[i]) >= sizeof p)
			return ENR_E_INVALID;
		if (unlink(p) != 0 && errno != ENOENT)
			rc = ENR_E_IO;
	}
	return rc;
}

static enum enr_err meta_get(struct ckpt *c, const char *k, char *out, size_t outsz, bool *found)
{
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_OK;
	int s;

	*found = false;
	if (sqlite3_prepare_v2(c->db, "SELECT v FROM meta WHERE k = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_err(c->db, "cannot read the checkpoint");
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (v == NULL || !util_strlcpy(out, v, outsz))
			rc = ENR_E_INVALID;
		else
			*found = true;
	} else if (s != SQLITE_DONE) {
		rc = db_err(c->db, "cannot read the checkpoint");
	}
	sqlite3_finalize(st);
	return rc;
}

static enum enr_err meta_set(struct ckpt *c, const char *k, const char *v)
{
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_OK;

	if (sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)", -1,
			       &st, NULL) != SQLITE_OK)
		return db_err(c->db, "cannot write the checkpoint");
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(c->db, "cannot write the checkpoint");
	sqlite3_finalize(st);
	return rc;
}

enum enr_err ckpt_ident_get(struct ckpt *c, struct ckpt_ident *out)
{
	struct ckpt_ident id;
	char num[32];
	bool f[5] = { false };
	enum enr_err rc;

	memset(&id, 0, sizeof id);
	pthread_mutex_lock(&c->mu);
	rc = meta_get(c, "input", id.input, sizeof id.input, &f[0]);
	if (rc == ENR_OK)
		rc = meta_get(c, "sha256", id.sha256, sizeof id.sha256, &f[1]);
	if (rc == ENR_OK)
		rc = meta_get(c, "fields", id.fields, sizeof id.fields, &f[2]);
	if (rc == ENR_OK && (rc = meta_get(c, "size", num, sizeof num, &f[3])) == ENR_OK && f[3])
		rc = util_parse_i64(num, 0, INT64_MAX, &id.size) ? ENR_E_INVALID : ENR_OK;
	if (rc == ENR_OK && (rc = meta_get(c, "rows", num, sizeof num, &f[4])) == ENR_OK && f[4])
		rc = util_parse_i64(num, 0, INT64_MAX, &id.rows) ? ENR_E_INVALID : ENR_OK;
	pthread_mutex_unlock(&c->mu);
	if (rc)
		return rc;
	if (!(f[0] && f[1] && f[2] && f[3] && f[4]))
		return ENR_E_NOT_FOUND;
	*out = id;
	return ENR_OK;
}

enum enr_err ckpt_ident_set(struct ckpt *c, const struct ckpt_ident *id)
{
	char size[32], rows[32];
	enum enr_err rc;

	snprintf(size, sizeof size, "%lld", (long long)id->size);
	snprintf(rows, sizeof rows, "%lld", (long long)id->rows);
	pthread_mutex_lock(&c->mu);
	rc = commit_locked(c);
	if (rc == ENR_OK)
		rc = exec(c->db, "BEGIN IMMEDIATE");
	if (rc == ENR_OK) {
		rc = meta_set(c, "input", id->input);
		if (rc == ENR_OK)
			rc = meta_set(c, "size", size);
		if (rc == ENR_OK)
			rc = meta_set(c, "sha256", id->sha256);
		if (rc == ENR_OK)
			rc = meta_set(c, "fields", id->fields);
		if (rc == ENR_OK)
			rc = meta_set(c, "rows", rows);
		if (rc == ENR_OK)
			rc = exec(c->db, "COMMIT");
		else
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum enr_err ckpt_put(struct ckpt *c, const struct ckpt_row *r, int64_t now_ms)
{
	sqlite3_stmt *st = c->put;
	enum enr_err rc = ENR_OK;

	if (r->n < 1 || (unsigned)r->state >= CKPT_STATE__MAX || r->out == NULL)
		return ENR_E_INVALID;
	pthread_mutex_lock(&c->mu);
	if (!c->in_tx) {
		rc = exec(c->db, "BEGIN IMMEDIATE");
		if (rc)
			goto out;
		c->in_tx = true;
		c->first_ms = now_ms;
	}
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, r->n);
	sqlite3_bind_int64(st, 2, r->line);
	sqlite3_bind_text(st, 3, ckpt_state_names[r->state], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->code ? r->code : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, r->reason ? r->reason : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob64(st, 6, r->out, r->out_len, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 7, r->credits);
	sqlite3_bind_int(st, 8, r->calls);
	sqlite3_bind_int(st, 9, r->cached ? 1 : 0);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_err(c->db, "cannot record a row");
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	c->pending++;
	if (c->pending >= CKPT_BATCH_ROWS || now_ms - c->first_ms >= CKPT_BATCH_MS)
		rc = commit_locked(c);
out:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum enr_err ckpt_tick(struct ckpt *c, int64_t now_ms)
{
	enum enr_err rc = ENR_OK;

	pthread_mutex_lock(&c->mu);
	if (c->in_tx && now_ms - c->first_ms >= CKPT_BATCH_MS)
		rc = commit_locked(c);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum enr_err ckpt_flush(struct ckpt *c)
{
	enum enr_err rc;

	pthread_mutex_lock(&c->mu);
	rc = commit_locked(c);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int ckpt_pending(struct ckpt *c)
{
	int n;

	pthread_mutex_lock(&c->mu);
	n = c->pending;
	pthread_mutex_unlock(&c->mu);
	return n;
}

enum enr_err ckpt_states(struct ckpt *c, signed char *states, size_t nstates)
{
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_OK;
	int s;

	memset(states, -1, nstates);
	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db, "SELECT n, state FROM rows", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(c->db, "cannot read the checkpoint");
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		enum ckpt_state state;

		if (name == NULL || !ckpt_state_parse(name, &state)) {
			rc = ENR_E_INVALID;
			goto out;
		}
		if (n >= 1 && (uint64_t)n < nstates)
			states[n] = (signed char)state;
	}
	if (s != SQLITE_DONE)
		rc = db_err(c->db, "cannot read the checkpoint");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum enr_err ckpt_counts(struct ckpt *c, struct ckpt_counts *out)
{
	sqlite3_stmt *st = NULL;
	struct ckpt_counts k;
	enum enr_err rc = ENR_OK;
	int s;

	memset(&k, 0, sizeof k);
	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db,
			       "SELECT state, count(*), sum(credits), sum(calls), sum(cached)"
			       " FROM rows GROUP BY state",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(c->db, "cannot read the checkpoint");
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		enum ckpt_state state;
		int64_t n = sqlite3_column_int64(st, 1);

		if (name == NULL || !ckpt_state_parse(name, &state)) {
			rc = ENR_E_INVALID;
			goto out;
		}
		k.state[state] += n;
		k.done += n;
		k.credits += sqlite3_column_int64(st, 2);
		k.calls += sqlite3_column_int64(st, 3);
		k.cached += sqlite3_column_int64(st, 4);
	}
	if (s != SQLITE_DONE)
		rc = db_err(c->db, "cannot read the checkpoint");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->mu);
	if (rc == ENR_OK)
		*out = k;
	return rc;
}

enum enr_err ckpt_each(struct ckpt *c, unsigned mask,
		       int (*fn)(void *arg, const struct ckpt_row *r), void *arg)
{
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_OK;
	int s;

	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db,
			       "SELECT n, line, state, code, reason, out, credits, calls, cached,"
			       " attempts FROM rows ORDER BY n",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(c->db, "cannot read the checkpoint");
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct ckpt_row r;
		const char *name = (const char *)sqlite3_column_text(st, 2);
		const char *code = (const char *)sqlite3_column_text(st, 3);
		const char *reason = (const char *)sqlite3_column_text(st, 4);

		memset(&r, 0, sizeof r);
		if (name == NULL || !ckpt_state_parse(name, &r.state)) {
			rc = ENR_E_INVALID;
			goto out;
		}
		if (mask && !(mask & (1u << r.state)))
			continue;
		r.n = sqlite3_column_int64(st, 0);
		r.line = sqlite3_column_int64(st, 1);
		r.code = code ? code : "";
		r.reason = reason ? reason : "";
		r.out = (const char *)sqlite3_column_blob(st, 5);
		r.out_len = (size_t)sqlite3_column_bytes(st, 5);
		if (r.out == NULL)
			r.out = "";
		r.credits = sqlite3_column_int(st, 6);
		r.calls = sqlite3_column_int(st, 7);
		r.cached = sqlite3_column_int(st, 8) != 0;
		r.attempts = sqlite3_column_int(st, 9);
		if (fn(arg, &r) != 0)
			break;
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		rc = db_err(c->db, "cannot read the checkpoint");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum enr_err ckpt_codes(struct ckpt *c, int (*fn)(void *arg, const char *code, int64_t n),
			void *arg)
{
	sqlite3_stmt *st = NULL;
	enum enr_err rc = ENR_OK;
	int s;

	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db,
			       "SELECT code, count(*) FROM rows WHERE state IN ('failed', 'invalid')"
			       " GROUP BY code ORDER BY code",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(c->db, "cannot read the checkpoint");
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *code = (const char *)sqlite3_column_text(st, 0);

		if (fn(arg, code ? code : "", sqlite3_column_int64(st, 1)) != 0)
			break;
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		rc = db_err(c->db, "cannot read the checkpoint");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->mu);
	return rc;
}
