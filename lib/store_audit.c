/*
 * store_audit.c - the audit log of admin actions and the list of recent
 * alerts (both back ends).
 *
 * Both are append-only: one insert per entry, ids assigned by the
 * database in increasing order, pages read newest first by id.  The
 * audit log is never trimmed; alerts are purged by age.
 */
#include "store.h"
#include "store_int.h"

#include <string.h>

static struct db_stmt q_audit_add =
	DB_WRITE("INSERT INTO audit_log(at_ms, actor, source, action, target, details)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id");
static struct db_stmt q_audit_page =
	DB_READ("SELECT id, at_ms, actor, source, action, target, details FROM audit_log"
		" WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
static struct db_stmt q_alert_add =
	DB_WRITE("INSERT INTO alerts(at_ms, event, provider, key_id, last4, state, until_ms, message)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
static struct db_stmt q_alert_page =
	DB_READ("SELECT id, at_ms, event, provider, key_id, last4, state, until_ms, message"
		" FROM alerts WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
static struct db_stmt q_alert_purge = DB_WRITE("DELETE FROM alerts WHERE at_ms < ?1");

enum enr_err st_audit_add(struct store *s, const struct st_audit *e, int64_t *id)
{
	int64_t v = 0;
	enum enr_err rc;

	if (e->who == NULL || e->from == NULL || e->action == NULL || e->target == NULL)
		return ENR_E_INVALID;
	rc = db_run(s, &q_audit_add, db_one_i64, &v, NULL, "itttttt", e->at_ms, e->who, e->from,
		    e->action, e->target, e->details);
	if (rc == ENR_OK && id)
		*id = v;
	return rc;
}

struct audit_each {
	int (*fn)(void *arg, const struct st_audit *e);
	void *arg;
};

static const char *text_or_empty(const struct db_row *r, int col)
{
	const char *t = db_text(r, col);

	return t ? t : "";
}

static int audit_row(void *arg, const struct db_row *r)
{
	struct audit_each *x = arg;
	struct st_audit e;

	e.id = db_i64(r, 0);
	e.at_ms = db_i64(r, 1);
	e.who = text_or_empty(r, 2);
	e.from = text_or_empty(r, 3);
	e.action = text_or_empty(r, 4);
	e.target = text_or_empty(r, 5);
	e.details = db_text(r, 6);
	return x->fn(x->arg, &e);
}

/* Page bounds: an id below before_id (0 or less: from the newest). */
static int64_t below(int64_t before_id)
{
	return before_id > 0 ? before_id : INT64_MAX;
}

enum enr_err st_audit_page(struct store *s, int64_t before_id, int limit,
			   int (*fn)(void *arg, const struct st_audit *e), void *arg)
{
	struct audit_each x = { fn, arg };

	if (limit <= 0)
		return ENR_OK;
	return db_run(s, &q_audit_page, audit_row, &x, NULL, "ii", below(before_id), (int64_t)limit);
}

enum enr_err st_alert_add(struct store *s, const struct st_alert *a)
{
	if (a->event == NULL || a->provider == NULL || a->message == NULL)
		return ENR_E_INVALID;
	return db_run(s, &q_alert_add, NULL, NULL, NULL, "itttttit", a->at_ms, a->event, a->provider,
		      a->key_id, a->last4, a->state, a->until_ms, a->message);
}

struct alert_each {
	int (*fn)(void *arg, const struct st_alert *a);
	void *arg;
};

static int alert_row(void *arg, const struct db_row *r)
{
	struct alert_each *x = arg;
	struct st_alert a;

	a.id = db_i64(r, 0);
	a.at_ms = db_i64(r, 1);
	a.event = text_or_empty(r, 2);
	a.provider = text_or_empty(r, 3);
	a.key_id = db_text(r, 4);
	a.last4 = db_text(r, 5);
	a.state = db_text(r, 6);
	a.until_ms = db_i64(r, 7);
	a.message = text_or_empty(r, 8);
	return x->fn(x->arg, &a);
}

enum enr_err st_alert_page(struct store *s, int64_t before_id, int limit,
			   int (*fn)(void *arg, const struct st_alert *a), void *arg)
{
	struct alert_each x = { fn, arg };

	if (limit <= 0)
		return ENR_OK;
	return db_run(s, &q_alert_page, alert_row, &x, NULL, "ii", below(before_id), (int64_t)limit);
}

enum enr_err st_alert_purge(struct store *s, int64_t before_ms, int *removed)
{
	int64_t n = 0;
	enum enr_err rc = db_run(s, &q_alert_purge, NULL, NULL, &n, "i", before_ms);

	if (rc == ENR_OK && removed)
		*removed = (int)n;
	return rc;
}
