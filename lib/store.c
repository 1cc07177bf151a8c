/*
 * store.c - the store seam: pick a back end by the URL's scheme, hold the
 * options, run statements and transactions through the back end's table,
 * and keep the authentication generation cheap to read.
 */
#include "store.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "co.h"
#include "log.h"
#include "util.h"

#define TX_TRIES 3

/* ---- back ends ------------------------------------------------------------ */

struct scheme {
	const char *prefix;
	const struct store_ops *ops;
	bool keep_prefix;        /* the back end takes the whole URL */
};

static const struct scheme schemes[] = {
	{ "sqlite:", &st_sqlite_ops, false },
	{ "postgresql://", &st_pg_ops, true },
	{ "postgres://", &st_pg_ops, true },
};

static const struct scheme *scheme_of(const char *url)
{
	for (size_t i = 0; url && i < sizeof schemes / sizeof schemes[0]; i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncmp(url, schemes[i].prefix, n) == 0 && url[n] != '\0')
			return &schemes[i];
	}
	return NULL;
}

/* A PostgreSQL URL may not carry a password (user:secret@host): secrets
 * never live in the configuration file. */
static bool pg_url_has_password(const char *url)
{
	const char *p = strstr(url, "://");
	const char *end, *at, *colon;

	if (p == NULL)
		return false;
	p += 3;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (at == NULL) {
		/* The query form: ?password=... */
		return strstr(url, "password=") != NULL;
	}
	colon = memchr(p, ':', (size_t)(at - p));
	return colon != NULL || strstr(url, "password=") != NULL;
}

bool st_url_ok(const char *url)
{
	const struct scheme *sc = scheme_of(url);

	if (sc == NULL)
		return false;
	if (sc->ops == &st_pg_ops && pg_url_has_password(url))
		return false;
	return true;
}

void st_options_from_cfg(const struct cfg *cfg, struct st_options *out)
{
	memset(out, 0, sizeof *out);
	out->pool_size = cfg->store_pool_size;
	out->pool_wait_ms = cfg->store_pool_wait_ms;
	out->statement_timeout_ms = cfg->store_statement_timeout_ms;
	out->busy_timeout_ms = cfg->store_busy_timeout_ms;
	out->password = cfg->store_password && cfg->store_password[0] ? cfg->store_password : NULL;
	out->state_dir = cfg->state_dir && cfg->state_dir[0] ? cfg->state_dir : NULL;
}

const char *st_backend_name(const struct store *s)
{
	return s->ops->name;
}

void st_identity(const struct store *s, char out[65])
{
	unsigned char h[AUTH_HASH_LEN];

	auth_key_hash(s->url, strlen(s->url), h);
	util_hex(h, sizeof h, out);
}

enum db_dialect db_dialect_of(const struct store *s)
{
	return s->ops->dialect;
}

uint64_t *st_counter_map(const char *path)
{
	struct stat st;
	void *m;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && st.st_size < (off_t)sizeof(uint64_t) &&
	    ftruncate(fd, sizeof(uint64_t)) != 0) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

/* The host's shared counter for this store: a small file in state_dir
 * that every process of the host opening the same URL bumps after a
 * change to keys or accounts. */
static void auth_map_open(struct store *s, const char *state_dir)
{
	char path[4096], id[65];

	st_identity(s, id);
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return;
	if (snprintf(path, sizeof path, "%s/authgen-%.16s", state_dir, id) >= (int)sizeof path)
		return;
	s->auth_map = st_counter_map(path);
}

void st_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->auth_map)
		munmap(s->auth_map, sizeof(uint64_t));
	if (s->ops)
		s->ops->close(s);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s->url);
	free(s);
}

