/*
 * store_cache.c - the cache of provider answers (both back ends).  Keys
 * are SHA-256 digests (BLOB / bytea); lib/cache owns what they hash and
 * what the bodies hold.
 */
#include "store.h"
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static struct db_stmt q_get =
	DB_READ("SELECT hit, body, expires_ms FROM cache WHERE key = ?1 AND expires_ms > ?2");
static struct db_stmt q_put =
	DB_WRITE("INSERT INTO cache(key, provider, hit, body, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
		 " ON CONFLICT(key) DO UPDATE SET provider = excluded.provider, hit = excluded.hit,"
		 " body = excluded.body, expires_ms = excluded.expires_ms");
static struct db_stmt q_purge =
	DB_WRITE("DELETE FROM cache WHERE key IN"
		 " (SELECT key FROM cache WHERE expires_ms <= ?1 LIMIT ?2)");

struct entry {
	bool found, hit;
	char *body;
	int64_t expires_ms;
};

static int entry_row(void *arg, const struct db_row *r)
{
	struct entry *e = arg;

	e->found = true;
	e->hit = db_i64(r, 0) != 0;
	e->body = db_strdup(r, 1);
	e->expires_ms = db_i64(r, 2);
	return 1;
}

enum enr_err st_cache_get(struct store *s, const unsigned char key[32], int64_t now_ms, bool *hit,
			  char **body, int64_t *expires_ms)
{
	struct entry e = { false, false, NULL, 0 };
	enum enr_err rc = db_run(s, &q_get, entry_row, &e, NULL, "bi", key, (size_t)32, now_ms);

	if (rc) {
		free(e.body);
		return rc;
	}
	if (!e.found)
		return ENR_E_NOT_FOUND;
	if (e.body == NULL)
		return ENR_E_NOMEM;
	*hit = e.hit;
	*body = e.body;
	*expires_ms = e.expires_ms;
	return ENR_OK;
}

enum enr_err st_cache_put(struct store *s, const unsigned char key[32], const char *provider,
			  bool hit, const char *body, int64_t expires_ms)
{
	return db_run(s, &q_put, NULL, NULL, NULL, "btiti", key, (size_t)32, provider,
		      (int64_t)hit, body, expires_ms);
}

struct put_many {
	const struct st_cache_row *rows;
	size_t n;
};

static enum enr_err put_many(struct db_conn *c, void *arg)
{
	struct put_many *m = arg;

	for (size_t i = 0; i < m->n; i++) {
		const struct st_cache_row *r = &m->rows[i];
		enum enr_err rc = db_exec(c, &q_put, NULL, NULL, NULL, "btiti", r->key, (size_t)32,
					  r->provider, (int64_t)r->hit, r->body, r->expires_ms);

		if (rc)
			return rc;
	}
	return ENR_OK;
}

enum enr_err st_cache_put_many(struct store *s, const struct st_cache_row *rows, size_t n)
{
	struct put_many m = { rows, n };

	return n == 0 ? ENR_OK : db_tx(s, put_many, &m);
}

enum enr_err st_cache_purge(struct store *s, int64_t now_ms, int limit, int *removed)
{
	int64_t n = 0;
	enum enr_err rc = db_run(s, &q_purge, NULL, NULL, &n, "ii", now_ms, (int64_t)limit);

	if (rc == ENR_OK && removed)
		*removed = (int)n;
	return rc;
}