static enum enr_err open_raw(const char *url, const struct st_options *o, struct store **out,
			     char *why, size_t whylen)
{
	const struct scheme *sc = scheme_of(url);
	struct store *s;
	enum enr_err rc;

	if (sc == NULL || !st_url_ok(url)) {
		snprintf(why, whylen, "%s is not a store URL (sqlite:PATH or postgresql://..., without "
			 "a password)", url ? url : "(none)");
		return ENR_E_INVALID;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return ENR_E_NOMEM;
	if (o)
		s->opt = *o;
	if (s->opt.pool_size <= 0)
		s->opt.pool_size = ST_POOL_DEFAULT;
	if (s->opt.pool_wait_ms <= 0)
		s->opt.pool_wait_ms = ST_POOL_WAIT_MS_DEFAULT;
	if (s->opt.statement_timeout_ms <= 0)
		s->opt.statement_timeout_ms = ST_STATEMENT_TIMEOUT_MS_DEFAULT;
	if (s->opt.busy_timeout_ms <= 0)
		s->opt.busy_timeout_ms = ST_BUSY_TIMEOUT_MS_DEFAULT;
	s->opt.password = NULL;
	s->url = strdup(url);
	if (s->url == NULL) {
		free(s);
		return ENR_E_NOMEM;
	}
	if (o && o->password) {
		rc = util_secret_read(o->password, &s->password);
		if (rc) {
			snprintf(why, whylen, "store_password %s cannot be read (%s)", o->password,
				 rc == ENR_E_FORBIDDEN ? "the file is readable by others"
						       : enr_strerror(rc));
			free(s->url);
			free(s);
			return rc == ENR_E_NOMEM ? rc : ENR_E_CONFIG;
		}
	}
	why[0] = '\0';
	rc = sc->ops->open(s, sc->keep_prefix ? url : url + strlen(sc->prefix), why, whylen);
	if (rc) {
		if (why[0] == '\0')
			snprintf(why, whylen, "cannot open %s: %s", url, enr_strerror(rc));
		st_close(s);
		return rc;
	}
	s->ops = sc->ops;
	if (o && o->state_dir)
		auth_map_open(s, o->state_dir);
	*out = s;
	return ENR_OK;
}

enum enr_err st_open_why(const char *url, const struct st_options *o, bool migrate,
			 struct store **out, char *why, size_t whylen)
{
	struct store *s = NULL;
	char scratch[512];
	enum enr_err rc;

	if (why == NULL || whylen == 0) {
		why = scratch;
		whylen = sizeof scratch;
	}
	why[0] = '\0';
	rc = open_raw(url, o, &s, why, whylen);
	if (rc)
		return rc;
	if (migrate) {
		rc = st_migrate(s, NULL, NULL);
		if (rc) {
			snprintf(why, whylen, "cannot bring the schema of %s up to date: %s", url,
				 enr_strerror(rc));
			st_close(s);
			return rc;
		}
	}
	*out = s;
	return ENR_OK;
}

enum enr_err st_open_raw(const char *url, const struct st_options *o, struct store **out)
{
	char why[512];
	enum enr_err rc = st_open_why(url, o, false, out, why, sizeof why);

	if (rc)
		log_error("store", "%s", why);
	return rc;
}

enum enr_err st_open(const char *url, const struct st_options *o, struct store **out)
{
	char why[512];
	enum enr_err rc = st_open_why(url, o, true, out, why, sizeof why);

	if (rc)
		log_error("store", "%s", why);
	return rc;
}

enum enr_err st_open_cfg(const struct cfg *cfg, struct store **out, char *why, size_t whylen)
{
	struct st_options o;

	st_options_from_cfg(cfg, &o);
	return st_open_why(cfg->store, &o, true, out, why, whylen);
}

void st_thread_release(struct store *s)
{
	if (s && s->ops->thread_release)
		s->ops->thread_release(s);
}

/* ---- rows ------------------------------------------------------------------ */

int64_t db_i64(const struct db_row *r, int col)
{
	return r->ops->i64(r, col);
}

int db_int(const struct db_row *r, int col)
{
	return (int)r->ops->i64(r, col);
}

double db_dbl(const struct db_row *r, int col)
{
	return r->ops->dbl(r, col);
}

const char *db_text(const struct db_row *r, int col)
{
	return r->ops->text(r, col);
}

void db_textcpy(const struct db_row *r, int col, char *out, size_t outsz)
{
	const char *t = r->ops->text(r, col);

	util_strlcpy(out, t ? t : "", outsz);
}

char *db_strdup(const struct db_row *r, int col)
{
	const char *t = r->ops->text(r, col);

	return strdup(t ? t : "");
}

const void *db_blob(const struct db_row *r, int col, size_t *len)
{
	return r->ops->blob(r, col, len);
}

int db_one_i64(void *arg, const struct db_row *r)
{
	*(int64_t *)arg = db_i64(r, 0);
	return 0;
}

/* ---- the runner ------------------------------------------------------------ */

int db_stmt_slot(struct db_stmt *q)
{
	static int next;
	int slot = __atomic_load_n(&q->slot, __ATOMIC_ACQUIRE);

	if (slot == 0) {
		int mine = __atomic_add_fetch(&next, 1, __ATOMIC_ACQ_REL);
		int expected = 0;

		if (__atomic_compare_exchange_n(&q->slot, &expected, mine, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			slot = mine;
		else
			slot = expected;
	}
	/* Slot 0 means "not assigned"; the caches index from 0. */
	return slot - 1 < DB_STMTS_MAX ? slot - 1 : -1;
}

/* Turn a type string and its arguments into parameters; -1 when the
 * string is longer than DB_PARAMS_MAX or has an unknown letter. */
static int params_of(struct db_param *p, const char *types, va_list ap)
{
	int n = 0;

	for (; types[n]; n++) {
		if (n >= DB_PARAMS_MAX)
			return -1;
		memset(&p[n], 0, sizeof p[n]);
		p[n].type = types[n];
		switch (types[n]) {
		case 'i':
			p[n].i = va_arg(ap, int64_t);
			break;
		case 'd':
			p[n].d = va_arg(ap, double);
			break;
		case 't':
			p[n].p = va_arg(ap, const char *);
			break;
		case 'b':
			p[n].p = va_arg(ap, const void *);
			p[n].len = va_arg(ap, size_t);
			break;
		default:
			return -1;
		}
	}
	return n;
}

enum enr_err db_execv(struct db_conn *c, struct db_stmt *q, const struct db_param *p, int np,
		      db_row_fn fn, void *arg, int64_t *changes)
{
	return c->ops->exec(c, q, p, np, fn, arg, changes);
}

enum enr_err db_exec(struct db_conn *c, struct db_stmt *q, db_row_fn fn, void *arg,
		     int64_t *changes, const char *types, ...)
{
	struct db_param p[DB_ARGS_MAX];
	va_list ap;
	int n;

	if (strlen(types) > sizeof p / sizeof p[0])
		return ENR_E_INTERNAL;
	va_start(ap, types);
	n = params_of(p, types, ap);
	va_end(ap);
	if (n < 0)
		return ENR_E_INTERNAL;
	return c->ops->exec(c, q, p, n, fn, arg, changes);
}

/* A statement or transaction in flight: run where blocking is allowed
 * (co_call: on the store pool when the caller is a continuation on the
 * loop, right here otherwise). */
struct db_call {
	struct store *s;
	struct db_stmt *q;
	const struct db_param *p;
	int n;
	db_row_fn fn;
	db_tx_fn body;
	void *arg;
	int64_t *changes;
	enum enr_err rc;
};

/* One attempt of a call on connection c. */
typedef enum enr_err (*attempt_fn)(struct db_call *a, struct db_conn *c);

/* Take a connection, make one attempt, give it back; again (up to
 * TX_TRIES) while the back end says the failure is worth retrying. */
static void with_retries(struct db_call *a, attempt_fn once, bool note)
{
	struct store *s = a->s;
	struct db_conn *c = NULL;

	for (int attempt = 0;; attempt++) {
		bool retry;

		a->rc = s->ops->acquire(s, &c);
		if (a->rc)
			return;
		a->rc = once(a, c);
		retry = a->rc && attempt + 1 < TX_TRIES && s->ops->retryable(c);
		s->ops->release(s, c);
		if (!retry)
			return;
		if (note)
			log_info("store", "transaction retried after a serialization failure or deadlock");
	}
}

static enum enr_err stmt_once(struct db_call *a, struct db_conn *c)
{
	return a->s->ops->exec(c, a->q, a->p, a->n, a->fn, a->arg, a->changes);
}

static void run_stmt(void *arg)
{
	with_retries(arg, stmt_once, false);
}

enum enr_err db_run(struct store *s, struct db_stmt *q, db_row_fn fn, void *arg,
		    int64_t *changes, const char *types, ...)
{
	struct db_param p[DB_ARGS_MAX];
	struct db_call a;
	va_list ap;
	int n;

	if (strlen(types) > sizeof p / sizeof p[0])
		return ENR_E_INTERNAL;
	va_start(ap, types);
	n = params_of(p, types, ap);
	va_end(ap);
	if (n < 0)
		return ENR_E_INTERNAL;
	a = (struct db_call){ .s = s, .q = q, .p = p, .n = n, .fn = fn, .arg = arg,
			      .changes = changes };
	co_call(run_stmt, &a);
	return a.rc;
}

static enum enr_err tx_once(struct db_call *a, struct db_conn *c)
{
	enum enr_err rc = a->s->ops->begin(c);

	if (rc)
		return rc;
	rc = a->body(c, a->arg);
	if (rc == ENR_OK)
		return a->s->ops->commit(c);
	a->s->ops->rollback(c);
	return rc;
}

static void run_tx(void *arg)
{
	with_retries(arg, tx_once, true);
}

enum enr_err db_tx(struct store *s, db_tx_fn body, void *arg)
{
	struct db_call a = { .s = s, .body = body, .arg = arg };

	co_call(run_tx, &a);
	return a.rc;
}

/* ---- schema ------------------------------------------------------------------ */

int st_schema_latest(const struct store *s)
{
	return st_schema_count(s->ops->dialect);
}

static enum enr_err version_read(struct db_conn *c, int *v)
{
	*v = 0;
	return c->ops->version_get(c, v);
}

enum enr_err st_schema_version(struct store *s, int *out)
{
	struct db_conn *c = NULL;
	enum enr_err rc = s->ops->acquire(s, &c);
	int v = 0;

	if (rc)
		return rc;
	rc = version_read(c, &v);
	s->ops->release(s, c);
	if (rc == ENR_OK)
		*out = v;
	return rc;
}

struct migrate_arg {
	int target, from, to, latest;
	enum db_dialect d;
	const struct store_ops *ops;
};

static enum enr_err migrate_tx(struct db_conn *c, void *arg)
{
	struct migrate_arg *m = arg;
	enum enr_err rc = m->ops->migrate_lock(c);
	int v = 0;

	if (rc == ENR_OK)
		rc = version_read(c, &v);
	if (rc)
		return rc;
	/* The version is read under the migration lock, so two processes
	 * starting at once do not both apply the same step. */
	if (v > m->latest) {
		log_error("store", "database schema %d is newer than this program (%d)", v, m->latest);
		return ENR_E_STORE;
	}
	m->from = v;
	for (; v < m->target; v++) {
		rc = m->ops->script(c, st_schema_step(m->d, v));
		if (rc == ENR_OK)
			rc = m->ops->version_set(c, v + 1);
		if (rc)
			return rc;
		log_info("store", "schema migrated to version %d", v + 1);
	}
	m->to = v;
	return ENR_OK;
}

enum enr_err st_migrate_to(struct store *s, int target, int *from, int *to)
{
	struct migrate_arg m = { target, 0, 0, st_schema_latest(s), s->ops->dialect, s->ops };
	enum enr_err rc;

	if (m.target > m.latest)
		m.target = m.latest;
	rc = db_tx(s, migrate_tx, &m);
	if (rc)
		return rc;
	if (from)
		*from = m.from;
	if (to)
		*to = m.to < m.from ? m.from : m.to;
	return ENR_OK;
}

enum enr_err st_migrate(struct store *s, int *from, int *to)
{
	return st_migrate_to(s, st_schema_latest(s), from, to);
}

/* ---- ping and the authentication generation --------------------------------- */

static struct db_stmt q_ping = DB_READ("SELECT 1");
/* A row no pacing scope can have ("key:..." and "account:..." are). */
static struct db_stmt q_probe =
	DB_WRITE("INSERT INTO pace_slots(scope, next_ms) VALUES ('health:write-probe', ?1)"
		 " ON CONFLICT(scope) DO UPDATE SET next_ms = excluded.next_ms");
static struct db_stmt q_auth_get = DB_READ("SELECT gen FROM auth_generation WHERE id = 1");
static struct db_stmt q_auth_bump = DB_WRITE("UPDATE auth_generation SET gen = gen + 1 WHERE id = 1");

enum enr_err st_ping(struct store *s)
{
	int64_t one = 0;

	return db_run(s, &q_ping, db_one_i64, &one, NULL, "");
}

enum enr_err st_probe_write(struct store *s, int64_t now_ms)
{
	return db_run(s, &q_probe, NULL, NULL, NULL, "i", now_ms);
}

enum enr_err st_auth_bump(struct db_conn *c)
{
	return db_exec(c, &q_auth_bump, NULL, NULL, NULL, "");
}

void st_auth_bumped(struct store *s)
{
	if (s->ops->auth_local_bump)
		s->ops->auth_local_bump(s);
	if (s->auth_map)
		__atomic_add_fetch(s->auth_map, 1, __ATOMIC_ACQ_REL);
	/* This process sees its own change at once. */
	__atomic_store_n(&s->auth_read_ms, (int64_t)0, __ATOMIC_RELEASE);
}

uint64_t st_auth_generation(struct store *s)
{
	int64_t now = util_mono_ms();
	int64_t last = __atomic_load_n(&s->auth_read_ms, __ATOMIC_ACQUIRE);
	uint64_t local = (s->ops->auth_local ? s->ops->auth_local(s) : 0) +
			 (s->auth_map ? __atomic_load_n(s->auth_map, __ATOMIC_ACQUIRE) : 0);
	int expected = 0;

	/* One thread refreshes; the others go on with the value it had. */
	if (now - last >= ST_AUTH_POLL_MS &&
	    __atomic_compare_exchange_n(&s->auth_refreshing, &expected, 1, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		int64_t gen = 0;

		if (db_run(s, &q_auth_get, db_one_i64, &gen, NULL, "") == ENR_OK && gen > 0) {
			__atomic_store_n(&s->auth_gen, (uint64_t)gen, __ATOMIC_RELEASE);
			__atomic_store_n(&s->auth_read_ms, now, __ATOMIC_RELEASE);
		} else {
			/* Unknown: nobody may cache until it is read again. */
			__atomic_store_n(&s->auth_gen, (uint64_t)0, __ATOMIC_RELEASE);
		}
		__atomic_store_n(&s->auth_refreshing, 0, __ATOMIC_RELEASE);
	}
	{
		uint64_t g = __atomic_load_n(&s->auth_gen, __ATOMIC_ACQUIRE);

		if (g == 0)
			return 0;
		/* The host-local counter moves at once for changes made on
		 * this host; mixing it in makes them visible before the next
		 * poll. */
		return g * 1000003u + local;
	}
}
